#include "transports/net/net_transport.h"

#include <sched.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>

#include "core/config.h"
#include "core/log.h"

namespace weft {
namespace {

// Tags: the message's sequence number in the low 32 bits, its kind in bits 32..33 and its channel
// in bits 34..39 (channels of one peer may share a plugin endpoint). A whole transfer's pieces
// (each at most the plugin's largest message) carry the transfer's id in bits 16..31 and the
// piece's index below.
constexpr uint64_t kKindShift = 32;
constexpr uint64_t kChannelShift = 34;
static_assert(kChannelShift + 6 <= WEFT_TP_TAG_BITS, "channel bits beyond the tag");
constexpr uint64_t kData = 0;
constexpr uint64_t kControl = 1;
constexpr uint64_t kDirect = 2;
uint64_t dataTag(int channel, uint64_t seq) {
  return (static_cast<uint64_t>(channel) << kChannelShift) | (kData << kKindShift) |
         (seq & 0xffffffffu);
}
constexpr uint64_t kControlTag = kControl << kKindShift;
constexpr size_t kControlBytes = 256;
constexpr uint64_t kMaxPieces = 1u << 16;
uint64_t directTag(int channel, uint64_t id, uint64_t piece) {
  return (static_cast<uint64_t>(channel) << kChannelShift) | (kDirect << kKindShift) |
         ((id & 0xffffu) << 16) | piece;
}

// What precedes a chunk in every slot. The announcement of a whole transfer carries no payload:
// `bytes` is the size of the step's first chunk, and the transfer's id and total follow.
constexpr uint64_t kFlagDirect = 1;
struct WireHeader {
  MsgTag tag;
  uint64_t bytes;
  uint64_t flags;
  uint64_t directId;
  uint64_t directTotal;
};
constexpr size_t kHeaderBytes = 64;  // keeps the payload cache-line aligned
static_assert(sizeof(WireHeader) <= kHeaderBytes);

// The weft code for a plugin's failure: a peer that is gone, or a failure here.
weftResult_t codeOf(int rc) {
  return rc == WEFT_TP_ERR_PEER ? weftRemoteError : weftSystemError;
}

class NetTransport;

// One-sided steps through the plugin's RMA: the owner of a window registers each buffer for the
// call and publishes its remote key in the window table; a peer unpacks the key (once per call) and
// gets or puts. A put is followed by a flush, so that the message that signals it is sent only once
// the bytes are in the owner's memory. Each access waits for its completion (the executor runs
// one-sided steps as single copies), progressing the plugin meanwhile, bounded by WEFT_TIMEOUT.
// Registrations and keys live for one call (endCall): a buffer the application frees after the
// call is not left registered.
class NetPeerMemory final : public PeerMemory {
 public:
  NetPeerMemory(NetTransport* t, uint32_t maxRkey)
      : t_(t), maxRkey_(maxRkey), timeoutSec_(config::secondsValue("WEFT_TIMEOUT")) {}
  ~NetPeerMemory() override { endCall(); }
  uint32_t keyBytes() const override { return kLenBytes + maxRkey_; }
  bool overNetwork() const override { return true; }
  const TrafficCounters& counters() const { return counters_; }
  Status expose(const void* addr, uint64_t bytes, void* key) override;
  void endCall() override;
  char* map(int, const WindowEntry&) override { return nullptr; }
  Status read(int peer, void* local, uint64_t remoteAddr, uint64_t bytes, const void* key) override;
  Status write(int peer, uint64_t remoteAddr, const void* local, uint64_t bytes,
               const void* key) override;

 private:
  static constexpr uint32_t kLenBytes = 8;  // the packed key's length, then the key
  Result<void*> rkeyFor(int peer, const void* key);
  Status inPieces(bool put, int peer, char* local, uint64_t remoteAddr, uint64_t bytes,
                  const void* key);
  Status access(bool put, int peer, void* local, uint64_t remoteAddr, uint64_t bytes,
                const void* key);
  Status wait(void* req, int peer, const char* what, uint64_t bytes);

  NetTransport* t_;
  uint32_t maxRkey_;
  double timeoutSec_;                                 // WEFT_TIMEOUT, read once: every access waits
  std::vector<void*> exposed_;                        // this call's registrations
  std::vector<std::pair<const void*, void*>> rkeys_;  // (key in a peer's table, unpacked)
  TrafficCounters counters_;                          // bytesPut, bytesGot
};

// The loop to this rank itself, in memory.
class LoopEndpoint final : public Endpoint {
 public:
  LoopEndpoint(int nslots, size_t slotBytes)
      : slotBytes_(slotBytes), slots_(static_cast<size_t>(nslots)) {
    for (auto& s : slots_)
      s.data.resize(slotBytes);
  }
  size_t slotBytes() const override { return slotBytes_; }
  void* sendBegin() override {
    if (count_ == slots_.size()) return nullptr;
    return slots_[(head_ + count_) % slots_.size()].data.data();
  }
  void sendEnd(size_t bytes, const MsgTag& tag) override {
    Slot& s = slots_[(head_ + count_) % slots_.size()];
    s.bytes = bytes;
    s.tag = tag;
    ++count_;
  }
  const void* recvBegin(size_t* bytes, MsgTag* tag) override {
    if (count_ == 0) return nullptr;
    const Slot& s = slots_[head_];
    *bytes = s.bytes;
    *tag = s.tag;
    return s.data.data();
  }
  void recvEnd() override {
    head_ = (head_ + 1) % slots_.size();
    --count_;
  }

