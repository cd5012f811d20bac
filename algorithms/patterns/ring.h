// Ring peer arithmetic and block partitioning, apart from any data movement (tests enumerate it).
#pragma once

#include <cstdint>

namespace weft::patterns {

inline int ringNext(int rank, int nranks) {
  return (rank + 1) % nranks;
}
inline int ringPrev(int rank, int nranks) {
  return (rank + nranks - 1) % nranks;
}
// ((x mod n) + n) mod n for possibly negative x.
inline int mod(int64_t x, int n) {
  return static_cast<int>(((x % n) + n) % n);
}

// Splits `count` elements into `parts` contiguous blocks whose sizes differ by at most one; the
// first count % parts blocks get the extra element.
struct Block {
  uint64_t offset;  // in elements
  uint64_t count;
};
inline Block blockOf(uint64_t count, int parts, int index) {
  const uint64_t base = count / static_cast<uint64_t>(parts);
  const uint64_t extra = count % static_cast<uint64_t>(parts);
  const uint64_t i = static_cast<uint64_t>(index);
  return {i * base + (i < extra ? i : extra), base + (i < extra ? 1 : 0)};
}

}  // namespace weft::patterns
