// Recursive-halving reduce-scatter (Thakur, Rabenseifner & Gropp 2005): at distance D = P/2, P/4,
// ..., 1 virtual rank v sends the half of its current range of blocks that does not hold its own
// to partner v ^ D and reduces the partner's contribution to the half it keeps; after log2 P steps
// it holds its own block fully reduced. Half the data leaves at every step, so the bytes moved and
// reduced add up to (p-1)/p of the input, like the ring, in log2 p steps instead of p-1.
//
// Other rank counts fold (patterns/recursive.h): each even rank below 2(p - P) sends its whole
// input to the odd rank above it, which reduces it into its accumulator and takes part for both,
// ending with both blocks; it sends the folded rank's block back. A group of virtual ranks holds a
// contiguous range of blocks, so every step is one message each way. The first step reads the
// caller's input; partial sums live in scratch (the range kept at the first reduction); the last
// reduction writes the output directly where a rank ends with its own block alone.
//
// Cost: log2(p) alpha + (p-1)/p n (beta + gamma) (n: the whole input, p blocks); with a fold,
// floor(log2 p) alpha + (p-1)/p n (beta + gamma) plus 2 alpha + n (beta + gamma) + n/p beta for
// the fold and the block sent back.
#include "algorithms/patterns/recursive.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status reduceScatterRecursiveHalving(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes(), all = static_cast<uint64_t>(p) * blk;
  const patterns::Fold f = patterns::foldOf(p);
  const int v = patterns::foldVirtual(r, f);
  const Region out = recvRegion(0, blk);
  if (v < 0) {  // folded: hand the whole input to r + 1, take this rank's block back
    StepId sent = s->send(r + 1, sendRegion(0, all));
    s->recv(r + 1, out, {d.inPlace ? sent : kNoStep});
    return Status::Ok();
  }
  // Partial sums of ranks' blocks [accFirst, ...) live in scratch from offset 0, once `inAcc`.
  bool inAcc = false;
  int accFirst = 0;
  // The blocks of the ranks that virtual ranks [first, first + count) stand for, where they are
  // now.
  auto blocksOf = [&](int first, int count) {
    const int lo = patterns::foldFirst(first, f), hi = patterns::foldFirst(first + count, f);
    const uint64_t bytes = static_cast<uint64_t>(hi - lo) * blk;
    if (!inAcc) return sendRegion(static_cast<uint64_t>(lo) * blk, bytes);
    return scratchRegion(static_cast<uint64_t>(lo - accFirst) * blk, bytes);
  };
  StepId last = kNoStep;
  if (r < 2 * f.extra) {
    s->scratchBytes = all;
    last = s->recvReduce(r - 1, scratchRegion(0, all), sendRegion(0, all));
    inAcc = true;
  }
  for (int dist = f.pow2 / 2; dist >= 1; dist /= 2) {
    const int partner = patterns::foldReal(v ^ dist, f);
    const int give = patterns::groupStart(v ^ dist, dist), keep = patterns::groupStart(v, dist);
    s->send(partner, blocksOf(give, dist), {last});
    const Region src = blocksOf(keep, dist);
    Region dst;
    if (dist == 1 && r >= 2 * f.extra) {
      dst = out;  // this rank's own block alone: straight into the output
    } else {
      if (!inAcc) {
        accFirst = patterns::foldFirst(keep, f);
        s->scratchBytes = src.bytes;
        inAcc = true;
      }
      dst = blocksOf(keep, dist);
    }
    last = s->recvReduce(partner, dst, src, {last});
  }
  s->steps[last].finalize = true;
  if (r < 2 * f.extra) {  // the accumulator holds blocks r-1 and r
    const uint64_t mine = static_cast<uint64_t>(r - accFirst) * blk;
    s->copy(out, scratchRegion(mine, blk), {last});
    s->send(r - 1, scratchRegion(mine - blk, blk), {last});
  }
  return Status::Ok();
}

double reduceScatterRecursiveHalvingCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  const double rg = c.betaUsPerByte + c.gammaUsPerByte;
  double us = log2Floor(d.nranks) * c.alphaUs + (p - 1) * n * rg;
  if (!isPow2(d.nranks)) us += 2 * c.alphaUs + p * n * rg + n * c.betaUsPerByte;
  return us;
}

}  // namespace weft::algo
