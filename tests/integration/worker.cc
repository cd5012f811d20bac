// The multi-process test worker: one rank of a job started by weftrun, over shared memory.
//
// weft_test_worker all
//     every collective x data type x op, sizes 0, 1, a prime and ~1 MiB, in place and out of
//     place, checked bit for bit; plus send/recv in groups
// weft_test_worker kill R
//     rank R kills itself (SIGKILL) in the middle of a long all-reduce; every other rank must fail
//     with an error that names rank R, within WEFT_TIMEOUT
// weft_test_worker mismatch
//     rank 0 calls all-reduce with a different count: every rank must fail with weftInvalidUsage,
//     not hang and not mix data
// weft_test_worker nonblocking
//     several non-blocking all-reduces in flight, then blocking calls after them
// weft_test_worker cpp
//     the C++ layer (weft.hpp): every collective through weft::Communicator
// weft_test_worker a2a
//     all-to-all (in place and out of place), all-to-all-v (deterministic random counts with zeros
//     and gaps, gap bytes checked untouched), gather and scatter from every root, for several data
//     types and sizes up to ~1 MiB; their non-blocking forms, a group, and the C++ layer
// weft_test_worker a2av-mismatch
//     rank 1 sends rank 0 a block whose count differs from rank 0's recvcounts[1]: rank 0 must
//     fail with weftInvalidUsage naming both counts; the next call then fails on every rank, and
//     nothing hangs
//
// weft_test_worker transport NAMES
//     "all", then weftCommTransportStats: the transports in NAMES (comma list, in the order the
//     communicator reports them, e.g. "shm,ucx") carried bytes both ways, any other carried none
//
// Prints "WORKER OK" (rank 0) and exits 0 on success; prints what went wrong and exits 1 otherwise.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../unit/coll_check.h"
#include "weft/weft.h"
#include "weft/weft.hpp"

using namespace weft::test;

namespace {

int gRank = 0, gSize = 1;
long gChecks = 0;

#define CHECK_OK(call, comm)                                                                     \
  do {                                                                                           \
    weftResult_t r_ = (call);                                                                    \
    if (r_ != weftSuccess) {                                                                     \
      std::fprintf(stderr, "rank %d: %s failed: %s: %s\n", gRank, #call, weftGetErrorString(r_), \
                   weftGetLastError(comm));                                                      \
      std::exit(1);                                                                              \
    }                                                                                            \
  } while (0)

void expectSame(const char* what, weftDataType_t t, const void* got, const std::vector<char>& want,
                uint64_t count) {
  std::string diff = compareElems(t, got, want.data(), count);
  ++gChecks;
  if (!diff.empty()) {
    std::fprintf(stderr, "rank %d: %s: %s\n", gRank, what, diff.c_str());
    std::exit(1);
  }
}

void reductions(weftComm_t comm, weftDataType_t t, weftRedOp_t op, uint64_t count, bool inPlace) {
  const size_t es = weft::dtypeSize(t);
  const int n = gSize;
  char what[160];
  std::snprintf(what, sizeof what, "%s %s count=%llu%s", weft::dtypeName(t), weft::opName(op),
                static_cast<unsigned long long>(count), inPlace ? " in-place" : "");
  // all-reduce
  {
    std::vector<char> in = fillInput(op, t, n, gRank, count), out(count * es + 1),
                      want(count * es + 1);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, reduceRef(op, t, n, i), want.data() + i * es);
    void* recv = inPlace ? static_cast<void*>(in.data()) : out.data();
    CHECK_OK(weftAllReduce(in.data(), recv, count, t, op, comm, nullptr), comm);
    expectSame((std::string("all_reduce ") + what).c_str(), t, recv, want, count);
  }
  // reduce-scatter
  {
    std::vector<char> in = fillInput(op, t, n, gRank, count * n), out(count * es + 1),
                      want(count * es + 1);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, reduceRef(op, t, n, static_cast<uint64_t>(gRank) * count + i),
                 want.data() + i * es);
    void* recv = inPlace ? static_cast<void*>(in.data() + gRank * count * es) : out.data();
    CHECK_OK(weftReduceScatter(in.data(), recv, count, t, op, comm, nullptr), comm);
    expectSame((std::string("reduce_scatter ") + what).c_str(), t, recv, want, count);
  }
  // reduce, rooted at each rank in turn
  const int root = static_cast<int>(count % static_cast<uint64_t>(n));
  {
    std::vector<char> in = fillInput(op, t, n, gRank, count), out(count * es + 1),
                      want(count * es + 1);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, reduceRef(op, t, n, i), want.data() + i * es);
    void* recv = inPlace ? static_cast<void*>(in.data()) : out.data();
    CHECK_OK(weftReduce(in.data(), recv, count, t, op, root, comm, nullptr), comm);
    if (gRank == root) expectSame((std::string("reduce ") + what).c_str(), t, recv, want, count);
  }
}

