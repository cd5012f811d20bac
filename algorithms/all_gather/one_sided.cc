// One-sided all-gather: every rank copies each peer's input straight from the peer's send buffer
// into its own output, one copy per byte and no signal beyond the window exchange.
//
// Cost: 2 sync + (p-1) n peer copy (mapped, or through the kernel in p-1 calls).
#include "algorithms/registry.h"

namespace weft::algo {

Status allGatherOneSided(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  const uint64_t n = d.bytes();
  if (!d.inPlace) s->copy(recvRegion(static_cast<uint64_t>(r) * n, n), sendRegion(0, n));
  for (int k = 1; k < p; ++k) {
    const int q = (r + k) % p;
    s->get(q, recvRegion(static_cast<uint64_t>(q) * n, n), sendRegion(0, n));
    s->exposeTo.push_back(q);
  }
  return Status::Ok();
}

double allGatherOneSidedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return 2 * c.syncUs + peerCopyUs(d, c, (p - 1) * n, p - 1);
}

}  // namespace weft::algo
