// Direct all-gather: every rank sends its block straight from the caller's input to each peer, and
// each peer's block arrives straight into its place in the output. The p-1 messages each way do
// not wait on one another, so the whole call is one hand-off deep: for small blocks on few ranks,
// where a logarithmic algorithm pays log2(p) hand-offs in sequence (each a context switch where
// ranks outnumber CPUs). The input is read once per peer, where the ring reads it once and
// forwards from slots in cache; that copy decides against it for large blocks.
//
// Cost: alpha + (p-2) msg + (p-1) n beta + (p-2) n delta, n = the bytes of one block (the first
// message is the hand-off; each further one adds msg).
#include "algorithms/registry.h"

namespace weft::algo {

Status allGatherDirect(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  auto at = [&](int j) { return recvRegion(static_cast<uint64_t>(j) * blk, blk); };
  if (!d.inPlace) s->copy(at(r), sendRegion(0, blk));
  for (int k = 1; k < p; ++k) {
    const int to = (r + k) % p, from = (r - k + p) % p;
    s->send(to, sendRegion(0, blk));
    s->recv(from, at(from));
  }
  return Status::Ok();
}

double allGatherDirectCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return c.alphaUs + (p - 2) * (c.msgUs + n * c.copyUsPerByte) + (p - 1) * n * c.betaUsPerByte;
}

}  // namespace weft::algo
