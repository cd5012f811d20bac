// Algorithm choice: every eligible algorithm's time is estimated with a
// latency/bandwidth/reduction-cost model and the least wins, unless WEFT_ALGO forces one. The
// constants are defaults measured on a 2-core shared-memory machine; measured tuning files arrive
// with weft-tune.
#pragma once

#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "core/coll.h"
#include "core/status.h"

namespace weft {

// A parsed WEFT_ALGO: per collective, the allowed algorithms (empty = all) or the excluded ones.
struct AlgoOverride {
  bool set[static_cast<int>(CollType::kCount)] = {};
  bool exclude[static_cast<int>(CollType::kCount)] = {};
  std::vector<const AlgorithmInfo*> names[static_cast<int>(CollType::kCount)];
};

// Grammar (NCCL 2.24's): "coll:algo[,algo];coll:^algo;..." or just "algo[,algo]" for every
// collective that has it. Names are case-insensitive; an unknown collective or algorithm is
// weftInvalidArgument naming it.
Result<AlgoOverride> parseAlgoOverride(const std::string& text);

// The algorithm's estimated time for the call; a single rank costs one local copy.
double estimateUs(const AlgorithmInfo& algo, const CollDesc& desc, const CostModel& model);

class Tuner {
 public:
  Tuner() = default;
  explicit Tuner(AlgoOverride ov) : override_(std::move(ov)) {}
  // The algorithm for this call. Fails if WEFT_ALGO forces algorithms none of which can run it.
  Result<const AlgorithmInfo*> choose(const CollDesc& desc) const;
  const CostModel& model() const { return model_; }

 private:
  AlgoOverride override_;
  CostModel model_;
};

}  // namespace weft
