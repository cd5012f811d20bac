#include "core/layout.h"

#include <algorithm>
#include <map>

#include "core/status.h"

namespace weft {

CommLayout::CommLayout(const std::vector<std::string>& nodeKey, const std::vector<int>& numaKey) {
  const size_t n = nodeKey.size();
  node_.assign(n, 0);
  local_.assign(n, 0);
  numa_.assign(n, 0);
  std::map<std::string, int> index;
  for (size_t r = 0; r < n; ++r) {
    auto [it, fresh] = index.emplace(nodeKey[r], static_cast<int>(nodes_.size()));
    if (fresh) nodes_.emplace_back();
    node_[r] = it->second;
    local_[r] = static_cast<int>(nodes_[static_cast<size_t>(it->second)].size());
    nodes_[static_cast<size_t>(it->second)].push_back(static_cast<int>(r));
  }
  // NUMA groups: numbered per node in order of first appearance; an unknown NUMA node (-1) is a
  // group of its own like any other key.
  numaCount_.assign(nodes_.size(), 0);
  for (size_t nd = 0; nd < nodes_.size(); ++nd) {
    std::map<int, int> groups;
    for (int r : nodes_[nd]) {
      const int key = r < static_cast<int>(numaKey.size()) ? numaKey[static_cast<size_t>(r)] : -1;
      auto [it, fresh] = groups.emplace(key, static_cast<int>(groups.size()));
      numa_[static_cast<size_t>(r)] = it->second;
    }
    numaCount_[nd] = static_cast<int>(groups.size());
  }
  finish();
}

CommLayout CommLayout::flat(int nranks) {
  return blocks({nranks});
}

CommLayout CommLayout::blocks(const std::vector<int>& ranksPerNode) {
  std::vector<std::string> keys;
  for (size_t nd = 0; nd < ranksPerNode.size(); ++nd)
    for (int i = 0; i < ranksPerNode[nd]; ++i)
      keys.push_back("node" + std::to_string(nd));
  return CommLayout(keys, std::vector<int>(keys.size(), -1));
}

void CommLayout::finish() {
  minLocal_ = maxLocal_ = 0;
  blocked_ = true;
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](uint64_t v) { h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2); };
  for (size_t nd = 0; nd < nodes_.size(); ++nd) {
    const int size = static_cast<int>(nodes_[nd].size());
    minLocal_ = nd == 0 ? size : std::min(minLocal_, size);
    maxLocal_ = std::max(maxLocal_, size);
    for (int i = 0; i < size; ++i)
      if (nodes_[nd][static_cast<size_t>(i)] != nodes_[nd].front() + i) blocked_ = false;
  }
  for (size_t r = 0; r < node_.size(); ++r) {
    mix(static_cast<uint64_t>(node_[r]));
    mix(static_cast<uint64_t>(numa_[r]));
  }
  hash_ = h;
}

std::vector<int> CommLayout::leaders() const {
  std::vector<int> out;
  for (const auto& ranks : nodes_)
    out.push_back(ranks.front());
  return out;
}

std::vector<int> CommLayout::rail(int i) const {
  std::vector<int> out;
  for (const auto& ranks : nodes_)
    if (i < static_cast<int>(ranks.size())) out.push_back(ranks[static_cast<size_t>(i)]);
  return out;
}

std::string CommLayout::describe() const {
  const int nn = nnodes();
  if (nn == 0) return "no ranks";
  if (uniform())
    return strprintf("%d node%s x %d rank%s", nn, nn == 1 ? "" : "s", maxLocal_,
                     maxLocal_ == 1 ? "" : "s");
  std::string sizes;
  for (const auto& ranks : nodes_)
    sizes.append(sizes.empty() ? "" : "+").append(std::to_string(ranks.size()));
  return strprintf("%d nodes (%s ranks)", nn, sizes.c_str());
}

}  // namespace weft
