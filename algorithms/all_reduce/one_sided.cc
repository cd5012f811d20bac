// One-sided all-reduce: ranks that can reach each other's memory reduce straight from their
// peers' inputs and write straight into their peers' outputs, with no copy through message slots:
// a reduce-scatter by direct reads followed by an all-gather by direct writes.
//
// The buffer is cut into p blocks. Rank r owns block r: chunk by chunk, it reduces the chunk of
// every peer's input into its own output (GetReduce, chained through the peers while the chunk is
// in cache), then writes the finished chunk into every peer's output (Put). Every input byte is
// read once and every output byte written once, which is the least memory traffic an all-reduce
// can have; the only synchronisation is the window exchange and the release.
//
// In place, block r of a peer's buffer is read by r alone (nobody else reduces block r), and r
// writes a chunk there only after it has read that chunk from every peer.
//
// Cost: 2 sync + (p-1)/p n (2 peer copy + gamma), with 2 (p-1) calls per chunk of a block: the
// writes of a chunk go out as soon as it is reduced.
#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

bool needsPeerAccess(const CollDesc& d) {
  return d.peerAccess;
}

Status allReduceOneSided(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const patterns::Block blk = patterns::blockOf(d.count, p, r);
  const uint64_t off = blk.offset * d.elemSize, len = blk.count * d.elemSize;
  const Region mine = recvRegion(off, len);
  StepId last = kNoStep;
  Region cur = sendRegion(off, len);
  for (int k = 1; k < p; ++k) {
    const int q = (r + k) % p;
    last = s->getReduce(q, mine, cur, sendRegion(off, len), {last});
    cur = mine;
    s->exposeTo.push_back(q);
  }
  s->steps[last].finalize = true;
  for (int k = 1; k < p; ++k)
    s->put((r + k) % p, mine, mine, {last});
  return Status::Ok();
}

double allReduceOneSidedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  const double moved = (p - 1) / p * n;
  return 2 * c.syncUs + peerCopyUs(d, c, 2 * moved, 2 * (p - 1) * chunkMoves(n / p, c)) +
         moved * c.gammaUsPerByte;
}

}  // namespace weft::algo
