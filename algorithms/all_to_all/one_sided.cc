// One-sided all-to-all: rank r copies block r of every peer's input straight into block q of its
// output; nobody writes what others read, so the window exchange is the only synchronisation.
//
// In place, block q of r's buffer is both r's output from q and the input q reads from r: r first
// copies its blocks from every peer into scratch, tells each peer it is done reading it, and
// overwrites block q only once q has said the same.
//
// Cost: 2 sync + (p-1) n peer copy in p-1 calls (n = the bytes of one block); in place one more
// sync and (p-1) n local copy.
#include "algorithms/registry.h"

namespace weft::algo {

Status allToAllOneSided(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  auto block = [&](int j) { return static_cast<uint64_t>(j) * blk; };
  for (int k = 1; k < p; ++k)
    s->exposeTo.push_back((r + k) % p);
  if (!d.inPlace) {
    s->copy(recvRegion(block(r), blk), sendRegion(block(r), blk));
    for (int k = 1; k < p; ++k) {
      const int q = (r + k) % p;
      s->get(q, recvRegion(block(q), blk), sendRegion(block(r), blk));
    }
    return Status::Ok();
  }
  s->scratchBytes = static_cast<uint64_t>(p - 1) * blk;
  for (int k = 1; k < p; ++k) {
    const int q = (r + k) % p;
    const Region staged = scratchRegion(static_cast<uint64_t>(k - 1) * blk, blk);
    const StepId got = s->get(q, staged, sendRegion(block(r), blk));
    s->signal(q, {got});
    const StepId read = s->waitFor(q);
    s->copy(recvRegion(block(q), blk), staged, {got, read});
  }
  return Status::Ok();
}

double allToAllOneSidedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  const double base = 2 * c.syncUs + peerCopyUs(d, c, (p - 1) * n, p - 1);
  return d.inPlace ? base + c.syncUs + (p - 1) * n * c.betaUsPerByte : base;
}

}  // namespace weft::algo
