// Detection of device memory (src/memory/memory_kind.cc). Without a CUDA driver every pointer is
// host and, while no object is loaded, the driver is not looked up again. With a stand-in driver
// (tests/fake_cuda/, libcuda.so.1 by soname) loaded after the first calls, as a program that calls
// weft before it initialises CUDA does, and while other threads keep calling: its "device" range
// (which faults when read) is refused by every call that names the argument and "cuda", its managed
// range too, its pinned range and other host memory still move and give the right values. The
// stand-in stays loaded once loaded, so that part runs in a process of its own (a gtest death test
// in the "threadsafe" style re-runs this binary for it).
#include <dlfcn.h>
#include <sys/mman.h>
#include <time.h>

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "memory/memory_kind.h"
#include "runner.h"

namespace weft::test {
namespace {

constexpr const char* kFakeDriver = WEFT_BINARY_DIR "/tests/fake_cuda/libcuda.so.1";

// weft checks for newly loaded objects once per tick of CLOCK_MONOTONIC_COARSE (memory_kind.h):
// waiting for the next tick after a load stands in for the time a real driver takes to initialise
// before it can hand out device memory.
void waitForNextTick() {
  auto now = [] {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  };
  const int64_t start = now();
  while (now() == start)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
}

// Whether some libcuda.so.1 is loaded in this process already (the look-up weft itself does).
bool cudaDriverLoaded() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) {
    (void)dlerror();
    return false;
  }
  dlclose(h);
  return true;
}

TEST(MemKind, HostPointersAreHostWithoutADriver) {
  if (cudaDriverLoaded()) GTEST_SKIP() << "a libcuda.so.1 is loaded in this process";
  static int inData = 1;
  int onStack = 2;
  auto onHeap = std::make_unique<int[]>(1024);
  void* mapped = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mapped, MAP_FAILED);
  EXPECT_EQ(detectMemKind(nullptr), MemKind::kHost);
  EXPECT_EQ(detectMemKind(&inData), MemKind::kHost);
  EXPECT_EQ(detectMemKind(&onStack), MemKind::kHost);
  EXPECT_EQ(detectMemKind(onHeap.get()), MemKind::kHost);
  EXPECT_EQ(detectMemKind(mapped), MemKind::kHost);
  // No look-up while the set of loaded objects stays the same.
  const uint64_t lookups = memKindProbeStats().lookups;
  EXPECT_GE(lookups, 1u);
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(detectMemKind(&onStack), MemKind::kHost);
  EXPECT_EQ(memKindProbeStats().lookups, lookups);
  EXPECT_FALSE(memKindProbeStats().cudaDriverFound);
  EXPECT_EQ(dlerror(), nullptr) << "the failed look-up left a dlerror message";
  munmap(mapped, 4096);
}

TEST(MemKind, Names) {
  EXPECT_STREQ(memKindName(MemKind::kHost), "host");
  EXPECT_STREQ(memKindName(MemKind::kCuda), "cuda");
  EXPECT_STREQ(memKindName(MemKind::kCudaManaged), "cuda managed");
  EXPECT_STREQ(memKindName(MemKind::kAscend), "ascend");
}

struct FakeDriver {
  void* device = nullptr;
  void* managed = nullptr;
  void* pinned = nullptr;
  size_t bytes = 0;
  unsigned long long (*queries)() = nullptr;
  void (*failWith)(int) = nullptr;
};