void movements(weftComm_t comm, weftDataType_t t, uint64_t count, bool inPlace) {
  const size_t es = weft::dtypeSize(t);
  const int n = gSize;
  auto value = [](int r, uint64_t i) {
    return static_cast<double>((r * 13 + static_cast<int>(i % 1000)) % 100);
  };
  char what[160];
  std::snprintf(what, sizeof what, "%s count=%llu%s", weft::dtypeName(t),
                static_cast<unsigned long long>(count), inPlace ? " in-place" : "");
  // all-gather
  {
    std::vector<char> in(count * es + 1), out(count * n * es + 1), want(count * n * es + 1);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, value(gRank, i), in.data() + i * es);
    for (int r = 0; r < n; ++r)
      for (uint64_t i = 0; i < count; ++i)
        storeValue(t, value(r, i), want.data() + (r * count + i) * es);
    const void* send = in.data();
    if (inPlace) {
      std::memcpy(out.data() + gRank * count * es, in.data(), count * es);
      send = out.data() + gRank * count * es;
    }
    CHECK_OK(weftAllGather(send, out.data(), count, t, comm, nullptr), comm);
    expectSame((std::string("all_gather ") + what).c_str(), t, out.data(), want, count * n);
  }
  // broadcast from every root
  for (int root = 0; root < n; ++root) {
    std::vector<char> buf(count * es + 1), out(count * es + 1), want(count * es + 1);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, value(root, i), want.data() + i * es);
    if (gRank == root) buf = want;
    void* recv = inPlace ? static_cast<void*>(buf.data()) : out.data();
    CHECK_OK(weftBroadcast(buf.data(), recv, count, t, root, comm, nullptr), comm);
    expectSame((std::string("broadcast ") + what).c_str(), t, recv, want, count);
  }
  // send/recv: a ring shift in a group, plus a message to self
  {
    const int next = (gRank + 1) % n, prev = (gRank + n - 1) % n;
    std::vector<char> in(count * es + 1), fromPrev(count * es + 1), self(count * es + 1),
        want(count * es + 1);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, value(gRank, i), in.data() + i * es);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, value(prev, i), want.data() + i * es);
    CHECK_OK(weftGroupStart(), comm);
    CHECK_OK(weftSend(in.data(), count, t, next, comm, nullptr), comm);
    CHECK_OK(weftRecv(fromPrev.data(), count, t, prev, comm, nullptr), comm);
    CHECK_OK(weftSend(in.data(), count, t, gRank, comm, nullptr), comm);
    CHECK_OK(weftRecv(self.data(), count, t, gRank, comm, nullptr), comm);
    CHECK_OK(weftGroupEnd(), comm);
    expectSame((std::string("send/recv ") + what).c_str(), t, fromPrev.data(), want, count);
    expectSame((std::string("send/recv self ") + what).c_str(), t, self.data(), in, count);
  }
}

