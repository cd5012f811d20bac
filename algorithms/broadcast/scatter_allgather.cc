// Scatter-allgather broadcast (van de Geijn; MPICH's long-message broadcast): a binomial scatter of
// p blocks from the root, then a ring all-gather of them. Ranks are renumbered so that the root is
// virtual rank 0 (patterns/tree.h) and block j of the buffer (sizes differ by at most one element)
// is virtual rank j's.
//
// Scatter: virtual rank v's subtree is [v, v + lowbit(v)) (patterns/subtree.h); the root sends
// each child the blocks of the child's subtree, one message of contiguous blocks, and every rank
// receives its subtree's blocks into its output and forwards its children's parts on.
//
// All-gather: blocks travel towards lower virtual ranks, v sending to v-1 the block it got
// from v+1 one step earlier (receive, copy and forward in one pass), its own block first. The root
// already has every block: it sends blocks 0..p-2 to virtual rank p-1 from its input and receives
// nothing, and virtual rank 1 forwards nothing. Every scatter message goes to a higher virtual rank
// and every ring message to a lower one (the root's to p-1 aside, which wait for nothing), so no
// two messages on a link wait on each other. A rank receives again, from the ring, the blocks it
// got in the scatter: the same bytes, arriving only after it has forwarded them.
//
// Cost: (ceil(log2 p) + p - 1) alpha + 2 (p-1)/p n beta: the root sends the buffer about once
// instead of log2 p times, which wins for large buffers.
#include <vector>

#include "algorithms/patterns/ring.h"
#include "algorithms/patterns/subtree.h"
#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status broadcastScatterAllgather(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const int v = patterns::toVirtual(r, d.root, p);
  auto real = [&](int vr) { return patterns::fromVirtual(vr, d.root, p); };
  // Virtual ranks [first, last)'s blocks, in the output or (the root) the input.
  auto blocks = [&](BufferId buf, int first, int last) {
    const uint64_t lo = patterns::blockOf(d.count, p, first).offset * d.elemSize;
    const uint64_t hi = last < p ? patterns::blockOf(d.count, p, last).offset * d.elemSize : n;
    return Region{buf, lo, hi - lo};
  };
  auto subtreeEnd = [&](int vr) { return vr + patterns::binomialSubtreeSize(vr, p); };
  const std::vector<int> children = patterns::binomialChildren(v, p);

  if (v == 0) {
    if (!d.inPlace) s->copy(recvRegion(0, n), sendRegion(0, n));
    for (int c : children) {
      const Region part = blocks(kSendBuf, c, subtreeEnd(c));
      if (part.bytes > 0) s->send(real(c), part);
    }
    for (int b = 0; b < p - 1; ++b) {
      const Region blk = blocks(kSendBuf, b, b + 1);
      if (blk.bytes > 0) s->send(real(p - 1), blk);
    }
    return Status::Ok();
  }

  const Region mine = blocks(kRecvBuf, v, subtreeEnd(v));
  const StepId got = mine.bytes > 0 ? s->recv(real(patterns::binomialParent(v)), mine) : kNoStep;
  for (int c : children) {
    const Region part = blocks(kRecvBuf, c, subtreeEnd(c));
    if (part.bytes > 0) s->send(real(c), part, {got});
  }
  // The ring: at step k, receive block v+k+1 from v+1 and send block v+k to v-1.
  const int prev = real((v + 1) % p), next = real(v - 1);
  const bool forwards = v > 1;
  const Region own = blocks(kRecvBuf, v, v + 1);
  if (forwards && own.bytes > 0) s->send(next, own, {got});
  for (int k = 0; k < p - 1; ++k) {
    const Region blk = blocks(kRecvBuf, (v + k + 1) % p, (v + k + 1) % p + 1);
    if (blk.bytes == 0) continue;
    if (forwards && k < p - 2) {
      s->recvCopySend(prev, next, blk);
    } else {
      s->recv(prev, blk);
    }
  }
  return Status::Ok();
}

double broadcastScatterAllgatherCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return (log2Ceil(d.nranks) + p - 1) * c.alphaUs + 2 * (p - 1) / p * n * c.betaUsPerByte;
}

}  // namespace weft::algo
