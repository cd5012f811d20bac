// Where a communicator's ranks are: the node of each rank, its index inside the node, its NUMA
// group there, and the rails that join the ranks of equal local index across nodes. The bootstrap
// learns it once (src/topology/); hierarchical algorithms read it through CollDesc::topo and the
// tuner decides from it whether a call spans nodes.
//
// Nodes are numbered in the order of their lowest rank, and the ranks of a node are listed in
// ascending order; local rank i of every node that has one belongs to rail i. Nodes may hold
// different numbers of ranks (uneven layouts), and then the higher rails leave out the smaller
// nodes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace weft {

class CommLayout {
 public:
  CommLayout() = default;
  // nodeKey[r] and numaKey[r] identify rank r's node and its NUMA node (-1: not known); ranks with
  // equal keys share them.
  CommLayout(const std::vector<std::string>& nodeKey, const std::vector<int>& numaKey);
  // Every rank on its own node (n nodes of one) or all on one node (one node of n): for tests.
  static CommLayout flat(int nranks);
  // Nodes holding the given numbers of consecutive ranks, e.g. {3, 2, 4}: ranks 0-2, 3-4, 5-8.
  static CommLayout blocks(const std::vector<int>& ranksPerNode);

  int nranks() const { return static_cast<int>(node_.size()); }
  int nnodes() const { return static_cast<int>(nodes_.size()); }
  int nodeOf(int rank) const { return node_[static_cast<size_t>(rank)]; }
  int localRank(int rank) const { return local_[static_cast<size_t>(rank)]; }
  int localSize(int rank) const { return static_cast<int>(nodeRanks(nodeOf(rank)).size()); }
  // The ranks of node n, ascending; the first is the node's leader.
  const std::vector<int>& nodeRanks(int node) const { return nodes_[static_cast<size_t>(node)]; }
  int leaderOf(int node) const { return nodes_[static_cast<size_t>(node)].front(); }
  std::vector<int> leaders() const;
  // The ranks of rail i (local rank i of every node that has one), in node order.
  std::vector<int> rail(int i) const;
  int minLocalSize() const { return minLocal_; }
  int maxLocalSize() const { return maxLocal_; }
  bool uniform() const { return minLocal_ == maxLocal_; }
  // Whether the ranks of every node are consecutive (rank = first rank of the node + local rank).
  bool blocked() const { return blocked_; }
  // NUMA group of the rank inside its node: 0.. in order of first appearance within the node.
  int numaOf(int rank) const { return numa_[static_cast<size_t>(rank)]; }
  int numaGroups(int node) const { return numaCount_[static_cast<size_t>(node)]; }
  // A 64-bit fingerprint of the whole layout (equal layouts, equal hashes).
  uint64_t hash() const { return hash_; }
  // "2 nodes x 4 ranks", "3 nodes (3+2+4 ranks)", "1 node x 8 ranks".
  std::string describe() const;

 private:
  void finish();
  std::vector<int> node_, local_, numa_, numaCount_;
  std::vector<std::vector<int>> nodes_;
  int minLocal_ = 0, maxLocal_ = 0;
  bool blocked_ = true;
  uint64_t hash_ = 0;
};

}  // namespace weft