int runAll(weftComm_t comm) {
  const uint64_t counts[] = {0, 1, 1021, (1u << 20) / 4 + 3};
  for (int t = 0; t < weftNumTypes; ++t) {
    const auto dt = static_cast<weftDataType_t>(t);
    for (uint64_t count : counts) {
      // ~1 MiB only for float32, to keep the suite quick.
      if (count > 4096 && dt != weftFloat32) continue;
      for (int inPlace = 0; inPlace < 2; ++inPlace) {
        for (int op = 0; op < weftNumOps; ++op)
          reductions(comm, dt, static_cast<weftRedOp_t>(op), count, inPlace);
        movements(comm, dt, count, inPlace);
      }
    }
  }
  return 0;
}

int runKill(weftComm_t comm, int victim) {
  const uint64_t count =
      4u << 20;  // 16 MiB of float32 per call: long enough to be killed in the middle
  std::vector<float> in(count, 1.0f), out(count);
  if (gRank == victim) {
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      raise(SIGKILL);
    }).detach();
  }
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i) {
    weftResult_t r =
        weftAllReduce(in.data(), out.data(), count, weftFloat32, weftSum, comm, nullptr);
    if (r != weftSuccess) {
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const std::string msg = weftGetLastError(comm);
      const std::string named = "rank " + std::to_string(victim);
      std::printf("rank %d: call %d failed after %.2f s with %s: %s\n", gRank, i, s,
                  weftGetErrorString(r), msg.c_str());
      if (msg.find(named) == std::string::npos) {
        std::fprintf(stderr, "rank %d: the error does not name %s\n", gRank, named.c_str());
        return 1;
      }
      // Later calls fail at once with the same cause.
      weftResult_t again =
          weftAllReduce(in.data(), out.data(), 1, weftFloat32, weftSum, comm, nullptr);
      if (again == weftSuccess) return 1;
      std::printf("KILL DETECTED rank %d\n", gRank);
      return 0;
    }
  }
  std::fprintf(stderr, "rank %d: the victim never died\n", gRank);
  return 1;
}

int runMismatch(weftComm_t comm) {
  const uint64_t count = gRank == 0 ? 1000 : 1001;
  std::vector<float> in(2000, 1.0f), out(2000);
  weftResult_t r = weftAllReduce(in.data(), out.data(), count, weftFloat32, weftSum, comm, nullptr);
  std::printf("rank %d: mismatch gave %s: %s\n", gRank, weftGetErrorString(r),
              weftGetLastError(comm));
  if (r == weftSuccess) return 1;
  std::printf("MISMATCH DETECTED rank %d\n", gRank);
  return 0;
}

int runNonBlocking(weftComm_t comm) {
  const uint64_t count = 100003;
  const int kReqs = 6;
  std::vector<std::vector<float>> in(kReqs), out(kReqs);
  std::vector<weftRequest_t> reqs(kReqs);
  for (int k = 0; k < kReqs; ++k) {
    in[k].assign(count, static_cast<float>(gRank + k));
    out[k].assign(count, -1.0f);
    CHECK_OK(weftIAllReduce(in[k].data(), out[k].data(), count, weftFloat32, weftSum, comm, nullptr,
                            &reqs[k]),
             comm);
  }
  // A blocking call queues behind the outstanding requests.
  std::vector<float> b(10, 1.0f);
  CHECK_OK(weftAllReduce(b.data(), b.data(), 10, weftFloat32, weftSum, comm, nullptr), comm);
  for (int k = 0; k < kReqs; ++k) {
    if (k % 2 == 0) {
      int done = 0;
      while (!done)
        CHECK_OK(weftTest(reqs[k], &done), comm);
    } else {
      CHECK_OK(weftWait(reqs[k]), comm);
    }
    const float want = static_cast<float>(gSize * (gSize - 1) / 2 + gSize * k);
    for (uint64_t i = 0; i < count; ++i)
      if (out[k][i] != want) {
        std::fprintf(stderr, "rank %d: request %d element %llu = %f, want %f\n", gRank, k,
                     static_cast<unsigned long long>(i), out[k][i], want);
        return 1;
      }
  }
  if (b[0] != static_cast<float>(gSize)) return 1;
  ++gChecks;
  return 0;
}

