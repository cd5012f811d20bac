#include "engine/executor.h"

#include <sched.h>

#include <chrono>
#include <cstring>

#include "core/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define WEFT_CPU_RELAX() _mm_pause()
#else
#define WEFT_CPU_RELAX() __asm__ __volatile__("" ::: "memory")
#endif

namespace weft {
namespace {

using Clock = std::chrono::steady_clock;

inline char* at(const ExecArgs& a, const Region& r) {
  return a.buffers[r.buf] + r.offset;
}

// Copies into a region; the user's output of a large call is written with streaming stores.
inline void copyOut(const PartContext& p, const Region& r, void* dst, const void* src,
                    uint64_t bytes) {
  if (p.streamOutput && r.buf % kBuffersPerPart == kRecvBuf) {
    copyBytesStreaming(dst, src, bytes);
  } else {
    copyBytes(dst, src, bytes);
  }
}

// A call stopped because a peer died or failed: say which call, and carry the root cause.
Status stoppedBy(const ExecArgs& a, const Status& peers) {
  return Status(peers.code(), strprintf("rank %d: %s (operation #%u) stopped: %s", a.rank,
                                        a.what().c_str(), a.opSeq, peers.message().c_str()))
      .withCause(peers.cause());
}

// v = from, for the small arrays every call starts with: a size check and a copy once warm.
inline void loadFrom(std::vector<uint32_t>* v, const std::vector<uint32_t>& from) {
  if (v->size() != from.size()) v->resize(from.size());
  if (!from.empty()) std::memcpy(v->data(), from.data(), from.size() * sizeof(uint32_t));
}

inline void finalizeInto(const PartContext& p, void* data, uint64_t bytes) {
  if (p.avgDivisor > 1 && bytes > 0) divide(data, data, bytes / p.elemSize, p.dtype, p.avgDivisor);
}

}  // namespace

Status Executor::checkTag(const ExecArgs& a, const PlanOp& op, size_t bytes,
                          const MsgTag& tag) const {
  const PartContext& part = a.parts[op.part];
  const int peer = a.plan->peers[op.recvPeer].rank;
  const uint32_t pairSeq = a.peerSeq[static_cast<size_t>(op.recvPeer)];
  if (tag.opSeq != pairSeq || tag.index != op.recvIndex || tag.signature != part.signature) {
    return errorStatus(
        weftInvalidUsage,
        "rank %d received from rank %d a message of their exchange #%u (message %u, signature "
        "%08x) while running %s as operation #%u, their exchange #%u (expecting message %u, "
        "signature %08x): the ranks called collectives in different orders or with different "
        "arguments (or with buffers registered on some ranks only)",
        a.rank, peer, tag.opSeq, tag.index, tag.signature, a.what().c_str(), a.opSeq, pairSeq,
        op.recvIndex, part.signature);
  }
  if (tag.msgBytes != msgBytesTag(op.msgBytes)) {
    const std::string hint =
        part.perPeerCounts
            ? strprintf(": sendcounts[%d] on rank %d must equal recvcounts[%d] on rank %d", a.rank,
                        peer, peer, a.rank)
            : std::string(": the ranks passed different counts or types");
    return errorStatus(weftInvalidUsage,
                       "rank %d expected a message of %llu bytes from rank %d in %s (operation "
                       "#%u, message %u) but rank %d sent %u bytes%s",
                       a.rank, static_cast<unsigned long long>(op.msgBytes), peer, a.what().c_str(),
                       a.opSeq, op.recvIndex, peer, tag.msgBytes, hint.c_str());
  }
  if (bytes != op.bytes) {
    return errorStatus(
        weftInvalidUsage,
        "rank %d received %zu bytes from rank %d in %s (operation #%u, message %u) where %llu "
        "were expected: the ranks passed different counts or types",
        a.rank, bytes, peer, a.what().c_str(), a.opSeq, op.recvIndex,
        static_cast<unsigned long long>(op.bytes));
  }
  return Status::Ok();
}

Result<Executor::Remote> Executor::remote(const ExecArgs& a, const PlanOp& op) {
  const WindowLayout& w = *a.window;
  const auto slot = static_cast<size_t>(w.slotOf[static_cast<size_t>(op.windowPeer)]);
  const size_t perTable = w.tableBytes / w.entryBytes;
  const WindowEntry& e =
      *windowEntry(a.buffers[w.peerTablesBuf] + slot * w.tableBytes, w, op.remote.buf);
  if (op.remote.offset + op.remote.bytes > e.bytes)
    return errorStatus(weftInvalidUsage,
                       "rank %d: %s needs bytes %llu..%llu of rank %d's buffer, which has %llu: "
                       "the ranks passed different counts",
                       a.rank, a.what().c_str(), static_cast<unsigned long long>(op.remote.offset),
                       static_cast<unsigned long long>(op.remote.offset + op.remote.bytes),
                       op.windowPeer, static_cast<unsigned long long>(e.bytes));
  const size_t idx = slot * perTable + op.remote.buf;
  if (!windowResolved_[idx]) {
    windowPtr_[idx] = e.bytes > 0 ? a.peerMemory->map(op.windowPeer, e) : nullptr;
    windowResolved_[idx] = 1;
  }
  char* base = windowPtr_[idx];
  return Remote{base != nullptr ? base + op.remote.offset : nullptr, e.addr + op.remote.offset,
                windowKey(&e, w)};
}

// Get, GetReduce and Put: straight through a mapping of the peer's buffer where there is one,
// otherwise one copy between the address spaces (a reduction reads the peer's chunk into a buffer
// that stays in cache first).
Status Executor::runOneSided(const ExecArgs& a, uint32_t id) {
  const PlanOp& op = a.plan->ops[id];
  const PartContext& part = a.parts[op.part];
  const uint64_t n = op.bytes;
  if (n == 0) return Status::Ok();
  WEFT_ASSIGN_OR_RETURN(Remote r, remote(a, op));
  const int peer = op.windowPeer;
  if (r.mapped == nullptr && op.kind != StepKind::kGetReduce && op.chunks > 1)
    return copySliceThroughKernel(a, id, r);
  switch (op.kind) {
    case StepKind::kGet:
      if (r.mapped != nullptr) {
        copyOut(part, op.dst, at(a, op.dst), r.mapped, n);
      } else {
        WEFT_TRY(a.peerMemory->read(peer, at(a, op.dst), r.addr, n, r.key));
      }
      break;
    case StepKind::kGetReduce: {
      const char* in = r.mapped;
      if (in == nullptr) {
        if (bounce_.size() < n) bounce_.resize(n);
        WEFT_TRY(a.peerMemory->read(peer, bounce_.data(), r.addr, n, r.key));
        in = bounce_.data();
      }
      part.reduce(at(a, op.dst), at(a, op.src), in, n / part.elemSize);
      break;
    }
    case StepKind::kPut:
      if (r.mapped != nullptr) {
        copyOut(part, op.remote, r.mapped, at(a, op.src), n);  // a peer's output: maybe streaming
      } else {
        WEFT_TRY(a.peerMemory->write(peer, r.addr, at(a, op.src), n, r.key));
      }
      break;
    default:
      break;
  }
  if (op.finalize) finalizeInto(part, at(a, op.dst), n);
  return Status::Ok();
}

// A Get or Put chunk copied through the kernel (PeerMemory without a mapping), where each call
// costs a system call and pins the peer's pages: when every chunk of the slice may run, the first
// of them to run moves the whole slice in one call and the others find nothing left to do. Measured
// on 2 ranks of a 2-CPU VM, 4-16 MiB all-gathers and all-to-alls ran 5-15 % faster than with one
// call per 128 KiB chunk.
// Once a chunk has run while others of its slice still waited, each copies its own bytes only.
// `r` is where op's own bytes lie in the peer; the slice starts op's offset into it earlier.
Status Executor::copySliceThroughKernel(const ExecArgs& a, uint32_t id, const Remote& r) {
  const PlanOp& op = a.plan->ops[id];
  uint8_t& state = sliceCopied_[op.slice];  // 0: untouched, 1: moved whole, 2: chunk by chunk
  if (state == 1) return Status::Ok();
  const bool whole = state == 0 && chunksReady(a, id, false);
  const PlanOp& from = whole ? a.plan->ops[id - op.chunk] : op;
  const uint64_t n = whole ? op.msgBytes : op.bytes;
  const uint64_t addr = r.addr - (op.remote.offset - from.remote.offset);
  if (op.kind == StepKind::kGet) {
    WEFT_TRY(a.peerMemory->read(op.windowPeer, at(a, from.dst), addr, n, r.key));
    if (op.finalize) finalizeInto(a.parts[op.part], at(a, from.dst), n);
  } else {
    WEFT_TRY(a.peerMemory->write(op.windowPeer, addr, at(a, from.src), n, r.key));
  }
  state = whole ? 1 : 2;
  return Status::Ok();
}

Result<Executor::Outcome> Executor::runOp(const ExecArgs& a, uint32_t id) {
  const PlanOp& op = a.plan->ops[id];
  const PartContext& part = a.parts[op.part];
  const uint64_t n = op.bytes;
  // Elements, for the reductions only (a divide the copies need not pay).
  auto count = [&] { return n / part.elemSize; };
  Endpoint* in = op.recvPeer >= 0 ? a.endpoints[op.recvPeer] : nullptr;
  Endpoint* out = op.sendPeer >= 0 ? a.endpoints[op.sendPeer] : nullptr;

  // The later chunks of a slice that goes as one whole transfer have no messages of their own.
  if (op.chunk > 0 && !transfers_.empty()) {
    if (out != nullptr && op.kind == StepKind::kSend) {
      bool direct = false;
      WEFT_ASSIGN_OR_RETURN(Outcome o, sendDirect(a, id, out, MsgTag{}, &direct));
      if (direct) return o;
    }
  }
  const void* inData = nullptr;
  size_t transfer = SIZE_MAX;  // the whole transfer this chunk arrived in, if any
  bool inPlace = false;        // ... received straight into op.dst
  if (in != nullptr) {
    if (op.chunk > 0 && !transfers_.empty()) {
      WEFT_ASSIGN_OR_RETURN(inData, laterChunk(a, id, in, &transfer, &inPlace));
    }
    if (transfer == SIZE_MAX) {
      size_t bytes = 0;
      MsgTag tag;
      inData = in->recvBegin(&bytes, &tag);
      if (inData == nullptr) return Outcome::kNotReady;
      if (!tagMatches(a, op, bytes, tag)) WEFT_TRY(checkTag(a, op, bytes, tag));
      Endpoint::DirectInfo di;
      if (in->directInfo(&di)) {
        WEFT_ASSIGN_OR_RETURN(inData, receiveDirect(a, id, in, di, &transfer, &inPlace));
      }
    }
    if (transfer != SIZE_MAX && inData == nullptr) {
      // In flight. A chunk received straight into its output has nothing left to do but wait:
      // it goes out of the way of the messages behind it (the next transfer's announcement) and
      // completes with the transfer; one read from staging needs the bytes now.
      if (!inPlace || op.kind != StepKind::kRecv) return Outcome::kNotReady;
      if (op.chunk == 0) in->recvEnd();  // the announcement; its transfer is posted
      Transfer& t = transfers_[transfer];
      ++t.handled;
      t.waiting.push_back(id);
      return Outcome::kDeferred;
    }
  }
  void* outData = nullptr;
  if (out != nullptr) {
    outData = out->sendBegin();
    if (outData == nullptr) return Outcome::kNotReady;
  }
  const MsgTag outTag = out != nullptr
                            ? MsgTag{a.peerSeq[static_cast<size_t>(op.sendPeer)], op.sendIndex,
                                     part.signature, msgBytesTag(op.msgBytes)}
                            : MsgTag{};

  switch (op.kind) {
    case StepKind::kSend: {
      // A message below the transport's whole-transfer size, with no transfer in flight, always
      // goes through its slot.
      if (!transfers_.empty() || op.msgBytes >= out->directThreshold()) {
        bool direct = false;
        WEFT_ASSIGN_OR_RETURN(Outcome o, sendDirect(a, id, out, outTag, &direct));
        if (direct) return o;
      }
      copyBytes(outData, at(a, op.src), n);
      break;
    }
    case StepKind::kRecv:
      if (!inPlace) copyOut(part, op.dst, at(a, op.dst), inData, n);
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kRecvReduce:
      if (n > 0) part.reduce(at(a, op.dst), at(a, op.src), inData, count());
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kRecvReduceSend:
      if (n > 0) part.reduce(outData, at(a, op.src), inData, count());
      if (op.finalize) finalizeInto(part, outData, n);
      break;
    case StepKind::kRecvReduceCopySend:
      // Reduce into the outgoing slot (it stays in cache for the peer), then copy it to the output.
      if (n > 0) part.reduce(outData, at(a, op.src), inData, count());
      if (op.finalize) finalizeInto(part, outData, n);
      copyOut(part, op.dst, at(a, op.dst), outData, n);
      break;
    case StepKind::kRecvCopySend:
      copyBytes(outData, inData, n);
      copyOut(part, op.dst, at(a, op.dst), inData, n);
      break;
    case StepKind::kCopy:
      if (at(a, op.dst) != at(a, op.src)) copyOut(part, op.dst, at(a, op.dst), at(a, op.src), n);
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kReduce:
      if (n > 0) part.reduce(at(a, op.dst), at(a, op.dst), at(a, op.src), count());
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kGet:
    case StepKind::kGetReduce:
    case StepKind::kPut: {
      Status s = runOneSided(a, id);
      if (!s.ok()) {
        // A peer that is gone may have failed first for another reason: report the root cause.
        Status peers = a.transport->checkPeers();
        return peers.ok() ? s : stoppedBy(a, peers);
      }
      break;
    }
  }
  if (out != nullptr) out->sendEnd(n, outTag);
  if (in != nullptr && (transfer == SIZE_MAX || op.chunk == 0)) in->recvEnd();
  if (transfer != SIZE_MAX) consumedDirect(a, transfer);
  return Outcome::kDone;
}

// A later chunk (op.chunk > 0) of a receiving op whose slice arrives as a whole transfer announced
// by its first chunk: the chunk's bytes once the transfer is done (nullptr meanwhile), with
// *transfer set; *transfer stays SIZE_MAX for a chunk that has a message of its own.
Result<const char*> Executor::laterChunk(const ExecArgs& a, uint32_t id, Endpoint* in,
                                         size_t* transfer, bool* inPlace) {
  const PlanOp& op = a.plan->ops[id];
  const size_t ti = findTransfer(false, op.recvPeer, op.slice);
  if (ti == SIZE_MAX) return static_cast<const char*>(nullptr);
  return arrived(a, op, in, ti, transfer, inPlace);
}

// The bytes of a received chunk once its transfer is done (nullptr meanwhile): in the op's output,
// or at the chunk's offset in staging. Sets *transfer and *inPlace either way.
Result<const char*> Executor::arrived(const ExecArgs& a, const PlanOp& op, Endpoint* in, size_t ti,
                                      size_t* transfer, bool* inPlace) {
  Transfer& t = transfers_[ti];
  *transfer = ti;
  *inPlace = t.staging < 0;
  if (!t.done) {
    WEFT_ASSIGN_OR_RETURN(t.done, in->testDirect(t.id, false));
    if (!t.done) return static_cast<const char*>(nullptr);
  }
  if (*inPlace) return static_cast<const char*>(at(a, op.dst));
  const uint64_t offset = op.chunk * a.plan->chunkBytes;
  return static_cast<const char*>(staging_[static_cast<size_t>(t.staging)].data() + offset);
}

// The transfer in flight for this run's step slice `slice` with that peer and channel, or SIZE_MAX.
size_t Executor::findTransfer(bool sending, int32_t peer, uint32_t slice) const {
  for (size_t i = 0; i < transfers_.size(); ++i)
    if (transfers_[i].sending == sending && transfers_[i].peer == peer &&
        transfers_[i].slice == slice)
      return i;
  return SIZE_MAX;
}

// Whether every chunk of op's slice may run now (the ops of a slice are consecutive) and, with
// `unwaited`, whether no other op waits for any of them.
bool Executor::chunksReady(const ExecArgs& a, uint32_t id, bool unwaited) const {
  const PlanOp& op = a.plan->ops[id];
  const uint32_t first = id - op.chunk, n = op.chunks;
  for (uint32_t k = first; k < first + n; ++k)
    if (deps_[k] != 0 || (unwaited && a.plan->ops[k].succCount != 0)) return false;
  return true;
}

// A Send chunk whose slice goes, or may go, as one whole transfer: the slice's first chunk posts
// the transfer when the transport offers one for its size, the whole slice is ready and no other
// step waits for it, and publishes its announcement in its slot; the later chunks send nothing (the
// receiver's do not expect messages either), and all complete with the transfer. *handled is false
// when the chunk takes the slot path.
//
// Why no step may wait for it: a send through slots is done once its bytes are copied out, but a
// whole transfer is done only once the receiver has taken it. If a later step of this rank waited
// for it, and the receiver's matching step waited for that later step's messages, the two ranks
// would wait for each other (a rendezvous turns an eager send into a synchronous one, as MPI's
// "unsafe" programs show). A step nothing waits for only holds back the end of the call.
Result<Executor::Outcome> Executor::sendDirect(const ExecArgs& a, uint32_t id, Endpoint* out,
                                               const MsgTag& tag, bool* handled) {
  const PlanOp& op = a.plan->ops[id];
  *handled = false;
  const size_t found = findTransfer(true, op.sendPeer, op.slice);
  Transfer* t = found != SIZE_MAX ? &transfers_[found] : nullptr;
  if (t == nullptr) {
    if (op.chunk != 0 || op.msgBytes < out->directThreshold() || !chunksReady(a, id, true))
      return Outcome::kDone;
    WEFT_ASSIGN_OR_RETURN(uint64_t tid, out->postSendDirect(at(a, op.src), op.msgBytes));
    Transfer fresh;
    fresh.ep = out;
    fresh.id = tid;
    fresh.peer = op.sendPeer;
    fresh.slice = op.slice;
    fresh.chunks = op.chunks;
    fresh.sending = true;
    transfers_.push_back(std::move(fresh));
    t = &transfers_.back();
  }
  *handled = true;
  if (op.chunk == 0) out->sendEndDirect(t->id, op.bytes, op.msgBytes, tag);
  ++t->handled;
  if (!t->done) {
    WEFT_ASSIGN_OR_RETURN(t->done, out->testDirect(t->id, true));
  }
  if (!t->done) {
    t->waiting.push_back(id);
    return Outcome::kDeferred;
  }
  finishWaiting(a, *t);
  if (t->handled == t->chunks) transfers_.erase(transfers_.begin() + (t - transfers_.data()));
  return Outcome::kDone;
}

Result<const char*> Executor::receiveDirect(const ExecArgs& a, uint32_t id, Endpoint* in,
                                            const Endpoint::DirectInfo& di, size_t* transfer,
                                            bool* inPlace) {
  const PlanOp& op = a.plan->ops[id];
  size_t ti = findTransfer(false, op.recvPeer, op.slice);
  if (ti == SIZE_MAX) {
    if (op.chunk != 0 || di.total != op.msgBytes)
      return errorStatus(weftInternalError,
                         "rank %d: %s: rank %d announced a %llu-byte transfer where message %u "
                         "(chunk %u of %llu bytes) begins",
                         a.rank, a.what().c_str(), a.plan->peers[op.recvPeer].rank,
                         static_cast<unsigned long long>(di.total), op.recvIndex, op.chunk,
                         static_cast<unsigned long long>(op.msgBytes));
    ti = transfers_.size();
    Transfer fresh;
    fresh.ep = in;
    fresh.id = di.id;
    fresh.peer = op.recvPeer;
    fresh.slice = op.slice;
    fresh.chunks = op.chunks;
    // Straight into the output when the step only receives and all of it may be written now;
    // otherwise into staging, which the step's chunks then read as they would their slots.
    char* dst = nullptr;
    if (op.kind == StepKind::kRecv && chunksReady(a, id, false)) {
      dst = at(a, op.dst);
    } else {
      size_t k = 0;
      while (k < staging_.size() && stagingBusy_[k] != 0)
        ++k;
      if (k == staging_.size()) {
        staging_.emplace_back();
        stagingBusy_.push_back(0);
      }
      if (staging_[k].size() < di.total) staging_[k].resize(di.total);
      stagingBusy_[k] = 1;
      fresh.staging = static_cast<int>(k);
      dst = staging_[k].data();
    }
    Status posted = in->postRecvDirect(di.id, dst, di.total);
    if (!posted.ok()) {
      if (fresh.staging >= 0) stagingBusy_[static_cast<size_t>(fresh.staging)] = 0;
      return posted;
    }
    transfers_.push_back(std::move(fresh));
  }
  return arrived(a, op, in, ti, transfer, inPlace);
}

void Executor::consumedDirect(const ExecArgs& a, size_t ti) {
  Transfer& t = transfers_[ti];
  finishWaiting(a, t);
  if (++t.handled < t.chunks) return;
  if (t.staging >= 0) stagingBusy_[static_cast<size_t>(t.staging)] = 0;
  transfers_.erase(transfers_.begin() + static_cast<std::ptrdiff_t>(ti));
}

// Completes the ops that went out of the way of a transfer now done (a received chunk's avg
// division happens here, once its bytes are there).
void Executor::finishWaiting(const ExecArgs& a, Transfer& t) {
  for (uint32_t id : t.waiting) {
    const PlanOp& op = a.plan->ops[id];
    if (!t.sending && op.finalize) finalizeInto(a.parts[op.part], at(a, op.dst), op.bytes);
    complete(a, id);
  }
  t.waiting.clear();
}

// Completes the chunks of whole transfers that have finished.
Result<bool> Executor::pollTransfers(const ExecArgs& a) {
  bool progressed = false;
  for (size_t i = 0; i < transfers_.size();) {
    Transfer& t = transfers_[i];
    if (!t.done && !t.waiting.empty()) {
      WEFT_ASSIGN_OR_RETURN(t.done, t.ep->testDirect(t.id, t.sending));
    }
    if (t.done && !t.waiting.empty()) {
      finishWaiting(a, t);
      progressed = true;
    }
    if (t.done && t.handled == t.chunks) {
      if (t.staging >= 0) stagingBusy_[static_cast<size_t>(t.staging)] = 0;
      transfers_.erase(transfers_.begin() + static_cast<std::ptrdiff_t>(i));
      continue;
    }
    ++i;
  }
  return progressed;
}

// A call that failed leaves its transfers to the transport (which cancels them when it is
// destroyed); the next call starts with none.
void Executor::dropTransfers() {
  transfers_.clear();
  std::fill(stagingBusy_.begin(), stagingBusy_.end(), 0);
}

void Executor::complete(const ExecArgs& a, uint32_t id) {
  const PlanOp& op = a.plan->ops[id];
  for (uint32_t i = 0; i < op.succCount; ++i) {
    const uint32_t s = a.plan->succ[op.succBegin + i];
    if (--deps_[s] == 0 && a.plan->isLocal[s]) ready_.push_back(s);
  }
  --remaining_;
}

// One sweep over every peer's queue heads and one ready local op. Returns whether anything moved.
Result<bool> Executor::pass(const ExecArgs& a) {
  const Plan& plan = *a.plan;
  bool progressed = false;
  for (size_t p = 0; p < plan.peers.size(); ++p) {
    const PeerQueues& q = plan.peers[p];
    // Sending side first: a rank that has data ready publishes it before it looks for its peers'
    // data, which is what a latency-bound exchange waits on.
    while (sendHead_[p] < q.sends.size()) {
      const uint32_t id = q.sends[sendHead_[p]];
      const PlanOp& op = plan.ops[id];
      if (deps_[id] != 0 || op.recvPeer >= 0) break;  // fused ops advance from their receiving side
      WEFT_ASSIGN_OR_RETURN(Outcome o, runOp(a, id));
      if (o == Outcome::kNotReady) break;
      ++sendHead_[p];
      if (o == Outcome::kDone) complete(a, id);
      progressed = true;
    }
    // Then the receiving side: it hands slots back and feeds fused sends.
    while (recvHead_[p] < q.recvs.size()) {
      const uint32_t id = q.recvs[recvHead_[p]];
      if (deps_[id] != 0) break;
      const PlanOp& op = plan.ops[id];
      if (op.sendPeer >= 0) {
        const auto sp = static_cast<size_t>(op.sendPeer);
        if (sendHead_[sp] >= plan.peers[sp].sends.size() ||
            plan.peers[sp].sends[sendHead_[sp]] != id)
          break;
      }
      WEFT_ASSIGN_OR_RETURN(Outcome o, runOp(a, id));
      if (o == Outcome::kNotReady) break;
      ++recvHead_[p];
      if (op.sendPeer >= 0) ++sendHead_[static_cast<size_t>(op.sendPeer)];
      if (o == Outcome::kDone) complete(a, id);
      progressed = true;
    }
  }
  if (!transfers_.empty()) {
    WEFT_ASSIGN_OR_RETURN(bool moved, pollTransfers(a));
    progressed |= moved;
  }
  // One local op per sweep: the queues are polled between local chunks, so a long local copy
  // (an out-of-place call's own block) fills the waits for peers instead of holding back the
  // exchange until it is done.
  if (!ready_.empty()) {
    const uint32_t id = ready_.back();
    ready_.pop_back();
    WEFT_ASSIGN_OR_RETURN(Outcome o, runOp(a, id));
    (void)o;  // local ops are always ready
    complete(a, id);
    progressed = true;
  }
  return progressed;
}

std::string Executor::describeWait(const ExecArgs& a) const {
  const Plan& plan = *a.plan;
  std::string out;
  for (size_t p = 0; p < plan.peers.size(); ++p) {
    const PeerQueues& q = plan.peers[p];
    if (recvHead_[p] < q.recvs.size() && deps_[q.recvs[recvHead_[p]]] == 0) {
      const PlanOp& op = plan.ops[q.recvs[recvHead_[p]]];
      if (!out.empty()) out += "; ";
      out += strprintf("waiting for data from rank %d (message %u, step %u of %u%s)", q.rank,
                       op.recvIndex, op.step + 1, plan.nsteps,
                       plan.channels > 1 ? strprintf(", channel %d", q.channel).c_str() : "");
    }
    if (sendHead_[p] < q.sends.size() && deps_[q.sends[sendHead_[p]]] == 0 &&
        plan.ops[q.sends[sendHead_[p]]].recvPeer < 0) {
      if (!out.empty()) out += "; ";
      out += strprintf("waiting for rank %d to take data (every slot to it is full)", q.rank);
    }
  }
  return out.empty() ? "waiting on local work" : out;
}

Status Executor::run(const ExecArgs& a) {
  const Plan& plan = *a.plan;
  const size_t nops = plan.ops.size();
  loadFrom(&deps_, plan.initialDeps);
  const size_t npeers = plan.peers.size();
  if (heads_.size() != 2 * npeers) heads_.resize(2 * npeers);
  if (npeers > 0) std::memset(heads_.data(), 0, 2 * npeers * sizeof(uint32_t));
  sendHead_ = heads_.data();
  recvHead_ = heads_.data() + npeers;
  loadFrom(&ready_, plan.initialReady);
  remaining_ = nops;
  if (!transfers_.empty()) dropTransfers();
  if (a.window != nullptr) {
    const size_t entries = a.window->peers.size() * (a.window->tableBytes / a.window->entryBytes);
    windowPtr_.assign(entries, nullptr);
    windowResolved_.assign(entries, 0);
    if (bounce_.size() < plan.chunkBytes) bounce_.resize(plan.chunkBytes);  // touched once, here
    sliceCopied_.assign(plan.nslices, 0);
  }

  Clock::time_point idleSince{};
  Clock::time_point lastPeerCheck{};
  uint32_t idlePolls = 0;
  const auto spin = std::chrono::microseconds(a.wait.spinUs);
  const auto yield = spin + std::chrono::microseconds(a.wait.yieldUs);
  const auto timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.wait.timeoutSec));
  while (remaining_ > 0) {
    WEFT_ASSIGN_OR_RETURN(bool progressed, pass(a));
    if (remaining_ == 0) break;
    if (progressed) {
      idlePolls = 0;
      continue;
    }
    // Nothing moved: back off. The first polls cost no clock read (a peer's reply usually arrives
    // within a few hundred nanoseconds); after that the clock is read every 16 polls. With few CPUs
    // per rank (a short spin), a waiting rank goes on to yield almost at once.
    // With no spin at all (more ranks than CPUs), every empty poll gives the CPU away: the peer
    // this rank waits for may be the one waiting to run on it.
    const bool noSpin = a.wait.spinUs == 0;
    const uint32_t kFreePolls = a.wait.spinUs >= 10 ? 128 : noSpin ? 1 : 16;
    if (++idlePolls < kFreePolls) {
      if (idlePolls > 8) WEFT_CPU_RELAX();
      continue;
    }
    if (idlePolls == kFreePolls) {
      idleSince = Clock::now();
      lastPeerCheck = idleSince;
      if (noSpin) sched_yield();
      continue;
    }
    if ((idlePolls & 15) != 0 && idlePolls < (1u << 20)) {
      if (noSpin) {
        sched_yield();
      } else {
        WEFT_CPU_RELAX();
      }
      continue;
    }
    const Clock::time_point now = Clock::now();
    const auto idle = now - idleSince;
    if (now - lastPeerCheck > std::chrono::milliseconds(5)) {
      lastPeerCheck = now;
      Status peers = a.transport->checkPeers();
      if (!peers.ok()) return stoppedBy(a, peers);
    }
    if (a.wait.cancel != nullptr && a.wait.cancel->load(std::memory_order_relaxed))
      return errorStatus(weftRemoteError,
                         "rank %d: %s (operation #%u) was aborted by weftCommAbort", a.rank,
                         a.what().c_str(), a.opSeq);
    if (idle > timeout) {
      return errorStatus(
          weftTimeout,
          "rank %d: %s (operation #%u) made no progress for %.1f s: %s; set WEFT_TIMEOUT to wait "
          "longer",
          a.rank, a.what().c_str(), a.opSeq, a.wait.timeoutSec, describeWait(a).c_str());
    }
    if (idle < spin) {
      WEFT_CPU_RELAX();
    } else if (idle < yield) {
      sched_yield();
    } else {
      const uint32_t token = a.transport->prepareWait();
      auto again = pass(a);
      if (!again.ok()) {
        a.transport->finishWait();
        return again.status();
      }
      if (!*again && remaining_ > 0) a.transport->wait(token, 5000);
      a.transport->finishWait();
      if (*again) idlePolls = 0;
    }
  }
  return Status::Ok();
}

}  // namespace weft
