// Staged broadcast: the root copies its buffer once into its own scratch, which the other ranks
// map, and every other rank copies it from there straight into its output (patterns/staged.h),
// piece by piece as the root stages them. The root makes one copy into shared memory (and its own
// copy, out of place) and every other rank one copy out of it, where the chain copies every chunk
// twice on every rank between (out of a slot into the output and into the next slot), and the tree
// has the root send the buffer ceil(log2 p) times.
//
// Ordinary buffers gain from this where the engine's scratch is mapped by peers
// (CollDesc::scratchShared); elsewhere each read is a copy through the kernel.
//
// Cost: alpha + 2 sync + 2 m (p-1) msg + n beta/2 + n (beta/2 mapped, or the peer copy): the root
// stages while the others read, each rank copying the buffer once.
#include "algorithms/patterns/staged.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status broadcastStaged(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, root = d.root;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes();
  patterns::stagedPublish(
      d, s, n, [root](int q) { return q == root; }, sendRegion(0, n),
      [n](int) { return recvRegion(0, n); }, !d.inPlace);
  return Status::Ok();
}

double broadcastStagedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks;
  return patterns::stagedPublishCost(d, c, static_cast<double>(d.bytes()), 1, 1, p - 1);
}

}  // namespace weft::algo
