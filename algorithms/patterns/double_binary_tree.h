// Double binary tree peer arithmetic (NCCL's ncclGetBtree / ncclGetDtree), apart from any data
// movement.
//
// Tree 0 is an in-order binary tree over the ranks: a rank's lowest set bit b says its level; its
// children are rank - b/2 and rank + b/2 (or the nearest smaller offset that stays below nranks),
// its parent (rank ^ b) | 2b, or rank ^ b where that is out of range. Rank 0 is the root, with the
// single child 2^floor(log2(nranks - 1)). Odd ranks are leaves. For 12 ranks: 0 -> 8; 8 -> 4, 10;
// 4 -> 2, 6; 10 -> 9, 11; 2 -> 1, 3; 6 -> 5, 7.
//
// Tree 1 is tree 0 mirrored (rank r plays nranks-1-r) when nranks is even, shifted by one (rank r
// plays r-1) when it is odd, so its leaves are the even ranks: every rank has children in at most
// one tree, except rank 0 for odd counts, whose tree-0 role is a root with one child (a leaf's
// load).
#pragma once

namespace weft::patterns {

struct TreeLinks {
  int parent = -1;
  int child[2] = {-1, -1};  // -1 where absent
};

inline TreeLinks binaryTree(int rank, int nranks) {
  TreeLinks t;
  int bit = 1;
  while (bit < nranks && (rank & bit) == 0)
    bit <<= 1;
  if (rank == 0) {
    if (nranks > 1) t.child[0] = bit >> 1;
    return t;
  }
  t.parent = (rank ^ bit) | (bit << 1);
  if (t.parent >= nranks) t.parent = rank ^ bit;
  int low = bit >> 1;
  if (low > 0) {
    t.child[0] = rank - low;
    while (low > 0 && rank + low >= nranks)
      low >>= 1;
    if (low > 0) t.child[1] = rank + low;
  }
  return t;
}

// Links of `rank` in tree 0 or tree 1 of the double binary tree.
inline TreeLinks doubleBinaryTree(int tree, int rank, int nranks) {
  if (tree == 0) return binaryTree(rank, nranks);
  const bool odd = nranks % 2 == 1;
  auto to = [&](int r) { return odd ? (r - 1 + nranks) % nranks : nranks - 1 - r; };
  auto from = [&](int r) { return r < 0 ? -1 : odd ? (r + 1) % nranks : nranks - 1 - r; };
  TreeLinks t = binaryTree(to(rank), nranks);
  t.parent = from(t.parent);
  t.child[0] = from(t.child[0]);
  t.child[1] = from(t.child[1]);
  return t;
}

}  // namespace weft::patterns
