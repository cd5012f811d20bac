// The in-memory transport: N ranks as threads of one process, exchanging slots through heap memory
// with the same FIFO and doorbell code as the shared-memory transport. It is how every algorithm is
// run for 1..64+ ranks inside one test process. A test can mark a rank dead to exercise failure
// handling.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/transport.h"

namespace weft {

// How the in-memory transport reaches peers' memory for one-sided steps.
enum class MemPeerAccess {
  kNone,    // it does not: one-sided algorithms cannot run
  kDirect,  // plain loads and stores (the ranks share the address space)
  kCopy,    // through process_vm_readv/writev to this process, as the shared-memory transport does
  kMapped,  // as kCopy, but weftMemAlloc memory is mapped again through /proc/self/fd
};

class MemFabric {
 public:
  MemFabric(int nranks, size_t slotBytes, int nslots, MemPeerAccess access = MemPeerAccess::kDirect,
            int channels = 1);
  ~MemFabric();
  MemFabric(const MemFabric&) = delete;
  MemFabric& operator=(const MemFabric&) = delete;

  int nranks() const { return nranks_; }
  // The transport rank `rank` uses. The fabric must outlive it.
  std::unique_ptr<Transport> transportFor(int rank);
  // Simulates the death of a rank: peers waiting on it get an error naming it.
  void markDead(int rank);

 private:
  friend class MemTransport;
  struct RankState;
  void* fifo(int from, int to, int channel);  // created on first use

  const int nranks_;
  const int channels_;
  const size_t slotBytes_;
  const int nslots_;
  const MemPeerAccess access_;
  std::vector<std::unique_ptr<RankState>> ranks_;
  std::mutex mu_;
  std::vector<void*> fifos_;  // nranks*nranks*channels: from-major, then to, then channel
};

}  // namespace weft
