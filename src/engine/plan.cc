#include "engine/plan.h"

#include <algorithm>
#include <map>

namespace weft {
namespace {

Region sub(const Region& r, uint64_t off, uint64_t bytes) {
  if (r.buf == kNoBuf) return r;
  return Region{r.buf, r.offset + off, bytes};
}

// Slices start on 64-byte boundaries where the element size divides 64, so that no two channels
// copy into one cache line.
uint64_t sliceUnit(uint64_t elemSize) {
  return 64 % elemSize == 0 ? 64 : elemSize;
}

}  // namespace

uint32_t sliceCount(uint64_t bytes, uint64_t chunkBytes, uint64_t elemSize, int channels) {
  if (bytes == 0 || channels <= 1) return 1;
  const uint64_t units = std::max<uint64_t>(bytes / sliceUnit(elemSize), 1);
  // At least two chunks per slice: a channel adds messages, which pay only where each slice still
  // pipelines, and over a network each slice stays a whole transfer at the default sizes
  // (WEFT_NET_DIRECT_BYTES is two default chunks).
  const uint64_t pairs = std::max<uint64_t>(bytes / (2 * chunkBytes), 1);
  return static_cast<uint32_t>(std::min({static_cast<uint64_t>(channels), pairs, units}));
}

uint64_t sliceOffset(uint64_t bytes, uint64_t elemSize, uint32_t n, uint32_t k) {
  if (k >= n) return bytes;
  const uint64_t unit = sliceUnit(elemSize), units = std::max<uint64_t>(bytes / unit, 1);
  return units * k / n * unit;
}

Result<Plan> compilePlan(const Schedule& s, uint64_t chunkBytes, int channels) {
  const uint64_t elem = std::max<uint64_t>(s.elemSize, 1);
  chunkBytes = std::max<uint64_t>(chunkBytes / elem * elem, elem);
  channels = std::max(channels, 1);
  Plan plan;
  plan.scratchBytes = s.scratchBytes;
  plan.chunkBytes = chunkBytes;
  plan.nsteps = static_cast<uint32_t>(s.steps.size());
  plan.channels = channels;

  // Slices per step, then chunks per slice and the index of each slice's first op. A step's slices
  // are consecutive: firstSlice[i] + k.
  std::vector<uint32_t> firstSlice(s.steps.size()), nslices(s.steps.size());
  std::vector<uint32_t> first, nchunks;  // per slice
  std::vector<uint64_t> sliceOff, sliceLen;
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
    nslices[i] = sliceCount(b, chunkBytes, elem, channels);
    firstSlice[i] = static_cast<uint32_t>(first.size());
    for (uint32_t k = 0; k < nslices[i]; ++k) {
      const uint64_t off = sliceOffset(b, elem, nslices[i], k);
      const uint64_t len = sliceOffset(b, elem, nslices[i], k + 1) - off;
      sliceOff.push_back(off);
      sliceLen.push_back(len);
      nchunks.push_back(len == 0 ? 1u : static_cast<uint32_t>((len + chunkBytes - 1) / chunkBytes));
      first.push_back(total);
      total += nchunks.back();
    }
  }
  plan.nslices = static_cast<uint32_t>(first.size());

  std::map<std::pair<int, int>, size_t> peerIndex;
  auto peerOf = [&](int rank, int channel) -> int32_t {
    if (rank < 0) return -1;
    auto it = peerIndex.find({rank, channel});
    if (it != peerIndex.end()) return static_cast<int32_t>(it->second);
    peerIndex[{rank, channel}] = plan.peers.size();
    plan.peers.push_back(PeerQueues{rank, channel, {}, {}});
    return static_cast<int32_t>(plan.peers.size() - 1);
  };

  plan.ops.resize(total);
  plan.initialDeps.assign(total, 0);
  std::vector<std::vector<uint32_t>> succ(total);
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    const uint64_t b = st.bytes();
    for (uint32_t k = 0; k < nslices[i]; ++k) {
      const uint32_t sl = firstSlice[i] + k;
      const int32_t sp = peerOf(st.sendPeer, static_cast<int>(k));
      const int32_t rp = peerOf(st.recvPeer, static_cast<int>(k));
      for (uint32_t c = 0; c < nchunks[sl]; ++c) {
        const uint64_t off = sliceOff[sl] + static_cast<uint64_t>(c) * chunkBytes;
        const uint64_t len =
            sliceLen[sl] == 0 ? 0 : std::min(chunkBytes, sliceOff[sl] + sliceLen[sl] - off);
        const uint32_t id = first[sl] + c;
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
        op.msgBytes = sliceLen[sl];
        op.step = static_cast<uint32_t>(i);
        op.slice = sl;
        op.channel = static_cast<uint16_t>(k);
        op.chunk = c;
        op.chunks = nchunks[sl];
        op.sendIndex = op.recvIndex = 0;
        if (sp < 0 && rp < 0) plan.localOps.push_back(id);
        // Dependencies.
        for (uint32_t d = 0; d < st.depCount; ++d) {
          const StepId dep = s.deps[st.depBegin + d];
          if (dep >= i)
            return errorStatus(weftInternalError, "schedule step %zu depends on later step %u", i,
                               dep);
          if (s.steps[dep].bytes() == b) {  // split alike: slice by slice, chunk by chunk
            succ[first[firstSlice[dep] + k] + c].push_back(id);
            ++plan.initialDeps[id];
          } else {
            for (uint32_t dk = 0; dk < nslices[dep]; ++dk) {
              const uint32_t dsl = firstSlice[dep] + dk;
              for (uint32_t dc = 0; dc < nchunks[dsl]; ++dc) {
                succ[first[dsl] + dc].push_back(id);
                ++plan.initialDeps[id];
              }
            }
          }
        }
      }
    }
  }
  // Message order per peer and channel is phase by phase and, inside a phase, chunk-major: chunk 0
  // of every step's slice in step order, then chunk 1, ... Both ends derive the same order (matched
  // steps have equal sizes, hence equal slices and chunk counts, and equal phases), and a ring
  // whose steps each span more chunks than a FIFO has slots cannot deadlock, since no rank runs
  // ahead by a whole step.
  std::vector<uint32_t> order(total);  // op ids in message order
  for (uint32_t id = 0; id < total; ++id)
    order[id] = id;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const PlanOp& x = plan.ops[a];
    const PlanOp& y = plan.ops[b];
    const uint16_t px = s.steps[x.step].phase, py = s.steps[y.step].phase;
    if (px != py) return px < py;
    if (x.chunk != y.chunk) return x.chunk < y.chunk;
    return x.slice < y.slice;
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
