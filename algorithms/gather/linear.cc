// Linear gather: every rank sends its block straight to the root, which receives each one straight
// into its place in the output (block q at q*n) and copies its own. The root's receives have no
// order between them: the engine takes whichever arrives, pipelined in chunks. For large blocks,
// where the root's link is the bottleneck whatever the shape. In place on the root: sendbuff ==
// recvbuff + root*n, and the own block is already there. Cost: (p-1) (alpha + n beta), n = the
// bytes of one block.
#include "algorithms/registry.h"

namespace weft::algo {

Status gatherLinear(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  const uint64_t n = d.bytes();
  if (r != d.root) {
    s->send(d.root, sendRegion(0, n));
    return Status::Ok();
  }
  if (!d.inPlace) s->copy(recvRegion(static_cast<uint64_t>(r) * n, n), sendRegion(0, n));
  for (int k = 1; k < p; ++k) {
    const int q = (r + k) % p;
    s->recv(q, recvRegion(static_cast<uint64_t>(q) * n, n));
  }
  return Status::Ok();
}

double gatherLinearCost(const CollDesc& d, const LevelCost& c) {
  return (d.nranks - 1) * (c.alphaUs + static_cast<double>(d.bytes()) * c.betaUsPerByte);
}

}  // namespace weft::algo
