// Ring all-reduce: reduce-scatter then all-gather, as NCCL's ring.
//
// The buffer is cut into p blocks (sizes differ by at most one element). In the reduce-scatter
// half, at step k rank r sends block r-k-1's partial sum to its next neighbour and reduces the
// block arriving from its previous neighbour into the partial sum it forwards; after p-1 steps it
// holds block r fully reduced. The all-gather half forwards the reduced blocks p-1 more steps
// around the ring. Steps on block data are fused (receive, reduce and send in one pass through a
// chunk, NCCL's recvReduceSend) and the engine pipelines every step in chunks, so one block's
// chunks stream round the ring back to back.
//
// Cost: 2(p-1) alpha + 2(p-1)/p n beta + (p-1)/p n gamma.
#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allReduceRing(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const int next = patterns::ringNext(r, p), prev = patterns::ringPrev(r, p);
  auto block = [&](int64_t b) {
    patterns::Block blk = patterns::blockOf(d.count, p, patterns::mod(b, p));
    return std::pair<uint64_t, uint64_t>{blk.offset * d.elemSize, blk.count * d.elemSize};
  };
  // Reduce-scatter half.
  auto [off0, len0] = block(r - 1);
  s->send(next, sendRegion(off0, len0));
  for (int k = 1; k < p - 1; ++k) {
    auto [off, len] = block(r - k - 1);
    s->recvReduceSend(prev, next, sendRegion(off, len));
  }
  auto [offMine, lenMine] = block(r);
  StepId fin =
      s->recvReduceCopySend(prev, next, recvRegion(offMine, lenMine), sendRegion(offMine, lenMine));
  s->steps[fin].finalize = true;
  // All-gather half.
  for (int k = 1; k < p - 1; ++k) {
    auto [off, len] = block(r - k);
    s->recvCopySend(prev, next, recvRegion(off, len));
  }
  auto [offLast, lenLast] = block(r + 1);
  s->recv(prev, recvRegion(offLast, lenLast));
  return Status::Ok();
}

double allReduceRingCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return 2 * (p - 1) * c.alphaUs + 2 * (p - 1) / p * n * c.betaUsPerByte +
         (p - 1) / p * n * c.gammaUsPerByte;
}

}  // namespace weft::algo
