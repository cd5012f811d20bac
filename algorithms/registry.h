// The algorithm table: one entry per (collective, algorithm). It feeds the tuner, WEFT_ALGO
// validation, weft-info and the docs; nothing lists algorithms a second time by hand.
#pragma once

#include <string>
#include <vector>

#include "algorithms/cost.h"
#include "core/coll.h"
#include "core/schedule.h"
#include "core/status.h"

namespace weft {

struct AlgorithmInfo {
  CollType coll;
  const char* name;         // as WEFT_ALGO spells it, lower case
  const char* description;  // one line for weft-info and docs
  // Whether this algorithm can run the call (for example, a power-of-two rank count).
  bool (*canRun)(const CollDesc& desc);
  // Emits this rank's schedule. desc.nranks >= 1 and desc.count > 0 are guaranteed.
  Status (*build)(const CollDesc& desc, Schedule* out);
  // Estimated microseconds for the call over links costing `level` (desc.nranks >= 2). The
  // formula is stated in the algorithm's file header.
  double (*cost)(const CollDesc& desc, const LevelCost& level);
};

const std::vector<AlgorithmInfo>& algorithmTable();
const AlgorithmInfo* findAlgorithm(CollType coll, const std::string& name);  // case-insensitive
const std::vector<const AlgorithmInfo*>& algorithmsFor(CollType coll);

// Each algorithm file defines one of these; registry.cc lists them.
namespace algo {
// Each builder `fooBar` has a cost function `fooBarCost`.
Status allReduceRing(const CollDesc& d, Schedule* s);
double allReduceRingCost(const CollDesc& d, const LevelCost& c);
Status allReduceRecursiveDoubling(const CollDesc& d, Schedule* s);
double allReduceRecursiveDoublingCost(const CollDesc& d, const LevelCost& c);
Status allGatherRing(const CollDesc& d, Schedule* s);
double allGatherRingCost(const CollDesc& d, const LevelCost& c);
Status reduceScatterRing(const CollDesc& d, Schedule* s);
double reduceScatterRingCost(const CollDesc& d, const LevelCost& c);
Status broadcastBinomialTree(const CollDesc& d, Schedule* s);
double broadcastBinomialTreeCost(const CollDesc& d, const LevelCost& c);
Status reduceBinomialTree(const CollDesc& d, Schedule* s);
double reduceBinomialTreeCost(const CollDesc& d, const LevelCost& c);
Status sendDirect(const CollDesc& d, Schedule* s);
Status recvDirect(const CollDesc& d, Schedule* s);
double p2pDirectCost(const CollDesc& d, const LevelCost& c);
// A single rank: copy the input to the output where they differ.
Status selfCopy(const CollDesc& d, Schedule* s);
}  // namespace algo

}  // namespace weft
