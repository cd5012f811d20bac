#include "memory/shared_alloc.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>

#include "core/log.h"

namespace weft {
namespace {

std::mutex gMu;
std::map<uintptr_t, SharedSegment>& segments() {
  static auto* m = new std::map<uintptr_t, SharedSegment>();  // outlives static destructors
  return *m;
}
std::atomic<uint64_t> gNextId{1};

}  // namespace

Result<void*> allocShared(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t len = (bytes + page - 1) / page * page;
  int fd = memfd_create("weft-mem", MFD_CLOEXEC);
  if (fd < 0) return sysError(errno, "weftMemAlloc: cannot create a shared-memory file");
  if (ftruncate(fd, static_cast<off_t>(len)) != 0) {
    Status s = sysError(errno, "weftMemAlloc: cannot size a shared-memory file to %zu bytes", len);
    close(fd);
    return s;
  }
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) {
    Status s = sysError(errno, "weftMemAlloc: cannot map %zu bytes of shared memory", len);
    close(fd);
    return s;
  }
  SharedSegment seg{gNextId.fetch_add(1), static_cast<char*>(p), len, fd};
  {
    std::lock_guard<std::mutex> lock(gMu);
    segments()[reinterpret_cast<uintptr_t>(p)] = seg;
  }
  WEFT_INFO(kAlloc, "weftMemAlloc: %zu bytes of shareable memory at %p (memfd %d)", len, p, fd);
  return p;
}

Status freeShared(void* ptr) {
  SharedSegment seg;
  {
    std::lock_guard<std::mutex> lock(gMu);
    auto it = segments().find(reinterpret_cast<uintptr_t>(ptr));
    if (it == segments().end())
      return errorStatus(
          weftInvalidArgument,
          "weftMemFree: ptr %p was not returned by weftMemAlloc (or is freed already)", ptr);
    seg = it->second;
    segments().erase(it);
  }
  munmap(seg.base, seg.bytes);
  close(seg.fd);
  return Status::Ok();
}

bool findShared(const void* ptr, uint64_t bytes, SharedSegment* out) {
  const auto p = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(gMu);
  auto& m = segments();
  if (m.empty()) return false;
  auto it = m.upper_bound(p);
  if (it == m.begin()) return false;
  --it;
  const SharedSegment& s = it->second;
  if (p + bytes > it->first + s.bytes) return false;
  *out = s;
  return true;
}

}  // namespace weft
