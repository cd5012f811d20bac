// The schedule IR: an algorithm's output, the engine's input.
//
// A Schedule lists one rank's steps for one collective. Each step names the peers it talks to, the
// regions it reads and writes (a buffer — the user's send or receive buffer, or scratch — an offset
// and a byte count) and the steps it must wait for. Messages between two ranks are matched in
// order: the k-th step that sends to peer P on this rank meets the k-th step that receives from
// this rank on P, so algorithms emit steps in a consistent order on every rank.
//
// The step kinds are NCCL's primitives written as data:
//   Send             out(sendPeer) = src
//   Recv             dst = in(recvPeer)
//   RecvReduce       dst = src (+) in(recvPeer)
//   RecvReduceSend   out(sendPeer) = src (+) in(recvPeer)
//   RecvReduceCopySend dst = src (+) in(recvPeer); out(sendPeer) = dst
//   RecvCopySend     dst = in(recvPeer); out(sendPeer) = in
//   Copy             dst = src
//   Reduce           dst = dst (+) src
// and the one-sided kinds, which work on a peer's buffers (its window: the peer's send, receive
// and scratch buffers, `remote` naming one of them and a range in it) without the peer taking
// part:
//   Get              dst = remote
//   GetReduce        dst = src (+) remote
//   Put              remote = src
// One-sided steps run only when the transport offers access to peers' memory (CollDesc::peerAccess
// tells an algorithm's canRun). A schedule that uses them lists in `exposeTo` the peers that reach
// into this rank's window; the engine exchanges window addresses before those steps and holds each
// window open until every peer that uses it is done. Ordering between one rank's writes and
// another's reads is the algorithm's business: a zero-byte Send/Recv pair is a signal.
//
// where (+) is the collective's reduction. A step flagged `finalize` produces a final reduced
// value: the engine applies avg's division there, once. The engine splits every step into chunks
// and pipelines them; a step that depends on another step of the same size depends on it chunk by
// chunk (streaming), otherwise wholly.
//
// Message order between two ranks is phase by phase (Step::phase, ascending), and inside a phase
// chunk by chunk: chunk 0 of every step in step order, then chunk 1, ... A composition of
// sub-collectives (hierarchical algorithms) gives each its own phase, so that a later phase, which
// waits for an earlier one wholly, never queues its messages ahead of the earlier phase's later
// chunks to the same peer. Matched steps have the same phase on both ranks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace weft {

// A region's buffer is an index into the call's buffer table. A single operation uses kSendBuf,
// kRecvBuf and kScratchBuf; a group merges several operations, operation k using indices 3k, 3k+1,
// 3k+2.
using BufferId = uint16_t;
constexpr BufferId kSendBuf = 0;
constexpr BufferId kRecvBuf = 1;
constexpr BufferId kScratchBuf = 2;
constexpr BufferId kBuffersPerPart = 3;
constexpr BufferId kNoBuf = 0xFFFF;

struct Region {
  BufferId buf = kNoBuf;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

enum class StepKind : uint8_t {
  kSend,
  kRecv,
  kRecvReduce,
  kRecvReduceSend,
  kRecvReduceCopySend,
  kRecvCopySend,
  kCopy,
  kReduce,
  kGet,
  kGetReduce,
  kPut,
};

const char* stepKindName(StepKind kind);
inline bool stepReceives(StepKind k) {
  return k == StepKind::kRecv || k == StepKind::kRecvReduce || k == StepKind::kRecvReduceSend ||
         k == StepKind::kRecvReduceCopySend || k == StepKind::kRecvCopySend;
}
inline bool stepSends(StepKind k) {
  return k == StepKind::kSend || k == StepKind::kRecvReduceSend ||
         k == StepKind::kRecvReduceCopySend || k == StepKind::kRecvCopySend;
}
inline bool stepReduces(StepKind k) {
  return k == StepKind::kRecvReduce || k == StepKind::kRecvReduceSend ||
         k == StepKind::kRecvReduceCopySend || k == StepKind::kReduce || k == StepKind::kGetReduce;
}
inline bool stepIsOneSided(StepKind k) {
  return k == StepKind::kGet || k == StepKind::kGetReduce || k == StepKind::kPut;
}

using StepId = uint32_t;
constexpr StepId kNoStep = 0xFFFFFFFFu;

struct Step {
  StepKind kind = StepKind::kCopy;
  bool finalize = false;
  uint16_t part = 0;   // which operation of a group this step belongs to
  uint16_t phase = 0;  // message order between ranks: see above
  int32_t sendPeer = -1;
  int32_t recvPeer = -1;
  int32_t windowPeer = -1;  // one-sided steps: whose window `remote` is in
  Region dst;
  Region src;
  Region remote;
  uint32_t depBegin = 0;  // into Schedule::deps
  uint32_t depCount = 0;
  uint64_t bytes() const;  // the message / operation size
};

struct Schedule {
  std::vector<Step> steps;
  std::vector<StepId> deps;
  uint64_t scratchBytes = 0;      // scratch the schedule addresses, from offset 0
  uint64_t elemSize = 1;          // chunks are cut on element boundaries
  std::vector<int32_t> exposeTo;  // peers whose one-sided steps use this rank's window

  // Appends another operation's schedule as part `part` of a group: its buffers and steps are
  // renumbered. A schedule that uses phases has them moved after every phase already here, so
  // that the operations of a group keep their order; one that does not stays in phase 0.
  void append(const Schedule& other, uint16_t part);

  StepId add(const Step& s, std::initializer_list<StepId> after = {});
  StepId add(const Step& s, const std::vector<StepId>& after);

  // Step builders: each returns the new step's id.
  StepId send(int peer, Region src, std::initializer_list<StepId> after = {});
  StepId recv(int peer, Region dst, std::initializer_list<StepId> after = {});
  StepId recvReduce(int peer, Region dst, Region src, std::initializer_list<StepId> after = {});
  StepId recvReduceSend(int recvPeer, int sendPeer, Region src,
                        std::initializer_list<StepId> after = {});
  StepId recvReduceCopySend(int recvPeer, int sendPeer, Region dst, Region src,
                            std::initializer_list<StepId> after = {});
  StepId recvCopySend(int recvPeer, int sendPeer, Region dst,
                      std::initializer_list<StepId> after = {});
  StepId copy(Region dst, Region src, std::initializer_list<StepId> after = {});
  StepId copy(Region dst, Region src, const std::vector<StepId>& after);
  StepId reduce(Region dst, Region src, std::initializer_list<StepId> after = {});
  StepId get(int peer, Region dst, Region remote, std::initializer_list<StepId> after = {});
  StepId getReduce(int peer, Region dst, Region src, Region remote,
                   std::initializer_list<StepId> after = {});
  StepId put(int peer, Region remote, Region src, std::initializer_list<StepId> after = {});
  // A zero-byte message: `signal` on one rank meets `waitFor` on the peer.
  StepId signal(int peer, std::initializer_list<StepId> after = {});
  StepId waitFor(int peer, std::initializer_list<StepId> after = {});

  // A readable listing, one step a line (tests and WEFT_DEBUG=TRACE).
  std::string dump() const;
};

inline Region sendRegion(uint64_t off, uint64_t bytes) {
  return {kSendBuf, off, bytes};
}
inline Region recvRegion(uint64_t off, uint64_t bytes) {
  return {kRecvBuf, off, bytes};
}
inline Region scratchRegion(uint64_t off, uint64_t bytes) {
  return {kScratchBuf, off, bytes};
}

}  // namespace weft
