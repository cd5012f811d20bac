// Memory kinds. Every buffer handed to weft is classified once per call: host memory needs nothing;
// device memory (CUDA, Ascend) is recognised through the vendor runtime, loaded with dlopen when
// present and never required at build or run time. The device-memory data paths (staging, streams)
// arrive in a later release; until then a device buffer is refused with a message that says so
// instead of being read as host memory.
#pragma once

namespace weft {

enum class MemKind { kHost, kCuda, kAscend };

const char* memKindName(MemKind kind);
// Host unless a loaded device runtime claims the pointer.
MemKind detectMemKind(const void* ptr);

}  // namespace weft