// The C++ layer end to end, with a second communicator beside the C one.
int runCpp() {
  weft::Communicator comm = weft::Communicator::fromEnv();
  const int r = comm.rank(), n = comm.size();
  std::vector<double> in(1000, r + 1.0), out(1000);
  comm.allReduce(std::span<const double>(in), std::span<double>(out), weft::Op::kMax);
  if (out[999] != n) return 1;
  std::vector<int32_t> mine(3, r), all(3 * n);
  comm.allGather(std::span<const int32_t>(mine), std::span<int32_t>(all));
  for (int i = 0; i < 3 * n; ++i)
    if (all[i] != i / 3) return 1;
  std::vector<int64_t> parts(2 * n, 1), part(2);
  comm.reduceScatter(std::span<const int64_t>(parts), std::span<int64_t>(part));
  if (part[0] != n || part[1] != n) return 1;
  const int root = 1 % n;
  std::vector<float> b(5, r == root ? 7.0f : 0.0f);
  comm.broadcast(std::span<float>(b), root);
  if (b[4] != 7.0f) return 1;
  std::vector<uint32_t> x(4, 2), sum(4, 0);
  comm.reduce(std::span<const uint32_t>(x), std::span<uint32_t>(sum), 0);
  if (r == 0 && sum[0] != static_cast<uint32_t>(2 * n)) return 1;
  std::vector<uint8_t> tx(9, static_cast<uint8_t>(r)), rx(9);
  {
    weft::Group g;
    comm.send(std::span<const uint8_t>(tx), (r + 1) % n);
    comm.recv(std::span<uint8_t>(rx), (r + n - 1) % n);
  }
  if (rx[8] != (r + n - 1) % n) return 1;
  try {
    comm.allGather(std::span<const int32_t>(mine), std::span<int32_t>(all.data(), 1));  // too small
    return 1;
  } catch (const weft::Error& e) {
    if (e.code() != weftInvalidArgument) return 1;
  }
  ++gChecks;
  return 0;
}

// ---- all-to-all, all-to-all-v, gather, scatter ----

// Element i of the block rank src sends to rank dst: exact in every data type.
double a2aValue(int src, int dst, uint64_t i) {
  return static_cast<double>(
      (static_cast<uint64_t>(src) * 37 + static_cast<uint64_t>(dst) * 11 + i * 3) % 251);
}

uint64_t a2aMix(uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL) * 0xbf58476d1ce4e5b9ULL ^ c;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// This rank's all-to-all-v arrays: count(from, to) is zero one time in four, else up to maxCount;
// gaps between the ranges; receive ranges in reverse rank order for odd seeds.
struct A2avLayout {
  std::vector<size_t> sc, sd, rc, rd;
  size_t sendElems = 0, recvElems = 0;
};
size_t a2avCount(int from, int to, int seed, size_t maxCount) {
  const uint64_t h =
      a2aMix(static_cast<uint64_t>(from), static_cast<uint64_t>(to), static_cast<uint64_t>(seed));
  return maxCount == 0 || h % 4 == 0 ? 0 : static_cast<size_t>((h >> 8) % maxCount) + 1;
}
A2avLayout a2avLayout(int seed, size_t maxCount) {
  const int n = gSize;
  A2avLayout v;
  v.sc.resize(n);
  v.sd.resize(n);
  v.rc.resize(n);
  v.rd.resize(n);
  size_t off = 0;
  for (int j = 0; j < n; ++j) {
    off += static_cast<size_t>(j % 3);
    v.sc[j] = a2avCount(gRank, j, seed, maxCount);
    v.sd[j] = off;
    off += v.sc[j];
  }
  v.sendElems = off + 1;
  off = 0;
  for (int k = 0; k < n; ++k) {
    const int j = seed % 2 == 0 ? k : n - 1 - k;
    off += 1 + static_cast<size_t>(k % 2);
    v.rc[j] = a2avCount(j, gRank, seed, maxCount);
    v.rd[j] = off;
    off += v.rc[j];
  }
  v.recvElems = off + 2;
  return v;
}

