// Pairwise-exchange reduce-scatter: p-1 steps; at step k rank r sends its input block (r+k) mod p
// straight to the rank that owns it and reduces the block arriving from rank (r-k) mod p into its
// own. Every block is reduced by its owner alone, into the output (in place, into the input's own
// block), one contribution after the other; each reduction depends on the previous one chunk by
// chunk, so contributions stream in. No message is forwarded and the sends depend on nothing, so
// there is no chain of hops as in the ring: every rank talks to every other directly, which suits
// fully connected networks (all-to-all bandwidth) rather than rings of links.
//
// The sends depend on nothing, so the call is one hand-off deep; but each contribution is
// reduced into the output block, read and written again p-1 times, where the ring's partial sums
// travel in slots that stay in cache: for small blocks.
//
// Cost: alpha + (p-2) (msg + b delta) + (p-1) b (beta + gamma), b = one block (the first message is
// the hand-off; each further one adds msg).
#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status reduceScatterPairwise(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  auto in = [&](int b) { return sendRegion(static_cast<uint64_t>(b) * blk, blk); };
  const Region out = recvRegion(0, blk);
  Region acc = in(r);
  StepId last = kNoStep;
  for (int k = 1; k < p; ++k) {
    const int to = patterns::mod(r + k, p);
    s->send(to, in(to));
    last = s->recvReduce(patterns::mod(r - k, p), out, acc, {last});
    acc = out;
  }
  s->steps[last].finalize = true;
  return Status::Ok();
}

double reduceScatterPairwiseCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return c.alphaUs + (p - 2) * (c.msgUs + n * c.copyUsPerByte) +
         (p - 1) * n * (c.betaUsPerByte + c.gammaUsPerByte);
}

}  // namespace weft::algo
