// Pairwise all-to-all: p-1 steps; in step k rank r sends its block for rank (r+k) mod p straight
// from the caller's input and receives rank (r-k) mod p's block straight into the output. Each
// pair of ranks exchanges exactly one message per direction, so the steps need no ordering
// between them: the engine runs them all as slots allow, pipelined in chunks. The own block is a
// local copy.
//
// In place (sendbuff == recvbuff) the outgoing blocks are first copied to scratch, block by block,
// and each receive waits only for the copy of the block it overwrites (chunk by chunk), so the
// staging overlaps the exchange. The exchanges overlap, so the call is one hand-off deep.
// Cost: alpha + (p-2) msg + (p-1) n beta, n = the bytes of one block (the first message is the
// hand-off; each further one adds msg).
#include "algorithms/registry.h"

namespace weft::algo {

Status allToAllPairwise(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  auto block = [&](int j) { return static_cast<uint64_t>(j) * blk; };
  if (!d.inPlace) {
    s->copy(recvRegion(block(r), blk), sendRegion(block(r), blk));
    for (int k = 1; k < p; ++k) {
      const int to = (r + k) % p, from = (r - k + p) % p;
      s->send(to, sendRegion(block(to), blk));
      s->recv(from, recvRegion(block(from), blk));
    }
    return Status::Ok();
  }
  // Scratch slot of block j (j != r): (j - r - 1) mod p, so p-1 slots.
  auto slot = [&](int j) {
    return scratchRegion(static_cast<uint64_t>((j - r - 1 + p) % p) * blk, blk);
  };
  s->scratchBytes = static_cast<uint64_t>(p - 1) * blk;
  std::vector<StepId> staged(static_cast<size_t>(p), kNoStep);
  for (int k = 1; k < p; ++k) {
    const int j = (r + k) % p;
    staged[static_cast<size_t>(j)] = s->copy(slot(j), sendRegion(block(j), blk));
  }
  for (int k = 1; k < p; ++k) {
    const int to = (r + k) % p, from = (r - k + p) % p;
    s->send(to, slot(to), {staged[static_cast<size_t>(to)]});
    s->recv(from, recvRegion(block(from), blk), {staged[static_cast<size_t>(from)]});
  }
  return Status::Ok();
}

double allToAllPairwiseCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return c.alphaUs + (p - 2) * c.msgUs + (p - 1) * n * c.betaUsPerByte;
}

}  // namespace weft::algo
