#include "engine/plan.h"

#include <algorithm>
#include <map>

namespace weft {
namespace {

Region sub(const Region& r, uint64_t off, uint64_t bytes) {
  if (r.buf == kNoBuf) return r;
  return Region{r.buf, r.offset + off, bytes};
}

}  // namespace

Result<Plan> compilePlan(const Schedule& s, uint64_t chunkBytes) {
  const uint64_t elem = std::max<uint64_t>(s.elemSize, 1);
  chunkBytes = std::max<uint64_t>(chunkBytes / elem * elem, elem);
  Plan plan;
  plan.scratchBytes = s.scratchBytes;
  plan.chunkBytes = chunkBytes;
  plan.nsteps = static_cast<uint32_t>(s.steps.size());

  // Chunks per step and the index of each step's first op.
  std::vector<uint32_t> first(s.steps.size()), nchunks(s.steps.size());
  uint32_t total = 0;
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    if (st.dst.buf != kNoBuf && st.src.buf != kNoBuf && st.dst.bytes != st.src.bytes)
      return errorStatus(weftInternalError,
                         "schedule step %zu (%s): dst is %llu bytes but src is %llu", i,
                         stepKindName(st.kind), static_cast<unsigned long long>(st.dst.bytes),
                         static_cast<unsigned long long>(st.src.bytes));
    if (stepIsOneSided(st.kind) && st.remote.bytes != st.bytes())
      return errorStatus(weftInternalError,
                         "schedule step %zu (%s): remote is %llu bytes, not %llu", i,
                         stepKindName(st.kind), static_cast<unsigned long long>(st.remote.bytes),
                         static_cast<unsigned long long>(st.bytes()));
    const uint64_t b = st.bytes();
    nchunks[i] = b == 0 ? 1u : static_cast<uint32_t>((b + chunkBytes - 1) / chunkBytes);
    first[i] = total;
    total += nchunks[i];
  }

  std::map<int, size_t> peerIndex;
  auto peerOf = [&](int rank) -> int32_t {
    if (rank < 0) return -1;
    auto it = peerIndex.find(rank);
    if (it != peerIndex.end()) return static_cast<int32_t>(it->second);
    peerIndex[rank] = plan.peers.size();
    plan.peers.push_back(PeerQueues{rank, {}, {}});
    return static_cast<int32_t>(plan.peers.size() - 1);
  };

  plan.ops.resize(total);
  plan.initialDeps.assign(total, 0);
  std::vector<std::vector<uint32_t>> succ(total);
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    const uint64_t b = st.bytes();
    const int32_t sp = peerOf(st.sendPeer), rp = peerOf(st.recvPeer);
    for (uint32_t c = 0; c < nchunks[i]; ++c) {
      const uint64_t off = static_cast<uint64_t>(c) * chunkBytes;
      const uint64_t len = b == 0 ? 0 : std::min(chunkBytes, b - off);
      const uint32_t id = first[i] + c;
      PlanOp& op = plan.ops[id];
      op.kind = st.kind;
      op.finalize = st.finalize;
      op.part = st.part;
      op.sendPeer = sp;
      op.recvPeer = rp;
      op.dst = sub(st.dst, off, len);
      op.src = sub(st.src, off, len);
      op.windowPeer = st.windowPeer;
      op.remote = sub(st.remote, off, len);
      op.bytes = len;
      op.msgBytes = b;
      op.step = static_cast<uint32_t>(i);
      op.chunk = c;
      op.chunks = nchunks[i];
      op.sendIndex = op.recvIndex = 0;
      if (sp < 0 && rp < 0) plan.localOps.push_back(id);
      // Dependencies.
      for (uint32_t d = 0; d < st.depCount; ++d) {
        const StepId dep = s.deps[st.depBegin + d];
        if (dep >= i)
          return errorStatus(weftInternalError, "schedule step %zu depends on later step %u", i,
                             dep);
        if (s.steps[dep].bytes() == b && nchunks[dep] == nchunks[i]) {
          succ[first[dep] + c].push_back(id);
          ++plan.initialDeps[id];
        } else {
          for (uint32_t k = 0; k < nchunks[dep]; ++k) {
            succ[first[dep] + k].push_back(id);
            ++plan.initialDeps[id];
          }
        }
      }
    }
  }
  // Message order per peer is phase by phase and, inside a phase, chunk-major: chunk 0 of every
  // step in step order, then chunk 1, ... Both ends derive the same order (matched steps have equal
  // sizes, hence equal chunk counts, and equal phases), and a ring whose steps each span more
  // chunks than a FIFO has slots cannot deadlock, since no rank runs ahead by a whole step.
  std::vector<uint32_t> order;  // op ids in message order
  order.reserve(total);
  for (size_t i = 0; i < s.steps.size(); ++i)
    for (uint32_t c = 0; c < nchunks[i]; ++c)
      order.push_back(first[i] + c);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const PlanOp& x = plan.ops[a];
    const PlanOp& y = plan.ops[b];
    const uint16_t px = s.steps[x.step].phase, py = s.steps[y.step].phase;
    if (px != py) return px < py;
    if (x.chunk != y.chunk) return x.chunk < y.chunk;
    return x.step < y.step;
  });
  for (uint32_t id : order) {
    PlanOp& op = plan.ops[id];
    if (op.sendPeer >= 0) {
      op.sendIndex = static_cast<uint32_t>(plan.peers[op.sendPeer].sends.size());
      plan.peers[op.sendPeer].sends.push_back(id);
    }
    if (op.recvPeer >= 0) {
      op.recvIndex = static_cast<uint32_t>(plan.peers[op.recvPeer].recvs.size());
      plan.peers[op.recvPeer].recvs.push_back(id);
    }
  }
  plan.isLocal.assign(total, 0);
  for (uint32_t id : plan.localOps) {
    plan.isLocal[id] = 1;
    if (plan.initialDeps[id] == 0) plan.initialReady.push_back(id);
  }
  for (uint32_t id = 0; id < total; ++id) {
    plan.ops[id].succBegin = static_cast<uint32_t>(plan.succ.size());
    plan.ops[id].succCount = static_cast<uint32_t>(succ[id].size());
    plan.succ.insert(plan.succ.end(), succ[id].begin(), succ[id].end());
  }
  return plan;
}

}  // namespace weft
