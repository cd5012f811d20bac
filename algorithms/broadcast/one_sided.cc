// One-sided broadcast: every other rank copies the root's buffer straight into its output.
//
// Cost: 2 sync + n peer copy in one call (the root's buffer is read by every peer at once; on one
// host that is what memory bandwidth allows).
#include "algorithms/registry.h"

namespace weft::algo {

Status broadcastOneSided(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank, root = d.root;
  const uint64_t n = d.bytes();
  if (r == root) {
    if (!d.inPlace) s->copy(recvRegion(0, n), sendRegion(0, n));
    for (int k = 1; k < p; ++k)
      s->exposeTo.push_back((root + k) % p);
  } else {
    s->get(root, recvRegion(0, n), sendRegion(0, n));
  }
  return Status::Ok();
}

double broadcastOneSidedCost(const CollDesc& d, const LevelCost& c) {
  return 2 * c.syncUs + peerCopyUs(d, c, static_cast<double>(d.bytes()), 1);
}

}  // namespace weft::algo
