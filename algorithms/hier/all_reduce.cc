// Hierarchical all-reduce: flat algorithms over the ranks of each node and over the rails that join
// the nodes, composed (patterns/subgroup.h). Nodes list their ranks by NUMA group, then local rank;
// L is a node's size, N the number of nodes, n the bytes of the buffer.
//
// Every node the same size (L ranks): the buffer's first L*q elements (q = count / L) are cut into
// L blocks of q, block g belonging to the rank at position g of every node.
//   stage 1, intra-node: reduce-scatter of those blocks, block g into position g's output;
//   stage 2, inter-node: all-reduce of block g over rail g (position g of every node), every rail
//            at once over its own links; it makes the final values (avg divides here);
//   stage 3, intra-node: all-gather of the blocks.
// The last count % L elements (fewer than L) are all-reduced within the node in stage 1 and over
// every rail in stage 2, which leaves them complete everywhere without a third stage.
//
// Nodes of different sizes: the rails no longer line up, so the buffer is cut into P blocks, P the
// smallest node's size (patterns::blockOf), which positions 0..P-1 of every node own:
//   stage 1, intra-node: P reduces, block b to position b;
//   stage 2, inter-node: all-reduce of block b over rail b (b < P: every node has it);
//   stage 3, intra-node: P broadcasts, block b from position b.
// With P = 1 this is the leader scheme (reduce to the leader, all-reduce among leaders,
// broadcast); with P > 1 the inter-node traffic is spread over P rails instead of one link.
//
// Every sub-collective runs in a message phase of its own, in order (core/schedule.h): stages 1 and
// 3 talk to the same peers, and stage 3 waits for stage 2 as a whole.
//
// Cost (uniform): RS_intra(n/L per rank, L) + AR_inter(n/L, N) + AG_intra(n/L per rank, L), plus
// AR_intra(t, L) + AR_inter(t, N) for the tail t; (uneven) P (Reduce_intra(n/P, L) +
// Bcast_intra(n/P, L)) + AR_inter(n/P, N), L the largest node. Each term is the estimate of the
// algorithm chosen for that sub-call at its level; `cost` applies one level's costs to both.
#include <tuple>

#include "algorithms/patterns/ring.h"
#include "algorithms/patterns/subgroup.h"
#include "algorithms/registry.h"

namespace weft::algo {
namespace {

using patterns::recvAt;
using patterns::sendAt;
using patterns::SubCall;
using patterns::SubSteps;

Status uniformLayout(const CollDesc& d, const patterns::NodeView& v, Schedule* s) {
  const std::vector<int>& node = v.mine();
  const std::vector<int> rail = v.rail(v.pos);
  const auto L = static_cast<uint64_t>(node.size());
  const uint64_t es = d.elemSize, q = d.count / L, rem = d.count % L;
  const uint64_t block = static_cast<uint64_t>(v.pos) * q * es, tail = L * q * es;
  std::vector<StepId> phase0, phase1;
  if (q > 0) {
    SubCall rs = patterns::subCall(d, CollType::kReduceScatter, q, node, sendAt(0), recvAt(block),
                                   -1, d.inPlace);
    WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kIntra, rs, s));
    phase0.push_back(x.done);
  }
  if (rem > 0) {
    SubCall ar = patterns::subCall(d, CollType::kAllReduce, rem, node, sendAt(tail), recvAt(tail),
                                   -1, d.inPlace);
    ar.phase = 1;
    WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kIntra, ar, s));
    phase0.push_back(x.done);
  }
  for (auto [off, count, phase] : {std::tuple{block, q, 2}, std::tuple{tail, rem, 3}}) {
    if (count == 0) continue;
    SubCall ar =
        patterns::subCall(d, CollType::kAllReduce, count, rail, recvAt(off), recvAt(off), -1, true);
    ar.after = phase0;
    ar.keepFinalize = true;
    ar.phase = static_cast<uint16_t>(phase);
    WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kInter, ar, s));
    phase1.push_back(x.done);
  }
  if (q == 0) return Status::Ok();
  SubCall ag =
      patterns::subCall(d, CollType::kAllGather, q, node, recvAt(block), recvAt(0), -1, true);
  ag.after = phase1;
  ag.phase = 4;
  return patterns::appendLevel(d, Level::kIntra, ag, s).status();
}