 private:
  struct Slot {
    std::vector<char> data;
    size_t bytes = 0;
    MsgTag tag;
  };
  size_t slotBytes_;
  std::vector<Slot> slots_;
  size_t head_ = 0, count_ = 0;
};

class NetEndpoint final : public Endpoint {
 public:
  NetEndpoint(NetTransport* t, int peer, int channel, void* ep)
      : t_(t), peer_(peer), channel_(channel), ep_(ep) {}
  Status setup();  // allocates and registers the slots, posts the receives
  size_t slotBytes() const override;
  void* sendBegin() override;
  void sendEnd(size_t bytes, const MsgTag& tag) override;
  const void* recvBegin(size_t* bytes, MsgTag* tag) override;
  void recvEnd() override;

  uint64_t directThreshold() const override;
  Result<uint64_t> postSendDirect(const void* src, uint64_t bytes) override;
  void sendEndDirect(uint64_t id, size_t bytes, uint64_t total, const MsgTag& tag) override;
  bool directInfo(DirectInfo* out) const override;
  Status postRecvDirect(uint64_t id, void* dst, uint64_t bytes) override;
  Result<bool> testDirect(uint64_t id, bool sending) override;

  TrafficCounters counters;

 private:
  char* sendSlot(uint64_t i);
  char* recvSlot(uint64_t i);
  void post(uint64_t seq);
  Status postDirect(bool sending, uint64_t id, char* buf, uint64_t bytes);
  void publish(const WireHeader& h, size_t payload);

  NetTransport* t_;
  int peer_;
  int channel_;
  void* ep_;
  size_t stride_ = 0;
  uint64_t n_ = 0;
  char* arena_ = nullptr;  // n send slots, then n receive slots
  size_t arenaBytes_ = 0;
  void* mr_ = nullptr;
  std::vector<void*> sendReqs_, recvReqs_;
  uint64_t sendHead_ = 0;   // next message to send (its sequence number)
  uint64_t sendDone_ = 0;   // oldest send not known to be complete
  uint64_t recvHead_ = 0;   // next message expected
  bool recvReady_ = false;  // the head receive has arrived; its length and tag:
  size_t recvBytes_ = 0;
  MsgTag recvTag_;
  bool recvDirect_ = false;  // ... and announces part of a whole transfer:
  DirectInfo recvDirectInfo_;

  // Whole transfers in flight, each posted as pieces of at most the plugin's largest message.
  struct Direct {
    uint64_t id = 0;
    bool sending = false;
    uint64_t bytes = 0;
    void* mr = nullptr;  // registered for the transfer where the plugin needs it
    std::vector<void*> reqs;
    std::vector<uint64_t> pieceBytes;
  };
  std::vector<Direct> directs_;
  uint64_t nextDirect_ = 0;

  friend class NetTransport;
};

class NetTransport final : public Transport {
 public:
  NetTransport(LoadedPlugin plugin, int rank, int nranks, std::vector<bool> peers, NetConfig cfg)
      : plugin_(std::move(plugin)),
        ops_(plugin_.ops),
        rank_(rank),
        nranks_(nranks),
        peers_(std::move(peers)),
        cfg_(cfg),
        eps_(static_cast<size_t>(nranks * cfg_.channels), nullptr),
        endpoints_(static_cast<size_t>(nranks * cfg_.channels)),
        loops_(static_cast<size_t>(cfg_.channels)),
        controlIn_(static_cast<size_t>(nranks)),
        controlReqs_(static_cast<size_t>(nranks), nullptr) {}

  ~NetTransport() override {
    rma_.reset();  // its registrations go before the context
    // finalize cancels every pending request, so the slots may be freed after it.
    if (ctx_ != nullptr) ops_->finalize(ctx_);
    for (auto& e : endpoints_)
      if (e && e->arena_ != nullptr) std::free(e->arena_);
  }

  Status init(uint64_t commId);
  Status exchangeAndConnect(OobExchange& oob);

  const char* name() const override { return ops_->name; }

  int channels() const override { return cfg_.channels; }
  Result<Endpoint*> endpoint(int peer, int channel) override {
    if (channel < 0 || channel >= cfg_.channels)
      return errorStatus(weftInternalError, "%s transport: channel %d out of range", ops_->name,
                         channel);
    if (peer == rank_) {
      auto& loop = loops_[static_cast<size_t>(channel)];
      if (!loop) loop = std::make_unique<LoopEndpoint>(cfg_.nslots, cfg_.slotBytes);
      return static_cast<Endpoint*>(loop.get());
    }
    if (peer < 0 || peer >= nranks_ || !peers_[static_cast<size_t>(peer)])
      return errorStatus(weftInternalError, "%s transport: no connection to rank %d", ops_->name,
                         peer);
    const size_t i = static_cast<size_t>(peer * cfg_.channels + channel);
    auto& e = endpoints_[i];
    if (!e) {
      auto fresh = std::make_unique<NetEndpoint>(this, peer, channel, eps_[i]);
      WEFT_TRY(fresh->setup());
      e = std::move(fresh);
    }
    return static_cast<Endpoint*>(e.get());
  }

  uint32_t prepareWait() override { return 0; }
  void wait(uint32_t, int timeoutUs) override {
    progress();
    // Nothing wakes a sleeper here: poll again after a short sleep (the engine has already spun
    // and yielded, so this is a peer that is slow, not a message in flight).
    const int us = std::clamp(timeoutUs, 0, 50);
    timespec ts{0, us * 1000L};
    nanosleep(&ts, nullptr);
  }
  void finishWait() override {}

