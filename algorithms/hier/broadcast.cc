// Hierarchical broadcast: between nodes, then within each, composed (patterns/subgroup.h). Each
// node has a representative: the root on the root's node, the first rank of the node's intra-node
// order (NUMA group, then local rank) elsewhere.
//   stage 1, inter-node: broadcast among the representatives from the root;
//   stage 2, intra-node: broadcast from the representative to its node. The root sends from its
//            input at once; elsewhere it waits for stage 1, chunk by chunk where stage 1 wrote the
//            buffer in whole-buffer steps (a tree or a chain), so that a large buffer streams
//            through both levels; otherwise for all of stage 1.
// Any layout: nodes of different sizes change nothing. The stages use disjoint links (between
// nodes, then within them), so messages need no phase ordering.
//
// Cost: Bcast_inter(n, N) + Bcast_intra(n, L), each the chosen algorithm's own estimate at its
// level (L the largest node). `cost` applies one level's costs to both.
#include <algorithm>

#include "algorithms/patterns/subgroup.h"
#include "algorithms/registry.h"

namespace weft::algo {
namespace {

// The representatives in node order, and the root's node.
std::vector<int> representatives(const patterns::NodeView& v, int root, int rootNode) {
  std::vector<int> reps = v.rail(0);
  reps[static_cast<size_t>(rootNode)] = root;
  return reps;
}

}  // namespace

bool broadcastHierCanRun(const CollDesc& d) {
  return patterns::hierApplies(d);
}

Status broadcastHier(const CollDesc& d, Schedule* s) {
  if (!patterns::hierApplies(d)) return broadcastBinomialTree(d, s);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  const int rootNode = d.topo->nodeOf(d.root);
  const std::vector<int> reps = representatives(v, d.root, rootNode);
  const std::vector<int>& node = v.mine();
  const int rep = reps[static_cast<size_t>(v.node)];
  const uint64_t n = d.bytes();
  const int at = static_cast<int>(std::find(node.begin(), node.end(), rep) - node.begin());
  patterns::SubCall intra = patterns::subCall(d, CollType::kBroadcast, d.count, node,
                                              patterns::recvAt(0), patterns::recvAt(0), at, true);
  intra.phase = 1;
  if (d.rank == rep) {
    const patterns::SubCall inter =
        patterns::subCall(d, CollType::kBroadcast, d.count, reps, patterns::sendAt(0),
                          patterns::recvAt(0), rootNode, d.inPlace);
    WEFT_ASSIGN_OR_RETURN(patterns::SubSteps p0, patterns::appendLevel(d, Level::kInter, inter, s));
    if (d.rank == d.root) {
      intra.send =
          patterns::sendAt(0);  // stage 1 makes the output; the node's tree reads the input
    } else {
      patterns::waitForWrites(*s, p0, recvRegion(0, n), &intra);
    }
  }
  return patterns::appendLevel(d, Level::kIntra, intra, s).status();
}

double broadcastHierModelCost(const CollDesc& d, const CostModel& m) {
  if (!patterns::hierApplies(d)) return broadcastBinomialTreeCost(d, m.inter);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  std::vector<int> largest = v.mine();
  for (const auto& n : v.nodes)
    if (n.size() > largest.size()) largest = n;
  return patterns::levelCost(d, patterns::subDesc(d, CollType::kBroadcast, d.count, v.rail(0), 0),
                             Level::kInter, m) +
         patterns::levelCost(d, patterns::subDesc(d, CollType::kBroadcast, d.count, largest, 0),
                             Level::kIntra, m);
}

double broadcastHierCost(const CollDesc& d, const LevelCost& c) {
  return broadcastHierModelCost(d, CostModel{c, c});
}

}  // namespace weft::algo