void a2aChecks(weftComm_t comm, weftDataType_t t, uint64_t count) {
  const size_t es = weft::dtypeSize(t);
  const int n = gSize, r = gRank;
  const uint64_t total = count * static_cast<uint64_t>(n);
  char what[160];
  std::snprintf(what, sizeof what, "%s count=%llu", weft::dtypeName(t),
                static_cast<unsigned long long>(count));
  // all-to-all, out of place then in place
  for (int inPlace = 0; inPlace < 2; ++inPlace) {
    std::vector<char> in(total * es + 1), out(total * es + 1, 0x5a), want(total * es + 1, 0x5a);
    for (int j = 0; j < n; ++j)
      for (uint64_t i = 0; i < count; ++i) {
        storeValue(t, a2aValue(r, j, i), in.data() + (j * count + i) * es);
        storeValue(t, a2aValue(j, r, i), want.data() + (j * count + i) * es);
      }
    if (inPlace) std::memcpy(out.data(), in.data(), total * es);
    CHECK_OK(weftAllToAll(inPlace ? out.data() : in.data(), out.data(), count, t, comm, nullptr),
             comm);
    expectSame((std::string("all_to_all ") + what + (inPlace ? " in-place" : "")).c_str(),
               weftUint8, out.data(), want, out.size());
  }
  // gather and scatter from every root, in place on the root every other time
  for (int root = 0; root < n; ++root) {
    const bool inPlace = root % 2 == 1 && r == root;
    std::vector<char> mine(count * es + 1), all(total * es + 1, 0x5a), want(total * es + 1, 0x5a);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, a2aValue(r, root, i), mine.data() + i * es);
    if (r == root)
      for (int q = 0; q < n; ++q)
        for (uint64_t i = 0; i < count; ++i)
          storeValue(t, a2aValue(q, root, i), want.data() + (q * count + i) * es);
    const void* send = mine.data();
    if (inPlace) {
      std::memcpy(all.data() + root * count * es, mine.data(), count * es);
      send = all.data() + root * count * es;
    }
    CHECK_OK(weftGather(send, r == root ? all.data() : nullptr, count, t, root, comm, nullptr),
             comm);
    if (r == root)
      expectSame((std::string("gather ") + what).c_str(), weftUint8, all.data(), want, all.size());
    // scatter: the root's blocks go out; rank q gets block q
    std::vector<char> blocks(total * es + 1), part(count * es + 1, 0x5a),
        wantPart(count * es + 1, 0x5a);
    for (int q = 0; q < n; ++q)
      for (uint64_t i = 0; i < count; ++i)
        storeValue(t, a2aValue(root, q, i), blocks.data() + (q * count + i) * es);
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, a2aValue(root, r, i), wantPart.data() + i * es);
    void* recv = inPlace ? static_cast<void*>(blocks.data() + root * count * es) : part.data();
    CHECK_OK(weftScatter(r == root ? blocks.data() : nullptr, recv, count, t, root, comm, nullptr),
             comm);
    if (inPlace) std::memcpy(part.data(), recv, count * es);
    expectSame((std::string("scatter ") + what).c_str(), weftUint8, part.data(), wantPart,
               part.size());
  }
}

