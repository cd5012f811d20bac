// One-sided algorithms through every way a transport reaches peers' memory: process_vm_readv
// copies (as between processes), mappings of weftMemAlloc memory through /proc/<pid>/fd, and the
// window protocol the engine wraps around them. (Plain loads and stores, the in-memory runner's
// default, are covered with every other algorithm in test_collectives.cc.)
#include <gtest/gtest.h>

#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "coll_check.h"
#include "engine/window.h"
#include "memory/shared_alloc.h"
#include "runner.h"
#include "test_env.h"
#include "transports/shm/peer_memory.h"
#include "tuner/tuner.h"
#include "weft/weft.h"

// The process_vm_readv and process_vm_writev calls of this test binary that ask for exactly
// gWatchedBytes, counted: these definitions take the C library's place for the whole binary and
// pass each call to the kernel unchanged.
namespace {
std::atomic<uint64_t> gWatchedBytes{0};
std::atomic<uint64_t> gWatchedCalls{0};

void countCall(const iovec* local, unsigned long nlocal) {
  uint64_t bytes = 0;
  for (unsigned long i = 0; i < nlocal; ++i)
    bytes += local[i].iov_len;
  if (bytes == gWatchedBytes.load(std::memory_order_relaxed))
    gWatchedCalls.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

extern "C" ssize_t process_vm_readv(pid_t pid, const iovec* local, unsigned long nlocal,
                                    const iovec* remote, unsigned long nremote,
                                    unsigned long flags) noexcept {
  countCall(local, nlocal);
  return syscall(SYS_process_vm_readv, pid, local, nlocal, remote, nremote, flags);
}

extern "C" ssize_t process_vm_writev(pid_t pid, const iovec* local, unsigned long nlocal,
                                     const iovec* remote, unsigned long nremote,
                                     unsigned long flags) noexcept {
  countCall(local, nlocal);
  return syscall(SYS_process_vm_writev, pid, local, nlocal, remote, nremote, flags);
}

namespace weft::test {
namespace {

// A buffer from weftMemAlloc or the heap.
struct Buffer {
  Buffer(size_t bytes, bool shared) : bytes(bytes), shared(shared) {
    if (shared) {
      EXPECT_EQ(weftMemAlloc(&ptr, bytes), weftSuccess);
    } else {
      heap.resize(bytes);
      ptr = heap.data();
    }
  }
  ~Buffer() {
    if (shared) {
      EXPECT_EQ(weftMemFree(ptr), weftSuccess);
    }
  }
  char* data() { return static_cast<char*>(ptr); }
  size_t bytes;
  bool shared;
  void* ptr = nullptr;
  std::vector<char> heap;
};

double gatherValue(int q, uint64_t i) {
  return static_cast<double>((q * 13 + static_cast<int>(i % 1000)) % 100);
}

// One collective, float32 sum, checked element by element: "" or what went wrong.
std::string runOne(CollType coll, int n, int r, weftComm_t comm, uint64_t count, bool inPlace,
                   bool shared) {
  const weftDataType_t t = weftFloat32;
  const size_t es = 4;
  const uint64_t un = static_cast<uint64_t>(n);
  uint64_t inCount = count, outCount = count;
  if (coll == CollType::kAllGather) outCount = count * un;
  if (coll == CollType::kReduceScatter) inCount = count * un;
  if (coll == CollType::kAllToAll) inCount = outCount = count * un;
  const int root = static_cast<int>(count % un);
  Buffer in(inCount * es + 64, shared), out(outCount * es + 64, shared);
  std::vector<char> want(outCount * es);
  for (uint64_t i = 0; i < inCount; ++i) {
    const double v =
        coll == CollType::kAllGather || coll == CollType::kBroadcast || coll == CollType::kAllToAll
            ? gatherValue(r, i)
            : inputValue(weftSum, t, n, r, i);
    storeValue(t, v, in.data() + i * es);
  }
  for (uint64_t i = 0; i < outCount; ++i) {
    double x = 0;
    if (coll == CollType::kAllGather) x = gatherValue(static_cast<int>(i / count), i % count);
    if (coll == CollType::kBroadcast) x = gatherValue(root, i);
    if (coll == CollType::kAllReduce) x = reduceRef(weftSum, t, n, i);
    if (coll == CollType::kReduceScatter) x = reduceRef(weftSum, t, n, r * count + i);
    if (coll == CollType::kAllToAll)  // block q of the output is block r of q's input
      x = gatherValue(static_cast<int>(i / count), r * count + i % count);
    storeValue(t, x, want.data() + i * es);
  }
  const void* send = in.data();
  void* recv = out.data();
  if (inPlace) {
    if (coll == CollType::kAllGather) {
      std::memcpy(out.data() + r * count * es, in.data(), count * es);
      send = out.data() + r * count * es;
    } else if (coll == CollType::kReduceScatter) {
      send = in.data();
      recv = in.data() + r * count * es;
    } else {
      std::memcpy(out.data(), in.data(), inCount * es);
      send = out.data();
    }
  }
  weftResult_t res = weftInternalError;
  switch (coll) {
    case CollType::kAllReduce:
      res = weftAllReduce(send, recv, count, t, weftSum, comm, nullptr);
      break;
    case CollType::kAllGather:
      res = weftAllGather(send, recv, count, t, comm, nullptr);
      break;
    case CollType::kReduceScatter:
      res = weftReduceScatter(send, recv, count, t, weftSum, comm, nullptr);
      break;
    case CollType::kBroadcast:
      res = weftBroadcast(send, recv, count, t, root, comm, nullptr);
      break;
    case CollType::kAllToAll:
      res = weftAllToAll(send, recv, count, t, comm, nullptr);
      break;
    default:
      break;
  }
  const std::string what = std::string(collName(coll)) + " count=" + std::to_string(count) +
                           (inPlace ? " in place" : "") + (shared ? " weftMemAlloc" : "");
  if (res != weftSuccess) return what + ": " + weftGetLastError(comm);
  const std::string diff = compareElems(t, recv, want.data(), outCount);
  return diff.empty() ? "" : what + ": " + diff;
}

struct AccessCase {
  MemPeerAccess access;
  const char* name;
};

class OneSided : public testing::TestWithParam<AccessCase> {};

TEST_P(OneSided, EveryCollectiveMatchesReference) {
  const AccessCase ac = GetParam();
  for (int n : {2, 3, 4, 5, 8}) {
    RunnerOptions opt;
    opt.access = ac.access;
    opt.slotBytes = 16 * 1024;  // several chunks per block even for mid-sized counts
    opt.algo = "one_sided";
    std::mutex mu;
    std::vector<std::string> failures;
    runRanks(
        n,
        [&](int r, weftComm_t comm) {
          for (CollType coll :
               {CollType::kAllReduce, CollType::kAllGather, CollType::kReduceScatter,
                CollType::kBroadcast, CollType::kAllToAll})
            for (uint64_t count : {1ull, 7ull, 1021ull, 40000ull})
              for (bool inPlace : {false, true})
                for (bool shared : {false, true}) {
                  std::string f = runOne(coll, n, r, comm, count, inPlace, shared);
                  if (f.empty()) continue;
                  std::lock_guard<std::mutex> lock(mu);
                  failures.push_back("n=" + std::to_string(n) + " rank " + std::to_string(r) +
                                     ": " + f);
                  return;
                }
        },
        opt);
    for (const std::string& f : failures)
      ADD_FAILURE() << f;
  }
}

// A step that reads or writes a peer's block through the kernel does it in one call where the
// whole block may move at once, not one call per chunk: each call costs a system call and pins the
// peer's pages again. A 40000-float block is ten 16 KiB chunks. (The kernel may move less than
// asked, when the address space's lock is contended, and weft then calls again for the rest:
// calls for whole blocks are what is counted.)
TEST(OneSidedKernelCopies, OneCallPerPeerBlockWhereTheBlockIsReady) {
  constexpr int kRanks = 3;
  constexpr uint64_t kCount = 40000;
  RunnerOptions opt;
  opt.access = MemPeerAccess::kCopy;
  opt.slotBytes = 16 * 1024;
  opt.algo = "one_sided";
  struct Expect {
    CollType coll;
    uint64_t calls;  // by all ranks together
  };
  const Expect cases[] = {
      {CollType::kAllGather, kRanks * (kRanks - 1)},  // each rank reads each peer's block
      {CollType::kAllToAll, kRanks * (kRanks - 1)},
      {CollType::kBroadcast, kRanks - 1},  // every rank but the root reads the root's buffer
  };
  std::barrier sync(kRanks);
  std::vector<uint64_t> counted(std::size(cases));
  std::vector<std::string> failures(kRanks);
  runRanks(
      kRanks,
      [&](int r, weftComm_t comm) {
        for (size_t i = 0; i < std::size(cases); ++i) {
          // A first call settles whatever the communicator does once; the second is counted.
          std::string f = runOne(cases[i].coll, kRanks, r, comm, kCount, false, false);
          sync.arrive_and_wait();
          if (r == 0) {
            gWatchedBytes.store(kCount * sizeof(float));
            gWatchedCalls.store(0);
          }
          sync.arrive_and_wait();
          if (f.empty()) f = runOne(cases[i].coll, kRanks, r, comm, kCount, false, false);
          sync.arrive_and_wait();
          if (r == 0) {
            counted[i] = gWatchedCalls.load();
            gWatchedBytes.store(0);
          }
          sync.arrive_and_wait();  // before anyone's next call
          if (!f.empty() && failures[static_cast<size_t>(r)].empty())
            failures[static_cast<size_t>(r)] = f;
        }
      },
      opt);
  for (const std::string& f : failures)
    EXPECT_EQ(f, "");
  for (size_t i = 0; i < std::size(cases); ++i)
    EXPECT_EQ(counted[i], cases[i].calls) << collName(cases[i].coll);
}

INSTANTIATE_TEST_SUITE_P(Access, OneSided,
                         testing::Values(AccessCase{MemPeerAccess::kCopy, "copy"},
                                         AccessCase{MemPeerAccess::kMapped, "mapped"}),
                         [](const testing::TestParamInfo<AccessCase>& i) {
                           return std::string(i.param.name);
                         });

TEST(OneSidedErrors, TransportWithoutPeerAccessRefusesForcedAlgorithm) {
  RunnerOptions opt;
  opt.access = MemPeerAccess::kNone;
  opt.algo = "allreduce:one_sided";
  runRanks(
      2,
      [&](int, weftComm_t comm) {
        float x = 1, y = 0;
        EXPECT_EQ(weftAllReduce(&x, &y, 1, weftFloat32, weftSum, comm, nullptr),
                  weftInvalidArgument);
        const std::string msg = weftGetLastError(comm);
        EXPECT_NE(msg.find("one_sided"), std::string::npos) << msg;
        EXPECT_NE(msg.find("all_reduce"), std::string::npos) << msg;
      },
      opt);
}

TEST(OneSidedErrors, MismatchedCountsAreReportedNotRead) {
  RunnerOptions opt;
  opt.access = MemPeerAccess::kCopy;
  opt.algo = "allgather:one_sided";
  opt.timeoutSec = 10;
  runRanks(
      2,
      [&](int r, weftComm_t comm) {
        const size_t count = r == 0 ? 100 : 200;
        std::vector<float> in(count, 1.0f), out(count * 2);
        EXPECT_EQ(weftAllGather(in.data(), out.data(), count, weftFloat32, comm, nullptr),
                  weftInvalidUsage);
      },
      opt);
}

TEST(WindowProtocol, ExchangesTablesFirstAndReleasesLast) {
  // Rank 0 of 3 reads rank 1's send buffer and lets rank 2 read its own.
  Schedule s;
  s.elemSize = 4;
  const StepId g = s.get(1, recvRegion(0, 64), sendRegion(0, 64));
  s.copy(recvRegion(64, 64), recvRegion(0, 64), {g});
  s.exposeTo.push_back(2);
  Schedule out;
  WindowLayout w;
  ASSERT_TRUE(addWindowProtocol(s, 1, 3, 0, &out, &w).ok());
  EXPECT_EQ(w.peers, std::vector<int32_t>{1});
  EXPECT_EQ(w.slotOf, (std::vector<int32_t>{-1, 0, -1}));
  EXPECT_EQ(w.tableBytes, kBuffersPerPart * sizeof(WindowEntry));
  EXPECT_EQ(out.dump(),
            "0 send to 2 src=send1[0+144]\n"
            "1 recv from 1 dst=recv1[0+144]\n"
            "2 get dst=recv[0+64] window=1:send[0+64] after 1\n"
            "3 copy dst=recv[64+64] src=recv[0+64] after 2\n"
            "4 send to 1 src=send1[0+0] after 2\n"
            "5 recv from 2 dst=send1[0+0]\n");
}

// A transport that reaches peers through RMA puts each buffer's remote key after its entry.
TEST(WindowProtocol, EntriesMakeRoomForKeys) {
  Schedule s;
  s.elemSize = 4;
  s.get(1, recvRegion(0, 64), sendRegion(0, 64));
  Schedule out;
  WindowLayout w;
  ASSERT_TRUE(addWindowProtocol(s, 2, 2, 21, &out, &w).ok());
  EXPECT_EQ(w.entryBytes, (sizeof(WindowEntry) + 21 + 7) / 8 * 8);
  EXPECT_EQ(w.tableBytes, 2 * kBuffersPerPart * w.entryBytes);
  std::vector<uint64_t> table(w.tableBytes / 8);
  char* base = reinterpret_cast<char*>(table.data());
  EXPECT_EQ(reinterpret_cast<char*>(windowEntry(base, w, 4)), base + 4 * w.entryBytes);
  EXPECT_EQ(windowKey(windowEntry(base, w, 4), w), base + 4 * w.entryBytes + sizeof(WindowEntry));
  WindowLayout plain;
  ASSERT_TRUE(addWindowProtocol(s, 1, 2, 0, &out, &plain).ok());
  EXPECT_EQ(windowKey(windowEntry(base, plain, 0), plain), nullptr);
}

// The collectives that have a one-sided algorithm, and a float32 sum call of one of them as the
// tuner tests describe it (count still to set).
constexpr CollType kOneSidedColls[] = {CollType::kAllReduce, CollType::kAllGather,
                                       CollType::kReduceScatter, CollType::kBroadcast,
                                       CollType::kAllToAll};

CollDesc floatCall(CollType type, int nranks) {
  CollDesc d;
  d.type = type;
  d.dtype = weftFloat32;
  d.elemSize = 4;
  d.nranks = nranks;
  if (type == CollType::kBroadcast) d.root = 0;
  return d;
}

// Where some peers' memory is reached over a network (RMA), one-sided algorithms, built for memory
// of one host, are left out of the tuner's choice and run only where WEFT_ALGO names them.
TEST(OneSidedTuning, OverTheNetworkOnlyWhereNamed) {
  const Tuner t;
  for (CollType type : kOneSidedColls) {
    CollDesc d = floatCall(type, 2);
    d.count = 16 << 20;
    d.peerAccess = true;
    d.peerAccessNet = true;
    const Explanation ex = t.explain(d);
    ASSERT_NE(ex.chosen, nullptr) << d.describe() << ": " << ex.status.message();
    EXPECT_FALSE(ex.chosen->oneSided) << d.describe();
    int listed = 0;
    for (const Explanation::Candidate& c : ex.candidates) {
      if (!c.algo->oneSided) continue;
      ++listed;
      EXPECT_TRUE(c.canRun);
      EXPECT_TRUE(c.namedOnly);
      EXPECT_NE(ex.statusOf(c).find("would cross the network"), std::string::npos)
          << ex.statusOf(c);
    }
    EXPECT_GE(listed, 1) << d.describe();  // all-gather has two: one_sided and staged
    // Named, it runs.
    Result<AlgoOverride> ov = parseAlgoOverride(std::string(collName(type)) + ":one_sided");
    ASSERT_TRUE(ov.ok()) << ov.status().message();
    const Explanation named = Tuner(*ov).explain(d);
    ASSERT_NE(named.chosen, nullptr) << named.status.message();
    EXPECT_TRUE(named.chosen->oneSided) << d.describe();
    // Within one host it competes as any other algorithm does.
    d.peerAccessNet = false;
    for (const Explanation::Candidate& c : t.explain(d).candidates)
      EXPECT_FALSE(c.namedOnly) << c.algo->name;
  }
}

int mappingsOfWeftMem() {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);)
    if (line.find("/memfd:weft-mem") != std::string::npos) ++n;
  return n;
}

WindowEntry entryOf(const SharedSegment& seg) {
  WindowEntry e;
  e.addr = reinterpret_cast<uint64_t>(seg.base);
  e.bytes = seg.bytes;
  e.segId = seg.id;
  e.segAddr = e.addr;
  e.segBytes = seg.bytes;
  e.segFd = seg.fd;
  return e;
}

// A peer's mapping of a segment that was freed is dropped once the descriptor comes back with
// another segment (a scratch pool that grows frees its old one), not held until the end.
TEST(PeerMemoryMappings, FreedSegmentIsUnmappedWhenItsDescriptorIsReused) {
  ProcessPeerMemory pm({getpid(), getpid()}, true);
  const int before = mappingsOfWeftMem();
  Result<void*> a = allocShared(1 << 20);
  ASSERT_TRUE(a.ok()) << a.status().message();
  SharedSegment segA;
  ASSERT_TRUE(findShared(a.value(), 1 << 20, &segA));
  char* viewA = pm.map(1, entryOf(segA));
  ASSERT_NE(viewA, nullptr);
  static_cast<char*>(a.value())[5] = 7;
  EXPECT_EQ(viewA[5], 7);  // the same memory
  EXPECT_EQ(mappingsOfWeftMem(), before + 2);
  ASSERT_TRUE(freeShared(a.value()).ok());
  EXPECT_EQ(mappingsOfWeftMem(), before + 1);  // the peer's view still holds it
  Result<void*> b = allocShared(2 << 20);
  ASSERT_TRUE(b.ok()) << b.status().message();
  SharedSegment segB;
  ASSERT_TRUE(findShared(b.value(), 2 << 20, &segB));
  if (segB.fd != segA.fd) {
    ASSERT_TRUE(freeShared(b.value()).ok());
    GTEST_SKIP() << "the descriptor was not reused (" << segA.fd << " then " << segB.fd << ")";
  }
  char* viewB = pm.map(1, entryOf(segB));
  ASSERT_NE(viewB, nullptr);
  EXPECT_EQ(mappingsOfWeftMem(), before + 2) << "the freed segment's view must be gone";
  ASSERT_TRUE(freeShared(b.value()).ok());
}

// Ordinary buffers, where peers map each other's scratch: from mid sizes on 3 ranks or more the
// tuner stages all-gather blocks in scratch (p+1 copies a rank, the ring's 2p-1); on 2 ranks,
// where both make three, and where a read from a peer's scratch goes through the kernel, it keeps
// the ring.
TEST(OneSidedTuning, StagedAllGatherWhereScratchIsShared) {
  const Tuner t;
  CollDesc d = floatCall(CollType::kAllGather, 2);
  d.peerAccess = true;
  d.scratchShared = true;
  for (int p : {3, 4, 8, 16}) {
    d.nranks = p;
    for (uint64_t count : {uint64_t{1} << 16, uint64_t{1} << 20, uint64_t{1} << 24}) {
      d.count = count;
      Result<const AlgorithmInfo*> c = t.choose(d);
      ASSERT_TRUE(c.ok()) << c.status().message();
      EXPECT_STREQ(c.value()->name, "staged") << d.describe() << " on " << p << " ranks";
    }
    d.count = 2;  // latency decides
    EXPECT_STRNE(t.choose(d).value()->name, "staged") << p << " ranks";
  }
  d.nranks = 2;
  d.count = 1 << 24;
  EXPECT_STREQ(t.choose(d).value()->name, "ring");
  d.nranks = 4;
  d.scratchShared = false;
  EXPECT_STRNE(t.choose(d).value()->name, "staged");
}

// Registered weftMemAlloc buffers are priced as mapped memory: from mid sizes on the tuner picks
// the one-sided algorithm, and only for calls whose buffers are all registered.
TEST(OneSidedTuning, RegisteredCallsPriceMappedCopies) {
  const Tuner t;
  for (CollType type : kOneSidedColls) {
    CollDesc d = floatCall(type, 2);
    d.peerAccess = true;
    for (uint64_t count : {uint64_t{2}, uint64_t{1} << 18, uint64_t{1} << 24}) {
      d.count = count;
      d.mapped = false;
      Result<const AlgorithmInfo*> plain = t.choose(d);
      ASSERT_TRUE(plain.ok()) << plain.status().message();
      EXPECT_FALSE(plain.value()->oneSided) << d.describe();  // process_vm_readv is slow here
      d.mapped = true;
      Result<const AlgorithmInfo*> mapped = t.choose(d);
      ASSERT_TRUE(mapped.ok()) << mapped.status().message();
      // A few bytes: one hand-off beats two synchronisations; 1 MiB and more: one copy per byte.
      EXPECT_EQ(mapped.value()->oneSided, count > 2) << d.describe();
    }
    // Registered is part of what the ranks must agree on.
    CollDesc a = d, b = d;
    a.mapped = false;
    b.mapped = true;
    EXPECT_NE(a.signature(), b.signature()) << d.describe();
    EXPECT_FALSE(sameShape(a, b));
  }
}

// One-sided steps on ordinary buffers are priced with the kernel copy's rate alone: a cheap local
// copy (what weft-tune's memcpy measures) leaves them out at every size, and a kernel copy as
// cheap as a mapped one brings them in at 1 MiB and more.
TEST(OneSidedTuning, UnmappedOneSidedStepsPayTheKernelCopy) {
  CostModel cheapCopy;
  cheapCopy.intra.copyUsPerByte = cheapCopy.intra.mappedCopyUsPerByte;
  CostModel cheapKernel;
  cheapKernel.intra.kernelCopyUsPerByte = cheapKernel.intra.mappedCopyUsPerByte;
  const Tuner a(AlgoOverride{}, cheapCopy), b(AlgoOverride{}, cheapKernel);
  for (CollType type : kOneSidedColls) {
    CollDesc d = floatCall(type, 2);
    d.peerAccess = true;
    for (uint64_t count : {uint64_t{2}, uint64_t{1} << 18, uint64_t{1} << 24}) {
      d.count = count;
      Result<const AlgorithmInfo*> x = a.choose(d), y = b.choose(d);
      ASSERT_TRUE(x.ok() && y.ok()) << d.describe();
      EXPECT_FALSE(x.value()->oneSided) << d.describe() << ": " << x.value()->name;
      if (count >= (uint64_t{1} << 18)) {
        EXPECT_TRUE(y.value()->oneSided) << d.describe() << ": " << y.value()->name;
      }
    }
  }
}

// The kernel's copy is priced from process_vm_readv's time against memcpy's, measured at init:
// where it is close to a plain copy (1.2x, the Intel development VMs) one-sided algorithms run
// ordinary buffers from mid sizes on, until all ranks' buffers outgrow kKernelCopyFitBytes; where
// it costs several copies (3x, the AMD ones) they never do. A tuning file's value stands.
TEST(OneSidedTuning, KernelCopyCalibratedAtInit) {
  Tuner cheap, dear, unknown;
  cheap.calibrateKernelCopy({.ratio = 1.2});
  dear.calibrateKernelCopy({.ratio = 3.0});
  unknown.calibrateKernelCopy({.ratio = 0});
  const LevelCost def;
  EXPECT_DOUBLE_EQ(cheap.model().intra.kernelCopyUsPerByte, 1.2 * def.betaUsPerByte / 2);
  EXPECT_DOUBLE_EQ(dear.model().intra.kernelCopyUsPerByte, 3.0 * def.betaUsPerByte / 2);
  EXPECT_DOUBLE_EQ(unknown.model().intra.kernelCopyUsPerByte, def.kernelCopyUsPerByte);
  EXPECT_NE(cheap.modelSource().find("kernel copy 1.20x memcpy measured at init"),
            std::string::npos)
      << cheap.modelSource();
  EXPECT_EQ(unknown.modelSource(), "built-in defaults");
  for (CollType type : kOneSidedColls) {
    CollDesc d = floatCall(type, 2);
    d.peerAccess = true;
    d.scratchShared = true;
    d.count = uint64_t{1} << 18;  // 1 MiB per rank
    Result<const AlgorithmInfo*> c = cheap.choose(d), x = dear.choose(d);
    ASSERT_TRUE(c.ok() && x.ok()) << d.describe();
    EXPECT_TRUE(c.value()->oneSided) << d.describe() << ": " << c.value()->name;
    EXPECT_FALSE(x.value()->oneSided) << d.describe() << ": " << x.value()->name;
  }
  // Past kKernelCopyFitBytes (2 ranks x 256 MiB of buffers) the ring and the pairwise exchange
  // are back; below it (2 x 32 MiB) one-sided stays.
  for (CollType type : {CollType::kAllReduce, CollType::kAllToAll}) {
    CollDesc d = floatCall(type, 2);
    d.peerAccess = true;
    d.scratchShared = true;
    d.count = (type == CollType::kAllToAll ? uint64_t{1} << 24 : uint64_t{1} << 25);
    ASSERT_GT(2 * (d.sendBufBytes() + d.recvBufBytes()), kKernelCopyFitBytes);
    EXPECT_FALSE(cheap.choose(d).value()->oneSided) << d.describe();
    d.count /= 8;
    ASSERT_LE(2 * (d.sendBufBytes() + d.recvBufBytes()), kKernelCopyFitBytes);
    EXPECT_TRUE(cheap.choose(d).value()->oneSided) << d.describe();
  }
}

// The tuner a WEFT_TUNE_FILE holding `text` gives (the file, named after the test so that tests
// ctest runs at once do not share it, removed again).
Result<Tuner> tunerFromFile(const std::string& text) {
  const std::string path = testing::TempDir() + "weft_" +
                           testing::UnitTest::GetInstance()->current_test_info()->name() +
                           "_tune.txt";
  {
    std::ofstream f(path);
    f << text;
  }
  ScopedEnv file("WEFT_TUNE_FILE", path);
  Result<Tuner> t = tunerFromConfig();
  std::remove(path.c_str());
  return t;
}

TEST(OneSidedTuning, KernelCopyFromTheTuningFileStands) {
  Result<Tuner> fromFile =
      tunerFromFile("intra.kernel_copy_us_per_byte = 7e-4\nintra.beta_us_per_byte = 2e-4\n");
  ASSERT_TRUE(fromFile.ok()) << fromFile.status().message();
  fromFile.value().calibrateKernelCopy({.ratio = 1.2});
  EXPECT_DOUBLE_EQ(fromFile.value().model().intra.kernelCopyUsPerByte, 7e-4);
  // A file without the key is calibrated with its own beta.
  Result<Tuner> noKey = tunerFromFile("intra.beta_us_per_byte = 2e-4\n");
  ASSERT_TRUE(noKey.ok()) << noKey.status().message();
  noKey.value().calibrateKernelCopy({.ratio = 1.5});
  EXPECT_DOUBLE_EQ(noKey.value().model().intra.kernelCopyUsPerByte, 1.5e-4);
}

// Through the kernel, every read or write of a peer's memory is a system call: the estimate adds
// its price once per move. The copies move a whole block per peer (all-gather, all-to-all,
// broadcast); the reductions a chunk per peer (all-reduce reads and writes every chunk of its
// block, reduce-scatter reads it). Registered buffers make no call.
TEST(OneSidedTuning, KernelCallsArePricedPerMove) {
  LevelCost free, dear;
  free.kernelCallUs = 0;
  dear.kernelCallUs = 2;
  free.chunkBytes = dear.chunkBytes = 16384;
  for (int p : {2, 4, 5}) {
    const double q = p;
    struct Case {
      CollType type;
      double moves;
    };
    // all-reduce: each rank's block is 3 chunks; reduce-scatter: its block is 3p chunks.
    const Case cases[] = {{CollType::kAllGather, q - 1},
                          {CollType::kAllToAll, q - 1},
                          {CollType::kBroadcast, 1},
                          {CollType::kReduceScatter, (q - 1) * 3 * q},
                          {CollType::kAllReduce, 2 * (q - 1) * 3}};
    for (const Case& c : cases) {
      CollDesc d = floatCall(c.type, p);
      d.peerAccess = true;
      d.count = uint64_t{3} * 4096 * static_cast<uint64_t>(p);
      const AlgorithmInfo* a = findAlgorithm(c.type, "one_sided");
      ASSERT_NE(a, nullptr);
      EXPECT_NEAR(a->cost(d, dear) - a->cost(d, free), 2 * c.moves, 1e-9)
          << d.describe() << " on " << p << " ranks";
      d.mapped = true;
      EXPECT_DOUBLE_EQ(a->cost(d, dear), a->cost(d, free)) << d.describe();
    }
  }
}

// Init measures a call's price and the rate of the kernel's copy on cached data; the latter
// applies while all ranks' buffers together fit kKernelCopyCachedBytes. On 4 ranks an 8 KiB
// all-reduce makes 6 calls a rank: at the price measured on the Intel development VMs (0.45 us)
// recursive doubling wins, as measured there (2.4x one-sided's bus bandwidth); calls for free
// would have chosen one-sided.
TEST(OneSidedTuning, KernelCallAndCachedCopyCalibratedAtInit) {
  Tuner t, free;
  t.calibrateKernelCopy({.ratio = 1.5, .cachedUsPerByte = 4e-5, .callUs = 0.45});
  free.calibrateKernelCopy({.ratio = 1.5, .cachedUsPerByte = 4e-5, .callUs = 1e-6});
  EXPECT_DOUBLE_EQ(t.model().intra.kernelCallUs, 0.45);
  EXPECT_DOUBLE_EQ(t.model().intra.kernelCopyCachedUsPerByte, 4e-5);
  EXPECT_NE(t.modelSource().find("kernel call 0.45 us measured at init"), std::string::npos)
      << t.modelSource();
  CollDesc g = floatCall(CollType::kAllGather, 2);
  g.peerAccess = true;
  g.count = 1024;  // 4 KiB in, 8 KiB out per rank
  EXPECT_DOUBLE_EQ(kernelCopyUsPerByte(g, t.model().intra), 4e-5);
  g.count = uint64_t{1} << 20;  // 12 MiB of buffers in all
  ASSERT_GT(g.footprintBytes(), kKernelCopyCachedBytes);
  EXPECT_DOUBLE_EQ(kernelCopyUsPerByte(g, t.model().intra), 1.5 * LevelCost{}.betaUsPerByte / 2);
  CollDesc a = floatCall(CollType::kAllReduce, 4);
  a.peerAccess = true;
  a.count = 2048;  // 8 KiB
  EXPECT_FALSE(t.choose(a).value()->oneSided) << t.choose(a).value()->name;
  EXPECT_TRUE(free.choose(a).value()->oneSided) << free.choose(a).value()->name;
  // Not measured: the prices stand.
  for (double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity()}) {
    Tuner u;
    u.calibrateKernelCopy({.ratio = bad, .cachedUsPerByte = bad, .callUs = bad});
    EXPECT_DOUBLE_EQ(u.model().intra.kernelCallUs, LevelCost{}.kernelCallUs) << bad;
    EXPECT_DOUBLE_EQ(u.model().intra.kernelCopyCachedUsPerByte,
                     LevelCost{}.kernelCopyCachedUsPerByte)
        << bad;
    EXPECT_EQ(u.modelSource(), "built-in defaults");
  }
  // A tuning file's call price stands.
  Result<Tuner> fromFile = tunerFromFile("intra.kernel_call_us = 2\n");
  ASSERT_TRUE(fromFile.ok()) << fromFile.status().message();
  fromFile.value().calibrateKernelCopy({.callUs = 0.45});
  EXPECT_DOUBLE_EQ(fromFile.value().model().intra.kernelCallUs, 2);
}

// The sync price measured at init (src/api calibrateSync) replaces the built-in one, and moves
// the 2-rank all-gather and all-to-all of 32 KiB per rank from the ring or the pairwise exchange to
// one-sided, as measured on the development VMs (0.25-0.35 us where each rank has a CPU).
TEST(OneSidedTuning, SyncCalibratedAtInit) {
  Tuner fast, slow;
  fast.calibrateKernelCopy({.ratio = 1.5});
  slow.calibrateKernelCopy({.ratio = 1.5});
  fast.calibrateSync(0.3);
  EXPECT_DOUBLE_EQ(fast.model().intra.syncUs, 0.3);
  EXPECT_DOUBLE_EQ(slow.model().intra.syncUs, LevelCost{}.syncUs);
  EXPECT_NE(fast.modelSource().find("sync 0.3 us measured at init"), std::string::npos)
      << fast.modelSource();
  for (CollType type : {CollType::kAllGather, CollType::kAllToAll}) {
    CollDesc d = floatCall(type, 2);
    d.peerAccess = true;
    d.scratchShared = true;
    d.count = 8192;  // 32 KiB per rank (all-gather), per peer (all-to-all)
    EXPECT_TRUE(fast.choose(d).value()->oneSided) << d.describe();
    EXPECT_FALSE(slow.choose(d).value()->oneSided) << d.describe();
  }
  // Nothing measured, or a measurement above the price (disturbed): the price stands.
  for (double bad : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity(), LevelCost{}.syncUs, 30.0}) {
    Tuner t;
    t.calibrateSync(bad);
    EXPECT_DOUBLE_EQ(t.model().intra.syncUs, LevelCost{}.syncUs) << bad;
    EXPECT_EQ(t.modelSource(), "built-in defaults");
  }
}

