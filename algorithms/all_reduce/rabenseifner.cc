// Rabenseifner all-reduce: a recursive-halving reduce-scatter, then a recursive-doubling all-gather
// (Rabenseifner 2004; Thakur, Rabenseifner & Gropp 2005).
//
// The buffer is cut into P blocks on element boundaries (sizes differ by at most one element), P
// the largest power of two <= p. Rank counts that are not powers of two fold first
// (patterns/recursive.h): each even rank below 2(p - P) sends its input to the odd rank above it,
// which reduces it into its output and takes part for both; at the end it sends the result back. In
// the reduce-scatter, at distance D = P/2, P/4, ..., 1 virtual rank v gives the half of its current
// range of blocks that does not hold block v to partner v ^ D and reduces the partner's
// contribution to the half it keeps; after log2 P exchanges it holds block v fully reduced. The
// all-gather retraces the exchanges, distance 1 first, each rank sending every block it holds.
//
// The engine numbers the messages between two ranks chunk by chunk across steps, and here every
// partner is met twice, so each block travels as a message of its own: every step then depends on
// a step of the same size chunk by chunk, a block's chunks stream through the exchanges, and a
// message never waits for a later chunk of an earlier message to the same peer. The accumulator is
// the output (in place it is the input itself); no scratch.
//
// Cost: 2 log2(P) alpha + 2 (P-1)/P n beta + (P-1)/P n gamma; with a fold, plus 2 alpha +
// 2 n beta + n gamma. The blocks of one exchange are P-1 messages per phase, posted back to back.
#include <vector>

#include "algorithms/patterns/recursive.h"
#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allReduceRabenseifner(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  const patterns::Fold f = patterns::foldOf(p);
  const int v = patterns::foldVirtual(r, f);
  if (v < 0) {  // folded: hand the input to r + 1 and take the result back
    StepId sent = s->send(r + 1, sendRegion(0, n));
    s->recv(r + 1, recvRegion(0, n), {d.inPlace ? sent : kNoStep});
    return Status::Ok();
  }
  const int nblocks = f.pow2;
  std::vector<Region> out(nblocks), cur(nblocks);
  for (int b = 0; b < nblocks; ++b) {
    const patterns::Block blk = patterns::blockOf(d.count, nblocks, b);
    out[b] = recvRegion(blk.offset * d.elemSize, blk.count * d.elemSize);
    cur[b] = sendRegion(blk.offset * d.elemSize, blk.count * d.elemSize);
  }
  // last[b]: the latest step that wrote or read block b; the next step on b follows it.
  std::vector<StepId> last(nblocks, kNoStep);
  if (r < 2 * f.extra) {
    StepId fold = s->recvReduce(r - 1, recvRegion(0, n), sendRegion(0, n));
    for (int b = 0; b < nblocks; ++b) {
      cur[b] = out[b];
      last[b] = fold;
    }
  }
  // Reduce-scatter by recursive halving.
  for (int dist = nblocks / 2; dist >= 1; dist /= 2) {
    const int partner = patterns::foldReal(v ^ dist, f);
    const int give = patterns::groupStart(v ^ dist, dist), keep = patterns::groupStart(v, dist);
    for (int b = give; b < give + dist; ++b)
      if (out[b].bytes > 0) last[b] = s->send(partner, cur[b], {last[b]});
    for (int b = keep; b < keep + dist; ++b) {
      if (out[b].bytes == 0) continue;
      last[b] = s->recvReduce(partner, out[b], cur[b], {last[b]});
      cur[b] = out[b];
    }
  }
  if (out[v].bytes > 0) s->steps[last[v]].finalize = true;
  // All-gather by recursive doubling: last[b] is now the step that produced block b's final value,
  // or, for a block this rank gave away, the send that last read it.
  for (int dist = 1; dist < nblocks; dist *= 2) {
    const int partner = patterns::foldReal(v ^ dist, f);
    const int mine = patterns::groupStart(v, dist), theirs = patterns::groupStart(v ^ dist, dist);
    for (int b = mine; b < mine + dist; ++b)
      if (out[b].bytes > 0) s->send(partner, out[b], {last[b]});
    for (int b = theirs; b < theirs + dist; ++b)
      if (out[b].bytes > 0) last[b] = s->recv(partner, out[b], {last[b]});
  }
  if (r < 2 * f.extra) {
    Step back;
    back.kind = StepKind::kSend;
    back.sendPeer = r - 1;
    back.src = recvRegion(0, n);
    s->add(back, last);
  }
  return Status::Ok();
}

double allReduceRabenseifnerCost(const CollDesc& d, const LevelCost& c) {
  const patterns::Fold f = patterns::foldOf(d.nranks);
  const double P = f.pow2, n = static_cast<double>(d.bytes());
  double us = 2 * log2Floor(f.pow2) * c.alphaUs + 2 * (P - 1) / P * n * c.betaUsPerByte +
              (P - 1) / P * n * c.gammaUsPerByte;
  if (f.extra > 0) us += 2 * c.alphaUs + 2 * n * c.betaUsPerByte + n * c.gammaUsPerByte;
  return us;
}

}  // namespace weft::algo
