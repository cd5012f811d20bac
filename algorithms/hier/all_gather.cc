// Hierarchical all-gather: flat all-gathers over the rails, then within each node, composed
// (patterns/subgroup.h). Nodes list their ranks by NUMA group, then local rank; L is a node's size,
// N the number of nodes, c the bytes of one rank's block. The output holds the blocks in
// communicator rank order, whatever the layout (nodes need not hold consecutive ranks).
//
// Every node the same size: the inter-node level goes first, so that each block crosses between
// nodes once per node rather than once per rank of it.
//   stage 1, inter-node: all-gather of the blocks over rail g (position g of every node), into
//            scratch at rail g's slot: after it, position g holds the N blocks of its rail;
//   stage 2, intra-node: all-gather of those N-block slots, in place in scratch (rail-major);
//   then local copies put every block at its rank's place in the output (the rank's own block
//            straight from its input, at once).
// The stages use disjoint links (between nodes, then within them): no phase ordering needed.
//
// Nodes of different sizes: rails would leave some nodes out, so node leaders carry the traffic.
//   stage 1, intra-node: all-gather of the node's blocks into the node's segment of a node-major
//            array (the output itself when the ranks are in order, else scratch);
//   stage 2, inter-node: each leader broadcasts its node's segment to the other leaders (N
//            broadcasts of different sizes);
//   stage 3, intra-node: each leader broadcasts the other nodes' segments to its node;
//   then copies into rank order where the array is scratch.
// Every sub-collective runs in a message phase of its own, in order (core/schedule.h): stages 1 and
// 3 talk to the same peers, and stage 3 waits for stage 2 as a whole.
//
// Cost (uniform): AG_inter(c, N) + AG_intra(N c, L) + (N L - 1) c beta_intra for the copies;
// (uneven): AG_intra(c, L) + N Bcast_inter(L c, N) + Bcast_intra((p - L) c, L). Each term is the
// estimate of the algorithm chosen for that sub-call at its level; `cost` applies one level's
// costs to both.
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
  if (!d.inPlace) s->copy(recvRegion(static_cast<uint64_t>(d.rank) * c, c), sendRegion(0, c));
  SubCall inter =
      patterns::subCall(d, CollType::kAllGather, d.count, rail, sendAt(0), scratchAt(slot(v.pos)));
  WEFT_ASSIGN_OR_RETURN(SubSteps p0, patterns::appendLevel(d, Level::kInter, inter, s));
  SubCall intra = patterns::subCall(d, CollType::kAllGather, d.count * N, node,
                                    scratchAt(slot(v.pos)), scratchAt(slots), -1, true);
  intra.after = {p0.done};
  intra.phase = 1;
  WEFT_ASSIGN_OR_RETURN(SubSteps p1, patterns::appendLevel(d, Level::kIntra, intra, s));
  std::vector<Region> dst, src;
  for (int g = 0; g < L; ++g) {
    for (int m = 0; m < N; ++m) {
      const int r = v.nodes[static_cast<size_t>(m)][static_cast<size_t>(g)];
      if (r == d.rank) continue;
      dst.push_back(recvRegion(static_cast<uint64_t>(r) * c, c));
      src.push_back(scratchRegion(slot(g) + static_cast<uint64_t>(m) * c, c));
    }
  }
  patterns::copyBlocks(s, dst, src, {p1.done});
  return Status::Ok();
}

