#include "memory/memory_kind.h"

#include <dlfcn.h>

namespace weft {

std::atomic<bool> gNoDeviceRuntime{false};

namespace {

// cudaPointerAttributes as of CUDA 10+: {enum cudaMemoryType type; int device; void* devicePointer;
// void* hostPointer;}. type: 0 unregistered, 1 host, 2 device, 3 managed.
struct CudaPointerAttributes {
  int type;
  int device;
  void* devicePointer;
  void* hostPointer;
};
using CudaPointerGetAttributesFn = int (*)(CudaPointerAttributes*, const void*);
using CudaGetLastErrorFn = int (*)();

struct CudaRuntime {
  CudaPointerGetAttributesFn getAttributes = nullptr;
  CudaGetLastErrorFn getLastError = nullptr;
};

// Only if the process already has the CUDA runtime loaded: weft never loads a device runtime for a
// host-only program (that would cost start-up time and memory). Looked up once; a function-local
// static costs one load per call afterwards.
const CudaRuntime& cuda() {
  static const CudaRuntime rt = [] {
    CudaRuntime r;
    void* h = dlopen("libcudart.so", RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) h = dlopen("libcudart.so.12", RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) h = dlopen("libcudart.so.13", RTLD_NOW | RTLD_NOLOAD);
    if (h == nullptr) {
      gNoDeviceRuntime.store(true, std::memory_order_relaxed);
      return r;
    }
    r.getAttributes =
        reinterpret_cast<CudaPointerGetAttributesFn>(dlsym(h, "cudaPointerGetAttributes"));
    r.getLastError = reinterpret_cast<CudaGetLastErrorFn>(dlsym(h, "cudaGetLastError"));
    return r;
  }();
  return rt;
}

}  // namespace

const char* memKindName(MemKind kind) {
  switch (kind) {
    case MemKind::kHost:
      return "host";
    case MemKind::kCuda:
      return "cuda";
    case MemKind::kAscend:
      return "ascend";
  }
  return "?";
}

MemKind detectMemKindSlow(const void* ptr) {
  const CudaRuntime& rt = cuda();
  if (rt.getAttributes != nullptr) {
    CudaPointerAttributes attr{};
    if (rt.getAttributes(&attr, ptr) == 0) {
      if (attr.type == 2 || attr.type == 3) return MemKind::kCuda;
    } else if (rt.getLastError != nullptr) {
      rt.getLastError();  // clear the sticky error for the application
    }
  }
  return MemKind::kHost;
}

}  // namespace weft
