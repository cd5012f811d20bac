#include "tuner/tuner.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/log.h"

namespace weft {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(sep, pos);
    if (end == std::string::npos) end = s.size();
    std::string part = s.substr(pos, end - pos);
    size_t b = part.find_first_not_of(" \t"), e = part.find_last_not_of(" \t");
    out.push_back(b == std::string::npos ? "" : part.substr(b, e - b + 1));
    pos = end + 1;
  }
  return out;
}

}  // namespace

Result<AlgoOverride> parseAlgoOverride(const std::string& text) {
  AlgoOverride ov;
  if (text.empty()) return ov;
  for (const std::string& clause : split(text, ';')) {
    if (clause.empty()) continue;
    std::vector<int> colls;
    std::string list = clause;
    const size_t colon = clause.find(':');
    if (colon != std::string::npos) {
      CollType c;
      std::string name = clause.substr(0, colon);
      if (!parseCollName(name, &c))
        return errorStatus(
            weftInvalidArgument,
            "WEFT_ALGO=\"%s\": unknown collective \"%s\" (accepted: allreduce, allgather, "
            "reducescatter, broadcast, reduce)",
            text.c_str(), name.c_str());
      colls.push_back(static_cast<int>(c));
      list = clause.substr(colon + 1);
    }
    bool exclude = false;
    if (!list.empty() && list[0] == '^') {
      exclude = true;
      list = list.substr(1);
    }
    for (const std::string& name : split(list, ',')) {
      bool known = false;
      for (int c = 0; c < static_cast<int>(CollType::kCount); ++c) {
        if (!colls.empty() && colls[0] != c) continue;
        const AlgorithmInfo* a = findAlgorithm(static_cast<CollType>(c), name);
        if (a == nullptr) continue;
        known = true;
        ov.set[c] = true;
        ov.exclude[c] = exclude;
        ov.names[c].push_back(a);
      }
      if (!known) {
        std::string accepted;
        for (const AlgorithmInfo& a : algorithmTable()) {
          if (!colls.empty() && static_cast<int>(a.coll) != colls[0]) continue;
          if (accepted.find(a.name) != std::string::npos) continue;
          accepted += accepted.empty() ? a.name : std::string(", ") + a.name;
        }
        return errorStatus(
            weftInvalidArgument, "WEFT_ALGO=\"%s\": unknown algorithm \"%s\"%s%s (accepted: %s)",
            text.c_str(), name.c_str(), colls.empty() ? "" : " for ",
            colls.empty() ? "" : collName(static_cast<CollType>(colls[0])), accepted.c_str());
      }
    }
  }
  return ov;
}

double estimateUs(const AlgorithmInfo& algo, const CollDesc& d, const CostModel& m) {
  // Every rank is on one node until the topology layer says otherwise.
  const LevelCost& level = m.intra;
  if (d.nranks == 1) return static_cast<double>(d.bytes()) * level.betaUsPerByte;
  return algo.cost(d, level);
}

Result<const AlgorithmInfo*> Tuner::choose(const CollDesc& d) const {
  const int c = static_cast<int>(d.type);
  const AlgorithmInfo* best = nullptr;
  double bestUs = std::numeric_limits<double>::infinity();
  for (const AlgorithmInfo* a : algorithmsFor(d.type)) {
    if (override_.set[c]) {
      bool listed = false;
      for (const AlgorithmInfo* n : override_.names[c])
        listed |= n == a;
      if (listed == override_.exclude[c]) continue;
    }
    if (!a->canRun(d)) continue;
    const double us = estimateUs(*a, d, model_);
    WEFT_TRACE(kTuning, "%s: %s estimated %.2f us", d.describe().c_str(), a->name, us);
    if (best == nullptr || us < bestUs) {
      best = a;
      bestUs = us;
    }
  }
  if (best == nullptr)
    return errorStatus(weftInvalidUsage,
                       "WEFT_ALGO leaves no algorithm that can run %s on %d ranks",
                       d.describe().c_str(), d.nranks);
  return best;
}

}  // namespace weft
