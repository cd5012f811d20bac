// Pairwise all-to-all-v: the all-to-all pairwise exchange with per-peer counts and displacements.
// In step k rank r sends sendcounts[(r+k) mod p] elements from sdispls[(r+k) mod p] and receives
// recvcounts[(r-k) mod p] elements at rdispls[(r-k) mod p]; the own block is a local copy. Every
// pair exchanges one message per direction even when its count is zero: a zero-byte message still
// matches in order, so both ends stay in step, and the receiver checks every message's size
// against its own count (MsgTag::msgBytes), which is how a sendcounts[j] on rank i that differs
// from recvcounts[i] on rank j is reported instead of mixing data. Bytes of the output outside
// every receive range are never written. Not in place (the API refuses sendbuff == recvbuff).
// Cost: alpha + (p-2) msg + n beta, n = the bytes this rank sends (the exchanges overlap: the first
// message is the hand-off, each further one adds msg).
#include "algorithms/registry.h"

namespace weft::algo {

Status allToAllvPairwise(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  const PeerLayout& v = d.layout;
  if (v.sendCounts == nullptr || v.sendDispls == nullptr || v.recvCounts == nullptr ||
      v.recvDispls == nullptr)
    return Status(weftInternalError, "all_to_all_v was planned without its count arrays");
  if (d.inPlace) return Status(weftInternalError, "all_to_all_v cannot run in place");
  const uint64_t es = d.elemSize;
  auto out = [&](int j) { return sendRegion(v.sendDispls[j] * es, v.sendCounts[j] * es); };
  auto in = [&](int j) { return recvRegion(v.recvDispls[j] * es, v.recvCounts[j] * es); };
  if (v.sendCounts[r] != v.recvCounts[r])
    return errorStatus(weftInternalError,
                       "all_to_all_v: sendcounts[%d] = %zu differs from recvcounts[%d] = %zu", r,
                       v.sendCounts[r], r, v.recvCounts[r]);
  if (v.sendCounts[r] > 0) s->copy(in(r), out(r));
  for (int k = 1; k < p; ++k) {
    const int to = (r + k) % p, from = (r - k + p) % p;
    s->send(to, out(to));
    s->recv(from, in(from));
  }
  return Status::Ok();
}

double allToAllvPairwiseCost(const CollDesc& d, const LevelCost& c) {
  return c.alphaUs + (d.nranks - 2) * c.msgUs + static_cast<double>(d.bytes()) * c.betaUsPerByte;
}

}  // namespace weft::algo
