// The executor runs one compiled Plan on this rank: it posts each peer's sends and receives in
// message order as their dependencies allow, reduces straight out of arrived slots into send slots
// or the output, runs local copies and reductions, and waits with a back-off (spin, then yield,
// then sleep on the transport's doorbell) so that many ranks on few cores still make progress. It
// fails — never hangs — when a peer dies, reports a failure, sends a message that does not match,
// or nothing moves for WEFT_TIMEOUT.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/reduce.h"
#include "core/status.h"
#include "engine/plan.h"
#include "engine/transport.h"
#include "engine/window.h"

namespace weft {

// What the executor needs to know about each operation of the call (one, or several in a group).
struct PartContext {
  ReduceFn reduce = nullptr;
  weftDataType_t dtype = weftFloat32;
  uint64_t elemSize = 1;
  uint32_t signature = 0;
  uint64_t avgDivisor = 0;  // nranks when the op is avg, else 0
  // Final output written with non-temporal stores: the call is larger than the caches, so the
  // output will not be read back from them, and streaming stores skip each line's
  // read-for-ownership.
  bool streamOutput = false;
  // All-to-all-v: message sizes come from each rank's own count arrays (for error messages).
  bool perPeerCounts = false;
};

struct WaitPolicy {
  double timeoutSec = 300;
  int spinUs = 50;
  int yieldUs = 500;
  const std::atomic<bool>* cancel = nullptr;  // set by weftCommAbort: stop waiting at once
};

struct ExecArgs {
  const Plan* plan = nullptr;
  std::vector<char*> buffers;  // base address per BufferId
  std::span<const PartContext> parts;
  std::span<Endpoint* const> endpoints;  // per Plan::peers entry
  Transport* transport = nullptr;
  // One-sided plans: where the window tables are and how to reach peers' memory.
  const WindowLayout* window = nullptr;
  PeerMemory* peerMemory = nullptr;
  uint32_t opSeq = 0;  // this rank's operation number, for messages
  // Per Plan::peers entry: how many operations, this one included, have exchanged messages with
  // that peer. Tags carry it, so calls between some of the ranks (send/recv between two of them)
  // leave the numbering of the others' later collectives alone, while a call made in a different
  // order by the two ends of a pair is still caught.
  std::vector<uint32_t> peerSeq;
  int rank = 0;
  // Describes the call for error messages ("all_reduce count=.. float32 sum"); only called on
  // errors.
  std::string (*describe)(const void* ctx) = nullptr;
  const void* describeCtx = nullptr;
  std::string what() const {
    return describe != nullptr ? describe(describeCtx) : std::string("a call");
  }
  WaitPolicy wait;
};

// Reusable per-communicator state, so that a call allocates nothing once warm.
class Executor {
 public:
  Status run(const ExecArgs& args);

 private:
  // kDeferred: the op has gone out (its message slot is published) but completes later, when the
  // whole transfer it is part of has.
  enum class Outcome { kNotReady, kDone, kDeferred };
  Result<Outcome> runOp(const ExecArgs& a, uint32_t id);
  // Whether an arrived message is the one op expects; checkTag says how it is not.
  static bool tagMatches(const ExecArgs& a, const PlanOp& op, size_t bytes, const MsgTag& tag) {
    return tag.opSeq == a.peerSeq[static_cast<size_t>(op.recvPeer)] && tag.index == op.recvIndex &&
           tag.signature == a.parts[op.part].signature &&
           tag.msgBytes == msgBytesTag(op.msgBytes) && bytes == op.bytes;
  }
  Status checkTag(const ExecArgs& a, const PlanOp& op, size_t bytes, const MsgTag& tag) const;
  void complete(const ExecArgs& a, uint32_t id);
  Result<bool> pass(const ExecArgs& a);
  std::string describeWait(const ExecArgs& a) const;
  struct Remote {
    char* mapped;     // loads and stores reach the peer's bytes here, or nullptr
    uint64_t addr;    // the bytes' address in the peer's address space
    const void* key;  // the peer's key for the buffer (PeerMemory::keyBytes), or nullptr
  };
  Result<Remote> remote(const ExecArgs& a, const PlanOp& op);
  Status runOneSided(const ExecArgs& a, uint32_t id);
  Status copySliceThroughKernel(const ExecArgs& a, uint32_t id, const Remote& r);

  // Whole transfers (Endpoint::directThreshold): one per large step in flight.
  struct Transfer {
    Endpoint* ep = nullptr;
    uint64_t id = 0;
    int32_t peer = -1;     // Plan::peers index
    uint32_t slice = 0;    // the step slice it carries (PlanOp::slice)
    uint32_t chunks = 0;   // the step's chunk count
    uint32_t handled = 0;  // chunks announced (sending) or consumed (receiving)
    bool sending = false;
    bool done = false;
    int staging = -1;  // receiving: index into staging_, or -1 when received in place
    // Chunk ops that have gone out of the queue's way and complete when the transfer does: a
    // send's, and a receive's straight into its output.
    std::vector<uint32_t> waiting;
  };
  bool chunksReady(const ExecArgs& a, uint32_t id, bool unwaited) const;
  Result<Outcome> sendDirect(const ExecArgs& a, uint32_t id, Endpoint* out, const MsgTag& tag,
                             bool* handled);
  // The received bytes of an announced chunk once its transfer has arrived (nullptr meanwhile);
  // *inPlace when they were received straight into the op's output.
  Result<const char*> receiveDirect(const ExecArgs& a, uint32_t id, Endpoint* in,
                                    const Endpoint::DirectInfo& di, size_t* transfer,
                                    bool* inPlace);
  Result<const char*> laterChunk(const ExecArgs& a, uint32_t id, Endpoint* in, size_t* transfer,
                                 bool* inPlace);
  Result<const char*> arrived(const ExecArgs& a, const PlanOp& op, Endpoint* in, size_t ti,
                              size_t* transfer, bool* inPlace);
  size_t findTransfer(bool sending, int32_t peer, uint32_t slice) const;
  void consumedDirect(const ExecArgs& a, size_t transfer);
  void finishWaiting(const ExecArgs& a, Transfer& t);
  Result<bool> pollTransfers(const ExecArgs& a);
  void dropTransfers();

  std::vector<uint32_t> deps_;
  // Per Plan::peers entry, the next send and the next receive of its queues (both in heads_).
  std::vector<uint32_t> heads_;
  uint32_t* sendHead_ = nullptr;
  uint32_t* recvHead_ = nullptr;
  std::vector<uint32_t> ready_;
  size_t remaining_ = 0;
  std::vector<char*> windowPtr_;  // per (peer slot, buffer): the peer's buffer mapped, or nullptr
  std::vector<uint8_t> windowResolved_;
  std::vector<char> bounce_;          // a peer's chunk read here before it is reduced
  std::vector<uint8_t> sliceCopied_;  // per slice: how copySliceThroughKernel moved it
  std::vector<Transfer> transfers_;
  // Staging buffers for transfers received ahead of a reduction, kept between calls (a fresh page
  // costs ~10 us to touch).
  std::vector<std::vector<char>> staging_;
  std::vector<uint8_t> stagingBusy_;
};

}  // namespace weft
