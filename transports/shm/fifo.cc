#include "transports/shm/fifo.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <new>

namespace weft::fifo {
namespace {

void futexWait(std::atomic<uint32_t>* word, uint32_t expected, int timeoutUs) {
  struct timespec ts;
  ts.tv_sec = timeoutUs / 1000000;
  ts.tv_nsec = static_cast<long>(timeoutUs % 1000000) * 1000;
  // Not FUTEX_PRIVATE: the word may live in memory shared between processes.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

void futexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

}  // namespace

void ring(Doorbell* bell) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (bell->sleepers.load(std::memory_order_relaxed) != 0) ringAlways(bell);
}

void ringAlways(Doorbell* bell) {
  bell->seq.fetch_add(1, std::memory_order_seq_cst);
  futexWakeAll(&bell->seq);
}

uint32_t prepareSleep(Doorbell* bell) {
  bell->sleepers.fetch_add(1, std::memory_order_seq_cst);
  return bell->seq.load(std::memory_order_seq_cst);
}

void sleep(Doorbell* bell, uint32_t token, int timeoutUs) {
  if (bell->seq.load(std::memory_order_acquire) != token) return;
  futexWait(&bell->seq, token, timeoutUs);
}

void finishSleep(Doorbell* bell) {
  bell->sleepers.fetch_sub(1, std::memory_order_seq_cst);
}

void initFifo(void* mem) {
  new (mem) std::atomic<uint64_t>(0);
}

FifoEndpoint::FifoEndpoint(void* out, void* in, Doorbell* peerBell, Doorbell* selfBell, int nslots,
                           size_t slotBytes)
    : out_(static_cast<char*>(out)),
      in_(static_cast<char*>(in)),
      peerBell_(peerBell),
      selfBell_(selfBell),
      nslots_(static_cast<uint64_t>(nslots)),
      slotBytes_(slotBytes),
      stride_(slotStride(slotBytes)) {}

void* FifoEndpoint::sendBegin() {
  if (sendHead_ - sendTailSeen_ >= nslots_) {
    sendTailSeen_ = tail(out_)->load(std::memory_order_acquire);
    if (sendHead_ - sendTailSeen_ >= nslots_) return nullptr;
  }
  return slot(out_, sendPos_) + 1;
}

void FifoEndpoint::sendEnd(size_t bytes, const MsgTag& tag) {
  SlotHeader* h = slot(out_, sendPos_);
  h->bytes = bytes;
  h->tag = tag;
  h->seq.store(sendHead_ + 1, std::memory_order_release);
  ++sendHead_;
  if (++sendPos_ == nslots_) sendPos_ = 0;
  counters_.countSend(bytes);
  ring(peerBell_);
}

const void* FifoEndpoint::recvBegin(size_t* bytes, MsgTag* tag) {
  SlotHeader* h = slot(in_, recvPos_);
  if (h->seq.load(std::memory_order_acquire) != recvTail_ + 1) return nullptr;
  *bytes = recvBytes_ = h->bytes;
  *tag = h->tag;
  return h + 1;
}

void FifoEndpoint::recvEnd() {
  ++recvTail_;
  if (++recvPos_ == nslots_) recvPos_ = 0;
  counters_.countReceive(recvBytes_);
  tail(in_)->store(recvTail_, std::memory_order_release);
  ring(peerBell_);
}

TransportStats endpointStats(const char* name, std::string device,
                             const std::vector<std::unique_ptr<FifoEndpoint>>& endpoints, int self,
                             int channels) {
  TransportStats st;
  st.name = name;
  st.device = std::move(device);
  st.peers = static_cast<int>(endpoints.size()) / channels - 1;
  for (size_t i = 0; i < endpoints.size(); ++i)
    if (endpoints[i] && static_cast<int>(i) / channels != self) st += endpoints[i]->counters();
  return st;
}

}  // namespace weft::fifo
