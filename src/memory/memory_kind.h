// Memory kinds. Every buffer handed to weft is classified once per call: host memory needs nothing;
// device memory (CUDA, Ascend) is recognised through the vendor driver, found with dlopen when the
// process already has it loaded and never required at build or run time. The device-memory data
// paths (staging, streams) arrive in a later release; until then a device buffer is refused with a
// message that says so instead of being read as host memory.
//
// CUDA: the driver library (libcuda.so.1), which every CUDA program loads whether it links the
// runtime statically (nvcc's default) or as libcudart.so, answers cuPointerGetAttributes. Host
// memory, pinned or registered with CUDA (cudaMallocHost, cudaHostRegister) or not, is kHost;
// cudaMalloc'd memory is kCuda; cudaMallocManaged memory is kCudaManaged and refused as well: it is
// readable by the CPU, but weft, which takes no stream yet, cannot order its reads after the
// application's kernels, and on GPUs without concurrent managed access a CPU access while a kernel
// runs is a fault. The driver API keeps no error state, so a query leaves nothing for the
// application's cudaGetLastError.
//
// Cost, per buffer, in a process without the driver: ~6 ns on the 2-CPU VM (one read of
// CLOCK_MONOTONIC_COARSE from the vDSO and one atomic load), the same from any number of threads.
// Once per tick of that clock (1-10 ms) one caller asks the loader whether any object was loaded
// since the driver was last looked up (dl_iterate_phdr's dlpi_adds, ~10 ns) and, only where one
// was, looks again (dlopen RTLD_NOLOAD, a few us): a program that loads CUDA after its first weft
// calls is seen, long before it can hold device memory (cuInit and a context take far longer than
// a tick). With the driver loaded: one cuPointerGetAttributes call. Lock-free in weft; no lock of
// the loader's on the per-call path.
#pragma once

#include <cstdint>

namespace weft {

enum class MemKind { kHost, kCuda, kCudaManaged, kAscend };

// "host", "cuda", "cuda managed", "ascend".
const char* memKindName(MemKind kind);

// Host unless a loaded device driver claims the pointer. NULL is host.
MemKind detectMemKind(const void* ptr);

// For tests and diagnostics: how many times the driver was looked up (dlopen RTLD_NOLOAD), and
// whether it was found (its query is then used for every later pointer).
struct MemKindProbeStats {
  uint64_t lookups = 0;
  bool cudaDriverFound = false;
};
MemKindProbeStats memKindProbeStats();

}  // namespace weft
