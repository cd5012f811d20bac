// Ring all-gather: rank r's block travels p-1 steps round the ring; every rank copies each block it
// receives into place and forwards it in the same pass (recvCopySend). The first send reads the
// caller's input directly, so the local copy into the output overlaps it. Cost: (p-1) alpha +
// (p-1)/p n beta.
#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allGatherRing(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const int next = patterns::ringNext(r, p), prev = patterns::ringPrev(r, p);
  const uint64_t blk = d.bytes();
  auto at = [&](int64_t b) {
    return recvRegion(static_cast<uint64_t>(patterns::mod(b, p)) * blk, blk);
  };
  if (!d.inPlace) s->copy(at(r), sendRegion(0, blk));
  s->send(next, sendRegion(0, blk));
  for (int k = 1; k < p - 1; ++k)
    s->recvCopySend(prev, next, at(r - k));
  s->recv(prev, at(r - (p - 1)));
  return Status::Ok();
}

double allGatherRingCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return (p - 1) * (c.alphaUs + n * c.betaUsPerByte);
}

}  // namespace weft::algo
