// Binomial-subtree arithmetic for gather and scatter, over the virtual ranks of patterns/tree.h
// (the root is virtual rank 0).
//
// Virtual rank v's subtree is the contiguous range [v, v + binomialSubtreeSize(v, p)). Gather moves
// a subtree's blocks towards the root in virtual order, scatter away from it. On the root the
// blocks sit at real-rank positions, where the virtual order wraps around once: virtual rank p -
// root is real rank 0. A range that straddles that point is therefore moved as two messages, split
// there, by both ends alike (wrapPieces), so that the root can send or receive every piece in
// place.
#pragma once

#include <utility>
#include <vector>

namespace weft::patterns {

inline int binomialSubtreeSize(int vrank, int nranks) {
  if (vrank == 0) return nranks;
  const int low = vrank & -vrank;
  return low < nranks - vrank ? low : nranks - vrank;
}

// [begin, end) in virtual ranks, cut where the real rank wraps to 0: one or two pieces.
inline std::vector<std::pair<int, int>> wrapPieces(int begin, int end, int root, int nranks) {
  const int wrap = (nranks - root) % nranks;
  if (wrap > begin && wrap < end) return {{begin, wrap}, {wrap, end}};
  return {{begin, end}};
}

}  // namespace weft::patterns
