// Direct all-reduce: every rank sends its whole input to each peer at once and reduces the p
// inputs in rank order, x_0 (+) x_1 (+) ... (+) x_{p-1}, as they arrive. The sends do not wait on
// anything, so the call is one hand-off deep where recursive doubling is log2(p) deep: for small
// buffers on a few ranks, above all where ranks outnumber CPUs and every hand-off is a context
// switch. The order is the same on every rank, so every rank gets bitwise the same result. Each
// rank sends and reduces (p-1) n, so the ring and Rabenseifner win from a few KiB.
//
// In place, the input is copied to scratch first, chunk by chunk, and sent and reduced from there.
//
// Cost: alpha + (p-2) msg + (p-1) n (beta + gamma), plus n delta in place (the first message is the
// hand-off; each further one adds msg).
#include "algorithms/registry.h"

namespace weft::algo {

Status allReduceDirect(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const Region in = sendRegion(0, n), out = recvRegion(0, n);
  // In place the output is the input: the input goes to scratch first (chunk by chunk), and the
  // sends and the reductions read it there.
  Region own = in;
  StepId saved = kNoStep;
  if (d.inPlace) {
    own = scratchRegion(0, n);
    s->scratchBytes = n;
    saved = s->copy(own, in);
  }
  for (int k = 1; k < p; ++k)
    s->send((r + k) % p, own, {saved});
  // `cur` holds the partial result: rank 0's input, then reduced with rank 1's, and so on.
  StepId last = saved;
  Region cur = own;
  if (r != 0) {
    last = s->recv(0, out, {saved});
    cur = out;
  }
  for (int j = 1; j < p; ++j) {
    last = j == r ? s->reduce(out, own, {last}) : s->recvReduce(j, out, cur, {last});
    cur = out;
  }
  s->steps[last].finalize = true;
  return Status::Ok();
}

double allReduceDirectCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return c.alphaUs + (p - 2) * c.msgUs + (p - 1) * n * (c.betaUsPerByte + c.gammaUsPerByte) +
         (d.inPlace ? n * c.copyUsPerByte : 0);
}

}  // namespace weft::algo
