// Bruck all-to-all index arithmetic, apart from any data movement (tests enumerate it).
//
// Rank r's block for rank (r + i) mod p is "block i". Bruck's algorithm runs ceil(log2 p) phases;
// in phase k every rank sends the blocks whose index has bit k set to rank r + 2^k and receives the
// same indices from rank r - 2^k. A block thus travels i ranks in all, one power of two at a time,
// and after the last phase block i of rank r holds the data that rank r - i sent to r.
#pragma once

#include <vector>

namespace weft::patterns {

// Phases for p ranks: ceil(log2 p), 0 for a single rank.
inline int bruckPhases(int nranks) {
  int k = 0;
  while ((1 << k) < nranks)
    ++k;
  return k;
}

// The block indices moved in phase k, ascending (the order in which they are packed).
inline std::vector<int> bruckBlocks(int nranks, int phase) {
  std::vector<int> out;
  for (int i = 1; i < nranks; ++i)
    if ((i >> phase) & 1) out.push_back(i);
  return out;
}

// The last phase that moves block i (its highest set bit): after it the block is final.
inline int bruckLastPhase(int index) {
  int k = -1;
  for (int i = index; i != 0; i >>= 1)
    ++k;
  return k;
}

}  // namespace weft::patterns
