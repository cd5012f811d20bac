// What the engine needs from a transport: per peer, one or more ordered channels of fixed-size
// slots in each direction (as NCCL's connection FIFOs; WEFT_NCHANNELS of them, each with its own
// slots and, over a network, its own connection where the plugin offers that), plus a way to sleep
// until something changes and to learn that a peer is gone.
//
// The engine writes a chunk straight into a send slot (copying, or reducing two inputs into it) and
// reads or reduces straight out of a receive slot, so a fused receive-reduce-send touches each byte
// once. The built-in shared-memory transport and the in-memory test transport implement this
// directly over shared memory; network transports (plugins behind include/weft/transport.h) are
// adapted to it by staging slots.
//
// A transport knows nothing of algorithms or collectives: it moves opaque slots with a small tag.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace weft {

// Carried with every slot; the engine checks it on arrival so that a message meant for another
// operation, another step or a call with other arguments is reported instead of mixed in.
struct MsgTag {
  uint32_t opSeq = 0;      // the communicator's operation number
  uint32_t index = 0;      // message number within the operation, per peer and direction
  uint32_t signature = 0;  // CollDesc::signature() of the call
  // The size of the whole message this slot is a chunk of (msgBytesTag): both ends cut a message
  // into the same chunks only when they agree on its size, so a receiver checks it on the first
  // chunk. It is what catches an all-to-all-v whose counts differ between the two ends, which the
  // signature cannot cover (each rank's counts are its own).
  uint32_t msgBytes = 0;
};

// A message size as MsgTag carries it: exact below 4 GiB, the high half folded in above.
inline uint32_t msgBytesTag(uint64_t bytes) {
  return static_cast<uint32_t>(bytes) ^ (static_cast<uint32_t>(bytes >> 32) * 0x9E3779B1u);
}

class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual size_t slotBytes() const = 0;
  // Send direction: a free slot to fill, or nullptr while every slot is in flight. sendEnd
  // publishes the slot most recently returned by sendBegin.
  virtual void* sendBegin() = 0;
  virtual void sendEnd(size_t bytes, const MsgTag& tag) = 0;
  // Receive direction: the next slot that has arrived, or nullptr. recvEnd hands it back to the
  // sender.
  virtual const void* recvBegin(size_t* bytes, MsgTag* tag) = 0;
  virtual void recvEnd() = 0;

  // Whole transfers (network transports): a large step is moved as one message straight from the
  // sender's buffer into the receiver's, with no slot copies and one rendezvous instead of one per
  // chunk. The slot channel still carries, in the message order of the step's first chunk, a short
  // announcement (sendEndDirect) with the engine's tag, which the receiver checks as usual; it
  // learns from it where the transfer is (directInfo) and posts its receive, into its output when
  // the matching step is a plain receive, otherwise into a staging buffer the chunks are then read
  // from. The step's later chunks have no messages on either side. The sender alone decides (per
  // step); the receiver follows the announcements.
  //
  // The smallest step worth a whole transfer, or UINT64_MAX where it is not offered.
  virtual uint64_t directThreshold() const { return UINT64_MAX; }
  // Posts `bytes` from `src` (valid until testDirect says the transfer is done) and returns the
  // transfer's id.
  virtual Result<uint64_t> postSendDirect(const void* src, uint64_t bytes) {
    (void)src;
    (void)bytes;
    return Status(weftInternalError, "whole transfers are not offered by this transport");
  }
  // Publishes the slot from sendBegin as the announcement of transfer `id` (`total` bytes), whose
  // first chunk is `bytes` long.
  virtual void sendEndDirect(uint64_t id, size_t bytes, uint64_t total, const MsgTag& tag) {
    (void)id;
    (void)total;
    (void)bytes;
    (void)tag;
  }
  // Whether the slot recvBegin returned announces part of a transfer (its bytes and tag are the
  // chunk's), and which.
  struct DirectInfo {
    uint64_t id = 0;
    uint64_t total = 0;  // the transfer's bytes
  };
  virtual bool directInfo(DirectInfo* out) const {
    (void)out;
    return false;
  }
  // Posts the receive of transfer `id` (announced by the peer) into `dst`.
  virtual Status postRecvDirect(uint64_t id, void* dst, uint64_t bytes) {
    (void)id;
    (void)dst;
    (void)bytes;
    return Status(weftInternalError, "whole transfers are not offered by this transport");
  }
  // Whether a posted transfer (sent or received) has completed; its record is released when it
  // has. An error names the peer.
  // (Ids are the sender's: a transfer sent and one received may share one.)
  virtual Result<bool> testDirect(uint64_t id, bool sending) {
    (void)id;
    (void)sending;
    return Status(weftInternalError, "whole transfers are not offered by this transport");
  }
};

