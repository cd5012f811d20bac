// Hierarchical all-to-all: two hops, over the rails and then within each node, composed
// (patterns/subgroup.h). Nodes list their ranks by NUMA group, then local rank; L is the nodes'
// size, N their number, c the bytes of one block, (m, g) the rank at position g of node m.
//
//   stage 1, inter-node: all-to-all over rail g: rank (m, g) sends to (m', g), in one message, the
//            L blocks it has for the ranks of node m' (straight from the input when the ranks are
//            in order, else packed in scratch first), and receives the L blocks (m', g) has for its
//            own node;
//   local copies regroup what arrived by final owner (position g' of this node);
//   stage 2, intra-node: all-to-all of those N-block groups, each to its owner;
//   local copies put every block at its sender's place in the output.
// Each rank thus sends N-1 messages of L c between nodes instead of L (N-1) of c: fewer, larger
// messages where messages cost the most. The aggregation by destination node that a three-hop
// scheme would add is not needed: the rail delivers every block to the owner's node at the owner's
// own position's peer, and one intra-node exchange finishes. The two stages use disjoint links
// (between nodes, then within them), so messages need no phase ordering.
//
// Nodes of different sizes: not supported (canRun is false); the flat algorithms run instead. The
// rails would leave ranks out, and blocks for the missing positions would need a third hop.
//
// Cost: A2A_inter(L c per peer, N) + A2A_intra(N c per peer, L) + 2 N L c beta_intra for the
// copies (3 N L c when the input needs packing), each the chosen algorithm's own estimate at its
// level. `cost` applies one level's costs to both.
#include "algorithms/patterns/subgroup.h"
#include "algorithms/registry.h"

namespace weft::algo {

bool allToAllHierCanRun(const CollDesc& d) {
  return patterns::hierApplies(d) && d.topo->uniform();
}

Status allToAllHier(const CollDesc& d, Schedule* s) {
  if (!allToAllHierCanRun(d)) return allToAllPairwise(d, s);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  const std::vector<int>& node = v.mine();
  const std::vector<int> rail = v.rail(v.pos);
  const int N = v.nnodes(), L = static_cast<int>(node.size());
  const uint64_t c = d.bytes(), nodeBytes = static_cast<uint64_t>(L) * c;
  const uint64_t all = static_cast<uint64_t>(N) * nodeBytes;
  auto rankOf = [&](int m, int g) {
    return v.nodes[static_cast<size_t>(m)][static_cast<size_t>(g)];
  };
  auto at = [&](int r) { return static_cast<uint64_t>(r) * c; };
  // Stage 1's input: block (m', g') at (m' L + g') c.
  patterns::BufferAt in = patterns::sendAt(0);
  std::vector<StepId> packed;
  if (!v.rankOrdered()) {
    in = patterns::scratchAt(patterns::reserveScratch(s, all));
    std::vector<Region> dst, src;
    for (int m = 0; m < N; ++m) {
      for (int g = 0; g < L; ++g) {
        dst.push_back(scratchRegion(in.offset + at(m * L + g), c));
        src.push_back(sendRegion(at(rankOf(m, g)), c));
      }
    }
    packed.push_back(patterns::copyBlocks(s, dst, src, {}));
  }
  // Stage 1 delivers, from rail member m', the blocks (m', g) -> (node, g') at (m' L + g') c.
  const uint64_t got = patterns::reserveScratch(s, all);
  patterns::SubCall inter =
      patterns::subCall(d, CollType::kAllToAll, d.count * L, rail, in, patterns::scratchAt(got));
  inter.after = packed;
  WEFT_ASSIGN_OR_RETURN(patterns::SubSteps p0, patterns::appendLevel(d, Level::kInter, inter, s));
  // Regrouped by owner: for position g', the N blocks (m', g) -> (node, g') at (g' N + m') c.
  const uint64_t byOwner = patterns::reserveScratch(s, all);
  std::vector<Region> dst, src;
  for (int g = 0; g < L; ++g) {
    for (int m = 0; m < N; ++m) {
      dst.push_back(scratchRegion(byOwner + at(g * N + m), c));
      src.push_back(scratchRegion(got + at(m * L + g), c));
    }
  }
  const StepId regrouped = patterns::copyBlocks(s, dst, src, {p0.done});
  // Stage 2 delivers, from node member g, the blocks (m', g) -> me at (g N + m') c.
  const uint64_t mine = patterns::reserveScratch(s, all);
  patterns::SubCall intra =
      patterns::subCall(d, CollType::kAllToAll, d.count * N, node, patterns::scratchAt(byOwner),
                        patterns::scratchAt(mine));
  intra.after = {regrouped};
  intra.phase = 1;
  WEFT_ASSIGN_OR_RETURN(patterns::SubSteps p1, patterns::appendLevel(d, Level::kIntra, intra, s));
  dst.clear();
  src.clear();
  for (int g = 0; g < L; ++g) {
    for (int m = 0; m < N; ++m) {
      dst.push_back(recvRegion(at(rankOf(m, g)), c));
      src.push_back(scratchRegion(mine + at(g * N + m), c));
    }
  }
  patterns::copyBlocks(s, dst, src, {p1.done});
  return Status::Ok();
}

double allToAllHierModelCost(const CollDesc& d, const CostModel& m) {
  if (!allToAllHierCanRun(d)) return allToAllPairwiseCost(d, m.inter);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  const std::vector<int>& node = v.mine();
  const auto N = static_cast<uint64_t>(v.nnodes()), L = static_cast<uint64_t>(node.size());
  const double copies = (v.rankOrdered() ? 2.0 : 3.0) * static_cast<double>(N * L * d.bytes());
  return patterns::levelCost(d, patterns::subDesc(d, CollType::kAllToAll, d.count * L, v.rail(0)),
                             Level::kInter, m) +
         patterns::levelCost(d, patterns::subDesc(d, CollType::kAllToAll, d.count * N, node),
                             Level::kIntra, m) +
         copies * m.intra.betaUsPerByte;
}

double allToAllHierCost(const CollDesc& d, const LevelCost& c) {
  return allToAllHierModelCost(d, CostModel{c, c});
}

}  // namespace weft::algo
