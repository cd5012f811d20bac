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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: weft_test_worker all|kill R|mismatch|nonblocking|cpp\n");
    return 2;
  }
  weftComm_t comm = nullptr;
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
  if (mode == "kill" || mode == "mismatch")
    weftCommAbort(comm);
  else
    weftCommDestroy(comm);
  if (rc == 0 && gRank == 0) std::printf("WORKER OK (%ld checks on rank 0)\n", gChecks);
  return rc;
}
