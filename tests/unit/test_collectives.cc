// Every algorithm of every collective, run in the in-memory runner for 1..33 and 64 ranks, sizes 0,
// 1, primes and larger, in place and out of place, checked element by element against a host
// reference.
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "coll_check.h"
#include "runner.h"

namespace weft::test {
namespace {

struct Case {
  CollType coll;
  std::string algo;
  int nranks;
  int channels = 1;  // WEFT_NCHANNELS
};

std::string caseName(const testing::TestParamInfo<Case>& info) {
  return std::string(collName(info.param.coll)) + "_" + info.param.algo + "_" +
         std::to_string(info.param.nranks) +
         (info.param.channels > 1 ? "_ch" + std::to_string(info.param.channels) : "");
}

std::vector<Case> allCases() {
  std::vector<Case> cases;
  const std::vector<int> counts = testRankCounts();
  for (const AlgorithmInfo& a : algorithmTable()) {
    if (a.hierCost != nullptr) continue;  // test_hier.cc runs them over multi-node layouts
    if (a.coll == CollType::kSend || a.coll == CollType::kRecv) continue;
    // All-to-all(-v), gather and scatter: tests/unit/test_alltoall.cc.
    if (a.coll == CollType::kAllToAll || a.coll == CollType::kAllToAllv ||
        a.coll == CollType::kGather || a.coll == CollType::kScatter)
      continue;
    for (int n : counts)
      cases.push_back({a.coll, a.name, n});
    // Steps split over several channels (slices with their own FIFOs and message order).
    for (int n : {2, 3, 5, 8})
      for (int ch : {2, 3})
        cases.push_back({a.coll, a.name, n, ch});
  }
  return cases;
}

// The counts to try: small and odd everywhere, larger ones where the rank count keeps the run
// short.
std::vector<uint64_t> countsFor(int nranks) {
  std::vector<uint64_t> c = {0, 1, 2, 7, 31, 1021};
  if (nranks <= 16 || nranks == 33 || nranks == 64) c.push_back(4099);
  if (nranks <= 8) c.push_back(65537);
  return c;
}

struct Variant {
  weftDataType_t dtype;
  weftRedOp_t op;
};

std::vector<Variant> variantsFor(CollType coll, int nranks) {
  if (coll == CollType::kAllGather || coll == CollType::kBroadcast)
    return {{weftFloat32, weftSum}, {weftUint8, weftSum}};
  std::vector<Variant> v = {{weftFloat32, weftSum}, {weftInt32, weftMax}, {weftFloat64, weftProd},
                            {weftFloat32, weftAvg}, {weftUint8, weftMin}, {weftBfloat16, weftSum},
                            {weftFloat16, weftSum}, {weftInt64, weftAvg}};
  if (nranks <= 8) v.push_back({weftFloat8e4m3, weftSum});
  if (nranks > 16) v.resize(4);
  return v;
}

class Collectives : public testing::TestWithParam<Case> {};

TEST_P(Collectives, MatchReference) {
  const Case c = GetParam();
  const int n = c.nranks;
  RunnerOptions opt;
  opt.algo = std::string(collName(c.coll)) + ":" + c.algo;
  opt.channels = c.channels;
  std::mutex mu;
  std::vector<std::string> failures;
  runRanks(
      n,
      [&](int r, weftComm_t comm) {
        auto fail = [&](const std::string& what) {
          std::lock_guard<std::mutex> lock(mu);
          failures.push_back("rank " + std::to_string(r) + ": " + what);
        };
        for (uint64_t count : countsFor(n)) {
          for (Variant v : variantsFor(c.coll, n)) {
            for (int inPlace = 0; inPlace < 2; ++inPlace) {
              const size_t es = dtypeSize(v.dtype);
              const int root = static_cast<int>(count % static_cast<uint64_t>(n));
              // Inputs: all-gather and broadcast carry rank-specific data, the reductions exact
              // values.
              uint64_t inCount = count, outCount = count;
              if (c.coll == CollType::kAllGather) outCount = count * static_cast<uint64_t>(n);
              if (c.coll == CollType::kReduceScatter) inCount = count * static_cast<uint64_t>(n);
              std::vector<char> in = fillInput(v.op, v.dtype, n, r, inCount);
              if (c.coll == CollType::kBroadcast || c.coll == CollType::kAllGather)
                for (uint64_t i = 0; i < inCount; ++i)
                  storeValue(v.dtype, static_cast<double>((r * 13 + static_cast<int>(i)) % 100),
                             in.data() + i * es);
              std::vector<char> want(outCount * es + 1), out(outCount * es + 1, 0x5a);
              for (uint64_t i = 0; i < outCount; ++i) {
                double x = 0;
                switch (c.coll) {
                  case CollType::kAllGather: {
                    const uint64_t src = i / (count ? count : 1), j = i % (count ? count : 1);
                    x = static_cast<double>((static_cast<int>(src) * 13 + static_cast<int>(j)) %
                                            100);
                    break;
                  }
                  case CollType::kBroadcast:
                    x = static_cast<double>((root * 13 + static_cast<int>(i)) % 100);
                    break;
                  case CollType::kReduceScatter:
                    x = reduceRef(v.op, v.dtype, n, static_cast<uint64_t>(r) * count + i);
                    break;
                  default:
                    x = reduceRef(v.op, v.dtype, n, i);
                    break;
                }
                storeValue(v.dtype, x, want.data() + i * es);
              }
              // Buffers per the in-place conventions.
              const void* send = in.data();
              void* recv = out.data();
              if (inPlace) {
                switch (c.coll) {
                  case CollType::kAllGather:
                    std::memcpy(out.data() + static_cast<size_t>(r) * count * es, in.data(),
                                count * es);
                    send = out.data() + static_cast<size_t>(r) * count * es;
                    break;
                  case CollType::kReduceScatter:
                    recv = in.data() + static_cast<size_t>(r) * count * es;
                    send = in.data();
                    break;
                  default:
                    std::memcpy(out.data(), in.data(), count * es);
                    send = out.data();
                    break;
                }
              }
              weftResult_t res = weftSuccess;
              switch (c.coll) {
                case CollType::kAllReduce:
                  res = weftAllReduce(send, recv, count, v.dtype, v.op, comm, nullptr);
                  break;
                case CollType::kAllGather:
                  res = weftAllGather(send, recv, count, v.dtype, comm, nullptr);
                  break;
                case CollType::kReduceScatter:
                  res = weftReduceScatter(send, recv, count, v.dtype, v.op, comm, nullptr);
                  break;
                case CollType::kBroadcast:
                  res = weftBroadcast(send, recv, count, v.dtype, root, comm, nullptr);
                  break;
                case CollType::kReduce:
                  res = weftReduce(send, recv, count, v.dtype, v.op, root, comm, nullptr);
                  break;
                default:
                  break;
              }
              const std::string what =
                  std::string(collName(c.coll)) + " count=" + std::to_string(count) + " " +
                  dtypeName(v.dtype) + " " + opName(v.op) + (inPlace ? " in-place" : "");
              if (res != weftSuccess) {
                fail(what + ": " + weftGetErrorString(res) + ": " + weftGetLastError(comm));
                return;
              }
              if (c.coll == CollType::kReduce && r != root) continue;
              const void* got = recv;
              std::string diff = compareElems(v.dtype, got, want.data(), outCount);
              if (!diff.empty()) fail(what + ": " + diff);
            }
          }
        }
      },
      opt);
  for (const std::string& f : failures)
    ADD_FAILURE() << f;
}

INSTANTIATE_TEST_SUITE_P(InMemory, Collectives, testing::ValuesIn(allCases()), caseName);

// Failures collected from every rank's thread, reported once all have joined.
struct Failures {
  std::mutex mu;
  std::vector<std::string> list;
  void add(int n, int r, const std::string& what) {
    if (what.empty()) return;
    std::lock_guard<std::mutex> lock(mu);
    list.push_back("n=" + std::to_string(n) + " rank " + std::to_string(r) + ": " + what);
  }
  ~Failures() {
    for (const std::string& f : list)
      ADD_FAILURE() << f;
  }
};

// A float32 sum all-reduce of `count` elements on this rank: "" or what went wrong.
std::string allReduceFloatSum(int n, int r, weftComm_t comm, uint64_t count) {
  std::vector<char> in = fillInput(weftSum, weftFloat32, n, r, count);
  std::vector<char> out(count * 4), want(count * 4);
  for (uint64_t i = 0; i < count; ++i)
    storeValue(weftFloat32, reduceRef(weftSum, weftFloat32, n, i), want.data() + i * 4);
  if (weftAllReduce(in.data(), out.data(), count, weftFloat32, weftSum, comm, nullptr) !=
      weftSuccess)
    return std::string("all_reduce failed: ") + weftGetLastError(comm);
  return compareElems(weftFloat32, out.data(), want.data(), count);
}

// Large buffers through bigger slots: pipelining over many chunks with several in flight.
TEST(CollectivesLarge, AllReduceRingSeveralMiB) {
  for (int n : {2, 3, 5, 8}) {
    RunnerOptions opt;
    opt.slotBytes = 64 * 1024;
    opt.nslots = 4;
    opt.algo = "allreduce:ring";
    const uint64_t count = (3u << 20) / 4 + 7;  // ~3 MiB of float32, not a multiple of anything
    Failures failures;
    runRanks(
        n,
        [&](int r, weftComm_t comm) { failures.add(n, r, allReduceFloatSum(n, r, comm, count)); },
        opt);
  }
}

// Outputs of 8 MiB and more are written with streaming stores (out of place): the same results, bit
// for bit.
TEST(CollectivesLarge, StreamingOutputAllReduceAndAllGather) {
  for (int n : {2, 3}) {
    RunnerOptions opt;
    opt.slotBytes = 128 * 1024;
    opt.nslots = 8;
    const uint64_t count = (9u << 20) / 4 + 5;  // all-reduce output just over 9 MiB
    Failures failures;
    runRanks(
        n,
        [&](int r, weftComm_t comm) {
          failures.add(n, r, allReduceFloatSum(n, r, comm, count));
          // All-gather: n blocks of count/n floats each, rank-specific.
          const uint64_t blk = count / static_cast<uint64_t>(n);
          auto value = [](int q, uint64_t i) {
            return static_cast<float>((q * 7 + static_cast<int>(i % 997)) % 100);
          };
          std::vector<float> mine(blk), all(blk * static_cast<uint64_t>(n));
          for (uint64_t i = 0; i < blk; ++i)
            mine[i] = value(r, i);
          if (weftAllGather(mine.data(), all.data(), blk, weftFloat32, comm, nullptr) !=
              weftSuccess) {
            failures.add(n, r, std::string("all_gather failed: ") + weftGetLastError(comm));
            return;
          }
          for (int q = 0; q < n; ++q)
            for (uint64_t i = 0; i < blk; ++i)
              if (all[q * blk + i] != value(q, i)) {
                failures.add(
                    n, r,
                    "all_gather block " + std::to_string(q) + " element " + std::to_string(i));
                return;
              }
        },
        opt);
  }
}

}  // namespace
}  // namespace weft::test