Status unevenLayout(const CollDesc& d, const patterns::NodeView& v, Schedule* s) {
  const std::vector<int>& node = v.mine();
  const int P = d.topo->minLocalSize();
  const uint64_t es = d.elemSize;
  std::vector<StepId> phase0, phase1;
  for (int b = 0; b < P; ++b) {
    const patterns::Block blk = patterns::blockOf(d.count, P, b);
    const uint64_t off = blk.offset * es;
    SubCall red = patterns::subCall(d, CollType::kReduce, blk.count, node, sendAt(off), recvAt(off),
                                    b, d.inPlace);
    red.phase = static_cast<uint16_t>(b);
    WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kIntra, red, s));
    phase0.push_back(x.done);
  }
  phase1 = phase0;
  if (v.pos < P) {
    const patterns::Block blk = patterns::blockOf(d.count, P, v.pos);
    const uint64_t off = blk.offset * es;
    SubCall ar = patterns::subCall(d, CollType::kAllReduce, blk.count, v.rail(v.pos), recvAt(off),
                                   recvAt(off), -1, true);
    ar.after = phase0;
    ar.keepFinalize = true;
    ar.phase = static_cast<uint16_t>(P);
    WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kInter, ar, s));
    phase1 = {x.done};
  }
  for (int b = 0; b < P; ++b) {
    const patterns::Block blk = patterns::blockOf(d.count, P, b);
    const uint64_t off = blk.offset * es;
    SubCall bc = patterns::subCall(d, CollType::kBroadcast, blk.count, node, recvAt(off),
                                   recvAt(off), b, true);
    bc.after = phase1;
    bc.phase = static_cast<uint16_t>(P + 1 + b);
    WEFT_TRY(patterns::appendLevel(d, Level::kIntra, bc, s).status());
  }
  return Status::Ok();
}

}  // namespace

bool allReduceHierCanRun(const CollDesc& d) {
  return patterns::hierApplies(d);
}

Status allReduceHier(const CollDesc& d, Schedule* s) {
  if (!patterns::hierApplies(d)) return allReduceRing(d, s);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  return d.topo->uniform() ? uniformLayout(d, v, s) : unevenLayout(d, v, s);
}

double allReduceHierModelCost(const CollDesc& d, const CostModel& m) {
  if (!patterns::hierApplies(d)) return allReduceRingCost(d, m.inter);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  const std::vector<int>& node = v.mine();
  const std::vector<int> rail = v.rail(0);
  if (d.topo->uniform()) {
    const uint64_t q = d.count / node.size(), rem = d.count % node.size();
    return patterns::levelCost(d, patterns::subDesc(d, CollType::kReduceScatter, q, node),
                               Level::kIntra, m) +
           patterns::levelCost(d, patterns::subDesc(d, CollType::kAllReduce, q, rail),
                               Level::kInter, m) +
           patterns::levelCost(d, patterns::subDesc(d, CollType::kAllGather, q, node),
                               Level::kIntra, m) +
           patterns::levelCost(d, patterns::subDesc(d, CollType::kAllReduce, rem, node),
                               Level::kIntra, m) +
           patterns::levelCost(d, patterns::subDesc(d, CollType::kAllReduce, rem, rail),
                               Level::kInter, m);
  }
  const int P = d.topo->minLocalSize();
  const uint64_t blk = (d.count + static_cast<uint64_t>(P) - 1) / static_cast<uint64_t>(P);
  std::vector<int> first = node;  // the estimate for a node of the largest size
  for (const auto& n : v.nodes)
    if (n.size() > first.size()) first = n;
  return P * (patterns::levelCost(d, patterns::subDesc(d, CollType::kReduce, blk, first, 0),
                                  Level::kIntra, m) +
              patterns::levelCost(d, patterns::subDesc(d, CollType::kBroadcast, blk, first, 0),
                                  Level::kIntra, m)) +
         patterns::levelCost(d, patterns::subDesc(d, CollType::kAllReduce, blk, rail),
                             Level::kInter, m);
}

double allReduceHierCost(const CollDesc& d, const LevelCost& c) {
  return allReduceHierModelCost(d, CostModel{c, c});
}

}  // namespace weft::algo
