// Staged all-to-all: every rank copies each block it sends into its own scratch, which its peers
// map (CollDesc::scratchShared), signals the block's reader with a zero-byte message, and every
// reader copies its block from there straight into its output. Each block is copied twice, as in
// the pairwise exchange through message slots, but nothing waits for room: a rank stages all it
// sends in one pass and its readers take their blocks whenever they run, with one signal per pair
// of ranks. Where ranks outnumber CPUs, the pairwise exchange stalls whenever one side of a pair
// is descheduled with its slots full or empty; here only a reader whose block is not staged yet
// waits.
//
// The scratch holds p-1 blocks, so the algorithm is for blocks of moderate size. In place, block
// q of the buffer is both the output from q and the block staged for q: the copy from q waits for
// the staging of that block.
//
// Cost: alpha + 2 sync + (p-2) msg + (p-1) n beta/2 + (p-1) n (beta/2 mapped, or the peer copy in
// p-1 calls) + n beta/2 out of place (the own block), n = the bytes of one block.
#include "algorithms/registry.h"

namespace weft::algo {

Status allToAllStaged(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  auto block = [&](int j) { return static_cast<uint64_t>(j) * blk; };
  // The block for the rank k after this one sits in slot k-1 of this rank's scratch.
  auto slot = [&](int k) { return scratchRegion(static_cast<uint64_t>(k - 1) * blk, blk); };
  s->scratchBytes = static_cast<uint64_t>(p - 1) * blk;
  std::vector<StepId> staged(static_cast<size_t>(p), kNoStep);  // by the block's reader
  for (int k = 1; k < p; ++k) {
    const int to = (r + k) % p;
    s->exposeTo.push_back(to);
    staged[to] = s->copy(slot(k), sendRegion(block(to), blk));
    s->signal(to, {staged[to]});
  }
  if (!d.inPlace) s->copy(recvRegion(block(r), blk), sendRegion(block(r), blk));
  for (int k = 1; k < p; ++k) {
    const int from = (r - k + p) % p;
    const StepId ready = s->waitFor(from);
    // Rank `from` staged this rank's block in its slot k-1.
    if (d.inPlace)
      s->get(from, recvRegion(block(from), blk), slot(k), {ready, staged[from]});
    else
      s->get(from, recvRegion(block(from), blk), slot(k), {ready});
  }
  return Status::Ok();
}

double allToAllStagedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return c.alphaUs + 2 * c.syncUs + (p - 2) * c.msgUs + (p - 1) * n * c.betaUsPerByte / 2 +
         scratchReadUs(d, c, (p - 1) * n, p - 1) + (d.inPlace ? 0 : n * c.betaUsPerByte / 2);
}

}  // namespace weft::algo
