// Bruck all-gather (Bruck et al. 1997): ceil(log2 p) steps for any rank count.
//
// Each rank gathers in a scratch buffer where position j holds the block of rank r + j (mod p),
// its own block at position 0. At step k (distance D = 2^k) it sends positions [0, m) to rank r - D
// and receives positions [D, D + m) from rank r + D, m = min(D, p - D): the first m blocks the
// sender holds are exactly the m blocks that follow the receiver's first D. After the last step the
// scratch holds every block, rotated by r; the local rotation into the output is done piece by
// piece, each received piece copied to its place (one copy, or two where it wraps past rank p-1) as
// soon as it has arrived, so it overlaps the later steps. The first step sends the caller's input
// directly. Each peer is met at most once in each direction.
//
// Cost: ceil(log2 p) alpha + (p-1)/p n beta + n delta (n: the whole output, p blocks; delta: a
// byte copied locally, priced as copyUsPerByte: the copy into scratch and the rotation).
#include <algorithm>
#include <vector>

#include "algorithms/patterns/ring.h"
#include "algorithms/registry.h"

namespace weft::algo {

Status allGatherBruck(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  auto pos = [&](int first, int count) {
    return scratchRegion(static_cast<uint64_t>(first) * blk, static_cast<uint64_t>(count) * blk);
  };
  auto out = [&](int first, int count) {
    return recvRegion(static_cast<uint64_t>(first) * blk, static_cast<uint64_t>(count) * blk);
  };
  s->scratchBytes = static_cast<uint64_t>(p) * blk;
  if (!d.inPlace) s->copy(out(r, 1), sendRegion(0, blk));
  // Position 0 is needed in scratch only from the second step on.
  const StepId own = p > 2 ? s->copy(pos(0, 1), sendRegion(0, blk)) : kNoStep;
  std::vector<StepId> got;  // got[k]: the receive of step k, into positions [2^k, 2^k + m_k)
  for (int k = 0, dist = 1; dist < p; ++k, dist *= 2) {
    const int m = std::min(dist, p - dist);
    if (k == 0) {
      s->send(patterns::mod(r - dist, p), sendRegion(0, blk));
    } else {
      // Positions [0, m) were filled by the own copy and the receives of the steps j with 2^j < m.
      Step st;
      st.kind = StepKind::kSend;
      st.sendPeer = patterns::mod(r - dist, p);
      st.src = pos(0, m);
      std::vector<StepId> after = {own};
      for (int j = 0; (1 << j) < m; ++j)
        after.push_back(got[static_cast<size_t>(j)]);
      s->add(st, after);
    }
    got.push_back(s->recv(patterns::mod(r + dist, p), pos(dist, m)));
    // Rotate the piece into place: position j is block (r + j) mod p.
    const int first = (r + dist) % p;
    const int head = std::min(m, p - first);  // blocks before the wrap past rank p-1
    s->copy(out(first, head), pos(dist, head), {got.back()});
    if (head < m) s->copy(out(0, m - head), pos(dist + head, m - head), {got.back()});
  }
  return Status::Ok();
}

double allGatherBruckCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return log2Ceil(d.nranks) * c.alphaUs + (p - 1) * n * c.betaUsPerByte + p * n * c.copyUsPerByte;
}

}  // namespace weft::algo
