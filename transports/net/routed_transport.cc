#include "transports/net/routed_transport.h"

#include <string>

namespace weft {
namespace {

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
  }

  const char* name() const override { return name_.c_str(); }
  Result<Endpoint*> endpoint(int peer) override {
    if (peer >= 0 && static_cast<size_t>(peer) < localIndex_.size() &&
        localIndex_[static_cast<size_t>(peer)] >= 0)
      return local_->endpoint(localIndex_[static_cast<size_t>(peer)]);
    return remote_->endpoint(peer);
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
  // One-sided algorithms need every peer's memory; ranks on other hosts have none to offer.
  PeerMemory* peerMemory() override { return nullptr; }
  void stats(std::vector<TransportStats>* out) override {
    local_->stats(out);
    remote_->stats(out);
  }

 private:
  std::unique_ptr<Transport> local_, remote_;
  std::vector<int> localIndex_;
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
