#include "transports/mem/mem_transport.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

#include "transports/shm/fifo.h"
#include "transports/shm/peer_memory.h"

namespace weft {

struct MemFabric::RankState {
  fifo::Doorbell bell;
  std::atomic<bool> dead{false};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::string failure;
};

namespace {

// Plain loads and stores: every rank's memory is this process's.
class DirectPeerMemory final : public PeerMemory {
 public:
  bool mapsShared() const override { return true; }
  char* map(int, const WindowEntry& w) override { return reinterpret_cast<char*>(w.addr); }
  Status read(int, void* local, uint64_t remoteAddr, uint64_t bytes, const void*) override {
    std::memcpy(local, reinterpret_cast<const void*>(remoteAddr), bytes);
    return Status::Ok();
  }
  Status write(int, uint64_t remoteAddr, const void* local, uint64_t bytes, const void*) override {
    std::memcpy(reinterpret_cast<void*>(remoteAddr), local, bytes);
    return Status::Ok();
  }
};

std::unique_ptr<PeerMemory> makePeerMemory(MemPeerAccess access, int nranks) {
  switch (access) {
    case MemPeerAccess::kNone:
      return nullptr;
    case MemPeerAccess::kDirect:
      return std::make_unique<DirectPeerMemory>();
    case MemPeerAccess::kCopy:
    case MemPeerAccess::kMapped:
      return std::make_unique<ProcessPeerMemory>(
          std::vector<pid_t>(static_cast<size_t>(nranks), getpid()),
          access == MemPeerAccess::kMapped);
  }
  return nullptr;
}

}  // namespace

class MemTransport final : public Transport {
 public:
  MemTransport(MemFabric* fabric, int rank)
      : fabric_(fabric),
        rank_(rank),
        endpoints_(static_cast<size_t>(fabric->nranks() * fabric->channels_)),
        peerMemory_(makePeerMemory(fabric->access_, fabric->nranks())) {}
  PeerMemory* peerMemory() override { return peerMemory_.get(); }
  const char* name() const override { return "mem"; }
  void stats(std::vector<TransportStats>* out) override {
    out->push_back(fifo::endpointStats("mem", "", endpoints_, rank_, fabric_->channels_));
  }

  int channels() const override { return fabric_->channels_; }
  Result<Endpoint*> endpoint(int peer, int channel) override {
    if (peer < 0 || peer >= fabric_->nranks() || channel < 0 || channel >= fabric_->channels_)
      return errorStatus(weftInternalError, "mem transport: peer %d channel %d out of range", peer,
                         channel);
    auto& ep = endpoints_[static_cast<size_t>(peer * fabric_->channels_ + channel)];
    if (!ep) {
      ep = std::make_unique<fifo::FifoEndpoint>(
          fabric_->fifo(rank_, peer, channel), fabric_->fifo(peer, rank_, channel),
          &fabric_->ranks_[peer]->bell, &fabric_->ranks_[rank_]->bell, fabric_->nslots_,
          fabric_->slotBytes_);
    }
    return static_cast<Endpoint*>(ep.get());
  }
  uint32_t prepareWait() override { return fifo::prepareSleep(&self()->bell); }
  void wait(uint32_t token, int timeoutUs) override {
    fifo::sleep(&self()->bell, token, timeoutUs);
  }
  void finishWait() override { fifo::finishSleep(&self()->bell); }

  Status checkPeers() override {
    for (int r = 0; r < fabric_->nranks(); ++r) {
      if (r == rank_) continue;
      MemFabric::RankState* st = fabric_->ranks_[r].get();
      if (st->dead.load(std::memory_order_acquire))
        return errorStatus(weftRemoteError, "rank %d is gone (marked dead)", r);
      if (st->failed.load(std::memory_order_acquire)) {
        std::lock_guard<std::mutex> lock(st->mu);
        return Status(weftRemoteError,
                      strprintf("%s (reported by rank %d)", st->failure.c_str(), r))
            .withCause(st->failure);
      }
    }
    return Status::Ok();
  }

  void poison(const Status& why) override {
    MemFabric::RankState* st = self();
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (st->failed.load()) return;
      st->failure = why.message();
    }
    st->failed.store(true, std::memory_order_release);
    for (int r = 0; r < fabric_->nranks(); ++r)
      fifo::ringAlways(&fabric_->ranks_[r]->bell);
  }

 private:
  MemFabric::RankState* self() { return fabric_->ranks_[rank_].get(); }
  MemFabric* fabric_;
  int rank_;
  std::vector<std::unique_ptr<fifo::FifoEndpoint>> endpoints_;
  std::unique_ptr<PeerMemory> peerMemory_;
};

MemFabric::MemFabric(int nranks, size_t slotBytes, int nslots, MemPeerAccess access, int channels)
    : nranks_(nranks),
      channels_(channels),
      slotBytes_(slotBytes),
      nslots_(nslots),
      access_(access),
      fifos_(
          static_cast<size_t>(nranks) * static_cast<size_t>(nranks) * static_cast<size_t>(channels),
          nullptr) {
  for (int r = 0; r < nranks; ++r)
    ranks_.push_back(std::make_unique<RankState>());
}

MemFabric::~MemFabric() {
  for (void* f : fifos_)
    std::free(f);
}

void* MemFabric::fifo(int from, int to, int channel) {
  std::lock_guard<std::mutex> lock(mu_);
  void*& f =
      fifos_[(static_cast<size_t>(from) * static_cast<size_t>(nranks_) + static_cast<size_t>(to)) *
                 static_cast<size_t>(channels_) +
             static_cast<size_t>(channel)];
  if (f == nullptr) {
    const size_t bytes = fifo::fifoBytes(nslots_, slotBytes_);
    f = std::aligned_alloc(64, bytes);
    std::memset(f, 0, bytes);
    fifo::initFifo(f);
  }
  return f;
}

std::unique_ptr<Transport> MemFabric::transportFor(int rank) {
  return std::make_unique<MemTransport>(this, rank);
}

void MemFabric::markDead(int rank) {
  ranks_[rank]->dead.store(true, std::memory_order_release);
  for (int r = 0; r < nranks_; ++r)
    fifo::ringAlways(&ranks_[r]->bell);
}

}  // namespace weft
