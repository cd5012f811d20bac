// Reduce-then-broadcast all-reduce: a binomial-tree reduce to rank 0, then a binomial-tree
// broadcast from it over the same tree (patterns/tree.h) — the classic composition, MPICH's old
// default.
//
// Each rank reduces its children's partial sums into its output (in place, into the input), the
// smallest subtree first, and sends the result to its parent; rank 0's last reduction is final.
// Rank 0 then sends the result to its children, largest subtree first, and every other rank
// receives it from its parent and forwards it (receive-copy-send in one pass). Every step moves the
// whole buffer and depends on the previous one chunk by chunk, so a large buffer streams up and
// down the tree in pipelined chunks. It is simple and works on any rank count, but rank 0 receives
// and sends ceil(log2 p) whole buffers, so recursive doubling, Rabenseifner or the double binary
// tree beat it in the model; it is here for completeness and comparison.
//
// Cost: 2 ceil(log2 p) (alpha + n beta) + ceil(log2 p) n gamma.
#include <vector>

#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allReduceReduceBroadcast(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const Region in = sendRegion(0, n), out = recvRegion(0, n);
  // Rank 0 is the root: virtual ranks are the ranks themselves.
  const std::vector<int> children = patterns::binomialChildren(r, p);
  Region acc = in;
  StepId last = kNoStep;
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    last = s->recvReduce(*it, out, acc, {last});
    acc = out;
  }
  if (r == 0) {
    s->steps[last].finalize = true;
    for (int c : children)
      s->send(c, out, {last});
    return Status::Ok();
  }
  // The final value overwrites the output only after this rank's partial sum has gone up.
  const int parent = patterns::binomialParent(r);
  StepId up = s->send(parent, acc, {last});
  if (children.empty()) {
    s->recv(parent, out, {up});
    return Status::Ok();
  }
  StepId got = s->recvCopySend(parent, children[0], out, {up});
  for (size_t i = 1; i < children.size(); ++i)
    s->send(children[i], out, {got});
  return Status::Ok();
}

double allReduceReduceBroadcastCost(const CollDesc& d, const LevelCost& c) {
  const double steps = log2Ceil(d.nranks), n = static_cast<double>(d.bytes());
  return 2 * steps * (c.alphaUs + n * c.betaUsPerByte) + steps * n * c.gammaUsPerByte;
}

}  // namespace weft::algo
