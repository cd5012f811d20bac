// Binomial-tree peer arithmetic over ranks renumbered so that the root is 0 ("virtual ranks").
//
// Virtual rank v's parent is v with its lowest set bit cleared; its children are v + m for every
// power of two m below v's lowest set bit (every power below nranks for the root) with v + m <
// nranks. Children are listed from the largest subtree to the smallest, the order in which a
// broadcast should feed them.
#pragma once

#include <vector>

namespace weft::patterns {

inline int toVirtual(int rank, int root, int nranks) {
  return (rank - root + nranks) % nranks;
}
inline int fromVirtual(int vrank, int root, int nranks) {
  return (vrank + root) % nranks;
}

inline int binomialParent(int vrank) {
  return vrank == 0 ? -1 : vrank & (vrank - 1);
}

inline std::vector<int> binomialChildren(int vrank, int nranks) {
  int limit = 1;
  if (vrank == 0) {
    while (limit < nranks)
      limit <<= 1;
  } else {
    limit = vrank & -vrank;
  }
  std::vector<int> children;
  for (int m = limit >> 1; m >= 1; m >>= 1)
    if (vrank + m < nranks) children.push_back(vrank + m);
  return children;
}

}  // namespace weft::patterns