TEST(OneSidedTuning, SyncFromTheTuningFileStands) {
  Result<Tuner> fromFile = tunerFromFile("intra.sync_us = 3\n");
  ASSERT_TRUE(fromFile.ok()) << fromFile.status().message();
  fromFile.value().calibrateSync(0.25);
  EXPECT_DOUBLE_EQ(fromFile.value().model().intra.syncUs, 3);
  EXPECT_EQ(fromFile.value().modelSource().find("measured at init"), std::string::npos)
      << fromFile.value().modelSource();
}

// This process may always read itself, so the measurement has a value here: a positive ratio,
// the same on every call (measured once).
TEST(OneSidedTuning, KernelCopyRatioIsMeasuredOnce) {
  const double r = kernelCopyCost().ratio;
  EXPECT_GT(r, 0);
  EXPECT_LT(r, 1000);
  EXPECT_EQ(kernelCopyCost().ratio, r);
}

// Fills rank r's all-gather input with values whose gathered result is checked exactly.
void fillInput(float* in, size_t count, int r) {
  for (size_t i = 0; i < count; ++i)
    in[i] = static_cast<float>(r * 1000003 + static_cast<int>(i % 4093));
}

std::string checkGathered(const float* out, size_t count, int nranks) {
  for (int q = 0; q < nranks; ++q)
    for (size_t i = 0; i < count; ++i) {
      const float want = static_cast<float>(q * 1000003 + static_cast<int>(i % 4093));
      if (out[static_cast<size_t>(q) * count + i] != want)
        return "block " + std::to_string(q) + " element " + std::to_string(i) + " is " +
               std::to_string(out[static_cast<size_t>(q) * count + i]);
    }
  return "";
}

