// Reaching the memory of other processes on this host, for one-sided steps: single copies with
// process_vm_readv/process_vm_writev (Linux cross-memory attach), and direct mappings of memory
// the owner allocated with weftMemAlloc (a memfd, opened through /proc/<pid>/fd/<fd>).
//
// Both need the kernel's permission to inspect the peer (same user, and ptrace not restricted by
// Yama or a seccomp profile); probeCma() tells whether it is granted, so that a communicator can
// agree to use one-sided algorithms or fall back to message-passing ones.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "engine/transport.h"

namespace weft {

// Whether this process may read `bytes` at `addr` in process `pid` and finds `expect` there; on
// failure *err holds the errno.
bool probeCma(pid_t pid, const void* addr, uint64_t expect, int* err);

// What the kernel's copy (process_vm_readv within this process, in cache) costs on this machine's
// kernel and CPU, measured once per process (about a millisecond); all 0 where the kernel refuses
// the call. What a one-sided step on memory a peer cannot map costs.
struct KernelCopyCost {
  // How many times longer it takes than memcpy to copy the same 1 MiB (the least of a few runs of
  // each): 1.2-1.6 on the development VMs with an Intel CPU and Linux 6.18, 2.5-3 on those with an
  // AMD CPU.
  double ratio = 0;
  // Its time per byte there (4.7e-5 to 5e-5 us on the Intel VMs).
  double cachedUsPerByte = 0;
  // One call of 64 bytes, the least of a few runs' means: its price beyond the bytes (0.45-0.6 us
  // on the Intel VMs).
  double callUs = 0;
};
const KernelCopyCost& kernelCopyCost();

class ProcessPeerMemory final : public PeerMemory {
 public:
  // pids[r] is rank r's process (several ranks may share one, as in the in-memory test fabric).
  // With mapSegments false, every access copies (tests use that to exercise both paths).
  ProcessPeerMemory(std::vector<pid_t> pids, bool mapSegments);
  ~ProcessPeerMemory() override;
  ProcessPeerMemory(const ProcessPeerMemory&) = delete;
  ProcessPeerMemory& operator=(const ProcessPeerMemory&) = delete;

  bool mapsShared() const override { return mapSegments_; }
  char* map(int peer, const WindowEntry& w) override;
  Status read(int peer, void* local, uint64_t remoteAddr, uint64_t bytes, const void* key) override;
  Status write(int peer, uint64_t remoteAddr, const void* local, uint64_t bytes,
               const void* key) override;

 private:
  using Cma = ssize_t (*)(pid_t, const struct iovec*, unsigned long, const struct iovec*,
                          unsigned long, unsigned long);
  Status transfer(Cma cma, const char* what, int peer, char* local, uint64_t remoteAddr,
                  uint64_t bytes) const;
  Status fail(int err, const char* what, int peer, uint64_t remoteAddr, uint64_t bytes) const;

  std::vector<pid_t> pids_;
  bool mapSegments_;
  struct Mapping {
    char* base = nullptr;  // nullptr: mapping failed, copy instead
    uint64_t bytes = 0;
    int fd = -1;  // the owner's descriptor for the segment
  };
  std::map<std::pair<int, uint64_t>, Mapping> mappings_;  // (peer, segment id)
};

}  // namespace weft
