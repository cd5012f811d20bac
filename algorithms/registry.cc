#include "algorithms/registry.h"

#include <strings.h>

namespace weft {
namespace {

bool always(const CollDesc&) {
  return true;
}

const std::vector<AlgorithmInfo> kTable = {
    {CollType::kAllReduce, "ring",
     "reduce-scatter then all-gather around a ring, pipelined in chunks; bandwidth-optimal", always,
     algo::allReduceRing, algo::allReduceRingCost},
    {CollType::kAllReduce, "recursive_doubling",
     "log2(p) exchanges of the whole buffer (with a fold for non-powers of two); latency-optimal",
     always, algo::allReduceRecursiveDoubling, algo::allReduceRecursiveDoublingCost},
    {CollType::kAllGather, "ring", "p-1 forwarding steps around a ring, pipelined in chunks",
     always, algo::allGatherRing, algo::allGatherRingCost},
    {CollType::kReduceScatter, "ring",
     "p-1 reduce-and-forward steps around a ring, pipelined in chunks", always,
     algo::reduceScatterRing, algo::reduceScatterRingCost},
    {CollType::kBroadcast, "tree", "binomial tree from the root, pipelined in chunks", always,
     algo::broadcastBinomialTree, algo::broadcastBinomialTreeCost},
    {CollType::kReduce, "tree", "binomial tree towards the root, pipelined in chunks", always,
     algo::reduceBinomialTree, algo::reduceBinomialTreeCost},
    {CollType::kAllReduce, "rabenseifner",
     "recursive-halving reduce-scatter then recursive-doubling all-gather, block by block (with a "
     "fold for non-powers of two); 2 log2(p) steps, bandwidth-optimal",
     always, algo::allReduceRabenseifner, algo::allReduceRabenseifnerCost},
    {CollType::kAllReduce, "double_binary_tree",
     "each half reduced up and broadcast down one of two complementary binary trees, pipelined "
     "in chunks",
     always, algo::allReduceDoubleBinaryTree, algo::allReduceDoubleBinaryTreeCost},
    {CollType::kAllReduce, "reduce_broadcast",
     "binomial-tree reduce to rank 0 then binomial-tree broadcast, pipelined in chunks", always,
     algo::allReduceReduceBroadcast, algo::allReduceReduceBroadcastCost},
    {CollType::kAllReduce, "direct",
     "every input sent straight to every peer at once, reduced in rank order on arrival; one "
     "hand-off deep",
     always, algo::allReduceDirect, algo::allReduceDirectCost},
    {CollType::kAllGather, "recursive_doubling",
     "log2(p) exchanges of everything gathered so far (with a fold for non-powers of two)", always,
     algo::allGatherRecursiveDoubling, algo::allGatherRecursiveDoublingCost},
    {CollType::kAllGather, "bruck",
     "ceil(log2 p) steps to ranks r-2^k for any p, gathered rotated in scratch", always,
     algo::allGatherBruck, algo::allGatherBruckCost},
    {CollType::kAllGather, "direct",
     "each block sent straight from its owner's input to every peer's output, all at once; one "
     "hand-off deep",
     always, algo::allGatherDirect, algo::allGatherDirectCost},
    {CollType::kReduceScatter, "recursive_halving",
     "log2(p) exchanges of half the remaining blocks (with a fold for non-powers of two)", always,
     algo::reduceScatterRecursiveHalving, algo::reduceScatterRecursiveHalvingCost},
    {CollType::kReduceScatter, "pairwise",
     "p-1 steps, each block sent straight to its owner, which reduces it", always,
     algo::reduceScatterPairwise, algo::reduceScatterPairwiseCost},
    {CollType::kBroadcast, "chain",
     "a pipelined chain from the root through every rank, receive-copy-send per chunk", always,
     algo::broadcastChain, algo::broadcastChainCost},
    {CollType::kBroadcast, "scatter_allgather",
     "binomial scatter of p blocks, then a ring all-gather of them; for large buffers", always,
     algo::broadcastScatterAllgather, algo::broadcastScatterAllgatherCost},
    // One-sided: ranks that reach each other's memory work on each other's buffers directly.
    {CollType::kAllReduce, "one_sided",
     "each rank reduces its block straight from every peer's input, then copies the other blocks "
     "from the peers' outputs; needs access to peers' memory",
     algo::needsPeerAccess, algo::allReduceOneSided, algo::allReduceOneSidedCost, nullptr, true},
    {CollType::kAllGather, "one_sided",
     "each rank copies every peer's input straight from its buffer; needs access to peers' memory",
     algo::needsPeerAccess, algo::allGatherOneSided, algo::allGatherOneSidedCost, nullptr, true},
    {CollType::kAllGather, "staged",
     "each rank copies its input once into its scratch, which its peers copy from into their "
     "outputs; p+1 copies per rank where the ring makes 2p-1; needs access to peers' memory",
     algo::needsPeerAccess, algo::allGatherStaged, algo::allGatherStagedCost, nullptr, true},
    {CollType::kBroadcast, "staged",
     "the root copies its buffer once into its scratch, which every other rank copies from into "
     "its output, piece by piece; needs access to peers' memory",
     algo::needsPeerAccess, algo::broadcastStaged, algo::broadcastStagedCost, nullptr, true},
    {CollType::kReduceScatter, "one_sided",
     "each rank reduces its block straight from every peer's input; needs access to peers' memory",
     algo::needsPeerAccess, algo::reduceScatterOneSided, algo::reduceScatterOneSidedCost, nullptr,
     true},
    {CollType::kBroadcast, "one_sided",
     "every rank copies the root's buffer straight into its output; needs access to peers' memory",
     algo::needsPeerAccess, algo::broadcastOneSided, algo::broadcastOneSidedCost, nullptr, true},
    {CollType::kAllToAll, "one_sided",
     "each rank copies its block of every peer's input straight into its output; needs access to "
     "peers' memory",
     algo::needsPeerAccess, algo::allToAllOneSided, algo::allToAllOneSidedCost, nullptr, true},
    {CollType::kAllToAll, "staged",
     "each rank copies every block it sends once into its scratch, which the block's reader "
     "copies from into its output; no waiting for slots; needs access to peers' memory",
     algo::needsPeerAccess, algo::allToAllStaged, algo::allToAllStagedCost, nullptr, true},
    {CollType::kSend, "direct", "one message to the peer", always, algo::sendDirect,
     algo::p2pDirectCost},
    {CollType::kRecv, "direct", "one message from the peer", always, algo::recvDirect,
     algo::p2pDirectCost},
    {CollType::kAllToAll, "pairwise",
     "p-1 exchanges, each block straight from the input to its place in the output", always,
     algo::allToAllPairwise, algo::allToAllPairwiseCost},
    {CollType::kAllToAll, "bruck",
     "ceil(log2 p) exchanges of packed blocks through scratch; for small blocks, any p", always,
     algo::allToAllBruck, algo::allToAllBruckCost},
    {CollType::kAllToAllv, "pairwise",
     "p-1 exchanges of per-peer counts, zero-byte messages included, straight from input to output",
     always, algo::allToAllvPairwise, algo::allToAllvPairwiseCost},
    {CollType::kGather, "linear", "every rank sends its block straight to the root", always,
     algo::gatherLinear, algo::gatherLinearCost},
    {CollType::kGather, "tree", "binomial tree towards the root, subtrees collected in scratch",
     always, algo::gatherBinomialTree, algo::gatherBinomialTreeCost},
    {CollType::kScatter, "linear", "the root sends each rank its block directly", always,
     algo::scatterLinear, algo::scatterLinearCost},
    {CollType::kScatter, "tree", "binomial tree from the root, subtrees forwarded through scratch",
     always, algo::scatterBinomialTree, algo::scatterBinomialTreeCost},
    // Hierarchical: flat algorithms composed over each node's ranks and across nodes; they run
    // where the communicator spans two nodes or more and one of them holds two ranks or more.
    {CollType::kAllReduce, "hier",
     "intra-node reduce-scatter, all-reduce over each rail, intra-node all-gather (uneven nodes: "
     "per-block reduce to the first ranks, all-reduce over their rails, broadcast)",
     algo::allReduceHierCanRun, algo::allReduceHier, algo::allReduceHierCost,
     algo::allReduceHierModelCost},
    {CollType::kAllGather, "hier",
     "all-gather over each rail, then of the rails' blocks within each node (uneven nodes: through "
     "the node leaders)",
     algo::allGatherHierCanRun, algo::allGatherHier, algo::allGatherHierCost,
     algo::allGatherHierModelCost},
    {CollType::kReduceScatter, "hier",
     "reduce-scatter within each node, then over each rail (uneven nodes: through the node "
     "leaders)",
     algo::reduceScatterHierCanRun, algo::reduceScatterHier, algo::reduceScatterHierCost,
     algo::reduceScatterHierModelCost},
    {CollType::kBroadcast, "hier",
     "broadcast among one rank per node (the root on its own), then within each node, streamed",
     algo::broadcastHierCanRun, algo::broadcastHier, algo::broadcastHierCost,
     algo::broadcastHierModelCost},
    {CollType::kReduce, "hier",
     "reduce within each node to one rank (the root on its own), then among those, streamed",
     algo::reduceHierCanRun, algo::reduceHier, algo::reduceHierCost, algo::reduceHierModelCost},
    {CollType::kAllToAll, "hier",
     "all-to-all over each rail of every node's blocks for the peer's node, then within each "
     "node; nodes of equal size",
     algo::allToAllHierCanRun, algo::allToAllHier, algo::allToAllHierCost,
     algo::allToAllHierModelCost},
};

}  // namespace

const std::vector<AlgorithmInfo>& algorithmTable() {
  return kTable;
}

const AlgorithmInfo* findAlgorithm(CollType coll, const std::string& name) {
  for (const AlgorithmInfo& a : kTable)
    if (a.coll == coll && strcasecmp(a.name, name.c_str()) == 0) return &a;
  return nullptr;
}

const std::vector<const AlgorithmInfo*>& algorithmsFor(CollType coll) {
  static const auto byColl = [] {
    std::vector<std::vector<const AlgorithmInfo*>> v(static_cast<size_t>(CollType::kCount));
    for (const AlgorithmInfo& a : kTable)
      v[static_cast<size_t>(a.coll)].push_back(&a);
    return v;
  }();
  return byColl[static_cast<size_t>(coll)];
}

namespace algo {

Status selfCopy(const CollDesc& d, Schedule* s) {
  const uint64_t bytes = d.recvBufBytes();
  if (!d.inPlace && bytes > 0) {
    StepId c = s->copy(recvRegion(0, bytes), sendRegion(0, bytes));
    s->steps[c].finalize = true;
  }
  return Status::Ok();
}

}  // namespace algo
}  // namespace weft