TEST(RegisteredBuffers, ChooseOneSidedAndMatchTheReference) {
  RunnerOptions opt;
  opt.access = MemPeerAccess::kMapped;
  const size_t count = size_t{1} << 18;  // 1 MiB per rank
  runRanks(
      2,
      [&](int r, weftComm_t comm) {
        Buffer in(count * sizeof(float), true), out(2 * count * sizeof(float), true);
        const char* name = nullptr;
        // Not registered yet: the call is priced as any other.
        ASSERT_EQ(weftCommGetAlgorithmFor(comm, "allgather", in.ptr, out.ptr, count, weftFloat32,
                                          weftSum, &name),
                  weftSuccess);
        EXPECT_STRNE(name, "one_sided");
        void *hin = nullptr, *hout = nullptr;
        ASSERT_EQ(weftCommRegister(comm, in.ptr, in.bytes, &hin), weftSuccess);
        ASSERT_EQ(weftCommRegister(comm, out.ptr, out.bytes, &hout), weftSuccess);
        ASSERT_EQ(weftCommGetAlgorithmFor(comm, "allgather", in.ptr, out.ptr, count, weftFloat32,
                                          weftSum, &name),
                  weftSuccess);
        EXPECT_STREQ(name, "one_sided");
        // Without buffers the question is about ordinary ones.
        ASSERT_EQ(weftCommGetAlgorithm(comm, "allgather", count, weftFloat32, weftSum, &name),
                  weftSuccess);
        EXPECT_STRNE(name, "one_sided");
        // A buffer that runs past the registration is not registered.
        ASSERT_EQ(weftCommGetAlgorithmFor(comm, "allgather", in.ptr, out.ptr, count + 1,
                                          weftFloat32, weftSum, &name),
                  weftSuccess);
        EXPECT_STRNE(name, "one_sided");
        fillInput(static_cast<float*>(in.ptr), count, r);
        for (int rep = 0; rep < 2; ++rep) {  // the second call runs the cached plan
          std::memset(out.ptr, 0xff, out.bytes);
          ASSERT_EQ(weftAllGather(in.ptr, out.ptr, count, weftFloat32, comm, nullptr), weftSuccess)
              << weftGetLastError(comm);
          EXPECT_EQ(checkGathered(static_cast<float*>(out.ptr), count, 2), "") << "rank " << r;
        }
        EXPECT_EQ(weftCommDeregister(comm, hin), weftSuccess);
        ASSERT_EQ(weftCommGetAlgorithmFor(comm, "allgather", in.ptr, out.ptr, count, weftFloat32,
                                          weftSum, &name),
                  weftSuccess);
        EXPECT_STRNE(name, "one_sided");
        EXPECT_EQ(weftCommDeregister(comm, hout), weftSuccess);
      },
      opt);
}

