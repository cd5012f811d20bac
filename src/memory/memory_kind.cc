#include "memory/memory_kind.h"

#include <dlfcn.h>
#include <link.h>
#include <time.h>

#include <atomic>
#include <cstddef>

namespace weft {

namespace {

// The few pieces of the CUDA driver's ABI used here, as cuda.h declares them (CUDA 7.0 on); weft
// never includes cuda.h.
//   CUresult cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute* attributes,
//                                   void** data, CUdeviceptr ptr);
// It needs no current context, and unlike cuPointerGetAttribute it succeeds for a pointer CUDA does
// not know, leaving the attributes zero. Before cuInit it returns CUDA_ERROR_NOT_INITIALIZED: no
// CUDA memory exists yet.
using CuPointerGetAttributesFn = int (*)(unsigned int, int*, void**, unsigned long long);
constexpr int kCuPointerAttributeMemoryType = 2;  // CU_POINTER_ATTRIBUTE_MEMORY_TYPE: CUmemorytype
constexpr int kCuPointerAttributeIsManaged = 8;   // CU_POINTER_ATTRIBUTE_IS_MANAGED: a boolean
constexpr unsigned kCuMemoryTypeHost = 1;  // CU_MEMORYTYPE_HOST (device 2, array 3, unified 4)

// The driver's query once found; never cleared (the handle is kept, so the driver stays loaded).
std::atomic<CuPointerGetAttributesFn> gCuGetAttributes{nullptr};
// The loader's count of objects ever loaded when the last look-up found no driver.
std::atomic<unsigned long long> gNoDriverAtAdds{0};
// The coarse clock's reading when a thread last found that count unchanged (or looked the driver
// up, in vain); -1 before.
std::atomic<int64_t> gCheckedAtTick{-1};
std::atomic<uint64_t> gLookups{0};

// CLOCK_MONOTONIC_COARSE: read from the vDSO, ~4 ns, and shared by every CPU without a lock; it
// moves once per kernel tick (1-10 ms).
int64_t coarseTick() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// dlpi_adds of the first object: glibc's count of objects loaded so far, the same for every object
// (0 where the C library does not report it: the driver is then looked up once per tick). The
// loader takes a lock for it, which is why it is read at most once per tick, not per call.
unsigned long long loadedObjectAdds() {
  unsigned long long adds = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t size, void* data) -> int {
        if (size >= offsetof(dl_phdr_info, dlpi_adds) + sizeof info->dlpi_adds)
          *static_cast<unsigned long long*>(data) = info->dlpi_adds;
        return 1;  // the first object is enough
      },
      &adds);
  return adds;
}

// Only a driver the process already has: weft never loads one into a host-only program (that
// would cost start-up time and memory). `adds` was read before the look-up, so an object loaded
// while it runs makes a later call look again.
CuPointerGetAttributesFn lookUpCudaDriver(unsigned long long adds) {
  gLookups.fetch_add(1, std::memory_order_relaxed);
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  auto fn = h != nullptr
                ? reinterpret_cast<CuPointerGetAttributesFn>(dlsym(h, "cuPointerGetAttributes"))
                : nullptr;
  if (fn == nullptr) {
    if (h != nullptr) dlclose(h);
    (void)dlerror();  // leave no message behind for the application's dlerror
    gNoDriverAtAdds.store(adds, std::memory_order_relaxed);
    return nullptr;
  }
  gCuGetAttributes.store(fn, std::memory_order_release);
  return fn;
}

// The driver, if it has been loaded since the last look-up. Once per tick of the coarse clock a
// caller reads the loader's count (dl_iterate_phdr: ~10 ns alone, but under the loader's lock,
// which threads calling at once fight over: two threads made an 8-byte all-reduce 4x slower) and
// looks the driver up again where the count grew; within the tick every caller takes that answer.
// No device pointer is missed that way: one exists only once the driver has been loaded,
// initialised (cuInit) and has made a context, which takes far longer than a tick (1-10 ms; see
// docs/architecture.md), so the load came before the tick of any call that holds one began, and
// the count read in that tick (after the tick was read) includes it.
CuPointerGetAttributesFn cudaDriverIfLoaded() {
  const int64_t tick = coarseTick();
  if (tick == gCheckedAtTick.load(std::memory_order_relaxed)) return nullptr;
  const unsigned long long adds = loadedObjectAdds();
  CuPointerGetAttributesFn fn = nullptr;
  if (adds == 0 || adds != gNoDriverAtAdds.load(std::memory_order_relaxed))
    fn = lookUpCudaDriver(adds);
  if (fn == nullptr) gCheckedAtTick.store(tick, std::memory_order_relaxed);
  return fn;
}

MemKind cudaKind(CuPointerGetAttributesFn getAttributes, const void* ptr) {
  unsigned type = 0;     // CUmemorytype, an enum
  uint64_t managed = 0;  // a boolean of unspecified width: zeroed, any byte set means true
  int attributes[2] = {kCuPointerAttributeMemoryType, kCuPointerAttributeIsManaged};
  void* data[2] = {&type, &managed};
  // An error (driver not initialised, or being torn down at exit) means no live CUDA allocation.
  if (getAttributes(2, attributes, data, reinterpret_cast<uintptr_t>(ptr)) != 0)
    return MemKind::kHost;
  if (managed != 0) return MemKind::kCudaManaged;
  if (type == 0 || type == kCuMemoryTypeHost) return MemKind::kHost;  // unknown to CUDA, or pinned
  return MemKind::kCuda;
}

}  // namespace

const char* memKindName(MemKind kind) {
  switch (kind) {
    case MemKind::kHost:
      return "host";
    case MemKind::kCuda:
      return "cuda";
    case MemKind::kCudaManaged:
      return "cuda managed";
    case MemKind::kAscend:
      return "ascend";
  }
  return "?";
}

MemKind detectMemKind(const void* ptr) {
  if (ptr == nullptr) return MemKind::kHost;
  CuPointerGetAttributesFn fn = gCuGetAttributes.load(std::memory_order_acquire);
  if (fn == nullptr) fn = cudaDriverIfLoaded();
  return fn != nullptr ? cudaKind(fn, ptr) : MemKind::kHost;
}

MemKindProbeStats memKindProbeStats() {
  MemKindProbeStats s;
  s.lookups = gLookups.load(std::memory_order_relaxed);
  s.cudaDriverFound = gCuGetAttributes.load(std::memory_order_acquire) != nullptr;
  return s;
}

}  // namespace weft