void a2avCheck(weftComm_t comm, weftDataType_t t, int seed, size_t maxCount) {
  const size_t es = weft::dtypeSize(t);
  const A2avLayout v = a2avLayout(seed, maxCount);
  std::vector<char> in(v.sendElems * es), out(v.recvElems * es, 0x5a), want(out);
  for (int j = 0; j < gSize; ++j) {
    for (size_t i = 0; i < v.sc[j]; ++i)
      storeValue(t, a2aValue(gRank, j, i), in.data() + (v.sd[j] + i) * es);
    for (size_t i = 0; i < v.rc[j]; ++i)
      storeValue(t, a2aValue(j, gRank, i), want.data() + (v.rd[j] + i) * es);
  }
  CHECK_OK(weftAllToAllv(in.data(), v.sc.data(), v.sd.data(), out.data(), v.rc.data(), v.rd.data(),
                         t, comm, nullptr),
           comm);
  char what[160];
  std::snprintf(what, sizeof what, "all_to_all_v %s seed=%d max=%zu", weft::dtypeName(t), seed,
                maxCount);
  expectSame(what, weftUint8, out.data(), want, out.size());
}

int runA2a(weftComm_t comm) {
  const weftDataType_t types[] = {weftFloat32, weftUint8, weftFloat64, weftBfloat16};
  for (weftDataType_t t : types) {
    for (uint64_t count : {uint64_t{0}, uint64_t{1}, uint64_t{1021}})
      a2aChecks(comm, t, count);
    for (int seed = 0; seed < 4; ++seed)
      for (size_t maxCount : {size_t{0}, size_t{1}, size_t{9}, size_t{2000}})
        a2avCheck(comm, t, seed, maxCount);
  }
  // ~1 MiB per rank
  a2aChecks(comm, weftFloat32, (1u << 18) / static_cast<uint64_t>(gSize) + 3);
  a2avCheck(comm, weftFloat32, 5, 100000);

  // Non-blocking, with the all-to-all-v arrays reused at once; then a group.
  const int n = gSize, r = gRank;
  A2avLayout v = a2avLayout(7, 500);
  std::vector<float> vin(v.sendElems), vout(v.recvElems, -1.0f);
  for (int j = 0; j < n; ++j)
    for (size_t i = 0; i < v.sc[j]; ++i)
      vin[v.sd[j] + i] = static_cast<float>(a2aValue(r, j, i));
  std::vector<int32_t> blocks(3 * n), back(3 * n, -1), mine(3, r), all(3 * n, -1);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < 3; ++i)
      blocks[3 * j + i] = r * 1000 + j * 10 + i;
  weftRequest_t reqs[3];
  CHECK_OK(weftIAllToAllv(vin.data(), v.sc.data(), v.sd.data(), vout.data(), v.rc.data(),
                          v.rd.data(), weftFloat32, comm, nullptr, &reqs[0]),
           comm);
  const A2avLayout keep = v;
  std::fill(v.sc.begin(), v.sc.end(), size_t{12345});  // reused: the request holds a copy
  CHECK_OK(weftIAllToAll(blocks.data(), back.data(), 3, weftInt32, comm, nullptr, &reqs[1]), comm);
  CHECK_OK(weftIGather(mine.data(), all.data(), 3, weftInt32, n - 1, comm, nullptr, &reqs[2]),
           comm);
  for (weftRequest_t q : reqs)
    CHECK_OK(weftWait(q), comm);
  for (int j = 0; j < n; ++j) {
    for (size_t i = 0; i < keep.rc[j]; ++i)
      if (vout[keep.rd[j] + i] != static_cast<float>(a2aValue(j, r, i))) {
        std::fprintf(stderr, "rank %d: weftIAllToAllv block from %d wrong\n", r, j);
        return 1;
      }
    for (int i = 0; i < 3; ++i)
      if (back[3 * j + i] != j * 1000 + r * 10 + i || (r == n - 1 && all[3 * j + i] != j)) {
        std::fprintf(stderr, "rank %d: weftIAllToAll/weftIGather block %d wrong\n", r, j);
        return 1;
      }
  }
  std::vector<int32_t> part(3, -1);
  std::fill(back.begin(), back.end(), -1);
  CHECK_OK(weftGroupStart(), comm);
  CHECK_OK(weftAllToAll(blocks.data(), back.data(), 3, weftInt32, comm, nullptr), comm);
  CHECK_OK(weftScatter(blocks.data(), part.data(), 3, weftInt32, 0, comm, nullptr), comm);
  CHECK_OK(weftGroupEnd(), comm);
  for (int i = 0; i < 3; ++i)
    if (part[i] != r * 10 + i || back[3 * n - 3 + i] != (n - 1) * 1000 + r * 10 + i) {
      std::fprintf(stderr, "rank %d: grouped all_to_all/scatter wrong\n", r);
      return 1;
    }
  gChecks += 2;

  // The C++ layer, on a second communicator.
  weft::Communicator cc = weft::Communicator::fromEnv();
  std::vector<double> d(2 * n), e(2 * n);
  for (int j = 0; j < 2 * n; ++j)
    d[j] = r * 100 + j / 2;
  cc.allToAll(std::span<const double>(d), std::span<double>(e));
  for (int j = 0; j < n; ++j)
    if (e[2 * j] != j * 100 + r) return 1;
  std::vector<size_t> ones(n, 1), idx(n);
  for (int j = 0; j < n; ++j)
    idx[j] = static_cast<size_t>(j);
  std::vector<uint8_t> vs(n), vr(n);
  for (int j = 0; j < n; ++j)
    vs[j] = static_cast<uint8_t>(r * 16 + j);
  cc.allToAllv(std::span<const uint8_t>(vs), std::span<const size_t>(ones),
               std::span<const size_t>(idx), std::span<uint8_t>(vr), std::span<const size_t>(ones),
               std::span<const size_t>(idx));
  for (int j = 0; j < n; ++j)
    if (vr[j] != static_cast<uint8_t>(j * 16 + r)) return 1;
  std::vector<int64_t> g1(1, r), gn(n, -1), s1(1, -1);
  cc.gather(std::span<const int64_t>(g1), std::span<int64_t>(gn), 0);
  if (r == 0)
    for (int j = 0; j < n; ++j)
      if (gn[j] != j) return 1;
  cc.scatter(std::span<const int64_t>(gn), std::span<int64_t>(s1), 0);
  if (s1[0] != r) return 1;
  try {
    cc.allToAll(std::span<const double>(d), std::span<double>(e.data(), 2 * n - 1));
    return 1;
  } catch (const weft::Error& err) {
    if (err.code() != weftInvalidArgument) return 1;
  }
  ++gChecks;
  return 0;
}