// Registered on one rank and not on the other: the ranks would run different algorithms. The
// signature tells them apart, and both stop with an error instead of mixing data or hanging.
TEST(RegisteredBuffers, RegisteredOnSomeRanksOnlyIsReported) {
  RunnerOptions opt;
  opt.access = MemPeerAccess::kMapped;
  opt.timeoutSec = 10;
  const size_t count = size_t{1} << 18;
  std::mutex mu;
  std::vector<std::string> messages;
  runRanks(
      2,
      [&](int r, weftComm_t comm) {
        Buffer in(count * sizeof(float), true), out(2 * count * sizeof(float), true);
        void *hin = nullptr, *hout = nullptr;
        if (r == 0) {
          ASSERT_EQ(weftCommRegister(comm, in.ptr, in.bytes, &hin), weftSuccess);
          ASSERT_EQ(weftCommRegister(comm, out.ptr, out.bytes, &hout), weftSuccess);
        }
        fillInput(static_cast<float*>(in.ptr), count, r);
        EXPECT_NE(weftAllGather(in.ptr, out.ptr, count, weftFloat32, comm, nullptr), weftSuccess)
            << "rank " << r;
        std::lock_guard<std::mutex> lock(mu);
        messages.push_back(weftGetLastError(comm));
      },
      opt);
  bool named = false;
  for (const std::string& m : messages)
    named = named || m.find("registered on some ranks only") != std::string::npos;
  EXPECT_TRUE(named) << messages[0] << "\n" << messages[1];
}

