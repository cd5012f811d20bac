// Binomial-tree reduce: the mirror of the broadcast tree. Each rank reduces its children's partial
// results into an accumulator (the output on the root, scratch elsewhere), smallest subtree first,
// then sends the accumulator to its parent. Chunk-by-chunk dependencies pipeline a large buffer up
// the tree. Cost: ceil(log2 p) (alpha + n beta + n gamma) unpipelined.
#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status reduceBinomialTree(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const int v = patterns::toVirtual(r, d.root, p);
  std::vector<int> children = patterns::binomialChildren(v, p);
  const bool root = v == 0;
  if (children.empty()) {  // a leaf
    s->send(patterns::fromVirtual(patterns::binomialParent(v), d.root, p), sendRegion(0, n));
    return Status::Ok();
  }
  const Region acc = root ? recvRegion(0, n) : scratchRegion(0, n);
  if (!root) s->scratchBytes = n;
  Region from = sendRegion(0, n);
  StepId last = kNoStep;
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    const int child = patterns::fromVirtual(*it, d.root, p);
    last = s->recvReduce(child, acc, from, {last});
    from = acc;
  }
  if (root) {
    s->steps[last].finalize = true;
  } else {
    s->send(patterns::fromVirtual(patterns::binomialParent(v), d.root, p), acc, {last});
  }
  return Status::Ok();
}

double reduceBinomialTreeCost(const CollDesc& d, const LevelCost& c) {
  // The root receives and reduces the whole buffer from each of its ceil(log2 p) children.
  return log2Ceil(d.nranks) *
         (c.alphaUs + static_cast<double>(d.bytes()) * (c.betaUsPerByte + c.gammaUsPerByte));
}

}  // namespace weft::algo
