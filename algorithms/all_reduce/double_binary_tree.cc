// Double-binary-tree all-reduce, as NCCL's tree algorithm: the buffer is cut in two halves; the
// first is reduced up tree 0 and broadcast back down it, the second likewise on tree 1
// (patterns/double_binary_tree.h). The trees are complementary: a rank is an interior node in at
// most one of them, so every rank sends and receives about 2n bytes in all, whereas a single
// binary tree would load its interior ranks with 3n.
//
// On each tree a rank reduces its children's partial sums into its output (in place, into the
// input), one child after the other, and sends the result to its parent; the root's last reduction
// is final and it sends the result down; every other rank receives the final half from its parent
// and forwards it to its children (receive-copy-send in one pass). Every step of a tree has the
// half's size and depends on the previous one chunk by chunk, so the chunks stream up and down the
// tree back to back; the two trees run side by side.
//
// Cost: 2 ceil(log2 p) alpha + 2 n beta + n gamma (pipelined: the depth of both trees in latency,
// each rank's 2n bytes moved and at most n bytes reduced).
#include "algorithms/patterns/double_binary_tree.h"
#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allReduceDoubleBinaryTree(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  for (int tree = 0; tree < 2; ++tree) {
    const patterns::Block half = patterns::blockOf(d.count, 2, tree);
    if (half.count == 0) continue;
    const Region in = sendRegion(half.offset * d.elemSize, half.count * d.elemSize);
    const Region out = recvRegion(half.offset * d.elemSize, half.count * d.elemSize);
    const patterns::TreeLinks t = patterns::doubleBinaryTree(tree, r, p);
    // Up: reduce the children's partial sums into the output.
    Region acc = in;
    StepId last = kNoStep;
    for (int c : t.child) {
      if (c < 0) continue;
      last = s->recvReduce(c, out, acc, {last});
      acc = out;
    }
    if (t.parent < 0) {
      s->steps[last].finalize = true;
      for (int c : t.child)
        if (c >= 0) s->send(c, out, {last});
      continue;
    }
    // The output is overwritten with the final half only after this rank's partial sum (read from
    // the output, or from the input in place) has gone up.
    StepId up = s->send(t.parent, acc, {last});
    // Down: receive the final half and forward it.
    if (t.child[0] < 0 && t.child[1] < 0) {
      s->recv(t.parent, out, {up});
      continue;
    }
    const int first = t.child[0] >= 0 ? t.child[0] : t.child[1];
    StepId got = s->recvCopySend(t.parent, first, out, {up});
    if (t.child[0] >= 0 && t.child[1] >= 0) s->send(t.child[1], out, {got});
  }
  return Status::Ok();
}

double allReduceDoubleBinaryTreeCost(const CollDesc& d, const LevelCost& c) {
  const double n = static_cast<double>(d.bytes());
  return 2 * log2Ceil(d.nranks) * c.alphaUs + 2 * n * c.betaUsPerByte + n * c.gammaUsPerByte;
}

}  // namespace weft::algo
