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
    {CollType::kSend, "direct", "one message to the peer", always, algo::sendDirect, algo::p2pDirectCost},
    {CollType::kRecv, "direct", "one message from the peer", always, algo::recvDirect, algo::p2pDirectCost},
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
