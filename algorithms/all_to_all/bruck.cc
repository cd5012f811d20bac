// Bruck all-to-all, for small blocks on any number of ranks: ceil(log2 p) phases instead of p-1
// messages. Block i of rank r is its block for rank (r+i) mod p (patterns/bruck.h). In phase k
// every rank packs the blocks whose index has bit k set into one scratch message (copies), sends it
// to rank r + 2^k, receives the same indices from rank r - 2^k and unpacks them: a block whose
// highest set bit is k has arrived and goes straight to its place in the output (block i of rank r
// came from rank r - i); the others wait in a scratch slot for a later phase. Phase 0 reads the
// caller's input directly, so there is no initial rotation, and nothing is rotated at the end.
//
// Scratch: p blocks for blocks in transit, plus one packed message each way. Dependencies: a pack
// copy waits for the step that last wrote its block and for the previous phase's send (the pack
// area is reused); a receive waits for the previous phase's unpacking (the unpack area is reused);
// an unpack into a slot waits for this phase's pack copy of the same block.
//
// In place, every outgoing block is first copied to its scratch slot; an output block is written
// only after the copy of the input block at the same place.
//
// Cost: ceil(log2 p) (alpha + (p/2) n beta + p n copy), n = the bytes of one block: about p/2
// blocks move per phase and each is copied twice (packed and unpacked).
#include <algorithm>

#include "algorithms/patterns/bruck.h"
#include "algorithms/registry.h"

namespace weft::algo {
namespace {

// A send or receive that waits for a list of steps.
StepId message(Schedule* s, StepKind kind, int peer, Region r, const std::vector<StepId>& after) {
  Step st;
  st.kind = kind;
  if (kind == StepKind::kSend) {
    st.sendPeer = peer;
    st.src = r;
  } else {
    st.recvPeer = peer;
    st.dst = r;
  }
  return s->add(st, after);
}

}  // namespace

Status allToAllBruck(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t blk = d.bytes();
  const int phases = patterns::bruckPhases(p);
  size_t maxBlocks = 0;
  for (int k = 0; k < phases; ++k)
    maxBlocks = std::max(maxBlocks, patterns::bruckBlocks(p, k).size());
  // Scratch: [slots: p blocks][pack: maxBlocks][unpack: maxBlocks].
  const uint64_t packOff = static_cast<uint64_t>(p) * blk;
  const uint64_t unpackOff = packOff + maxBlocks * blk;
  s->scratchBytes = unpackOff + maxBlocks * blk;
  auto slot = [&](int i) { return scratchRegion(static_cast<uint64_t>(i) * blk, blk); };
  auto userBlock = [&](int j) { return static_cast<uint64_t>(j) * blk; };  // rank j's place

  // Where block i lives now and the step that put it there.
  std::vector<Region> loc(static_cast<size_t>(p));
  std::vector<StepId> writer(static_cast<size_t>(p), kNoStep);
  // In place: which step copied the input block at each place out of the way.
  std::vector<StepId> saved(static_cast<size_t>(p), kNoStep);
  for (int i = 1; i < p; ++i) {
    const int j = (r + i) % p;
    if (d.inPlace) {
      saved[static_cast<size_t>(j)] = writer[static_cast<size_t>(i)] =
          s->copy(slot(i), sendRegion(userBlock(j), blk));
      loc[static_cast<size_t>(i)] = slot(i);
    } else {
      loc[static_cast<size_t>(i)] = sendRegion(userBlock(j), blk);
    }
  }
  if (!d.inPlace) s->copy(recvRegion(userBlock(r), blk), sendRegion(userBlock(r), blk));

  StepId lastSend = kNoStep;
  std::vector<StepId> lastUnpack;
  for (int k = 0; k < phases; ++k) {
    const std::vector<int> blocks = patterns::bruckBlocks(p, k);
    const uint64_t msg = blocks.size() * blk;
    const int to = (r + (1 << k)) % p, from = (r - (1 << k) % p + p) % p;
    std::vector<StepId> packed;
    for (size_t b = 0; b < blocks.size(); ++b) {
      const auto i = static_cast<size_t>(blocks[b]);
      packed.push_back(
          s->copy(scratchRegion(packOff + b * blk, blk), loc[i], {writer[i], lastSend}));
    }
    lastSend = message(s, StepKind::kSend, to, scratchRegion(packOff, msg), packed);
    const StepId got = message(s, StepKind::kRecv, from, scratchRegion(unpackOff, msg), lastUnpack);
    lastUnpack.clear();
    for (size_t b = 0; b < blocks.size(); ++b) {
      const int i = blocks[b];
      const auto ii = static_cast<size_t>(i);
      const Region src = scratchRegion(unpackOff + b * blk, blk);
      StepId u;
      if (patterns::bruckLastPhase(i) == k) {
        const int source = (r - i + p) % p;  // block i came from rank r - i
        u = s->copy(recvRegion(userBlock(source), blk), src,
                    {got, saved[static_cast<size_t>(source)]});
      } else {
        u = s->copy(slot(i), src, {got, packed[b]});
        loc[ii] = slot(i);
      }
      writer[ii] = u;
      lastUnpack.push_back(u);
    }
  }
  return Status::Ok();
}

double allToAllBruckCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return log2Ceil(d.nranks) * (c.alphaUs + p / 2 * n * c.betaUsPerByte + p * n * c.copyUsPerByte);
}

}  // namespace weft::algo
