// Binomial-tree scatter, for small blocks: ceil(log2 p) rounds instead of p-1 messages out of the
// root. The mirror of the tree gather: over virtual ranks (the root is 0, patterns/tree.h) the root
// sends each child the blocks of the child's subtree — a contiguous range of virtual ranks
// (patterns/subtree.h) — straight from its input, largest subtree first; every other rank receives
// its subtree's range in scratch, forwards each child's part and keeps its own block. Leaves
// receive straight into the output. On the root the virtual order wraps around at real rank 0, so a
// range that straddles it travels as two messages cut there (both ends cut alike). In place on the
// root: recvbuff == sendbuff + root*n.
//
// Cost: ceil(log2 p) alpha + (p-1) n beta + (ceil(log2 p) - 1) (p/2) n beta, n = the bytes of one
// block (as the tree gather: the root sends every block, the forwarding ranks add store-and-forward
// traffic).
#include "algorithms/patterns/subtree.h"
#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status scatterBinomialTree(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank, root = d.root;
  const uint64_t n = d.bytes();
  const int v = patterns::toVirtual(r, root, p);
  const std::vector<int> children = patterns::binomialChildren(v, p);
  auto real = [&](int u) { return patterns::fromVirtual(u, root, p); };
  if (v == 0) {
    for (int c : children)
      for (auto [a, b] : patterns::wrapPieces(c, c + patterns::binomialSubtreeSize(c, p), root, p))
        s->send(real(c),
                sendRegion(static_cast<uint64_t>(real(a)) * n, static_cast<uint64_t>(b - a) * n));
    if (!d.inPlace) s->copy(recvRegion(0, n), sendRegion(static_cast<uint64_t>(r) * n, n));
    return Status::Ok();
  }
  const int parent = real(patterns::binomialParent(v));
  if (children.empty()) {
    s->recv(parent, recvRegion(0, n));
    return Status::Ok();
  }
  // Scratch holds the subtree's blocks in virtual order: virtual rank u at (u - v) * n.
  const int size = patterns::binomialSubtreeSize(v, p);
  s->scratchBytes = static_cast<uint64_t>(size) * n;
  auto range = [&](int a, int b) {
    return scratchRegion(static_cast<uint64_t>(a - v) * n, static_cast<uint64_t>(b - a) * n);
  };
  std::vector<StepId> arrived;
  for (auto [a, b] : patterns::wrapPieces(v, v + size, root, p))
    arrived.push_back(s->recv(parent, range(a, b)));
  // A step that waits for a piece of the same size waits for it chunk by chunk; a smaller one for
  // all of it. Either way each forwarded range lies inside one received piece.
  for (int c : children) {
    for (auto [a, b] : patterns::wrapPieces(c, c + patterns::binomialSubtreeSize(c, p), root, p)) {
      Step st;
      st.kind = StepKind::kSend;
      st.sendPeer = real(c);
      st.src = range(a, b);
      s->add(st, arrived);
    }
  }
  Step own;
  own.kind = StepKind::kCopy;
  own.dst = recvRegion(0, n);
  own.src = range(v, v + 1);
  s->add(own, arrived);
  return Status::Ok();
}

double scatterBinomialTreeCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes()), levels = log2Ceil(d.nranks);
  return levels * c.alphaUs + (p - 1) * n * c.betaUsPerByte +
         (levels - 1) * (p / 2) * n * c.betaUsPerByte;
}

}  // namespace weft::algo
