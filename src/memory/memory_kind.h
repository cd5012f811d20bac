// Memory kinds. Every buffer handed to weft is classified once per call: host memory needs nothing;
// device memory (CUDA, Ascend) is recognised through the vendor runtime, loaded with dlopen when
// present and never required at build or run time. The device-memory data paths (staging, streams)
// arrive in a later release; until then a device buffer is refused with a message that says so
// instead of being read as host memory.
#pragma once

#include <atomic>

namespace weft {

enum class MemKind { kHost, kCuda, kAscend };

const char* memKindName(MemKind kind);

// Set once the first lookup found no device runtime loaded in the process: every pointer is then
// host memory, and a call's check costs one load.
extern std::atomic<bool> gNoDeviceRuntime;
MemKind detectMemKindSlow(const void* ptr);

// Host unless a loaded device runtime claims the pointer.
inline MemKind detectMemKind(const void* ptr) {
  if (ptr == nullptr || gNoDeviceRuntime.load(std::memory_order_relaxed)) return MemKind::kHost;
  return detectMemKindSlow(ptr);
}

}  // namespace weft