int runA2avMismatch(weftComm_t comm) {
  // Rank 1 sends rank 0 3000 floats where rank 0 expects 2048: more chunks than expected, which a
  // per-chunk size check alone would take for a shorter message.
  const int n = gSize;
  std::vector<size_t> sc(n, 8), sd(n), rc(n, 8), rd(n);
  if (gRank == 1) sc[0] = 3000;
  if (gRank == 0) rc[1] = 2048;
  size_t so = 0, ro = 0;
  for (int j = 0; j < n; ++j) {
    sd[j] = so;
    so += sc[j];
    rd[j] = ro;
    ro += rc[j];
  }
  std::vector<float> in(so + 1, 1.0f), out(ro + 1, 0.0f);
  const weftResult_t r = weftAllToAllv(in.data(), sc.data(), sd.data(), out.data(), rc.data(),
                                       rd.data(), weftFloat32, comm, nullptr);
  const std::string msg = weftGetLastError(comm);
  std::printf("rank %d: mismatched all_to_all_v gave %s: %s\n", gRank, weftGetErrorString(r),
              r == weftSuccess ? "" : msg.c_str());
  if (gRank == 0) {
    if (r != weftInvalidUsage ||
        msg.find("sendcounts[0] on rank 1 must equal recvcounts[1] on rank 0") ==
            std::string::npos ||
        msg.find("expected a message of 8192 bytes from rank 1") == std::string::npos ||
        msg.find("sent 12000 bytes") == std::string::npos) {
      std::fprintf(stderr, "rank 0: not the expected error\n");
      return 1;
    }
    std::printf("A2AV MISMATCH DETECTED rank 0\n");
  }
  float x = 1, y = 0;
  const weftResult_t next = weftAllReduce(&x, &y, 1, weftFloat32, weftSum, comm, nullptr);
  std::printf("rank %d: the next call gave %s: %s\n", gRank, weftGetErrorString(next),
              weftGetLastError(comm));
  if (next == weftSuccess) return 1;
  std::printf("A2AV FOLLOWUP FAILED rank %d\n", gRank);
  return 0;
}

