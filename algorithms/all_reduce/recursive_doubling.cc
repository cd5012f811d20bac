// Recursive-doubling all-reduce: the latency-optimal choice for small buffers.
//
// With p a power of two, at step k each rank exchanges its whole partial result with the rank whose
// number differs in bit k and reduces what arrives: log2(p) steps. Both partners compute a (+) b on
// the same two values, so every rank ends with bitwise the same result. When p is not a power of
// two, the first 2r ranks (r = p - 2^floor(log2 p)) fold in pairs first: each even rank of them
// sends its input to the odd rank above it and waits; the 2^floor(log2 p) remaining ranks run the
// exchange; the odd ranks then send the result back.
//
// Cost: log2(p) (alpha + n beta + n gamma), plus two extra steps with a fold.
#include "algorithms/registry.h"

namespace weft::algo {

Status allReduceRecursiveDoubling(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const Region out = recvRegion(0, n);
  int pow2 = 1;
  while (pow2 * 2 <= p)
    pow2 *= 2;
  const int extra = p - pow2;

  // Fold: even ranks below 2*extra hand their input to the odd rank above and wait for the result.
  if (r < 2 * extra && r % 2 == 0) {
    s->send(r + 1, sendRegion(0, n));
    s->recv(r + 1, out);
    return Status::Ok();
  }
  // `cur` holds this rank's partial result: the caller's input until the first reduction writes
  // `out`.
  StepId last = kNoStep;
  Region cur = sendRegion(0, n);
  if (r < 2 * extra) {
    last = s->recvReduce(r - 1, out, cur);
    cur = out;
  }
  // Ranks in the power-of-two group, renumbered 0..pow2-1.
  const int v = r < 2 * extra ? r / 2 : r - extra;
  auto real = [&](int vr) { return vr < extra ? 2 * vr + 1 : vr + extra; };
  for (int mask = 1; mask < pow2; mask <<= 1) {
    const int partner = real(v ^ mask);
    StepId snd = s->send(partner, cur, {last});
    // The reduction overwrites `out` only after this step's send has copied `cur` out, which
    // matters when they are the same memory (after the first step, or in place). Out of place, the
    // first exchange reads the input and writes the output, so send and reduction run
    // independently.
    const bool aliases = cur.buf == kRecvBuf || d.inPlace;
    last = s->recvReduce(
        partner, out, cur,
        aliases ? std::initializer_list<StepId>{snd, last} : std::initializer_list<StepId>{last});
    cur = out;
  }
  s->steps[last].finalize = true;
  if (r < 2 * extra) s->send(r - 1, out, {last});
  return Status::Ok();
}

double allReduceRecursiveDoublingCost(const CollDesc& d, const LevelCost& c) {
  const double n = static_cast<double>(d.bytes());
  const double exchange = c.alphaUs + n * (c.betaUsPerByte + c.gammaUsPerByte);
  if (isPow2(d.nranks)) return log2Floor(d.nranks) * exchange;
  return log2Floor(d.nranks) * exchange + exchange + c.alphaUs + n * c.betaUsPerByte;
}

}  // namespace weft::algo
