#include "transports/shm/peer_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/log.h"

namespace weft {

bool probeCma(pid_t pid, const void* addr, uint64_t expect, int* err) {
  uint64_t got = 0;
  iovec local{&got, sizeof got};
  iovec remote{const_cast<void*>(addr), sizeof got};
  const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  *err = n < 0 ? errno : 0;
  return n == static_cast<ssize_t>(sizeof got) && got == expect;
}

namespace {

KernelCopyCost measureKernelCopy() {
  constexpr size_t kBytes = size_t{1} << 20;
  constexpr size_t kSmall = 64;  // one call's cost, with next to no bytes
  constexpr int kRuns = 5, kCalls = 32;
  void* mem = mmap(nullptr, 2 * kBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return {};
  char* src = static_cast<char*>(mem);
  char* dst = src + kBytes;
  std::memset(src, 1, 2 * kBytes);
  using Clock = std::chrono::steady_clock;
  auto us = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
  };
  auto read = [&](size_t bytes) {
    iovec local{dst, bytes};
    iovec remote{src, bytes};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(bytes);
  };
  double copyUs = 1e30, kernelUs = 1e30, callUs = 1e30;
  bool refused = false;
  for (int i = 0; i <= kRuns && !refused; ++i) {  // the first of each: warm-up
    auto t0 = Clock::now();
    std::memcpy(dst, src, kBytes);
    asm volatile("" : : "r"(dst) : "memory");
    auto t1 = Clock::now();
    refused = !read(kBytes);
    auto t2 = Clock::now();
    for (int k = 0; k < kCalls && !refused; ++k)
      refused = !read(kSmall);
    auto t3 = Clock::now();
    if (i == 0) continue;
    copyUs = std::min(copyUs, us(t0, t1));
    kernelUs = std::min(kernelUs, us(t1, t2));
    callUs = std::min(callUs, us(t2, t3) / kCalls);
  }
  munmap(mem, 2 * kBytes);
  if (refused || !(copyUs > 0)) return {};
  return {kernelUs / copyUs, kernelUs / kBytes, callUs};
}

}  // namespace

const KernelCopyCost& kernelCopyCost() {
  static const KernelCopyCost cost = measureKernelCopy();
  return cost;
}

ProcessPeerMemory::ProcessPeerMemory(std::vector<pid_t> pids, bool mapSegments)
    : pids_(std::move(pids)), mapSegments_(mapSegments) {}

ProcessPeerMemory::~ProcessPeerMemory() {
  for (auto& [key, m] : mappings_)
    if (m.base != nullptr) munmap(m.base, m.bytes);
}

char* ProcessPeerMemory::map(int peer, const WindowEntry& w) {
  if (!mapSegments_ || w.segId == 0) return nullptr;
  auto [it, fresh] = mappings_.try_emplace({peer, w.segId});
  Mapping& m = it->second;
  if (fresh) {
    // The owner keeps a segment's descriptor open until it frees the segment, so a mapping of
    // another segment of this peer under the same descriptor is of one that is gone (the number
    // was reused): drop it rather than hold its memory for the peer's lifetime. (A scratch pool
    // that grows frees its old segment, for one.)
    m.fd = w.segFd;
    for (auto o = mappings_.lower_bound({peer, 0});
         o != mappings_.end() && o->first.first == peer;) {
      if (o != it && o->second.fd == w.segFd) {
        if (o->second.base != nullptr) munmap(o->second.base, o->second.bytes);
        o = mappings_.erase(o);
      } else {
        ++o;
      }
    }
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/fd/%d", static_cast<int>(pids_[peer]), w.segFd);
    const int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) == w.segBytes) {
      void* p = mmap(nullptr, w.segBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (p != MAP_FAILED) {
        m.base = static_cast<char*>(p);
        m.bytes = w.segBytes;
      }
    }
    const int err = errno;
    if (fd >= 0) close(fd);
    if (m.base == nullptr)
      WEFT_INFO(kShm, "cannot map rank %d's weftMemAlloc segment (%s: %s); copying instead", peer,
                path, std::strerror(err));
    else
      WEFT_INFO(kShm, "mapped rank %d's weftMemAlloc segment of %llu bytes", peer,
                static_cast<unsigned long long>(w.segBytes));
  }
  if (m.base == nullptr) return nullptr;
  return m.base + (w.addr - w.segAddr);
}

Status ProcessPeerMemory::fail(int err, const char* what, int peer, uint64_t remoteAddr,
                               uint64_t bytes) const {
  const char* hint = err == EPERM    ? ": the kernel refuses cross-process access (ptrace policy); "
                                       "set WEFT_SHM_DIRECT=0"
                     : err == ESRCH  ? ": the process is gone"
                     : err == EFAULT ? ": the range is not mapped there (different counts?)"
                                     : "";
  return errorStatus(err == ESRCH ? weftRemoteError : weftSystemError,
                     "%s %llu bytes at 0x%llx of rank %d (pid %d) failed: %s%s", what,
                     static_cast<unsigned long long>(bytes),
                     static_cast<unsigned long long>(remoteAddr), peer,
                     static_cast<int>(pids_[peer]), std::strerror(err), hint);
}

// process_vm_readv and process_vm_writev take the same arguments; either moves what it can and is
// called again for the rest.
Status ProcessPeerMemory::transfer(Cma cma, const char* what, int peer, char* local,
                                   uint64_t remoteAddr, uint64_t bytes) const {
  while (bytes > 0) {
    iovec l{local, bytes};
    iovec r{reinterpret_cast<void*>(remoteAddr), bytes};
    const ssize_t n = cma(pids_[peer], &l, 1, &r, 1, 0);
    if (n <= 0) return fail(n < 0 ? errno : EFAULT, what, peer, remoteAddr, bytes);
    local += n;
    remoteAddr += static_cast<uint64_t>(n);
    bytes -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Status ProcessPeerMemory::read(int peer, void* local, uint64_t remoteAddr, uint64_t bytes,
                               const void* /*key*/) {
  return transfer(process_vm_readv, "reading", peer, static_cast<char*>(local), remoteAddr, bytes);
}

Status ProcessPeerMemory::write(int peer, uint64_t remoteAddr, const void* local, uint64_t bytes,
                                const void* /*key*/) {
  return transfer(process_vm_writev, "writing", peer,
                  const_cast<char*>(static_cast<const char*>(local)), remoteAddr, bytes);
}

}  // namespace weft
