// The composition primitive of algorithms/patterns/subgroup.h.
#include "algorithms/patterns/subgroup.h"

#include <algorithm>
#include <limits>

namespace weft::patterns {

NodeView nodeView(const CommLayout& layout, int rank) {
  NodeView v;
  v.nodes.resize(static_cast<size_t>(layout.nnodes()));
  for (int m = 0; m < layout.nnodes(); ++m) {
    std::vector<int> ranks = layout.nodeRanks(m);
    std::stable_sort(ranks.begin(), ranks.end(),
                     [&](int a, int b) { return layout.numaOf(a) < layout.numaOf(b); });
    v.nodes[static_cast<size_t>(m)] = std::move(ranks);
  }
  v.node = layout.nodeOf(rank);
  const std::vector<int>& mine = v.mine();
  v.pos = static_cast<int>(std::find(mine.begin(), mine.end(), rank) - mine.begin());
  return v;
}

bool hierApplies(const CollDesc& d) {
  return d.topo != nullptr && d.topo->nranks() == d.nranks && d.topo->nnodes() >= 2 &&
         d.topo->maxLocalSize() >= 2;
}

CollDesc subDesc(const CollDesc& outer, CollType type, uint64_t count,
                 const std::vector<int>& members, int root, bool inPlace) {
  CollDesc d;
  d.type = type;
  d.count = count;
  d.dtype = outer.dtype;
  d.op = outer.op;
  d.root = root;
  d.inPlace = inPlace;
  const auto it = std::find(members.begin(), members.end(), outer.rank);
  d.rank = it == members.end() ? -1 : static_cast<int>(it - members.begin());
  d.nranks = static_cast<int>(members.size());
  d.elemSize = outer.elemSize;
  return d;
}

SubCall subCall(const CollDesc& outer, CollType type, uint64_t count,
                const std::vector<int>& members, BufferAt send, BufferAt recv, int root,
                bool inPlace) {
  SubCall c;
  c.desc = subDesc(outer, type, count, members, root, inPlace);
  c.members = members;
  c.send = send;
  c.recv = recv;
  return c;
}

namespace {

const char* levelName(Level level) {
  return level == Level::kIntra ? "intra-node" : "inter-node";
}

const AlgorithmInfo* defaultFor(CollType type) {
  switch (type) {
    case CollType::kAllReduce:
    case CollType::kAllGather:
    case CollType::kReduceScatter:
      return findAlgorithm(type, "ring");
    case CollType::kAllToAll:
      return findAlgorithm(type, "pairwise");
    default:
      return findAlgorithm(type, "tree");
  }
}

}  // namespace

Result<const AlgorithmInfo*> chooseLevel(const CollDesc& outer, const CollDesc& sub, Level level) {
  const AlgorithmInfo* a =
      outer.chooser != nullptr ? outer.chooser->choose(sub, level) : defaultFor(sub.type);
  if (a == nullptr)
    return errorStatus(
        weftInvalidUsage,
        "hier %s: no %s algorithm can run %s on a group of %d ranks (the sub-call of "
        "its %s level)",
        collDisplayName(outer.type), levelName(level), sub.describe().c_str(), sub.nranks,
        levelName(level));
  if (a->coll != sub.type || a->hierCost != nullptr || !a->canRun(sub))
    return errorStatus(weftInternalError,
                       "hier %s: the %s level was given %s %s, which cannot run %s on a group of "
                       "%d ranks",
                       collDisplayName(outer.type), levelName(level), collName(a->coll), a->name,
                       sub.describe().c_str(), sub.nranks);
  return a;
}

double levelCost(const CollDesc& outer, const CollDesc& sub, Level level, const CostModel& model) {
  if (sub.nranks < 2 || sub.count == 0) return 0;
  CollDesc d = sub;
  d.rank = std::max(d.rank, 0);  // an estimate for a group this rank is not in
  auto a = chooseLevel(outer, d, level);
  if (!a.ok()) return std::numeric_limits<double>::infinity();
  return a.value()->cost(d, level == Level::kIntra ? model.intra : model.inter);
}

StepId join(Schedule* s, const std::vector<StepId>& after) {
  Step j;
  j.kind = StepKind::kCopy;
  j.dst = j.src = Region{kScratchBuf, 0, 0};
  return s->add(j, after);
}

void waitForWrites(const Schedule& s, const SubSteps& p, Region r, SubCall* next) {
  std::vector<StepId> writers;
  bool whole = true;
  for (StepId i = p.begin; i < p.end; ++i) {
    const Region& dst = s.steps[i].dst;
    if (dst.buf != r.buf || dst.bytes == 0 || dst.offset >= r.offset + r.bytes ||
        dst.offset + dst.bytes <= r.offset)
      continue;
    whole = whole && dst.offset == r.offset && dst.bytes == r.bytes;
    writers.push_back(i);
  }
  next->stream = whole && !writers.empty();
  next->after = next->stream ? writers : std::vector<StepId>{p.done};
}

uint64_t reserveScratch(Schedule* s, uint64_t bytes) {
  const uint64_t off = (s->scratchBytes + 63) & ~uint64_t{63};
  s->scratchBytes = off + bytes;
  return off;
}

StepId copyBlocks(Schedule* s, const std::vector<Region>& dst, const std::vector<Region>& src,
                  const std::vector<StepId>& after) {
  const StepId start = join(s, after);
  std::vector<StepId> copies;
  Region d{}, f{};
  auto flush = [&] {
    if (d.bytes > 0) copies.push_back(s->copy(d, f, {start}));
    d = f = Region{};
  };
  for (size_t i = 0; i < dst.size(); ++i) {
    if (dst[i].bytes == 0 || (dst[i].buf == src[i].buf && dst[i].offset == src[i].offset)) continue;
    if (d.bytes > 0 && dst[i].buf == d.buf && dst[i].offset == d.offset + d.bytes &&
        src[i].buf == f.buf && src[i].offset == f.offset + f.bytes) {
      d.bytes += dst[i].bytes;
      f.bytes += src[i].bytes;
      continue;
    }
    flush();
    d = dst[i];
    f = src[i];
  }
  flush();
  if (copies.empty()) return start;
  return join(s, copies);
}

Result<SubSteps> appendSchedule(const Schedule& sub, const SubCall& call, Schedule* out) {
  SubSteps r;
  r.begin = static_cast<StepId>(out->steps.size());
  BufferAt scratch = call.scratch;
  if (scratch.buf == kNoBuf && sub.scratchBytes > 0)
    scratch = scratchAt(reserveScratch(out, sub.scratchBytes));
  const BufferAt at[kBuffersPerPart] = {call.send, call.recv, scratch};
  const char* problem = nullptr;
  auto region = [&](Region reg) {
    if (reg.buf == kNoBuf) return reg;
    if (reg.buf >= kBuffersPerPart) {
      problem = "a sub-schedule is one operation, not a group";
      return reg;
    }
    const BufferAt& b = at[reg.buf];
    if (b.buf == kNoBuf) {
      if (reg.bytes == 0) return Region{kScratchBuf, 0, 0};
      problem = "it uses a buffer the composition does not place";
      return reg;
    }
    return Region{b.buf, b.offset + reg.offset, reg.bytes};
  };
  const int n = static_cast<int>(call.members.size());
  auto peer = [&](int32_t g) -> int32_t {
    if (g < 0) return g;
    if (g >= n) {
      problem = "it names a peer outside the group";
      return g;
    }
    return call.members[static_cast<size_t>(g)];
  };

  std::vector<StepId> entry = call.after;
  if (!call.stream && !entry.empty()) {
    entry = {join(out, call.after)};
    out->steps.back().phase = call.phase;
  }
  const auto base = static_cast<StepId>(out->steps.size());
  std::vector<uint8_t> waitedFor(sub.steps.size(), 0);
  std::vector<StepId> deps;
  for (const Step& s : sub.steps) {
    Step t = s;
    t.sendPeer = peer(s.sendPeer);
    t.recvPeer = peer(s.recvPeer);
    t.windowPeer = peer(s.windowPeer);
    t.dst = region(s.dst);
    t.src = region(s.src);
    t.remote = region(s.remote);
    if (!call.keepFinalize) t.finalize = false;
    t.phase = call.phase;
    deps.clear();
    for (uint32_t k = 0; k < s.depCount; ++k) {
      const StepId dep = sub.deps[s.depBegin + k];
      waitedFor[dep] = 1;
      deps.push_back(dep + base);
    }
    out->add(t, s.depCount == 0 ? entry : deps);
  }
  for (int32_t p : sub.exposeTo) {
    const int32_t q = peer(p);
    if (std::find(out->exposeTo.begin(), out->exposeTo.end(), q) == out->exposeTo.end())
      out->exposeTo.push_back(q);
  }
  if (problem != nullptr)
    return errorStatus(weftInternalError, "composing %s on a group of %d ranks: %s",
                       call.desc.describe().c_str(), n, problem);
  std::vector<StepId> exits;
  for (size_t i = 0; i < sub.steps.size(); ++i)
    if (!waitedFor[i]) exits.push_back(base + static_cast<StepId>(i));
  r.done = join(out, exits.empty() ? entry : exits);
  out->steps.back().phase = call.phase;
  r.end = static_cast<StepId>(out->steps.size());
  return r;
}

Result<SubSteps> appendSub(const AlgorithmInfo& algo, const SubCall& call, Schedule* out) {
  const CollDesc& d = call.desc;
  if (d.rank < 0 || d.rank >= d.nranks)
    return errorStatus(weftInternalError, "composing %s: this rank is not in the group of %d",
                       d.describe().c_str(), d.nranks);
  if (d.count == 0) {  // nothing to move: the phase is done when its predecessors are
    SubSteps r;
    r.begin = static_cast<StepId>(out->steps.size());
    r.done = join(out, call.after);
    r.end = r.done + 1;
    return r;
  }
  Schedule sub;
  sub.elemSize = d.elemSize;
  WEFT_TRY(algo.build(d, &sub).withContext(strprintf("building %s %s for %s on a group of %d ranks",
                                                     collName(algo.coll), algo.name,
                                                     d.describe().c_str(), d.nranks)));
  return appendSchedule(sub, call, out);
}

Result<SubSteps> appendLevel(const CollDesc& outer, Level level, const SubCall& call,
                             Schedule* out) {
  // Nothing to choose for an empty call or a group of one rank (a local copy at most).
  if (call.desc.count == 0 || call.desc.nranks == 1)
    return appendSub(*defaultFor(call.desc.type), call, out);
  WEFT_ASSIGN_OR_RETURN(const AlgorithmInfo* a, chooseLevel(outer, call.desc, level));
  return appendSub(*a, call, out);
}

}  // namespace weft::patterns
