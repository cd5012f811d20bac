// Publishing blocks through shared scratch: a rank that owns a block copies it once into its own
// scratch, which its peers map (CollDesc::scratchShared), signals each reader with a zero-byte
// message, and every reader copies it from there into its output. Each block is written once into
// shared memory and read once per reader, with no hop-by-hop forwarding.
//
// The block goes through the scratch in pieces of kStagePiece bytes, kStageSlots at a time: the
// owner stages piece i, signals it, copies its own piece i out of the scratch while it is in cache
// (where it keeps a copy), and stages piece i+kStageSlots into the same slot once every reader has
// acknowledged piece i and its own copy of it is done. So the scratch stays at kStageSlots pieces,
// small enough to live in cache however large the block, and readers copy piece i while piece i+1
// is staged.
//
// Message order: per piece, for k = 1..p-1 with to = r+k and from = r-k, an owner signals `to`,
// a reader waits for `from` (an owner) and acknowledges it, and an owner waits for `to`'s
// acknowledgement. The signals rank r sends to x and those x waits for from r come in the same
// order on both ranks, since each depends only on (piece, whether r and x own a block).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "algorithms/registry.h"
#include "core/coll.h"
#include "core/schedule.h"

namespace weft::patterns {

constexpr uint64_t kStagePiece = 256u << 10;
constexpr uint64_t kStageSlots = 4;

inline uint64_t stagePieceBytes(uint64_t elemSize) {
  return std::max<uint64_t>(kStagePiece / elemSize * elemSize, elemSize);
}

// Every rank calls this with the same n, owners and piece size. `owns(q)`: whether rank q
// publishes a block of n bytes. `src`: this rank's block (offset 0 of it; used when it owns one).
// `dstOf(q)`: where this rank puts rank q's block in its output (offset 0 of it); for this rank's
// own block, where its own copy goes, if `copyOwn`.
template <typename Owns, typename DstOf>
void stagedPublish(const CollDesc& d, Schedule* s, uint64_t n, Owns owns, Region src, DstOf dstOf,
                   bool copyOwn) {
  const int p = d.nranks, r = d.rank;
  const uint64_t piece = stagePieceBytes(d.elemSize);
  const uint64_t m = (n + piece - 1) / piece;
  const bool owner = owns(r);
  if (owner) {
    s->scratchBytes = std::max(s->scratchBytes, std::min(n, kStageSlots * piece));
    for (int k = 1; k < p; ++k)
      s->exposeTo.push_back((r + k) % p);
  }
  // acked[i % kStageSlots]: the readers' acknowledgements of piece i, which piece i + kStageSlots
  // waits for.
  std::vector<std::vector<StepId>> acked(kStageSlots);
  for (uint64_t i = 0; i < m; ++i) {
    const uint64_t off = i * piece, len = std::min(piece, n - off);
    const Region slot = scratchRegion((i % kStageSlots) * piece, len);
    auto at = [&](int q) {
      Region g = dstOf(q);
      g.offset += off;
      g.bytes = len;
      return g;
    };
    StepId staged = kNoStep;
    if (owner) {
      Region from = src;
      from.offset += off;
      from.bytes = len;
      staged = s->copy(slot, from, acked[i % kStageSlots]);
      acked[i % kStageSlots].clear();
    }
    const bool reused = i + kStageSlots < m;  // the slot takes another piece after this one
    if (owner && copyOwn) {
      // The owner's own copy reads the slot too: the piece staged there next waits for it.
      const StepId own = s->copy(at(r), slot, {staged});
      if (reused) acked[i % kStageSlots].push_back(own);
    }
    for (int k = 1; k < p; ++k) {
      const int to = (r + k) % p, from = (r - k + p) % p;
      if (owner) s->signal(to, {staged});
      if (owns(from)) {
        const StepId ready = s->waitFor(from);
        const StepId got = s->get(from, at(from), slot, {ready});
        if (reused) s->signal(from, {got});
      }
      if (owner && reused) acked[i % kStageSlots].push_back(s->waitFor(to));
    }
  }
}

// What stagedPublish costs a rank that stages `staged` blocks and reads `read` of n bytes each, on
// p ranks with `signals` peers signalled per piece: a copy into or out of shared memory is half
// of what a message costs per byte (beta: into a slot and out of it); a read from scratch that
// peers cannot map goes through the kernel, one call per piece.
inline double stagedPublishCost(const CollDesc& d, const LevelCost& c, double n, double staged,
                                double read, double signals) {
  const double m = std::ceil(n / static_cast<double>(stagePieceBytes(d.elemSize)));
  return c.alphaUs + 2 * c.syncUs + 2 * m * signals * c.msgUs + staged * n * c.betaUsPerByte / 2 +
         scratchReadUs(d, c, read * n, read * m);
}

}  // namespace weft::patterns