Status unevenLayout(const CollDesc& d, const patterns::NodeView& v, Schedule* s) {
  const std::vector<int>& node = v.mine();
  const int N = v.nnodes();
  const uint64_t c = d.bytes();
  // The node-major array: node m's blocks from segment base[m], in intra-node order.
  std::vector<uint64_t> base(static_cast<size_t>(N) + 1, 0);
  for (int m = 0; m < N; ++m)
    base[m + 1] = base[m] + v.nodes[static_cast<size_t>(m)].size() * c;
  const bool direct = v.rankOrdered();
  const BufferId arr = direct ? kRecvBuf : kScratchBuf;
  const uint64_t at = direct ? 0 : patterns::reserveScratch(s, base[N]);
  auto seg = [&](uint64_t off) { return patterns::BufferAt{arr, at + off}; };
  const uint64_t mine = base[v.node];
  SubCall intra = patterns::subCall(d, CollType::kAllGather, d.count, node, sendAt(0), seg(mine),
                                    -1, direct && d.inPlace);
  WEFT_ASSIGN_OR_RETURN(SubSteps p0, patterns::appendLevel(d, Level::kIntra, intra, s));
  std::vector<StepId> p1 = {p0.done};
  if (v.pos == 0) {
    const std::vector<int> leaders = v.rail(0);
    for (int m = 0; m < N; ++m) {
      const uint64_t count = (base[m + 1] - base[m]) / d.elemSize;
      SubCall bc = patterns::subCall(d, CollType::kBroadcast, count, leaders, seg(base[m]),
                                     seg(base[m]), m, true);
      bc.after = {p0.done};
      bc.phase = static_cast<uint16_t>(1 + m);
      WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kInter, bc, s));
      p1.push_back(x.done);
    }
  }
  std::vector<StepId> p2 = p1;
  uint16_t phase = static_cast<uint16_t>(N + 1);
  for (auto [from, to] : {std::pair{uint64_t{0}, mine}, std::pair{base[v.node + 1], base[N]}}) {
    ++phase;
    if (from == to) continue;
    SubCall bc = patterns::subCall(d, CollType::kBroadcast, (to - from) / d.elemSize, node,
                                   seg(from), seg(from), 0, true);
    bc.after = p1;
    bc.phase = phase;
    WEFT_ASSIGN_OR_RETURN(SubSteps x, patterns::appendLevel(d, Level::kIntra, bc, s));
    p2.push_back(x.done);
  }
  if (direct) return Status::Ok();
  std::vector<Region> dst, src;
  for (int m = 0; m < N; ++m) {
    const std::vector<int>& ranks = v.nodes[static_cast<size_t>(m)];
    for (size_t g = 0; g < ranks.size(); ++g) {
      dst.push_back(recvRegion(static_cast<uint64_t>(ranks[g]) * c, c));
      src.push_back(scratchRegion(at + base[m] + g * c, c));
    }
  }
  patterns::copyBlocks(s, dst, src, p2);
  return Status::Ok();
}

}  // namespace

bool allGatherHierCanRun(const CollDesc& d) {
  return patterns::hierApplies(d);
}

Status allGatherHier(const CollDesc& d, Schedule* s) {
  if (!patterns::hierApplies(d)) return allGatherRing(d, s);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  return d.topo->uniform() ? uniformLayout(d, v, s) : unevenLayout(d, v, s);
}

double allGatherHierModelCost(const CollDesc& d, const CostModel& m) {
  if (!patterns::hierApplies(d)) return allGatherRingCost(d, m.inter);
  const patterns::NodeView v = patterns::nodeView(*d.topo, d.rank);
  const std::vector<int>& node = v.mine();
  const auto N = static_cast<uint64_t>(v.nnodes()), L = static_cast<uint64_t>(node.size());
  const std::vector<int> leaders = v.rail(0);
  if (d.topo->uniform()) {
    return patterns::levelCost(d, patterns::subDesc(d, CollType::kAllGather, d.count, leaders),
                               Level::kInter, m) +
           patterns::levelCost(d, patterns::subDesc(d, CollType::kAllGather, d.count * N, node),
                               Level::kIntra, m) +
           static_cast<double>((N * L - 1) * d.bytes()) * m.intra.betaUsPerByte;
  }
  const auto p = static_cast<uint64_t>(d.nranks);
  return patterns::levelCost(d, patterns::subDesc(d, CollType::kAllGather, d.count, node),
                             Level::kIntra, m) +
         static_cast<double>(N) *
             patterns::levelCost(
                 d, patterns::subDesc(d, CollType::kBroadcast, d.count * L, leaders, 0),
                 Level::kInter, m) +
         patterns::levelCost(d,
                             patterns::subDesc(d, CollType::kBroadcast, d.count * (p - L), node, 0),
                             Level::kIntra, m);
}

double allGatherHierCost(const CollDesc& d, const LevelCost& c) {
  return allGatherHierModelCost(d, CostModel{c, c});
}

}  // namespace weft::algo
