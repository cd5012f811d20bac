// Ring reduce-scatter: at step k rank r forwards the partial sum of block r-k-1 to its next
// neighbour, reducing its own input into each block as it passes (recvReduceSend, straight from the
// incoming slot to the outgoing one, so no scratch is needed); after p-1 steps block r arrives
// complete and is reduced into the output. Cost: (p-1) alpha + (p-1)/p n beta + (p-1)/p n gamma.
#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status reduceScatterRing(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const int next = patterns::ringNext(r, p), prev = patterns::ringPrev(r, p);
  const uint64_t blk = d.bytes();
  auto in = [&](int64_t b) {
    return sendRegion(static_cast<uint64_t>(patterns::mod(b, p)) * blk, blk);
  };
  s->send(next, in(r - 1));
  for (int k = 1; k < p - 1; ++k)
    s->recvReduceSend(prev, next, in(r - k - 1));
  StepId fin = s->recvReduce(prev, recvRegion(0, blk), in(r));
  s->steps[fin].finalize = true;
  return Status::Ok();
}

double reduceScatterRingCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return (p - 1) * (c.alphaUs + n * (c.betaUsPerByte + c.gammaUsPerByte));
}

}  // namespace weft::algo
