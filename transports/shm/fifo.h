// A single-producer, single-consumer ring of fixed-size slots in memory that both ends map, and the
// doorbell a rank sleeps on. Shared by the shared-memory transport (processes) and the in-memory
// transport (threads).
//
// Layout of one FIFO (lives in the receiver's memory):
//   [tail: slots consumed, written by the receiver][slot 0][slot 1]...[slot n-1]
//   slot = 32-byte header {seq, bytes, tag} followed by the data; stride rounded up to 64 bytes.
// The sender fills slot (head % n), writes its header and then stores seq = head + 1 with release
// order; the receiver polls that one header, so a small message costs a single cache line transfer.
// The sender reads the tail only when it believes every slot is in flight.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/transport.h"

namespace weft::fifo {

// A futex word plus a count of sleepers. ring() costs one load when nobody sleeps.
struct alignas(64) Doorbell {
  std::atomic<uint32_t> seq{0};
  std::atomic<uint32_t> sleepers{0};
};
void ring(Doorbell* bell);
// Wakes unconditionally (used when poisoning).
void ringAlways(Doorbell* bell);
uint32_t prepareSleep(Doorbell* bell);
void sleep(Doorbell* bell, uint32_t token, int timeoutUs);
void finishSleep(Doorbell* bell);

struct alignas(32) SlotHeader {
  std::atomic<uint64_t> seq;
  uint64_t bytes;
  MsgTag tag;
};
static_assert(sizeof(SlotHeader) == 32, "slot header must stay 32 bytes");

constexpr size_t kFifoHeaderBytes = 64;
inline size_t slotStride(size_t slotBytes) {
  return (sizeof(SlotHeader) + slotBytes + 63) & ~size_t{63};
}
inline size_t fifoBytes(int nslots, size_t slotBytes) {
  return kFifoHeaderBytes + static_cast<size_t>(nslots) * slotStride(slotBytes);
}
// Prepares zeroed memory of fifoBytes() as an empty FIFO.
void initFifo(void* mem);

// One peer's endpoint: sends into `out` (a FIFO in the peer's memory), receives from `in` (the FIFO
// in this rank's memory that the peer sends into). Both directions ring `peerBell`: arrivals wake
// the peer, handed back slots wake a sender waiting for room.
class FifoEndpoint final : public Endpoint {
 public:
  FifoEndpoint(void* out, void* in, Doorbell* peerBell, Doorbell* selfBell, int nslots,
               size_t slotBytes);
  size_t slotBytes() const override { return slotBytes_; }
  void* sendBegin() override;
  void sendEnd(size_t bytes, const MsgTag& tag) override;
  const void* recvBegin(size_t* bytes, MsgTag* tag) override;
  void recvEnd() override;
  const TrafficCounters& counters() const { return counters_; }

 private:
  // The slot at position `pos` (the message number modulo nslots_, kept by the caller so that the
  // hot path divides nothing).
  SlotHeader* slot(char* fifo, uint64_t pos) const {
    return reinterpret_cast<SlotHeader*>(fifo + kFifoHeaderBytes + pos * stride_);
  }
  std::atomic<uint64_t>* tail(char* fifo) const {
    return reinterpret_cast<std::atomic<uint64_t>*>(fifo);
  }

  char* out_;
  char* in_;
  Doorbell* peerBell_;
  Doorbell* selfBell_;
  const uint64_t nslots_;
  const size_t slotBytes_;
  const size_t stride_;
  uint64_t sendHead_ = 0;
  uint64_t sendPos_ = 0;  // sendHead_ % nslots_
  uint64_t sendTailSeen_ = 0;
  uint64_t recvTail_ = 0;
  uint64_t recvPos_ = 0;    // recvTail_ % nslots_
  uint64_t recvBytes_ = 0;  // of the slot recvBegin returned
  TrafficCounters counters_;
};

// The sum over one rank's endpoints, `channels` per peer at peer * channels + channel (those to
// itself, peer `self`, left out).
TransportStats endpointStats(const char* name, std::string device,
                             const std::vector<std::unique_ptr<FifoEndpoint>>& endpoints, int self,
                             int channels);

}  // namespace weft::fifo
