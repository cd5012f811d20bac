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
// where (+) is the collective's reduction. A step flagged `finalize` produces a final reduced
// value: the engine applies avg's division there, once. The engine splits every step into chunks
// and pipelines them; a step that depends on another step of the same size depends on it chunk by
// chunk (streaming), otherwise wholly.
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
         k == StepKind::kRecvReduceCopySend || k == StepKind::kReduce;
}

using StepId = uint32_t;
constexpr StepId kNoStep = 0xFFFFFFFFu;

struct Step {
  StepKind kind = StepKind::kCopy;
  bool finalize = false;
  uint16_t part = 0;  // which operation of a group this step belongs to
  int32_t sendPeer = -1;
  int32_t recvPeer = -1;
  Region dst;
  Region src;
  uint32_t depBegin = 0;  // into Schedule::deps
  uint32_t depCount = 0;
  uint64_t bytes() const;  // the message / operation size
};

struct Schedule {
  std::vector<Step> steps;
  std::vector<StepId> deps;
  uint64_t scratchBytes = 0;  // scratch the schedule addresses, from offset 0
  uint64_t elemSize = 1;      // chunks are cut on element boundaries

  // Appends another operation's schedule as part `part` of a group: its buffers and steps are
  // renumbered.
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
  StepId reduce(Region dst, Region src, std::initializer_list<StepId> after = {});

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
