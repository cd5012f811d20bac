// Staged all-gather: every rank copies its block once into its own scratch, which its peers map,
// and every peer copies it from there straight into its output (patterns/staged.h). A rank makes
// p+1 copies where the ring makes 2p-1 (each block into a slot and out of it, at every hop): the
// saving grows with p, and there is no hop-by-hop chain for ranks that outnumber CPUs to wait on.
// On 2 ranks it makes as many copies as the ring and pays the signals on top.
//
// Ordinary buffers gain from this where the engine's scratch is mapped by peers
// (CollDesc::scratchShared); elsewhere each read is a copy through the kernel.
//
// Cost: alpha + 2 sync + 2 m (p-1) msg + n beta/2 + (p-1) n (beta/2 mapped, or the peer copy),
// n = the bytes of one block, m = its pieces.
#include "algorithms/patterns/staged.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allGatherStaged(const CollDesc& d, Schedule* s) {
  const int p = d.nranks;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  patterns::stagedPublish(
      d, s, n, [](int) { return true; }, sendRegion(0, n),
      [&](int q) { return recvRegion(static_cast<uint64_t>(q) * n, n); }, !d.inPlace);
  return Status::Ok();
}

double allGatherStagedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks;
  return patterns::stagedPublishCost(d, c, static_cast<double>(d.bytes()), 1, p - 1, p - 1);
}

}  // namespace weft::algo
