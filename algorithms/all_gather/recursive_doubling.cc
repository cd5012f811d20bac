// Recursive-doubling all-gather: at distance D = 1, 2, 4, ... each rank exchanges everything it
// has gathered so far with the rank whose virtual number differs in that bit, so the gathered range
// doubles every step: log2(p) steps for a power of two.
//
// Other rank counts fold (patterns/recursive.h): each even rank below 2(p - P) first sends its
// block to the odd rank above it, which takes part for both, and receives the whole result from it
// at the end. The blocks a group of virtual ranks holds are contiguous in the output, so every
// exchange is one message each way, straight between output buffers. Each partner is met once, so
// an exchange can wait for the whole of the one before it. The first exchange sends the caller's
// input directly; out of place, the copy of it into the output overlaps it.
//
// Cost: log2(p) alpha + (p-1)/p n beta (n: the whole output, p blocks); with a fold,
// floor(log2 p) alpha + (p-1)/p n beta plus 2 alpha + (p+1)/p n beta for the fold and the result
// sent back.
#include "algorithms/patterns/recursive.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allGatherRecursiveDoubling(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  const patterns::Fold f = patterns::foldOf(p);
  const int v = patterns::foldVirtual(r, f);
  if (v < 0) {  // folded: hand the block to r + 1, take the whole result back
    StepId sent = s->send(r + 1, sendRegion(0, blk));
    s->recv(r + 1, recvRegion(0, static_cast<uint64_t>(p) * blk), {d.inPlace ? sent : kNoStep});
    return Status::Ok();
  }
  // The blocks of the ranks that virtual ranks [first, first + count) stand for.
  auto blocksOf = [&](int first, int count) {
    const uint64_t lo = static_cast<uint64_t>(patterns::foldFirst(first, f));
    const uint64_t hi = static_cast<uint64_t>(patterns::foldFirst(first + count, f));
    return recvRegion(lo * blk, (hi - lo) * blk);
  };
  const bool folds = r < 2 * f.extra;
  const StepId copied =
      d.inPlace ? kNoStep
                : s->copy(recvRegion(static_cast<uint64_t>(r) * blk, blk), sendRegion(0, blk));
  const StepId folded =
      folds ? s->recv(r - 1, recvRegion(static_cast<uint64_t>(r - 1) * blk, blk)) : kNoStep;
  // Each send follows the previous exchange, hence every earlier one.
  StepId sent = kNoStep, got = kNoStep;
  for (int dist = 1; dist < f.pow2; dist *= 2) {
    const int partner = patterns::foldReal(v ^ dist, f);
    if (dist == 1 && !folds) {
      sent = s->send(partner, sendRegion(0, blk));
    } else {
      sent = s->send(partner, blocksOf(patterns::groupStart(v, dist), dist),
                     {sent, got, copied, folded});
    }
    got = s->recv(partner, blocksOf(patterns::groupStart(v ^ dist, dist), dist));
  }
  if (folds)
    s->send(r - 1, recvRegion(0, static_cast<uint64_t>(p) * blk), {sent, got, copied, folded});
  return Status::Ok();
}

double allGatherRecursiveDoublingCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  double us = log2Floor(d.nranks) * c.alphaUs + (p - 1) * n * c.betaUsPerByte;
  if (!isPow2(d.nranks)) us += 2 * c.alphaUs + (p + 1) * n * c.betaUsPerByte;
  return us;
}

}  // namespace weft::algo
