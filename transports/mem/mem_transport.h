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

class MemFabric {
 public:
  MemFabric(int nranks, size_t slotBytes, int nslots);
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
  void* fifo(int from, int to);  // created on first use

  const int nranks_;
  const size_t slotBytes_;
  const int nslots_;
  std::vector<std::unique_ptr<RankState>> ranks_;
  std::mutex mu_;
  std::vector<void*> fifos_;  // nranks*nranks, from-major
};

}  // namespace weft