// One buffer of a rank's window as its peers see it: where it is in the owner's address space and,
// when it lies in memory the owner allocated shareable (weftMemAlloc), how a peer may map it.
struct WindowEntry {
  uint64_t addr = 0;
  uint64_t bytes = 0;
  uint64_t segId = 0;    // 0: private memory, reachable only by copying (read/write below)
  uint64_t segAddr = 0;  // the segment's start in the owner's address space
  uint64_t segBytes = 0;
  int32_t segFd = -1;  // the owner's descriptor for the segment
  int32_t reserved = 0;
};

// Access to peers' memory for one-sided steps, offered by a transport whose ranks can all reach
// each other's memory: threads of one process, processes on one host allowed to use
// process_vm_readv, or processes on other hosts through a network plugin's RMA (put/get on
// registered memory, which needs a remote key per buffer).
class PeerMemory {
 public:
  virtual ~PeerMemory() = default;
  // Bytes of key material a window entry carries after its WindowEntry (the same on every rank), 0
  // where an address is all a peer needs.
  virtual uint32_t keyBytes() const { return 0; }
  // Whether some peers are reached through a network (RMA), not through memory of this host:
  // one-sided algorithms are built for the latter, so the tuner leaves them to WEFT_ALGO then.
  virtual bool overNetwork() const { return false; }
  // Whether map() reaches memory from allocShared (weftMemAlloc, and the engine's scratch, which
  // is allocated there when this is true): a one-sided step then loads and stores straight in a
  // peer's scratch. The same on every rank of a transport.
  virtual bool mapsShared() const { return false; }
  // Makes this rank's [addr, addr + bytes) reachable by its peers until endCall(), and writes what
  // they need for it (keyBytes() bytes) to `key`. Only called when keyBytes() > 0.
  virtual Status expose(const void* addr, uint64_t bytes, void* key) {
    (void)addr;
    (void)bytes;
    (void)key;
    return Status::Ok();
  }
  // The call that exposed buffers and used peers' keys has ended (on every path, errors included):
  // release what it held. Peers are done with this rank's buffers by then.
  virtual void endCall() {}
  // A pointer through which this process loads from and stores to the peer's buffer `w`, or
  // nullptr when it must be copied with read()/write(). Valid until the transport is destroyed.
  virtual char* map(int peer, const WindowEntry& w) = 0;
  // Single copies between this process and a peer's address space; `key` is the peer's key for
  // the window entry the address lies in (nullptr where keyBytes() is 0). A write has reached the
  // peer's memory when it returns, so a message sent after it is a signal that the data is there.
  virtual Status read(int peer, void* local, uint64_t remoteAddr, uint64_t bytes,
                      const void* key) = 0;
  virtual Status write(int peer, uint64_t remoteAddr, const void* local, uint64_t bytes,
                       const void* key) = 0;
};

