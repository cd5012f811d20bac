#include "engine/executor.h"

#include <sched.h>

#include <chrono>

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
        "arguments",
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
  const size_t perTable = w.tableBytes / sizeof(WindowEntry);
  const auto* table =
      reinterpret_cast<const WindowEntry*>(a.buffers[w.peerTablesBuf] + slot * w.tableBytes);
  const WindowEntry& e = table[op.remote.buf];
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
  return Remote{base != nullptr ? base + op.remote.offset : nullptr, e.addr + op.remote.offset};
}

// Get, GetReduce and Put: straight through a mapping of the peer's buffer where there is one,
// otherwise one copy between the address spaces (a reduction reads the peer's chunk into a buffer
// that stays in cache first).
Status Executor::runOneSided(const ExecArgs& a, const PlanOp& op) {
  const PartContext& part = a.parts[op.part];
  const uint64_t n = op.bytes;
  if (n == 0) return Status::Ok();
  WEFT_ASSIGN_OR_RETURN(Remote r, remote(a, op));
  const int peer = op.windowPeer;
  switch (op.kind) {
    case StepKind::kGet:
      if (r.mapped != nullptr) {
        copyOut(part, op.dst, at(a, op.dst), r.mapped, n);
      } else {
        WEFT_TRY(a.peerMemory->read(peer, at(a, op.dst), r.addr, n));
      }
      break;
    case StepKind::kGetReduce: {
      const char* in = r.mapped;
      if (in == nullptr) {
        if (bounce_.size() < n) bounce_.resize(n);
        WEFT_TRY(a.peerMemory->read(peer, bounce_.data(), r.addr, n));
        in = bounce_.data();
      }
      part.reduce(at(a, op.dst), at(a, op.src), in, n / part.elemSize);
      break;
    }
    case StepKind::kPut:
      if (r.mapped != nullptr) {
        copyOut(part, op.remote, r.mapped, at(a, op.src), n);  // a peer's output: maybe streaming
      } else {
        WEFT_TRY(a.peerMemory->write(peer, r.addr, at(a, op.src), n));
      }
      break;
    default:
      break;
  }
  if (op.finalize) finalizeInto(part, at(a, op.dst), n);
  return Status::Ok();
}

Result<Executor::Outcome> Executor::runOp(const ExecArgs& a, uint32_t id) {
  const PlanOp& op = a.plan->ops[id];
  const PartContext& part = a.parts[op.part];
  const uint64_t n = op.bytes;
  const uint64_t count = n / part.elemSize;
  Endpoint* in = op.recvPeer >= 0 ? a.endpoints[op.recvPeer] : nullptr;
  Endpoint* out = op.sendPeer >= 0 ? a.endpoints[op.sendPeer] : nullptr;

  const void* inData = nullptr;
  if (in != nullptr) {
    size_t bytes = 0;
    MsgTag tag;
    inData = in->recvBegin(&bytes, &tag);
    if (inData == nullptr) return Outcome::kNotReady;
    WEFT_TRY(checkTag(a, op, bytes, tag));
  }
  void* outData = nullptr;
  if (out != nullptr) {
    outData = out->sendBegin();
    if (outData == nullptr) return Outcome::kNotReady;
  }

  switch (op.kind) {
    case StepKind::kSend:
      copyBytes(outData, at(a, op.src), n);
      break;
    case StepKind::kRecv:
      copyOut(part, op.dst, at(a, op.dst), inData, n);
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kRecvReduce:
      if (count > 0) part.reduce(at(a, op.dst), at(a, op.src), inData, count);
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kRecvReduceSend:
      if (count > 0) part.reduce(outData, at(a, op.src), inData, count);
      if (op.finalize) finalizeInto(part, outData, n);
      break;
    case StepKind::kRecvReduceCopySend:
      // Reduce into the outgoing slot (it stays in cache for the peer), then copy it to the output.
      if (count > 0) part.reduce(outData, at(a, op.src), inData, count);
      if (op.finalize) finalizeInto(part, outData, n);
      copyOut(part, op.dst, at(a, op.dst), outData, n);
      break;
    case StepKind::kRecvCopySend:
      copyBytes(outData, inData, n);
      copyOut(part, op.dst, at(a, op.dst), inData, n);
      break;
    case StepKind::kCopy:
      if (at(a, op.dst) != at(a, op.src)) copyBytes(at(a, op.dst), at(a, op.src), n);
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kReduce:
      if (count > 0) part.reduce(at(a, op.dst), at(a, op.dst), at(a, op.src), count);
      if (op.finalize) finalizeInto(part, at(a, op.dst), n);
      break;
    case StepKind::kGet:
    case StepKind::kGetReduce:
    case StepKind::kPut: {
      Status s = runOneSided(a, op);
      if (!s.ok()) {
        // A peer that is gone may have failed first for another reason: report the root cause.
        Status peers = a.transport->checkPeers();
        return peers.ok() ? s : stoppedBy(a, peers);
      }
      break;
    }
  }
  if (out != nullptr)
    out->sendEnd(n, MsgTag{a.peerSeq[static_cast<size_t>(op.sendPeer)], op.sendIndex,
                           part.signature, msgBytesTag(op.msgBytes)});
  if (in != nullptr) in->recvEnd();
  return Outcome::kDone;
}

void Executor::complete(const ExecArgs& a, uint32_t id) {
  const PlanOp& op = a.plan->ops[id];
  for (uint32_t i = 0; i < op.succCount; ++i) {
    const uint32_t s = a.plan->succ[op.succBegin + i];
    if (--deps_[s] == 0 && a.plan->isLocal[s]) ready_.push_back(s);
  }
  --remaining_;
}

// One sweep over every peer's queue heads and the ready local ops. Returns whether anything moved.
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
      complete(a, id);
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
      complete(a, id);
      progressed = true;
    }
  }
  while (!ready_.empty()) {
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
      out += strprintf("waiting for data from rank %d (message %u, step %u of %u)", q.rank,
                       op.recvIndex, op.step + 1, plan.nsteps);
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
  deps_.assign(plan.initialDeps.begin(), plan.initialDeps.end());
  sendHead_.assign(plan.peers.size(), 0);
  recvHead_.assign(plan.peers.size(), 0);
  ready_.assign(plan.initialReady.begin(), plan.initialReady.end());
  remaining_ = nops;
  if (a.window != nullptr) {
    const size_t entries = a.window->peers.size() * (a.window->tableBytes / sizeof(WindowEntry));
    windowPtr_.assign(entries, nullptr);
    windowResolved_.assign(entries, 0);
    if (bounce_.size() < plan.chunkBytes) bounce_.resize(plan.chunkBytes);  // touched once, here
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
    const uint32_t kFreePolls = a.wait.spinUs >= 10 ? 128 : 16;
    if (++idlePolls < kFreePolls) {
      if (idlePolls > 8) WEFT_CPU_RELAX();
      continue;
    }
    if (idlePolls == kFreePolls) {
      idleSince = Clock::now();
      lastPeerCheck = idleSince;
      continue;
    }
    if ((idlePolls & 15) != 0 && idlePolls < (1u << 20)) {
      WEFT_CPU_RELAX();
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
