// Linear scatter: the root sends block q (at q*n in its input) straight to rank q and copies its
// own block; every other rank receives its block straight into the output. The root's sends have
// no order between them and are pipelined in chunks. For large blocks, where the root's link is
// the bottleneck whatever the shape. In place on the root: recvbuff == sendbuff + root*n, and the
// own block is already there. Cost: (p-1) (alpha + n beta), n = the bytes of one block.
#include "algorithms/registry.h"

namespace weft::algo {

Status scatterLinear(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  const uint64_t n = d.bytes();
  if (r != d.root) {
    s->recv(d.root, recvRegion(0, n));
    return Status::Ok();
  }
  if (!d.inPlace) s->copy(recvRegion(0, n), sendRegion(static_cast<uint64_t>(r) * n, n));
  for (int k = 1; k < p; ++k) {
    const int q = (r + k) % p;
    s->send(q, sendRegion(static_cast<uint64_t>(q) * n, n));
  }
  return Status::Ok();
}

double scatterLinearCost(const CollDesc& d, const LevelCost& c) {
  return (d.nranks - 1) * (c.alphaUs + static_cast<double>(d.bytes()) * c.betaUsPerByte);
}

}  // namespace weft::algo