// Traffic through one endpoint, or summed over a transport's endpoints.
struct TrafficCounters {
  uint64_t bytesSent = 0;
  uint64_t bytesReceived = 0;
  uint64_t messagesSent = 0;
  uint64_t messagesReceived = 0;
  uint64_t bytesPut = 0;  // one-sided steps through RMA
  uint64_t bytesGot = 0;
  void countSend(uint64_t bytes) {
    bytesSent += bytes;
    ++messagesSent;
  }
  void countReceive(uint64_t bytes) {
    bytesReceived += bytes;
    ++messagesReceived;
  }
  TrafficCounters& operator+=(const TrafficCounters& o) {
    bytesSent += o.bytesSent;
    bytesReceived += o.bytesReceived;
    messagesSent += o.messagesSent;
    messagesReceived += o.messagesReceived;
    bytesPut += o.bytesPut;
    bytesGot += o.bytesGot;
    return *this;
  }
};

// What one transport has carried since the communicator was created (weftCommTransportStats).
struct TransportStats : TrafficCounters {
  std::string name;    // "shm", "ucx", "ofi", ...
  std::string device;  // what carried the bytes, e.g. "tcp/veth_a"; "" when not known
  int peers = 0;       // peers reached through it (this rank excluded)
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;
  // Channels per peer (WEFT_NCHANNELS), the same on every rank: each is an independent endpoint
  // with its own message order, and the engine spreads every large step over all of them.
  virtual int channels() const = 0;
  // The endpoint to a peer (which may be this rank itself) on one channel, owned by the transport.
  virtual Result<Endpoint*> endpoint(int peer, int channel) = 0;
  // Sleeping without lost wake-ups: prepareWait() announces that this rank may sleep and returns a
  // token; the caller then checks once more for progress, and only if there is none calls
  // wait(token, ...), which returns when a slot arrives or is handed back, or after timeoutUs.
  // finishWait() ends the announcement.
  virtual uint32_t prepareWait() = 0;
  virtual void wait(uint32_t token, int timeoutUs) = 0;
  virtual void finishWait() = 0;
  // Ok, or an error naming a peer that has died or has reported a failure. Called every few
  // milliseconds by a waiting rank.
  virtual Status checkPeers() = 0;
  // Publishes this rank's failure so that peers waiting on it stop promptly (they see it in
  // checkPeers).
  virtual void poison(const Status& why) = 0;
  // Access to peers' memory, or nullptr where this transport has none. The same on every rank.
  virtual PeerMemory* peerMemory() { return nullptr; }
  // Bytes of memory this rank's outgoing messages are staged through on this host (slots in
  // shared memory, over all peers and channels): they share the caches with the users' buffers,
  // and the engine counts them in a call's footprint. 0 where messages go straight to the wire.
  virtual uint64_t stagingBytes() const { return 0; }
  // Appends one record per underlying transport.
  virtual void stats(std::vector<TransportStats>* out) = 0;
};

// The out-of-band exchange a transport may use while it sets up (the bootstrap provides it).
class OobExchange {
 public:
  virtual ~OobExchange() = default;
  // In place: buf holds nranks*bytesPerRank bytes, this rank's slot filled by the caller.
  virtual Status allgather(void* buf, size_t bytesPerRank) = 0;
};

// Every rank contributes its own outcome of a set-up step; all return the first failure, naming the
// rank it happened on ("<what> failed on rank 3: ..."), so that all ranks stop (or go on) together.
// `names`, when given, maps exchange positions to the ranks to name (a subset's members).
Status agree(OobExchange& oob, int rank, int nranks, const Status& mine, const char* what,
             const std::vector<int>* names = nullptr);

// An exchange among a subset of the ranks (those of one host, say), built on an exchange among all
// of them: every rank of the whole must make the same calls, each with its own subset.
class SubsetOob final : public OobExchange {
 public:
  // members: the subset's ranks in the whole, in subset order; rank: this rank in the whole.
  SubsetOob(OobExchange& whole, int rank, int nranks, std::vector<int> members)
      : whole_(whole), rank_(rank), nranks_(nranks), members_(std::move(members)) {}
  Status allgather(void* buf, size_t bytesPerRank) override;

 private:
  OobExchange& whole_;
  int rank_, nranks_;
  std::vector<int> members_;
};

}  // namespace weft