  // A failure a peer reported is the root cause; a connection error seen here is often its
  // consequence (the peer reports, then leaves), so a report wins over error_.
  Status checkPeers() override {
    progress();
    if (reported_.ok()) reported_ = takeReport();
    return reported_.ok() ? error_ : reported_;
  }

  void poison(const Status& why) override {
    if (poisoned_ || ctx_ == nullptr) return;
    poisoned_ = true;
    std::snprintf(controlOut_, sizeof controlOut_, "%s", why.message().c_str());
    std::vector<void*> reqs;
    for (int r = 0; r < nranks_; ++r) {
      if (r == rank_ || !peers_[static_cast<size_t>(r)]) continue;
      void* req = nullptr;
      if (ops_->isend(ctx_, ep(r), controlOut_, sizeof controlOut_, nullptr, kControlTag, &req) ==
          WEFT_TP_SUCCESS)
        reqs.push_back(req);
    }
    // Best effort, briefly: a peer that is gone never takes its report.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    while (!reqs.empty() && std::chrono::steady_clock::now() < deadline) {
      ops_->progress(ctx_);
      for (size_t i = 0; i < reqs.size();) {
        int done = 0;
        size_t bytes = 0;
        int rc = ops_->test(ctx_, reqs[i], &done, &bytes);
        if (rc != WEFT_TP_SUCCESS || done) {
          reqs[i] = reqs.back();
          reqs.pop_back();
        } else {
          ++i;
        }
      }
    }
  }

  PeerMemory* peerMemory() override { return rma_.get(); }

  void stats(std::vector<TransportStats>* out) override {
    TransportStats st;
    st.name = ops_->name;
    // What carried the bytes to the peers that had traffic, each distinct answer once; the
    // context's own device when the plugin cannot say.
    std::string described;
    for (int r = 0; r < nranks_; ++r) {
      if (r == rank_ || !peers_[static_cast<size_t>(r)]) continue;
      ++st.peers;
      for (int c = 0; c < cfg_.channels; ++c) {
        const size_t i = static_cast<size_t>(r * cfg_.channels + c);
        const auto& e = endpoints_[i];
        if (!e) continue;
        st += e->counters;
        if (ops_->describe_ep == nullptr ||
            (e->counters.messagesSent | e->counters.messagesReceived) == 0)
          continue;
        char buf[128] = {};
        if (ops_->describe_ep(ctx_, eps_[i], buf, sizeof buf) == WEFT_TP_SUCCESS &&
            buf[0] != '\0' && described.find(buf) == std::string::npos)
          described.append(described.empty() ? "" : ",").append(buf);
      }
    }
    st.device = described.empty() ? caps_.device : described;
    if (rma_) st += rma_->counters();
    out->push_back(st);
  }

  // The first failure report that has arrived on a control tag, or Ok.
  Status takeReport() {
    for (int r = 0; r < nranks_; ++r) {
      void*& req = controlReqs_[static_cast<size_t>(r)];
      if (req == nullptr) continue;
      int done = 0;
      size_t bytes = 0;
      int rc = ops_->test(ctx_, req, &done, &bytes);
      if (rc != WEFT_TP_SUCCESS) {
        // The connection closed: the peer destroyed its communicator, or died. Not an error by
        // itself (a peer that is done may leave first); a message still needed from it fails on
        // its own receive.
        req = nullptr;
        WEFT_INFO(kNet, "%s transport: rank %d closed its connection (%s)", ops_->name, r,
                  ops_->last_error(ctx_));
        continue;
      }
      if (done) {
        req = nullptr;
        const char* text = controlIn_[static_cast<size_t>(r)].data();
        const std::string cause(text, strnlen(text, std::min(bytes, kControlBytes)));
        return Status(weftRemoteError, strprintf("%s (reported by rank %d)", cause.c_str(), r))
            .withCause(cause);
      }
    }
    return Status::Ok();
  }

  // Records the first failure: the operation, the peer and the plugin's own explanation.
  void fail(int rc, int peer, const char* what, const char* detail = nullptr) {
    if (!error_.ok()) return;
    if (detail == nullptr) detail = ops_->last_error(ctx_);
    const weftResult_t code = codeOf(rc);
    error_ = errorStatus(code, "%s transport: %s rank %d failed: %s", ops_->name, what, peer,
                         detail != nullptr && detail[0] != '\0' ? detail : "(no detail)");
  }
  void progress() { ops_->progress(ctx_); }

  const weft_transport_v1_t* ops() const { return ops_; }
  void* ctx() const { return ctx_; }
  const NetConfig& cfg() const { return cfg_; }
  // The peer's channel-0 endpoint: failure reports and RMA go through it.
  void* ep(int peer) const { return eps_[static_cast<size_t>(peer * cfg_.channels)]; }
  uint64_t maxMessage() const { return caps_.max_message_bytes; }
  bool mrLocal() const { return (caps_.flags & WEFT_TP_CAP_MR_LOCAL) != 0; }

 private:
  static void logFromPlugin(void* self, int level, const char* msg) {
    auto* t = static_cast<NetTransport*>(self);
    if (level <= WEFT_TP_LOG_WARN)
      WEFT_WARN(kNet, "%s plugin: %s", t->plugin_.ops->name, msg);
    else if (level == WEFT_TP_LOG_INFO)
      WEFT_INFO(kNet, "%s plugin: %s", t->plugin_.ops->name, msg);
    else
      WEFT_TRACE(kNet, "%s plugin: %s", t->plugin_.ops->name, msg);
  }
  static const char* paramForPlugin(void* self, const char* name) {
    auto* t = static_cast<NetTransport*>(self);
    const config::Param* p = name != nullptr ? config::find(name) : nullptr;
    if (p == nullptr || !config::isSet(name)) return nullptr;
    std::string v = p->type == config::Type::kString || p->type == config::Type::kEnum
                        ? config::stringValue(name)
                        : std::to_string(config::intValue(name));
    return t->params_.insert_or_assign(name, std::move(v)).first->second.c_str();
  }

