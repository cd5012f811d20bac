// Hierarchical reduce: within each node, then between nodes, composed (patterns/subgroup.h); the
// mirror of the hierarchical broadcast. Each node has a representative: the root on the root's
// node, the first rank of the node's intra-node order (NUMA group, then local rank) elsewhere.
//   stage 1, intra-node: reduce to the representative (into the output on the root, into scratch
//            elsewhere; a node of one rank skips it and hands its input on);
//   stage 2, inter-node: reduce among the representatives to the root, which makes the final
//            values (avg divides here). A representative waits for stage 1 chunk by chunk where
//            stage 1 wrote its sum in whole-buffer steps (a tree), so that a large buffer streams
//            through both levels; otherwise for all of stage 1.
// Any layout: nodes of different sizes change nothing. The stages use disjoint links, so messages
// need no phase ordering.
//
// Cost: Reduce_intra(n, L) + Reduce_inter(n, N), each the chosen algorithm's own estimate at its
// level (L the largest node). `cost` applies one level's costs to both.
#include <algorithm>

#include "algorithms/patterns/subgroup.h"
#include "algorithms/registry.h"

namespace weft::algo {

bool reduceHierCanRun(const CollDesc& d) {
  return patterns::hierApplies(d);
}

Status reduceHier(const CollDesc& d, Schedule* s) {
  if (!patterns::hierApplies(d)) return reduceBinomialTree(d, s);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  const int rootNode = d.topo->nodeOf(d.root);
  std::vector<int> reps = v.rail(0);
  reps[static_cast<size_t>(rootNode)] = d.root;
  const std::vector<int>& node = v.mine();
  const int rep = reps[static_cast<size_t>(v.node)];
  const bool root = d.rank == d.root;
  const uint64_t n = d.bytes();
  // What stage 2 reduces on this rank: its input where its node has no one else, else the sum of
  // stage 1 (the output on the root, scratch on the other representatives).
  const bool alone = node.size() == 1;
  patterns::BufferAt acc = patterns::sendAt(0);
  if (!alone && d.rank == rep)
    acc = root ? patterns::recvAt(0) : patterns::scratchAt(patterns::reserveScratch(s, n));
  patterns::SubSteps p0;
  if (!alone) {
    const int at = static_cast<int>(std::find(node.begin(), node.end(), rep) - node.begin());
    const patterns::SubCall intra =
        patterns::subCall(d, CollType::kReduce, d.count, node, patterns::sendAt(0),
                          d.rank == rep ? acc : patterns::BufferAt{}, at, root && d.inPlace);
    WEFT_ASSIGN_OR_RETURN(p0, patterns::appendLevel(d, Level::kIntra, intra, s));
  }
  if (d.rank != rep) return Status::Ok();
  patterns::SubCall inter = patterns::subCall(d, CollType::kReduce, d.count, reps, acc,
                                              root ? patterns::recvAt(0) : patterns::BufferAt{},
                                              rootNode, root && (d.inPlace || !alone));
  if (!alone) patterns::waitForWrites(*s, p0, Region{acc.buf, acc.offset, n}, &inter);
  inter.keepFinalize = true;
  inter.phase = 1;
  return patterns::appendLevel(d, Level::kInter, inter, s).status();
}

double reduceHierModelCost(const CollDesc& d, const CostModel& m) {
  if (!patterns::hierApplies(d)) return reduceBinomialTreeCost(d, m.inter);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  std::vector<int> largest = v.mine();
  for (const auto& n : v.nodes)
    if (n.size() > largest.size()) largest = n;
  return patterns::levelCost(d, patterns::subDesc(d, CollType::kReduce, d.count, largest, 0),
                             Level::kIntra, m) +
         patterns::levelCost(d, patterns::subDesc(d, CollType::kReduce, d.count, v.rail(0), 0),
                             Level::kInter, m);
}

double reduceHierCost(const CollDesc& d, const LevelCost& c) {
  return reduceHierModelCost(d, CostModel{c, c});
}

}  // namespace weft::algo