// Runs every collective, then checks which transports carried the bytes: each one named in
// `expect` (a comma list such as "ucx" or "shm,ofi") must have carried some in both directions,
// every other one none.
int runTransport(weftComm_t comm, const std::string& expect) {
  if (runAll(comm) != 0) return 1;
  int n = 0;
  CHECK_OK(weftCommTransportStats(comm, nullptr, &n), comm);
  std::vector<weftTransportStats_t> st(static_cast<size_t>(n));
  CHECK_OK(weftCommTransportStats(comm, st.data(), &n), comm);
  std::string seen;
  int bad = 0;
  for (const weftTransportStats_t& t : st) {
    std::printf(
        "rank %d: transport %s device \"%s\" peers %d sent %llu B in %llu, received %llu B in "
        "%llu, put %llu B, got %llu B\n",
        gRank, t.name, t.device, t.peers, t.bytesSent, t.messagesSent, t.bytesReceived,
        t.messagesReceived, t.bytesPut, t.bytesGot);
    const bool wanted =
        ("," + expect + ",").find("," + std::string(t.name) + ",") != std::string::npos;
    const bool carried = t.bytesSent > 0 && t.bytesReceived > 0;
    if (wanted != carried) {
      std::fprintf(stderr, "rank %d: transport %s %s bytes, expected %s\n", gRank, t.name,
                   carried ? "carried" : "carried no", wanted ? "some" : "none");
      ++bad;
    }
    if (wanted) seen += (seen.empty() ? "" : ",") + std::string(t.name);
  }
  if (seen != expect) {
    std::fprintf(stderr, "rank %d: transports that carried bytes: \"%s\", expected \"%s\"\n", gRank,
                 seen.c_str(), expect.c_str());
    ++bad;
  }
  ++gChecks;
  return bad == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: weft_test_worker all|kill R|mismatch|nonblocking|cpp|a2a|a2av-mismatch|"
                 "transport NAMES\n");
    return 2;
  }
  weftComm_t comm = nullptr;
  // Until the communicator exists, name this rank as the launcher does (for init's own errors).
  if (const char* r = std::getenv("WEFT_RANK")) gRank = std::atoi(r);
  CHECK_OK(weftCommInitFromEnv(&comm), nullptr);
  CHECK_OK(weftCommUserRank(comm, &gRank), comm);
  CHECK_OK(weftCommCount(comm, &gSize), comm);
  const std::string mode = argv[1];
  int rc = 2;
  if (mode == "all")
    rc = runAll(comm);
  else if (mode == "kill" && argc > 2)
    rc = runKill(comm, std::atoi(argv[2]));
  else if (mode == "mismatch")
    rc = runMismatch(comm);
  else if (mode == "nonblocking")
    rc = runNonBlocking(comm);
  else if (mode == "cpp")
    rc = runCpp();
  else if (mode == "a2a")
    rc = runA2a(comm);
  else if (mode == "a2av-mismatch")
    rc = runA2avMismatch(comm);
  else if (mode == "transport" && argc > 2)
    rc = runTransport(comm, argv[2]);
  if (mode == "kill" || mode == "mismatch" || mode == "a2av-mismatch")
    weftCommAbort(comm);
  else
    weftCommDestroy(comm);
  if (rc == 0 && gRank == 0) std::printf("WORKER OK (%ld checks on rank 0)\n", gChecks);
  return rc;
}
