// Recursive doubling and halving peer arithmetic, with the fold that handles rank counts that are
// not powers of two (Thakur, Rabenseifner & Gropp, 2005), apart from any data movement.
//
// With P = 2^floor(log2 p) and extra = p - P, the first 2 * extra ranks pair up: each even one
// hands its data to the odd rank above it, which stands for both in the exchange, and gets the
// result back at the end. The other P ranks, renumbered 0..P-1 ("virtual ranks"), exchange with
// partners v ^ 2^k. Virtual rank v stands for the ranks [foldFirst(v), foldFirst(v + 1)): one or
// two of them, and any aligned group of virtual ranks stands for a contiguous range of ranks, so
// the data of a group is one contiguous range of per-rank blocks.
#pragma once

namespace weft::patterns {

struct Fold {
  int pow2 = 1;   // P: the largest power of two <= nranks
  int extra = 0;  // nranks - P: the number of folded pairs
};

inline Fold foldOf(int nranks) {
  Fold f;
  while (f.pow2 * 2 <= nranks)
    f.pow2 *= 2;
  f.extra = nranks - f.pow2;
  return f;
}

// The virtual rank `rank` plays, or -1 for an even rank below 2 * extra, which folds into rank + 1.
inline int foldVirtual(int rank, const Fold& f) {
  if (rank < 2 * f.extra) return rank % 2 == 1 ? rank / 2 : -1;
  return rank - f.extra;
}

// The rank that plays virtual rank v.
inline int foldReal(int v, const Fold& f) {
  return v < f.extra ? 2 * v + 1 : v + f.extra;
}

// The first rank that virtual rank v stands for; foldFirst(P) is nranks.
inline int foldFirst(int v, const Fold& f) {
  return v < f.extra ? 2 * v : v + f.extra;
}

// The first virtual rank of the aligned group of `size` (a power of two) that contains v.
inline int groupStart(int v, int size) {
  return v & ~(size - 1);
}

}  // namespace weft::patterns
