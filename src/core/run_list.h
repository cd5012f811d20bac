// A list of integers as people write it, "0-3,8,10-11": header-only, so that the command-line tools
// that link only the public library (weft-tune) share it with the library's own cpulists.
#pragma once

#include <string>
#include <vector>

namespace weft {

// The values in the order given, runs of consecutive ones shortened: {0,1,2,3,8} -> "0-3,8".
inline std::string runList(const std::vector<int>& values) {
  std::string out;
  for (size_t i = 0; i < values.size();) {
    size_t k = i;
    while (k + 1 < values.size() && values[k + 1] == values[k] + 1)
      ++k;
    if (!out.empty()) out += ',';
    out += std::to_string(values[i]);
    if (k > i) out.append("-").append(std::to_string(values[k]));
    i = k + 1;
  }
  return out;
}

}  // namespace weft
