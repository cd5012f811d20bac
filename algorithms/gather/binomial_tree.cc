// Binomial-tree gather, for small blocks: ceil(log2 p) rounds instead of p-1 messages into the
// root. Over virtual ranks (the root is 0, patterns/tree.h) each rank collects its subtree's blocks
// — a contiguous range of virtual ranks (patterns/subtree.h) — in scratch, its own first, then
// sends the whole range to its parent once every child's range has arrived. Leaves send straight
// from the caller's input; the root receives each child's range straight into its place in the
// output. On the root the virtual order wraps around at real rank 0, so a range that straddles it
// travels as two messages cut there (both ends cut alike). In place on the root: sendbuff ==
// recvbuff + root*n.
//
// Cost: ceil(log2 p) alpha + (p-1) n beta + (ceil(log2 p) - 1) (p/2) n beta, n = the bytes of one
// block: the root takes in every block as in the linear gather, and the forwarding ranks add about
// p/2 blocks of store-and-forward traffic per level below it, which loses to the linear gather once
// blocks are large.
#include "algorithms/patterns/subtree.h"
#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status gatherBinomialTree(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank, root = d.root;
  const uint64_t n = d.bytes();
  const int v = patterns::toVirtual(r, root, p);
  const std::vector<int> children = patterns::binomialChildren(v, p);
  auto real = [&](int u) { return patterns::fromVirtual(u, root, p); };
  if (v == 0) {
    if (!d.inPlace) s->copy(recvRegion(static_cast<uint64_t>(r) * n, n), sendRegion(0, n));
    for (auto it = children.rbegin(); it != children.rend(); ++it) {  // smallest subtree first
      const int c = *it;
      for (auto [a, b] : patterns::wrapPieces(c, c + patterns::binomialSubtreeSize(c, p), root, p))
        s->recv(real(c),
                recvRegion(static_cast<uint64_t>(real(a)) * n, static_cast<uint64_t>(b - a) * n));
    }
    return Status::Ok();
  }
  const int parent = real(patterns::binomialParent(v));
  if (children.empty()) {
    s->send(parent, sendRegion(0, n));
    return Status::Ok();
  }
  // Scratch holds the subtree's blocks in virtual order: virtual rank u at (u - v) * n.
  const int size = patterns::binomialSubtreeSize(v, p);
  s->scratchBytes = static_cast<uint64_t>(size) * n;
  auto range = [&](int a, int b) {
    return scratchRegion(static_cast<uint64_t>(a - v) * n, static_cast<uint64_t>(b - a) * n);
  };
  std::vector<StepId> arrived = {s->copy(range(v, v + 1), sendRegion(0, n))};
  for (auto it = children.rbegin(); it != children.rend(); ++it) {
    const int c = *it;
    for (auto [a, b] : patterns::wrapPieces(c, c + patterns::binomialSubtreeSize(c, p), root, p))
      arrived.push_back(s->recv(real(c), range(a, b)));
  }
  for (auto [a, b] : patterns::wrapPieces(v, v + size, root, p)) {
    Step st;
    st.kind = StepKind::kSend;
    st.sendPeer = parent;
    st.src = range(a, b);
    s->add(st, arrived);
  }
  return Status::Ok();
}

double gatherBinomialTreeCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes()), levels = log2Ceil(d.nranks);
  return levels * c.alphaUs + (p - 1) * n * c.betaUsPerByte +
         (levels - 1) * (p / 2) * n * c.betaUsPerByte;
}

}  // namespace weft::algo
