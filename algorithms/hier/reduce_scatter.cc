// Hierarchical reduce-scatter: the mirror of the hierarchical all-gather, composed
// (patterns/subgroup.h). Nodes list their ranks by NUMA group, then local rank; L is a node's size,
// N the number of nodes, c the bytes of one rank's block. The input holds the blocks in
// communicator rank order, whatever the layout.
//
// Every node the same size: the intra-node level goes first, so that each block crosses between
// nodes once per node, already summed over it.
//   local copies arrange the input rail-major in scratch: slot g holds the N blocks of rail g's
//            ranks (position g of every node), in node order;
//   stage 1, intra-node: reduce-scatter of the N-block slots, in place: position g gets slot g
//            summed over its node;
//   stage 2, inter-node: reduce-scatter of that slot over rail g, into the output; it makes the
//            final values (avg divides here).
// The stages use disjoint links: no phase ordering needed.
//
// Nodes of different sizes: node leaders carry the traffic.
//   stage 1, intra-node: reduce of the whole input (node-major: the input itself when the ranks
//            are in order, else a copy in scratch) to the node's leader, in scratch;
//   stage 2, inter-node: N reduces among the leaders, node m's segment to node m's leader (the
//            final values);
//   stage 3, intra-node: the leader scatters its segment to its node.
// Every sub-collective runs in a message phase of its own, in order (core/schedule.h): stages 1 and
// 3 talk to the same peers, and stage 3 waits for stage 2 as a whole.
//
// Cost (uniform): N L c beta_intra for the copies + RS_intra(N c, L) + RS_inter(c, N); (uneven):
// Reduce_intra(p c, L) + N Reduce_inter(L c, N) + Scatter_intra(c, L). Each term is the estimate of
// the algorithm chosen for that sub-call at its level; `cost` applies one level's costs to both.
#include "algorithms/patterns/subgroup.h"
#include "algorithms/registry.h"

namespace weft::algo {
namespace {

using patterns::recvAt;
using patterns::scratchAt;
using patterns::sendAt;
using patterns::SubCall;
using patterns::SubSteps;

Status uniformLayout(const CollDesc& d, const patterns::NodeView& v, Schedule* s) {
  const std::vector<int>& node = v.mine();
  const std::vector<int> rail = v.rail(v.pos);
  const int N = v.nnodes(), L = static_cast<int>(node.size());
  const uint64_t c = d.bytes(), railBytes = static_cast<uint64_t>(N) * c;
  const uint64_t slots = patterns::reserveScratch(s, static_cast<uint64_t>(L) * railBytes);
  auto slot = [&](int g) { return slots + static_cast<uint64_t>(g) * railBytes; };
  std::vector<Region> dst, src;
  for (int g = 0; g < L; ++g) {
    for (int m = 0; m < N; ++m) {
      const int r = v.nodes[static_cast<size_t>(m)][static_cast<size_t>(g)];
      dst.push_back(scratchRegion(slot(g) + static_cast<uint64_t>(m) * c, c));
      src.push_back(sendRegion(static_cast<uint64_t>(r) * c, c));
    }
  }
  const StepId arranged = patterns::copyBlocks(s, dst, src, {});
  SubCall intra = patterns::subCall(d, CollType::kReduceScatter, d.count * N, node,
                                    scratchAt(slots), scratchAt(slot(v.pos)), -1, true);
  intra.after = {arranged};
  WEFT_ASSIGN_OR_RETURN(SubSteps p0, patterns::appendLevel(d, Level::kIntra, intra, s));
  SubCall inter = patterns::subCall(d, CollType::kReduceScatter, d.count, rail,
                                    scratchAt(slot(v.pos)), recvAt(0));
  inter.after = {p0.done};
  inter.keepFinalize = true;
  inter.phase = 1;
  return patterns::appendLevel(d, Level::kInter, inter, s).status();
}

Status unevenLayout(const CollDesc& d, const patterns::NodeView& v, Schedule* s) {
  const std::vector<int>& node = v.mine();
  const int N = v.nnodes();
  const uint64_t c = d.bytes(), total = static_cast<uint64_t>(d.nranks) * c;
  std::vector<uint64_t> base(static_cast<size_t>(N) + 1, 0);
  for (int m = 0; m < N; ++m)
    base[m + 1] = base[m] + v.nodes[static_cast<size_t>(m)].size() * c;
  // The input in node-major order, and the leader's sums (also node-major).
  patterns::BufferAt in = sendAt(0);
  std::vector<StepId> ready;
  if (!v.rankOrdered()) {
    in = scratchAt(patterns::reserveScratch(s, total));
    std::vector<Region> dst, src;
    for (int m = 0; m < N; ++m) {
      const std::vector<int>& ranks = v.nodes[static_cast<size_t>(m)];
      for (size_t g = 0; g < ranks.size(); ++g) {
        dst.push_back(scratchRegion(in.offset + base[m] + g * c, c));
        src.push_back(sendRegion(static_cast<uint64_t>(ranks[g]) * c, c));
      }
    }
    ready.push_back(patterns::copyBlocks(s, dst, src, {}));
  }
  const patterns::BufferAt sums = scratchAt(patterns::reserveScratch(s, total));
  SubCall intra = patterns::subCall(d, CollType::kReduce, d.count * d.nranks, node, in, sums, 0);
  intra.after = ready;
  WEFT_ASSIGN_OR_RETURN(SubSteps p0, patterns::appendLevel(d, Level::kIntra, intra, s));
  std::vector<StepId> p1 = {p0.done};
  auto at = [&](uint64_t off) { return scratchAt(sums.offset + off); };
  if (v.pos == 0) {
    const std::vector<int> leaders = v.rail(0);
    for (int m = 0; m < N; ++m) {
      const uint64_t count = (base[m + 1] - base[m]) / d.elemSize;
      SubCall red = patterns::subCall(d, CollType::kReduce, count, leaders, at(base[m]),
                                      at(base[m]), m, true);
      red.after = {p0.done};
      red.keepFinalize = true;
      red.phase = static_cast<uint16_t>(1 + m);
      WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kInter, red, s));
      p1.push_back(x.done);
    }
  }
  SubCall sc =
      patterns::subCall(d, CollType::kScatter, d.count, node, at(base[v.node]), recvAt(0), 0);
  sc.after = p1;
  sc.phase = static_cast<uint16_t>(N + 1);
  return patterns::appendLevel(d, Level::kIntra, sc, s).status();
}

}  // namespace