// The whole scenario, run in the death test's own process (see below).
void driverLoadedAfterFirstCalls() {
  // 1. Before any driver: host, looked up once, then no look-up while nothing is loaded.
  std::vector<float> in(64), out(64);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = static_cast<float>(i);
  EXPECT_EQ(detectMemKind(in.data()), MemKind::kHost);
  const uint64_t first = memKindProbeStats().lookups;
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(detectMemKind(out.data()), MemKind::kHost);
  EXPECT_EQ(memKindProbeStats().lookups, first);

  // 2. An unrelated object loaded: one look-up again, still host, then quiet.
  const std::string other =
      std::string(WEFT_BINARY_DIR) + "/tests/libweft-transport-bad-version.so";
  void* unrelated = dlopen(other.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(unrelated, nullptr) << dlerror();
  waitForNextTick();
  EXPECT_EQ(detectMemKind(in.data()), MemKind::kHost);
  EXPECT_EQ(memKindProbeStats().lookups, first + 1);
  EXPECT_EQ(detectMemKind(in.data()), MemKind::kHost);
  EXPECT_EQ(memKindProbeStats().lookups, first + 1);
  EXPECT_FALSE(memKindProbeStats().cudaDriverFound);

  // 3. The driver loaded while other threads keep asking: after the load, each of them sees the
  // "device" range as CUDA memory.
  std::atomic<bool> loaded{false};
  std::atomic<void*> deviceRange{nullptr};
  std::vector<std::thread> threads;
  std::vector<int> seen(4, -1);
  for (size_t t = 0; t < seen.size(); ++t)
    threads.emplace_back([&, t] {
      int local = 0;
      while (!loaded.load(std::memory_order_acquire))
        if (detectMemKind(&local) != MemKind::kHost) seen[t] = -2;
      if (seen[t] == -1) seen[t] = static_cast<int>(detectMemKind(deviceRange.load()));
    });
  void* h = dlopen(kFakeDriver, RTLD_NOW | RTLD_GLOBAL);
  FakeDriver fake;
  if (h != nullptr) {
    using RangesFn = void (*)(void**, void**, void**, size_t*);
    auto ranges = reinterpret_cast<RangesFn>(dlsym(h, "fakeCudaRanges"));
    fake.queries = reinterpret_cast<unsigned long long (*)()>(dlsym(h, "fakeCudaQueries"));
    fake.failWith = reinterpret_cast<void (*)(int)>(dlsym(h, "fakeCudaFailWith"));
    if (ranges != nullptr) ranges(&fake.device, &fake.managed, &fake.pinned, &fake.bytes);
  }
  waitForNextTick();
  deviceRange.store(fake.device);
  loaded.store(true, std::memory_order_release);
  for (std::thread& t : threads)
    t.join();
  ASSERT_NE(h, nullptr) << dlerror();
  ASSERT_NE(fake.device, nullptr);
  ASSERT_NE(fake.queries, nullptr);
  ASSERT_NE(fake.failWith, nullptr);
  for (size_t t = 0; t < seen.size(); ++t)
    EXPECT_EQ(seen[t], static_cast<int>(MemKind::kCuda)) << "thread " << t;
  EXPECT_TRUE(memKindProbeStats().cudaDriverFound);

  // 4. Each range as the driver says, and host memory still host; no look-up once found.
  auto* dev = static_cast<float*>(fake.device);
  auto* managed = static_cast<float*>(fake.managed);
  auto* pinned = static_cast<float*>(fake.pinned);
  const uint64_t found = memKindProbeStats().lookups;
  const unsigned long long queries = fake.queries();
  // Asserted: weft would read the "device" range below, which faults, if it took it for host.
  ASSERT_EQ(detectMemKind(dev), MemKind::kCuda);
  ASSERT_EQ(detectMemKind(dev + 100), MemKind::kCuda);
  ASSERT_EQ(detectMemKind(managed), MemKind::kCudaManaged);
  EXPECT_EQ(detectMemKind(pinned), MemKind::kHost);
  EXPECT_EQ(detectMemKind(in.data()), MemKind::kHost);
  EXPECT_EQ(detectMemKind(nullptr), MemKind::kHost);
  EXPECT_EQ(fake.queries(), queries + 5);  // NULL needs no query
  EXPECT_EQ(memKindProbeStats().lookups, found);
  EXPECT_EQ(dlerror(), nullptr);

  // 5. The calls refuse device and managed memory, naming the argument; host memory still moves.
  runRanks(1, [&](int, weftComm_t comm) {
    expectError(weftAllReduce(dev, out.data(), 64, weftFloat32, weftSum, comm, nullptr),
                weftInvalidUsage, comm, "sendbuff is cuda device memory");
    expectError(weftAllReduce(in.data(), dev, 64, weftFloat32, weftSum, comm, nullptr),
                weftInvalidUsage, comm, "recvbuff is cuda device memory");
    expectError(weftAllReduce(dev, dev, 64, weftFloat32, weftSum, comm, nullptr), weftInvalidUsage,
                comm, "sendbuff is cuda");
    expectError(weftAllReduce(managed, out.data(), 64, weftFloat32, weftSum, comm, nullptr),
                weftInvalidUsage, comm, "sendbuff is cuda managed");
    expectError(weftAllGather(in.data(), dev, 64, weftFloat32, comm, nullptr), weftInvalidUsage,
                comm, "recvbuff is cuda");
    expectError(weftBroadcast(dev, out.data(), 64, weftFloat32, 0, comm, nullptr), weftInvalidUsage,
                comm, "sendbuff is cuda");
    expectError(weftSend(dev, 64, weftFloat32, 0, comm, nullptr), weftInvalidUsage, comm,
                "sendbuff is cuda");
    expectError(weftRecv(managed, 64, weftFloat32, 0, comm, nullptr), weftInvalidUsage, comm,
                "recvbuff is cuda managed");
    void* handle = nullptr;
    expectError(weftCommRegister(comm, dev, 256, &handle), weftInvalidArgument, comm, "cuda");
    EXPECT_EQ(handle, nullptr);

    ASSERT_EQ(weftAllReduce(in.data(), out.data(), 64, weftFloat32, weftSum, comm, nullptr),
              weftSuccess)
        << weftGetLastError(comm);
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_EQ(out[i], in[i]) << "element " << i;
    for (int i = 0; i < 64; ++i)
      pinned[i] = static_cast<float>(3 * i);
    std::vector<float> gathered(64);
    ASSERT_EQ(weftAllGather(pinned, gathered.data(), 64, weftFloat32, comm, nullptr), weftSuccess)
        << weftGetLastError(comm);
    for (int i = 0; i < 64; ++i)
      EXPECT_EQ(gathered[static_cast<size_t>(i)], static_cast<float>(3 * i)) << "element " << i;
  });

  // 6. A driver that cannot answer (not initialised: no CUDA memory exists yet) leaves host.
  fake.failWith(3);  // CUDA_ERROR_NOT_INITIALIZED
  EXPECT_EQ(detectMemKind(in.data()), MemKind::kHost);
  fake.failWith(0);
  EXPECT_EQ(detectMemKind(dev), MemKind::kCuda);
}

TEST(MemKindDeathTest, DriverLoadedAfterTheFirstCallsIsSeen) {
  if (cudaDriverLoaded()) GTEST_SKIP() << "a libcuda.so.1 is loaded in this process";
  // "threadsafe": the child is this binary run afresh for this test only, so nothing another test
  // did is in it, and the stand-in driver never enters this process.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        // The child forwards no gtest events: its failures are collected here and written to
        // stderr, which the parent shows.
        ::testing::TestPartResultArray results;
        {
          ::testing::ScopedFakeTestPartResultReporter reporter(
              ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &results);
          driverLoadedAfterFirstCalls();
        }
        int failures = 0;
        for (int i = 0; i < results.size(); ++i) {
          const ::testing::TestPartResult& r = results.GetTestPartResult(i);
          if (!r.failed()) continue;
          ++failures;
          std::fprintf(stderr, "%s:%d: %s\n", r.file_name() != nullptr ? r.file_name() : "?",
                       r.line_number(), r.message());
        }
        if (failures == 0) std::fprintf(stderr, "memory kind scenario passed\n");
        std::exit(failures == 0 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "memory kind scenario passed");
}

}  // namespace
}  // namespace weft::test
