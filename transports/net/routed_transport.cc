#include "transports/net/routed_transport.h"

#include <algorithm>
#include <memory>
#include <string>

namespace weft {
namespace {

// Peers' memory through whichever transport reaches the peer: the local one's (mappings and
// single copies, indexed by local rank) or the network one's (RMA with remote keys, which every
// window entry then carries).
class RoutedPeerMemory final : public PeerMemory {
 public:
  RoutedPeerMemory(PeerMemory* local, PeerMemory* remote, const std::vector<int>* localIndex)
      : local_(local), remote_(remote), localIndex_(localIndex) {}
  uint32_t keyBytes() const override { return remote_->keyBytes(); }
  bool overNetwork() const override { return true; }
  Status expose(const void* addr, uint64_t bytes, void* key) override {
    return remote_->expose(addr, bytes, key);
  }
  void endCall() override {
    local_->endCall();
    remote_->endCall();
  }
  char* map(int peer, const WindowEntry& w) override {
    const int l = localOf(peer);
    return l >= 0 ? local_->map(l, w) : remote_->map(peer, w);
  }
  Status read(int peer, void* local, uint64_t remoteAddr, uint64_t bytes,
              const void* key) override {
    const int l = localOf(peer);
    return l >= 0 ? local_->read(l, local, remoteAddr, bytes, nullptr)
                  : remote_->read(peer, local, remoteAddr, bytes, key);
  }
  Status write(int peer, uint64_t remoteAddr, const void* local, uint64_t bytes,
               const void* key) override {
    const int l = localOf(peer);
    return l >= 0 ? local_->write(l, remoteAddr, local, bytes, nullptr)
                  : remote_->write(peer, remoteAddr, local, bytes, key);
  }

 private:
  int localOf(int peer) const { return (*localIndex_)[static_cast<size_t>(peer)]; }
  PeerMemory* local_;
  PeerMemory* remote_;
  const std::vector<int>* localIndex_;
};

class RoutedTransport final : public Transport {
 public:
  RoutedTransport(std::unique_ptr<Transport> local, std::vector<int> localRanks,
                  std::unique_ptr<Transport> remote, int nranks)
      : local_(std::move(local)),
        remote_(std::move(remote)),
        localIndex_(static_cast<size_t>(nranks), -1),
        name_(std::string(local_->name()) + "+" + remote_->name()) {
    for (size_t i = 0; i < localRanks.size(); ++i)
      localIndex_[static_cast<size_t>(localRanks[i])] = static_cast<int>(i);
    if (local_->peerMemory() != nullptr && remote_->peerMemory() != nullptr)
      peerMemory_ = std::make_unique<RoutedPeerMemory>(local_->peerMemory(), remote_->peerMemory(),
                                                       &localIndex_);
  }

  const char* name() const override { return name_.c_str(); }
  // Both are made with the same WEFT_NCHANNELS.
  int channels() const override { return std::min(local_->channels(), remote_->channels()); }
  Result<Endpoint*> endpoint(int peer, int channel) override {
    if (peer >= 0 && static_cast<size_t>(peer) < localIndex_.size() &&
        localIndex_[static_cast<size_t>(peer)] >= 0)
      return local_->endpoint(localIndex_[static_cast<size_t>(peer)], channel);
    return remote_->endpoint(peer, channel);
  }
  // Arrivals over the network wake nobody: wait the network transport's way (progress, then a
  // short sleep), which also notices shared-memory arrivals on the next poll.
  uint32_t prepareWait() override { return remote_->prepareWait(); }
  void wait(uint32_t token, int timeoutUs) override { remote_->wait(token, timeoutUs); }
  void finishWait() override { remote_->finishWait(); }
  Status checkPeers() override {
    WEFT_TRY(local_->checkPeers());
    return remote_->checkPeers();
  }
  void poison(const Status& why) override {
    local_->poison(why);
    remote_->poison(why);
  }
  // One-sided algorithms need every peer's memory: this host's through the local transport, other
  // hosts' through the network plugin's RMA.
  PeerMemory* peerMemory() override { return peerMemory_.get(); }
  uint64_t stagingBytes() const override { return local_->stagingBytes(); }
  void stats(std::vector<TransportStats>* out) override {
    local_->stats(out);
    remote_->stats(out);
  }

 private:
  std::unique_ptr<Transport> local_, remote_;
  std::vector<int> localIndex_;
  std::unique_ptr<RoutedPeerMemory> peerMemory_;  // before local_ and remote_ in destruction
  std::string name_;
};

}  // namespace

std::unique_ptr<Transport> makeRoutedTransport(std::unique_ptr<Transport> local,
                                               std::vector<int> localRanks,
                                               std::unique_ptr<Transport> remote, int nranks) {
  return std::make_unique<RoutedTransport>(std::move(local), std::move(localRanks),
                                           std::move(remote), nranks);
}

}  // namespace weft