bool reduceScatterHierCanRun(const CollDesc& d) {
  return patterns::hierApplies(d);
}

Status reduceScatterHier(const CollDesc& d, Schedule* s) {
  if (!patterns::hierApplies(d)) return reduceScatterRing(d, s);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  return d.topo->uniform() ? uniformLayout(d, v, s) : unevenLayout(d, v, s);
}

double reduceScatterHierModelCost(const CollDesc& d, const CostModel& m) {
  if (!patterns::hierApplies(d)) return reduceScatterRingCost(d, m.inter);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  const std::vector<int>& node = v.mine();
  const auto N = static_cast<uint64_t>(v.nnodes()), L = static_cast<uint64_t>(node.size());
  const std::vector<int> leaders = v.rail(0);
  if (d.topo->uniform()) {
    return static_cast<double>(N * L * d.bytes()) * m.intra.betaUsPerByte +
           patterns::levelCost(d, patterns::subDesc(d, CollType::kReduceScatter, d.count * N, node),
                               Level::kIntra, m) +
           patterns::levelCost(d, patterns::subDesc(d, CollType::kReduceScatter, d.count, leaders),
                               Level::kInter, m);
  }
  const auto p = static_cast<uint64_t>(d.nranks);
  return patterns::levelCost(d, patterns::subDesc(d, CollType::kReduce, d.count * p, node, 0),
                             Level::kIntra, m) +
         static_cast<double>(N) *
             patterns::levelCost(d,
                                 patterns::subDesc(d, CollType::kReduce, d.count * L, leaders, 0),
                                 Level::kInter, m) +
         patterns::levelCost(d, patterns::subDesc(d, CollType::kScatter, d.count, node, 0),
                             Level::kIntra, m);
}

double reduceScatterHierCost(const CollDesc& d, const LevelCost& c) {
  return reduceScatterHierModelCost(d, CostModel{c, c});
}

}  // namespace weft::algo