  LoadedPlugin plugin_;
  const weft_transport_v1_t* ops_;
  const int rank_, nranks_;
  const std::vector<bool> peers_;
  const NetConfig cfg_;
  void* ctx_ = nullptr;
  weft_transport_caps_t caps_{};
  std::map<std::string, std::string> params_;
  std::vector<void*> eps_;  // per peer and channel: peer * channels + channel
  std::vector<std::unique_ptr<NetEndpoint>> endpoints_;  // the same
  std::vector<std::unique_ptr<LoopEndpoint>> loops_;     // to this rank, per channel
  std::vector<std::vector<char>> controlIn_;
  std::vector<void*> controlReqs_;
  char controlOut_[kControlBytes] = {};
  bool poisoned_ = false;
  Status error_;                        // the first request that failed here
  Status reported_;                     // the first failure a peer reported
  std::unique_ptr<NetPeerMemory> rma_;  // where every rank's plugin offers RMA
};

Status NetTransport::init(uint64_t commId) {
  weft_transport_init_args_t args{};
  args.struct_size = sizeof args;
  args.abi_version = WEFT_TRANSPORT_ABI_VERSION;
  args.rank = rank_;
  args.nranks = nranks_;
  args.comm_id = commId;
  args.log = &NetTransport::logFromPlugin;
  args.log_ctx = this;
  args.get_param = &NetTransport::paramForPlugin;
  args.param_ctx = this;
  char err[512] = {};
  int rc = ops_->init(&args, &ctx_, err, sizeof err);
  if (rc != WEFT_TP_SUCCESS) {
    ctx_ = nullptr;
    return errorStatus(rc == WEFT_TP_ERR_UNAVAILABLE ? weftSystemError : weftInternalError,
                       "%s (%s): %s", ops_->name, plugin_.path.c_str(),
                       err[0] != '\0' ? err : "init failed");
  }
  rc = ops_->get_caps(ctx_, &caps_);
  if (rc != WEFT_TP_SUCCESS)
    return errorStatus(weftInternalError, "%s: get_caps failed: %s", ops_->name,
                       ops_->last_error(ctx_));
  caps_.device[sizeof caps_.device - 1] = '\0';
  if ((caps_.flags & WEFT_TP_CAP_TAGGED) == 0 || (caps_.mem_kinds & WEFT_TP_MEM_HOST) == 0)
    return errorStatus(weftInvalidUsage,
                       "%s (%s) does not declare tagged messages of host memory, which weft needs",
                       ops_->name, plugin_.path.c_str());
  if (caps_.max_message_bytes < cfg_.slotBytes + kHeaderBytes)
    return errorStatus(weftInvalidUsage,
                       "%s carries messages of at most %llu bytes, less than one slot (%zu bytes: "
                       "lower WEFT_CHUNK_SIZE)",
                       ops_->name, static_cast<unsigned long long>(caps_.max_message_bytes),
                       cfg_.slotBytes + kHeaderBytes);
  return Status::Ok();
}

Status NetTransport::exchangeAndConnect(OobExchange& oob) {
  // In one exchange, every rank's address capacity and the remote-key room it needs for one-sided
  // steps (0 without RMA): addresses travel in records as long as the longest; one-sided steps need
  // RMA on every rank, and window tables of one layout, made for the largest key.
  const bool rma = (caps_.flags & WEFT_TP_CAP_RMA) != 0 && caps_.max_rkey_bytes > 0 &&
                   caps_.max_rkey_bytes < (1u << 16) && ops_->put != nullptr &&
                   ops_->get != nullptr && ops_->flush != nullptr && ops_->pack_rkey != nullptr &&
                   ops_->unpack_rkey != nullptr && ops_->release_rkey != nullptr;
  struct Sizes {
    uint64_t address, rkey;
  };
  std::vector<Sizes> sizes(static_cast<size_t>(nranks_));
  sizes[static_cast<size_t>(rank_)] = {caps_.max_address_bytes, rma ? caps_.max_rkey_bytes : 0};
  WEFT_TRY(oob.allgather(sizes.data(), sizeof(Sizes)));
  size_t capacity = 0;
  uint64_t rkeyBytes = 0;
  bool allRma = true;
  for (const Sizes& z : sizes) {
    capacity = std::max<size_t>(capacity, z.address);
    rkeyBytes = std::max(rkeyBytes, z.rkey);
    allRma = allRma && z.rkey > 0;
  }
  const size_t record = sizeof(uint64_t) + capacity;
  std::vector<char> all(record * static_cast<size_t>(nranks_));
  char* mine = all.data() + record * static_cast<size_t>(rank_);
  size_t len = capacity;
  Status local;
  int rc = ops_->get_address(ctx_, mine + sizeof(uint64_t), &len);
  if (rc != WEFT_TP_SUCCESS)
    local = errorStatus(weftInternalError, "%s: get_address failed: %s", ops_->name,
                        ops_->last_error(ctx_));
  const uint64_t len64 = len;
  std::memcpy(mine, &len64, sizeof len64);
  WEFT_TRY(oob.allgather(all.data(), record));
  WEFT_TRY(agree(oob, rank_, nranks_, local, "publishing the transport address"));

  const bool multiEp = (caps_.flags & WEFT_TP_CAP_MULTI_EP) != 0;
  for (int r = 0; r < nranks_ && local.ok(); ++r) {
    if (r == rank_ || !peers_[static_cast<size_t>(r)]) continue;
    const char* rec = all.data() + record * static_cast<size_t>(r);
    uint64_t n = 0;
    std::memcpy(&n, rec, sizeof n);
    // A connection per channel where the plugin makes each endpoint a connection of its own;
    // otherwise the channels share one and their tags keep them apart.
    for (int c = 0; c < cfg_.channels && local.ok(); ++c) {
      void** ep = &eps_[static_cast<size_t>(r * cfg_.channels + c)];
      if (c > 0 && !multiEp) {
        *ep = eps_[static_cast<size_t>(r * cfg_.channels)];
        continue;
      }
      rc = ops_->connect(ctx_, r, rec + sizeof n, static_cast<size_t>(n), ep);
      if (rc != WEFT_TP_SUCCESS)
        local =
            errorStatus(weftRemoteError, "%s: cannot connect to rank %d%s: %s", ops_->name, r,
                        c > 0 ? strprintf(" (channel %d)", c).c_str() : "", ops_->last_error(ctx_));
    }
    if (!local.ok()) break;
    // Failure reports from this peer land here.
    controlIn_[static_cast<size_t>(r)].assign(kControlBytes, 0);
    rc = ops_->irecv(ctx_, ep(r), controlIn_[static_cast<size_t>(r)].data(), kControlBytes, nullptr,
                     kControlTag, &controlReqs_[static_cast<size_t>(r)]);
    if (rc != WEFT_TP_SUCCESS) {
      controlReqs_[static_cast<size_t>(r)] = nullptr;
      local = errorStatus(weftSystemError, "%s: cannot post a receive from rank %d: %s", ops_->name,
                          r, ops_->last_error(ctx_));
    }
  }
  WEFT_TRY(agree(oob, rank_, nranks_, local, "connecting the network transport"));

  if (allRma) rma_ = std::make_unique<NetPeerMemory>(this, static_cast<uint32_t>(rkeyBytes));
  WEFT_INFO(
      kNet,
      "%s transport ready (%s, from %s): %d-byte addresses, %d channel(s) per peer%s, %d "
      "slots of %zu KiB per channel, %s",
      ops_->name, caps_.device, plugin_.path.c_str(), static_cast<int>(len), cfg_.channels,
      cfg_.channels > 1 ? (multiEp ? " (a connection each)" : " (sharing one connection)") : "",
      cfg_.nslots, cfg_.slotBytes / 1024, rma_ ? "RMA for one-sided steps" : "no RMA");
  return Status::Ok();
}

Status NetEndpoint::setup() {
  const NetConfig& cfg = t_->cfg();
  n_ = static_cast<uint64_t>(cfg.nslots);
  stride_ = kHeaderBytes + ((cfg.slotBytes + 63) & ~size_t{63});
  arenaBytes_ = stride_ * 2 * n_;
  arena_ = static_cast<char*>(std::aligned_alloc(4096, (arenaBytes_ + 4095) & ~size_t{4095}));
  if (arena_ == nullptr)
    return errorStatus(weftSystemError, "cannot allocate %zu bytes of slots for rank %d",
                       arenaBytes_, peer_);
  std::memset(arena_, 0, arenaBytes_);  // pre-fault: a fresh page costs ~10 us to touch
  int rc = t_->ops()->reg_mem(t_->ctx(), arena_, arenaBytes_, WEFT_TP_MEM_HOST, &mr_);
  if (rc != WEFT_TP_SUCCESS)
    return errorStatus(weftSystemError, "%s: cannot register %zu bytes of slots for rank %d: %s",
                       t_->ops()->name, arenaBytes_, peer_, t_->ops()->last_error(t_->ctx()));
  sendReqs_.assign(n_, nullptr);
  recvReqs_.assign(n_, nullptr);
  for (uint64_t s = 0; s < n_; ++s)
    post(s);
  return Status::Ok();
}

size_t NetEndpoint::slotBytes() const {
  return t_->cfg().slotBytes;
}
char* NetEndpoint::sendSlot(uint64_t i) {
  return arena_ + (i % n_) * stride_;
}
char* NetEndpoint::recvSlot(uint64_t i) {
  return arena_ + (n_ + i % n_) * stride_;
}

void NetEndpoint::post(uint64_t seq) {
  void** req = &recvReqs_[seq % n_];
  int rc =
      t_->ops()->irecv(t_->ctx(), ep_, recvSlot(seq), stride_, mr_, dataTag(channel_, seq), req);
  if (rc != WEFT_TP_SUCCESS) {
    *req = nullptr;
    t_->fail(rc, peer_, "posting a receive from");
  }
}

void* NetEndpoint::sendBegin() {
  // Slots come back in order; a later send that finished first waits for the earlier ones.
  while (sendDone_ < sendHead_) {
    void*& req = sendReqs_[sendDone_ % n_];
    if (req != nullptr) {
      int done = 0;
      size_t bytes = 0;
      int rc = t_->ops()->test(t_->ctx(), req, &done, &bytes);
      if (rc != WEFT_TP_SUCCESS) {
        req = nullptr;
        t_->fail(rc, peer_, "sending to");
        return nullptr;
      }
      if (!done) break;
      req = nullptr;
    }
    ++sendDone_;
  }
  if (sendHead_ - sendDone_ == n_) {
    t_->progress();
    return nullptr;
  }
  return sendSlot(sendHead_) + kHeaderBytes;
}

void NetEndpoint::sendEnd(size_t bytes, const MsgTag& tag) {
  WireHeader h{};
  h.tag = tag;
  h.bytes = bytes;
  publish(h, bytes);
  counters.countSend(bytes);
}

uint64_t NetEndpoint::directThreshold() const {
  const uint64_t min = t_->cfg().directBytes;
  return min == 0 ? UINT64_MAX : min;
}

void NetEndpoint::publish(const WireHeader& h, size_t payload) {
  char* slot = sendSlot(sendHead_);
  std::memcpy(slot, &h, sizeof h);
  void** req = &sendReqs_[sendHead_ % n_];
  int rc = t_->ops()->isend(t_->ctx(), ep_, slot, kHeaderBytes + payload, mr_,
                            dataTag(channel_, sendHead_), req);
  if (rc != WEFT_TP_SUCCESS) {
    *req = nullptr;
    t_->fail(rc, peer_, "sending to");
  }
  ++sendHead_;
}

Status NetEndpoint::postDirect(bool sending, uint64_t id, char* buf, uint64_t bytes) {
  const weft_transport_v1_t* ops = t_->ops();
  const uint64_t piece = std::max<uint64_t>(t_->maxMessage(), 1);
  const uint64_t pieces = bytes == 0 ? 1 : 1 + (bytes - 1) / piece;  // piece may be UINT64_MAX
  if (pieces > kMaxPieces)
    return errorStatus(weftInvalidUsage,
                       "%s: a transfer of %llu bytes to or from rank %d needs more than %llu "
                       "messages of at most %llu bytes",
                       ops->name, static_cast<unsigned long long>(bytes), peer_,
                       static_cast<unsigned long long>(kMaxPieces),
                       static_cast<unsigned long long>(piece));
  Direct d;
  d.id = id;
  d.sending = sending;
  d.bytes = bytes;
  if (t_->mrLocal() && bytes > 0) {
    int rc = ops->reg_mem(t_->ctx(), buf, bytes, WEFT_TP_MEM_HOST, &d.mr);
    if (rc != WEFT_TP_SUCCESS)
      return errorStatus(weftSystemError, "%s: cannot register %llu bytes for rank %d: %s",
                         ops->name, static_cast<unsigned long long>(bytes), peer_,
                         ops->last_error(t_->ctx()));
  }
  for (uint64_t k = 0; k < pieces; ++k) {
    const uint64_t off = k * piece, len = std::min(piece, bytes - off);
    void* req = nullptr;
    int rc =
        sending
            ? ops->isend(t_->ctx(), ep_, buf + off, len, d.mr, directTag(channel_, id, k), &req)
            : ops->irecv(t_->ctx(), ep_, buf + off, len, d.mr, directTag(channel_, id, k), &req);
    if (rc != WEFT_TP_SUCCESS) {
      t_->fail(rc, peer_, sending ? "sending to" : "receiving from");
      // Pieces already posted stay with the plugin, which cancels them when it is finalized.
      return errorStatus(codeOf(rc), "%s: cannot post a %llu-byte transfer %s rank %d: %s",
                         ops->name, static_cast<unsigned long long>(bytes), sending ? "to" : "from",
                         peer_, ops->last_error(t_->ctx()));
    }
    d.reqs.push_back(req);
    d.pieceBytes.push_back(len);
  }
  directs_.push_back(std::move(d));
  return Status::Ok();
}

Result<uint64_t> NetEndpoint::postSendDirect(const void* src, uint64_t bytes) {
  const uint64_t id = nextDirect_++ & 0xffffu;
  // The plugin only reads a send buffer; the ABI's pointer is const for isend.
  WEFT_TRY(postDirect(true, id, static_cast<char*>(const_cast<void*>(src)), bytes));
  counters.bytesSent += bytes;  // its announcement counts the message
  return id;
}

void NetEndpoint::sendEndDirect(uint64_t id, size_t bytes, uint64_t total, const MsgTag& tag) {
  WireHeader h{};
  h.tag = tag;
  h.bytes = bytes;
  h.flags = kFlagDirect;
  h.directId = id;
  h.directTotal = total;
  publish(h, 0);
  ++counters.messagesSent;
}

bool NetEndpoint::directInfo(DirectInfo* out) const {
  if (!recvReady_ || !recvDirect_) return false;
  *out = recvDirectInfo_;
  return true;
}

Status NetEndpoint::postRecvDirect(uint64_t id, void* dst, uint64_t bytes) {
  return postDirect(false, id, static_cast<char*>(dst), bytes);
}

Result<bool> NetEndpoint::testDirect(uint64_t id, bool sending) {
  size_t i = 0;
  while (i < directs_.size() && (directs_[i].id != id || directs_[i].sending != sending))
    ++i;
  if (i == directs_.size())
    return errorStatus(weftInternalError, "%s: no transfer %llu with rank %d", t_->ops()->name,
                       static_cast<unsigned long long>(id), peer_);
  Direct& d = directs_[i];
  t_->progress();
  bool all = true;
  for (size_t k = 0; k < d.reqs.size(); ++k) {
    if (d.reqs[k] == nullptr) continue;
    int done = 0;
    size_t got = 0;
    int rc = t_->ops()->test(t_->ctx(), d.reqs[k], &done, &got);
    if (rc != WEFT_TP_SUCCESS) {
      d.reqs[k] = nullptr;
      t_->fail(rc, peer_, d.sending ? "sending to" : "receiving from");
      return errorStatus(codeOf(rc), "%s: a %llu-byte transfer %s rank %d failed: %s",
                         t_->ops()->name, static_cast<unsigned long long>(d.bytes),
                         d.sending ? "to" : "from", peer_, t_->ops()->last_error(t_->ctx()));
    }
    if (!done) {
      all = false;
      continue;
    }
    d.reqs[k] = nullptr;
    if (!d.sending && got != d.pieceBytes[k])
      return errorStatus(weftInvalidUsage,
                         "%s: rank %d sent %zu bytes where a piece of %llu was expected (a "
                         "transfer of %llu bytes)",
                         t_->ops()->name, peer_, got,
                         static_cast<unsigned long long>(d.pieceBytes[k]),
                         static_cast<unsigned long long>(d.bytes));
  }
  if (!all) return false;
  if (!d.sending) counters.bytesReceived += d.bytes;  // its announcement counted the message
  if (d.mr != nullptr) t_->ops()->dereg_mem(t_->ctx(), d.mr);
  directs_.erase(directs_.begin() + static_cast<std::ptrdiff_t>(i));
  return true;
}

const void* NetEndpoint::recvBegin(size_t* bytes, MsgTag* tag) {
  char* slot = recvSlot(recvHead_);
  if (!recvReady_) {
    void*& req = recvReqs_[recvHead_ % n_];
    if (req == nullptr) return nullptr;  // failed to post: checkPeers reports it
    t_->progress();
    int done = 0;
    size_t got = 0;
    int rc = t_->ops()->test(t_->ctx(), req, &done, &got);
    if (rc != WEFT_TP_SUCCESS) {
      req = nullptr;
      t_->fail(rc, peer_, "receiving from");
      return nullptr;
    }
    if (!done) return nullptr;
    req = nullptr;
    WireHeader h;
    std::memcpy(&h, slot, sizeof h);
    recvDirect_ = got == kHeaderBytes && (h.flags & kFlagDirect) != 0;
    if (recvDirect_) {
      recvDirectInfo_ = DirectInfo{h.directId, h.directTotal};
    } else if (got < kHeaderBytes || h.bytes != got - kHeaderBytes ||
               h.bytes > t_->cfg().slotBytes) {
      t_->fail(WEFT_TP_ERR_INTERNAL, peer_, "receiving from",
               "a message whose length disagrees with its header (different WEFT_CHUNK_SIZE on "
               "the two ranks?)");
      return nullptr;
    }
    recvReady_ = true;
    recvBytes_ = h.bytes;
    recvTag_ = h.tag;
  }
  *bytes = recvBytes_;
  *tag = recvTag_;
  return slot + kHeaderBytes;
}

void NetEndpoint::recvEnd() {
  recvReady_ = false;
  if (recvDirect_)
    ++counters.messagesReceived;  // its bytes are counted with the transfer
  else
    counters.countReceive(recvBytes_);
  post(recvHead_ + n_);
  ++recvHead_;
}

Status NetPeerMemory::expose(const void* addr, uint64_t bytes, void* key) {
  const weft_transport_v1_t* ops = t_->ops();
  void* mr = nullptr;
  int rc = ops->reg_mem(t_->ctx(), const_cast<void*>(addr), bytes, WEFT_TP_MEM_HOST, &mr);
  if (rc != WEFT_TP_SUCCESS)
    return errorStatus(weftSystemError, "%s: cannot register %llu bytes for one-sided steps: %s",
                       ops->name, static_cast<unsigned long long>(bytes),
                       ops->last_error(t_->ctx()));
  exposed_.push_back(mr);
  size_t len = maxRkey_;
  rc = ops->pack_rkey(t_->ctx(), mr, static_cast<char*>(key) + kLenBytes, &len);
  if (rc != WEFT_TP_SUCCESS || len > maxRkey_)
    return errorStatus(weftSystemError, "%s: cannot pack a remote key (%zu bytes, room for %u): %s",
                       ops->name, len, maxRkey_, ops->last_error(t_->ctx()));
  const uint64_t len64 = len;
  std::memcpy(key, &len64, sizeof len64);
  return Status::Ok();
}

void NetPeerMemory::endCall() {
  const weft_transport_v1_t* ops = t_->ops();
  for (auto& [key, rkey] : rkeys_)
    ops->release_rkey(t_->ctx(), rkey);
  rkeys_.clear();
  for (void* mr : exposed_)
    ops->dereg_mem(t_->ctx(), mr);
  exposed_.clear();
}

Result<void*> NetPeerMemory::rkeyFor(int peer, const void* key) {
  for (auto& [k, rkey] : rkeys_)
    if (k == key) return rkey;
  uint64_t len = 0;
  if (key != nullptr) std::memcpy(&len, key, sizeof len);
  if (key == nullptr || len == 0 || len > maxRkey_)
    return errorStatus(weftInternalError, "%s: rank %d's window entry carries no remote key",
                       t_->ops()->name, peer);
  void* rkey = nullptr;
  int rc =
      t_->ops()->unpack_rkey(t_->ctx(), t_->ep(peer), static_cast<const char*>(key) + kLenBytes,
                             static_cast<size_t>(len), &rkey);
  if (rc != WEFT_TP_SUCCESS) {
    t_->fail(rc, peer, "unpacking a remote key of");
    return errorStatus(codeOf(rc), "%s: cannot unpack rank %d's remote key: %s", t_->ops()->name,
                       peer, t_->ops()->last_error(t_->ctx()));
  }
  rkeys_.emplace_back(key, rkey);
  return rkey;
}

Status NetPeerMemory::wait(void* req, int peer, const char* what, uint64_t bytes) {
  using Clock = std::chrono::steady_clock;
  const weft_transport_v1_t* ops = t_->ops();
  const auto start = Clock::now();
  for (uint64_t polls = 1;; ++polls) {
    int done = 0;
    size_t got = 0;
    int rc = ops->test(t_->ctx(), req, &done, &got);
    if (rc != WEFT_TP_SUCCESS) {
      t_->fail(rc, peer, what);
      return errorStatus(codeOf(rc), "%s: %s %llu bytes of rank %d's memory failed: %s", ops->name,
                         what, static_cast<unsigned long long>(bytes), peer,
                         ops->last_error(t_->ctx()));
    }
    if (done) return Status::Ok();
    t_->progress();
    if (polls < 256) continue;  // spin briefly: a chunk takes microseconds
    // Then let a peer that shares this CPU run (its progress may be what serves this access),
    // and check now and then for failures and the time limit.
    if (polls % 64 == 0) {
      WEFT_TRY(t_->checkPeers());
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      if (waited > timeoutSec_)
        return errorStatus(weftRemoteError,
                           "%s: %s %llu bytes of rank %d's memory made no progress for %.1f s "
                           "(WEFT_TIMEOUT)",
                           ops->name, what, static_cast<unsigned long long>(bytes), peer, waited);
    }
    if (polls < 4096) {
      sched_yield();
    } else {
      timespec ts{0, 20 * 1000L};
      nanosleep(&ts, nullptr);
    }
  }
}

Status NetPeerMemory::access(bool put, int peer, void* local, uint64_t remoteAddr, uint64_t bytes,
                             const void* key) {
  const weft_transport_v1_t* ops = t_->ops();
  const char* what = put ? "writing" : "reading";
  WEFT_ASSIGN_OR_RETURN(void* rkey, rkeyFor(peer, key));
  void* mr = nullptr;
  if (t_->mrLocal()) {
    int rc = ops->reg_mem(t_->ctx(), local, bytes, WEFT_TP_MEM_HOST, &mr);
    if (rc != WEFT_TP_SUCCESS)
      return errorStatus(weftSystemError, "%s: cannot register %llu bytes for RMA with rank %d: %s",
                         ops->name, static_cast<unsigned long long>(bytes), peer,
                         ops->last_error(t_->ctx()));
  }
  struct Dereg {
    NetTransport* t;
    void* mr;
    ~Dereg() {
      if (mr != nullptr) t->ops()->dereg_mem(t->ctx(), mr);
    }
  } dereg{t_, mr};
  void* req = nullptr;
  int rc = put ? ops->put(t_->ctx(), t_->ep(peer), local, bytes, mr, remoteAddr, rkey, &req)
               : ops->get(t_->ctx(), t_->ep(peer), local, bytes, mr, remoteAddr, rkey, &req);
  if (rc != WEFT_TP_SUCCESS) {
    t_->fail(rc, peer, what);
    return errorStatus(codeOf(rc), "%s: %s %llu bytes of rank %d's memory: %s", ops->name, what,
                       static_cast<unsigned long long>(bytes), peer, ops->last_error(t_->ctx()));
  }
  WEFT_TRY(wait(req, peer, what, bytes));
  (put ? counters_.bytesPut : counters_.bytesGot) += bytes;
  if (!put) return Status::Ok();
  // A put completes when its source may be reused; the flush, when its bytes are in the peer's
  // memory.
  req = nullptr;
  rc = ops->flush(t_->ctx(), t_->ep(peer), &req);
  if (rc != WEFT_TP_SUCCESS) {
    t_->fail(rc, peer, "flushing writes to");
    return errorStatus(codeOf(rc), "%s: flushing writes to rank %d: %s", ops->name, peer,
                       ops->last_error(t_->ctx()));
  }
  return wait(req, peer, "flushing writes of", bytes);
}

// The engine moves a whole step slice in one read or write where it can; one RMA operation moves at
// most the provider's largest message.
Status NetPeerMemory::read(int peer, void* local, uint64_t remoteAddr, uint64_t bytes,
                           const void* key) {
  return inPieces(false, peer, static_cast<char*>(local), remoteAddr, bytes, key);
}

Status NetPeerMemory::write(int peer, uint64_t remoteAddr, const void* local, uint64_t bytes,
                            const void* key) {
  return inPieces(true, peer, const_cast<char*>(static_cast<const char*>(local)), remoteAddr, bytes,
                  key);
}

Status NetPeerMemory::inPieces(bool put, int peer, char* local, uint64_t remoteAddr, uint64_t bytes,
                               const void* key) {
  const uint64_t most = std::max<uint64_t>(t_->maxMessage(), 1);
  do {
    const uint64_t n = std::min(bytes, most);
    WEFT_TRY(access(put, peer, local, remoteAddr, n, key));
    local += n;
    remoteAddr += n;
    bytes -= n;
  } while (bytes > 0);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Transport>> createNetTransport(const std::string& spec, int rank, int nranks,
                                                      uint64_t commId,
                                                      const std::vector<bool>& peers,
                                                      const NetConfig& cfg, OobExchange& oob) {
  Result<LoadedPlugin> plugin = loadTransportPlugin(spec);
  std::unique_ptr<NetTransport> t;
  Status local = plugin.status();
  if (local.ok()) {
    t = std::make_unique<NetTransport>(*plugin, rank, nranks, peers, cfg);
    local = t->init(commId);
  }
  WEFT_TRY(agree(oob, rank, nranks, local, "setting up the network transport"));
  WEFT_TRY(t->exchangeAndConnect(oob));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace weft
