// Chain (pipelined linear) broadcast: the root sends the buffer to rank root+1, which receives each
// chunk, copies it to its output and forwards it to root+2 in one pass (receive-copy-send), and so
// on to rank root-1, which only receives. The engine's chunks keep every link of the chain busy at
// once, so a large buffer arrives after about n beta plus one chunk's time per hop, and every rank
// sends and receives n bytes once: no rank carries more than that, unlike the root of a tree.
//
// Cost: (p-1) alpha + n beta (pipelined: the hops in latency, the buffer once in bandwidth).
#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status broadcastChain(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const int v = patterns::toVirtual(r, d.root, p);
  const int prev = patterns::fromVirtual((v + p - 1) % p, d.root, p);
  const int next = patterns::fromVirtual(v + 1, d.root, p);
  if (v == 0) {
    if (!d.inPlace) s->copy(recvRegion(0, n), sendRegion(0, n));
    s->send(next, sendRegion(0, n));
  } else if (v < p - 1) {
    s->recvCopySend(prev, next, recvRegion(0, n));
  } else {
    s->recv(prev, recvRegion(0, n));
  }
  return Status::Ok();
}

double broadcastChainCost(const CollDesc& d, const LevelCost& c) {
  return (d.nranks - 1) * c.alphaUs + static_cast<double>(d.bytes()) * c.betaUsPerByte;
}

}  // namespace weft::algo