TEST(MemoryApi, AllocFreeAndRegistrationErrorsNameTheArgument) {
  void* p = reinterpret_cast<void*>(1);
  EXPECT_EQ(weftMemAlloc(&p, 0), weftSuccess);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(weftMemAlloc(nullptr, 16), weftInvalidArgument);
  ASSERT_EQ(weftMemAlloc(&p, 10000), weftSuccess);
  std::memset(p, 7, 10000);  // usable at once
  int local = 0;
  EXPECT_EQ(weftMemFree(&local), weftInvalidArgument);
  EXPECT_EQ(weftMemFree(p), weftSuccess);
  EXPECT_EQ(weftMemFree(p), weftInvalidArgument);  // twice
  EXPECT_EQ(weftMemFree(nullptr), weftSuccess);

  runRanks(1, [&](int, weftComm_t comm) {
    void* h = nullptr;
    std::vector<char> buf(4096);
    EXPECT_EQ(weftCommRegister(comm, nullptr, 16, &h), weftInvalidArgument);
    EXPECT_NE(std::string(weftGetLastError(comm)).find("buff"), std::string::npos);
    EXPECT_EQ(weftCommRegister(comm, buf.data(), 0, &h), weftInvalidArgument);
    EXPECT_NE(std::string(weftGetLastError(comm)).find("size"), std::string::npos);
    EXPECT_EQ(weftCommRegister(comm, buf.data(), buf.size(), nullptr), weftInvalidArgument);
    ASSERT_EQ(weftCommRegister(comm, buf.data(), buf.size(), &h), weftSuccess);
    EXPECT_EQ(weftCommDeregister(comm, h), weftSuccess);
    EXPECT_EQ(weftCommDeregister(comm, h), weftInvalidArgument);
    EXPECT_NE(std::string(weftGetLastError(comm)).find("handle"), std::string::npos);
    void* kept = nullptr;  // released by weftCommDestroy
    EXPECT_EQ(weftCommRegister(comm, buf.data(), buf.size(), &kept), weftSuccess);
  });
}

}  // namespace
}  // namespace weft::test
