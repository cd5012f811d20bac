// Composition of schedules: a hierarchical algorithm runs flat algorithms over sub-groups of the
// communicator (the ranks of a node, a rail across nodes, the node leaders) and appends each
// sub-schedule into its own.
//
// A sub-collective is an ordinary CollDesc whose rank and nranks are this rank's index in the group
// and the group's size (a root is a group index too); it runs flat (no one-sided steps, no layout,
// no chooser). appendSub builds the chosen flat algorithm's schedule for it and appends it:
//   - peers: group index g becomes communicator rank members[g];
//   - buffers: the sub-collective's send, receive and scratch buffers become regions of the outer
//     ones (an outer buffer and a byte offset each); its scratch takes a fresh slice at the end of
//     the outer scratch unless the caller places it;
//   - dependencies are renumbered; every step that waits for nothing inside the sub-schedule waits
//     for the outer steps given (through one zero-byte join step, or directly when the caller knows
//     the data lines up chunk by chunk), and a zero-byte join after all its steps is returned for
//     the next phase to wait for;
//   - every step gets the caller's message phase (core/schedule.h): a later phase's messages to a
//     peer are numbered after an earlier phase's, so that a phase that waits for an earlier one as
//     a whole never queues ahead of that phase's later chunks. Callers give every sub-collective of
//     one operation a phase of its own, in the order they append them: two sub-collectives on the
//     same links then never interleave their messages, whatever flat algorithms run them;
//   - finalize flags (where avg divides) are kept only for the phase that produces final values.
// Zero-byte joins stand between phases because a step that depends on a step of the same size waits
// for it chunk by chunk (core/schedule.h): right for a stream of the same bytes, wrong for two
// unrelated steps that happen to be the same size.
//
// The peer arithmetic of the levels is here too: a node's members in intra-node order (ranks of one
// NUMA group adjacent) and the rails that join the ranks of equal position across nodes.
#pragma once

#include <cstdint>
#include <vector>

#include "algorithms/registry.h"
#include "core/coll.h"
#include "core/layout.h"
#include "core/schedule.h"
#include "core/status.h"

namespace weft::patterns {

// ---- Levels: nodes, positions, rails ----

// The communicator seen by a hierarchical algorithm: each node's ranks in intra-node order (by NUMA
// group, then local rank, so that a ring or tree keeps each NUMA group together) and this rank's
// place in it. Position g of every node that has one forms rail g, in node order; without NUMA
// groups (or with every node's groups in local-rank order) these are CommLayout::rail's rails.
struct NodeView {
  std::vector<std::vector<int>> nodes;
  int node = 0;  // this rank's node
  int pos = 0;   // its index in nodes[node]

  int nnodes() const { return static_cast<int>(nodes.size()); }
  const std::vector<int>& mine() const { return nodes[static_cast<size_t>(node)]; }
  std::vector<int> rail(int g) const {
    std::vector<int> out;
    for (const auto& n : nodes)
      if (g < static_cast<int>(n.size())) out.push_back(n[static_cast<size_t>(g)]);
    return out;
  }
  // Whether every node's ranks, in intra-node order, node after node, count 0, 1, 2, ...: then an
  // array of blocks in node-major order is in rank order.
  bool rankOrdered() const {
    int expect = 0;
    for (const auto& n : nodes)
      for (int r : n)
        if (r != expect++) return false;
    return true;
  }
};

NodeView nodeView(const CommLayout& layout, int rank);

// Whether a hierarchical algorithm has anything to gain: a layout of this communicator with at
// least two nodes, one of which holds two ranks or more.
bool hierApplies(const CollDesc& d);

// ---- Sub-collectives ----

// Where a sub-collective's buffer starts in the outer schedule.
struct BufferAt {
  BufferId buf = kNoBuf;
  uint64_t offset = 0;  // bytes
};
inline BufferAt sendAt(uint64_t off) {
  return {kSendBuf, off};
}
inline BufferAt recvAt(uint64_t off) {
  return {kRecvBuf, off};
}
inline BufferAt scratchAt(uint64_t off) {
  return {kScratchBuf, off};
}

struct SubCall {
  CollDesc desc;             // from subDesc()
  std::vector<int> members;  // group index -> communicator rank
  BufferAt send, recv;
  BufferAt scratch;  // kNoBuf: a fresh slice at the end of the outer scratch
  // The outer steps its entry steps wait for: through a zero-byte join, or, with `stream`, directly
  // (then a step of the same size waits chunk by chunk: only where the data lines up).
  std::vector<StepId> after;
  bool stream = false;
  bool keepFinalize = false;  // it produces the call's final values
  uint16_t phase = 0;
};

struct SubSteps {
  StepId begin = 0, end = 0;  // the appended steps, join steps included
  StepId done = kNoStep;      // zero-byte join after every one of them
};

// The sub-collective of `outer` run by `members` (which must hold outer.rank): `count` elements as
// the API counts them for `type`, root a group index, flat.
CollDesc subDesc(const CollDesc& outer, CollType type, uint64_t count,
                 const std::vector<int>& members, int root = -1, bool inPlace = false);

// A sub-collective call with its buffers placed; the caller sets after, stream, keepFinalize and
// phase as needed.
SubCall subCall(const CollDesc& outer, CollType type, uint64_t count,
                const std::vector<int>& members, BufferAt send, BufferAt recv, int root = -1,
                bool inPlace = false);

// The flat algorithm for a sub-collective at a level: the outer call's chooser if it has one, else
// the default (ring for all-reduce, all-gather and reduce-scatter, binomial tree for broadcast,
// reduce, gather and scatter, pairwise for all-to-all). Fails when nothing can run it.
Result<const AlgorithmInfo*> chooseLevel(const CollDesc& outer, const CollDesc& sub, Level level);

// The chosen algorithm's estimate for a sub-collective at its level (0 for a group of one rank,
// infinity when nothing can run it).
double levelCost(const CollDesc& outer, const CollDesc& sub, Level level, const CostModel& model);

// Appends a built sub-schedule. Fails if it uses a buffer the call does not place.
Result<SubSteps> appendSchedule(const Schedule& sub, const SubCall& call, Schedule* out);
// Builds `algo` for call.desc and appends it.
Result<SubSteps> appendSub(const AlgorithmInfo& algo, const SubCall& call, Schedule* out);
// chooseLevel, then appendSub.
Result<SubSteps> appendLevel(const CollDesc& outer, Level level, const SubCall& call,
                             Schedule* out);

// Makes `next` wait for what phase `p` writes into `r`: chunk by chunk where every step of `p` that
// writes into `r` writes all of it (a step of `next` of the same size then streams behind it, as
// when a tree or a chain receives the whole buffer), else for all of `p`.
void waitForWrites(const Schedule& s, const SubSteps& p, Region r, SubCall* next);

// A zero-byte local step after `after`: a join that waits for each of them as a whole.
StepId join(Schedule* s, const std::vector<StepId>& after);

// Scratch for the caller: `bytes` at the end of the outer scratch (64-byte aligned); its offset.
uint64_t reserveScratch(Schedule* s, uint64_t bytes);

// Local copies of equal-sized blocks, dst[i] = src[i], after `after` (as a whole); runs that are
// contiguous in both are merged into one step. Returns a join after all of them (or `after`'s
// join).
StepId copyBlocks(Schedule* s, const std::vector<Region>& dst, const std::vector<Region>& src,
                  const std::vector<StepId>& after);

}  // namespace weft::patterns
