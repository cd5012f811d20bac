// Staged all-gather: every rank copies its block once into its own scratch, which its peers can
// reach, tells them it is there with a zero-byte message, and every peer copies it from there
// straight into its output. A block is written once into shared memory and read once by each peer,
// so a rank makes p+1 copies where the ring makes 2p-1 (each block into a slot and out of it, at
// every hop): the saving grows with p, and there is no hop-by-hop chain for ranks that outnumber
// CPUs to wait on. On 2 ranks it makes as many copies as the ring and pays the signals on top.
//
// The block goes through the scratch in pieces of kPiece bytes, kSlots at a time: a rank stages
// piece i, signals it ready to every peer, and copies its own piece i out of the scratch while it
// is in cache; each peer copies piece i and acknowledges it, and the rank stages piece i+kSlots
// into the same slot once every peer has acknowledged piece i. So the scratch stays small enough
// to live in cache however large the block, and peers copy piece i while piece i+1 is staged.
//
// Ordinary buffers gain from this where the engine's scratch is mapped by peers
// (CollDesc::scratchShared); elsewhere each read is a copy through the kernel.
//
// Cost: alpha + 2 sync + 2 m (p-1) msg + n beta/2 + (p-1) n (beta/2 mapped, or the peer copy),
// n = the bytes of one block, m = its pieces. A copy into or out of shared memory is half of what
// a message costs per byte (beta: into a slot and out of it).
#include <algorithm>

#include "algorithms/registry.h"

namespace weft::algo {
namespace {

constexpr uint64_t kPiece = 256u << 10;
constexpr uint64_t kSlots = 4;

uint64_t pieceBytes(const CollDesc& d) {
  return std::max<uint64_t>(kPiece / d.elemSize * d.elemSize, d.elemSize);
}

}  // namespace

Status allGatherStaged(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes(), piece = pieceBytes(d);
  const uint64_t m = (n + piece - 1) / piece;
  s->scratchBytes = std::min(n, kSlots * piece);
  for (int k = 1; k < p; ++k)
    s->exposeTo.push_back((r + k) % p);
  // acked[i % kSlots]: the peers' acknowledgements of piece i, which piece i + kSlots waits for.
  std::vector<std::vector<StepId>> acked(kSlots);
  for (uint64_t i = 0; i < m; ++i) {
    const uint64_t off = i * piece, len = std::min(piece, n - off);
    const Region slot = scratchRegion((i % kSlots) * piece, len);
    const StepId staged = s->copy(slot, sendRegion(off, len), acked[i % kSlots]);
    acked[i % kSlots].clear();
    if (!d.inPlace) s->copy(recvRegion(static_cast<uint64_t>(r) * n + off, len), slot, {staged});
    const bool reused = i + kSlots < m;  // the slot takes another piece after this one
    for (int k = 1; k < p; ++k) {
      const int to = (r + k) % p, from = (r - k + p) % p;
      s->signal(to, {staged});
      const StepId ready = s->waitFor(from);
      const StepId got =
          s->get(from, recvRegion(static_cast<uint64_t>(from) * n + off, len), slot, {ready});
      if (reused) {
        s->signal(from, {got});
        acked[i % kSlots].push_back(s->waitFor(to));
      }
    }
  }
  return Status::Ok();
}

double allGatherStagedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  const double m = std::ceil(n / static_cast<double>(pieceBytes(d)));
  const double read = d.scratchShared ? c.betaUsPerByte / 2 : c.copyUsPerByte;
  return c.alphaUs + 2 * c.syncUs + m * (p - 1) * 2 * c.msgUs + n * c.betaUsPerByte / 2 +
         (p - 1) * n * read;
}

}  // namespace weft::algo
