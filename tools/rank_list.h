// Shared by the command-line tools: a list of ranks as people write it.
#pragma once

#include <string>
#include <vector>

namespace weft::tools {

// "0-3", "0,2,4", "0-1,6": the ranks in the order given, runs of consecutive ones shortened.
inline std::string rankList(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t k = i;
    while (k + 1 < ranks.size() && ranks[k + 1] == ranks[k] + 1)
      ++k;
    if (!out.empty()) out += ',';
    out += std::to_string(ranks[i]);
    if (k > i) out.append("-").append(std::to_string(ranks[k]));
    i = k + 1;
  }
  return out;
}

}  // namespace weft::tools
