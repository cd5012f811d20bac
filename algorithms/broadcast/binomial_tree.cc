// Binomial-tree broadcast: each rank receives the buffer from its parent and forwards it to its
// children, largest subtree first. Every send depends on the receive chunk by chunk, so a large
// buffer streams down the tree in pipelined chunks instead of hop by hop. The root sends from the
// caller's input directly. Cost: ceil(log2 p) (alpha + n beta) unpipelined; ~ (log2 p) alpha + n
// beta pipelined.
#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status broadcastBinomialTree(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const int v = patterns::toVirtual(r, d.root, p);
  std::vector<int> children = patterns::binomialChildren(v, p);
  if (v == 0) {
    if (!d.inPlace) s->copy(recvRegion(0, n), sendRegion(0, n));
    for (int c : children)
      s->send(patterns::fromVirtual(c, d.root, p), sendRegion(0, n));
    return Status::Ok();
  }
  StepId got =
      s->recv(patterns::fromVirtual(patterns::binomialParent(v), d.root, p), recvRegion(0, n));
  for (int c : children)
    s->send(patterns::fromVirtual(c, d.root, p), recvRegion(0, n), {got});
  return Status::Ok();
}

double broadcastBinomialTreeCost(const CollDesc& d, const LevelCost& c) {
  // The root sends the whole buffer to each of its ceil(log2 p) children.
  return log2Ceil(d.nranks) * (c.alphaUs + static_cast<double>(d.bytes()) * c.betaUsPerByte);
}

}  // namespace weft::algo
