// Peer arithmetic of patterns/recursive.h and patterns/double_binary_tree.h, enumerated for many
// rank counts without any data movement.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "algorithms/patterns/double_binary_tree.h"
#include "algorithms/patterns/recursive.h"

namespace weft::patterns {
namespace {

TEST(RecursivePattern, FoldMapsEveryRankOnceAndGroupsAreContiguous) {
  for (int p = 1; p <= 130; ++p) {
    const Fold f = foldOf(p);
    ASSERT_EQ(f.pow2 & (f.pow2 - 1), 0) << p;
    ASSERT_LE(f.pow2, p);
    ASSERT_GT(2 * f.pow2, p);
    ASSERT_EQ(f.pow2 + f.extra, p);
    std::vector<int> playedBy(static_cast<size_t>(f.pow2), -1);
    for (int r = 0; r < p; ++r) {
      const int v = foldVirtual(r, f);
      if (v < 0) {
        // Folded: an even rank below 2 * extra, whose partner r + 1 plays for it.
        EXPECT_EQ(r % 2, 0);
        EXPECT_LT(r, 2 * f.extra);
        EXPECT_EQ(foldVirtual(r + 1, f), r / 2);
        continue;
      }
      ASSERT_LT(v, f.pow2);
      EXPECT_EQ(playedBy[static_cast<size_t>(v)], -1) << "p=" << p << " v=" << v;
      playedBy[static_cast<size_t>(v)] = r;
      EXPECT_EQ(foldReal(v, f), r);
      // v stands for [foldFirst(v), foldFirst(v + 1)), which holds r.
      EXPECT_LE(foldFirst(v, f), r);
      EXPECT_GT(foldFirst(v + 1, f), r);
      EXPECT_EQ(foldFirst(v + 1, f) - foldFirst(v, f), v < f.extra ? 2 : 1);
    }
    EXPECT_EQ(foldFirst(0, f), 0);
    EXPECT_EQ(foldFirst(f.pow2, f), p);
    for (int size = 1; size <= f.pow2; size *= 2)
      for (int v = 0; v < f.pow2; ++v) {
        EXPECT_EQ(groupStart(v, size) % size, 0);
        EXPECT_LE(groupStart(v, size), v);
        EXPECT_LT(v, groupStart(v, size) + size);
      }
  }
}

// Depth of `rank` in a tree given by links, or -1 if following parents does not reach the root.
int depthOf(const std::vector<TreeLinks>& t, int rank) {
  int depth = 0;
  for (int x = rank; t[static_cast<size_t>(x)].parent >= 0; x = t[static_cast<size_t>(x)].parent)
    if (++depth > static_cast<int>(t.size())) return -1;
  return depth;
}

TEST(DoubleBinaryTreePattern, TreesAreConsistentSpanningAndComplementary) {
  for (int p = 1; p <= 200; ++p) {
    std::vector<std::vector<TreeLinks>> trees(2);
    for (int tree = 0; tree < 2; ++tree) {
      std::vector<TreeLinks>& t = trees[static_cast<size_t>(tree)];
      for (int r = 0; r < p; ++r)
        t.push_back(doubleBinaryTree(tree, r, p));
      int roots = 0, maxDepth = 0;
      std::vector<int> listedAsChild(static_cast<size_t>(p), 0);
      for (int r = 0; r < p; ++r) {
        const TreeLinks& l = t[static_cast<size_t>(r)];
        if (l.parent < 0) ++roots;
        for (int c : l.child) {
          if (c < 0) continue;
          ASSERT_LT(c, p);
          ASSERT_NE(c, r);
          EXPECT_EQ(t[static_cast<size_t>(c)].parent, r) << "p=" << p << " tree " << tree;
          ++listedAsChild[static_cast<size_t>(c)];
        }
        if (l.child[0] >= 0 && l.child[1] >= 0) {
          EXPECT_NE(l.child[0], l.child[1]);
        }
        const int depth = depthOf(t, r);
        ASSERT_GE(depth, 0) << "p=" << p << " tree " << tree << " rank " << r;
        maxDepth = std::max(maxDepth, depth);
      }
      EXPECT_EQ(roots, 1) << "p=" << p << " tree " << tree;
      for (int r = 0; r < p; ++r)
        EXPECT_EQ(listedAsChild[static_cast<size_t>(r)],
                  t[static_cast<size_t>(r)].parent >= 0 ? 1 : 0)
            << "p=" << p << " tree " << tree << " rank " << r;
      int log2p = 0;
      while ((1 << log2p) < p)
        ++log2p;
      EXPECT_LE(maxDepth, log2p + 1) << "p=" << p;
    }
    // Complementary: a rank has children in at most one tree, rank 0 of an odd count aside, which
    // is tree 0's root with a single child.
    for (int r = 0; r < p; ++r) {
      auto children = [&](int tree) {
        const TreeLinks& l = trees[static_cast<size_t>(tree)][static_cast<size_t>(r)];
        return (l.child[0] >= 0) + (l.child[1] >= 0);
      };
      if (r == 0 && p % 2 == 1 && p > 1) {
        EXPECT_EQ(children(0), 1);
        continue;
      }
      EXPECT_TRUE(children(0) == 0 || children(1) == 0) << "p=" << p << " rank " << r;
    }
  }
}

}  // namespace
}  // namespace weft::patterns
