// The algorithm table: one entry per (collective, algorithm). It feeds the tuner, WEFT_ALGO
// validation, weft-info and the docs; nothing lists algorithms a second time by hand.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "algorithms/cost.h"
#include "core/coll.h"
#include "core/schedule.h"
#include "core/status.h"

namespace weft {

struct AlgorithmInfo;

// The two levels a hierarchical algorithm composes: ranks of one node, and ranks on different
// nodes.
enum class Level : uint8_t { kIntra, kInter };

// Picks the flat algorithm a hierarchical one runs over one level's sub-group (a sub-collective
// whose CollDesc has the sub-group's rank and size). The tuner implements it with that level's
// costs and WEFT_ALGO's per-level choices; it never returns a hierarchical algorithm, and returns
// nullptr when nothing can run the sub-call (the builder then fails).
class LevelChooser {
 public:
  virtual ~LevelChooser() = default;
  virtual const AlgorithmInfo* choose(const CollDesc& sub, Level level) const = 0;
};

struct AlgorithmInfo {
  CollType coll;
  const char* name;         // as WEFT_ALGO spells it, lower case
  const char* description;  // one line for weft-info and docs
  // Whether this algorithm can run the call (for example, a power-of-two rank count).
  bool (*canRun)(const CollDesc& desc);
  // Emits this rank's schedule. desc.nranks >= 1 and desc.count > 0 are guaranteed (except in
  // all-to-all-v, whose count is this rank's own total and may be 0; its zero-byte messages still
  // go out).
  Status (*build)(const CollDesc& desc, Schedule* out);
  // Estimated microseconds for the call over links costing `level` (desc.nranks >= 2). The
  // formula is stated in the algorithm's file header.
  double (*cost)(const CollDesc& desc, const LevelCost& level);
  // Hierarchical algorithms only: the estimate over both levels' costs (flat algorithms are
  // estimated with `cost` at the level the communicator spans, its slowest).
  double (*hierCost)(const CollDesc& desc, const CostModel& model) = nullptr;
  // Whether its schedules use one-sided steps (it runs where CollDesc::peerAccess is set).
  bool oneSided = false;
};

// All ranks' send and receive buffers together beyond which a copy through the kernel
// (process_vm_readv) no longer runs at its in-cache rate. Measured on the development VMs, where
// the kernel's copy is cheap (Intel, Linux 6.18): a one-sided all-to-all or all-reduce over it
// was 1.3x the pairwise exchange or the ring with 64 MiB of buffers in all (2 ranks, 16 MiB) and
// 0.7-0.85x with 256 MiB (64 MiB): the kernel writes the output through the cache, where weft's
// own copies of large outputs stream past it.
inline constexpr uint64_t kKernelCopyFitBytes = uint64_t{128} << 20;

// All ranks' send and receive buffers together up to which a copy through the kernel reads and
// writes cached data: 2 ranks of the Intel development VMs (2 MiB of L2 per core) ran a one-sided
// all-gather at 5.3e-5 us per byte up to 512 KiB of output (1.5 MiB of buffers) and at 1.3e-4
// from 2 MiB (6 MiB).
inline constexpr uint64_t kKernelCopyCachedBytes = uint64_t{4} << 20;

// What a one-sided step pays per byte it moves from or to a peer's memory that is not mapped
// here: the kernel's copy of cached data, of data in memory, and beyond kKernelCopyFitBytes half a
// message's copies more.
inline double kernelCopyUsPerByte(const CollDesc& d, const LevelCost& c) {
  const uint64_t footprint = d.footprintBytes();
  if (footprint <= kKernelCopyCachedBytes)
    return std::min(c.kernelCopyCachedUsPerByte, c.kernelCopyUsPerByte);
  return footprint > kKernelCopyFitBytes ? c.kernelCopyUsPerByte + c.betaUsPerByte / 2
                                         : c.kernelCopyUsPerByte;
}

// What one-sided steps pay to move `bytes` in all from or to peers' memory in `moves` reads or
// writes: loads and stores in mapped memory (registered buffers, CollDesc::mapped), or copies
// through the kernel at a price per byte and per call.
inline double peerCopyUs(const CollDesc& d, const LevelCost& c, double bytes, double moves) {
  return d.mapped ? bytes * c.mappedCopyUsPerByte
                  : bytes * kernelCopyUsPerByte(d, c) + moves * c.kernelCallUs;
}

// What reading `bytes` in all from peers' scratch in `moves` reads costs (the staged algorithms):
// half a message's copies where peers map the scratch (CollDesc::scratchShared), otherwise copies
// through the kernel at a price per byte and per call.
inline double scratchReadUs(const CollDesc& d, const LevelCost& c, double bytes, double moves) {
  return d.scratchShared ? bytes * c.betaUsPerByte / 2
                         : bytes * kernelCopyUsPerByte(d, c) + moves * c.kernelCallUs;
}

// How many moves a one-sided step of `bytes` makes when it goes chunk by chunk (a reduction from a
// peer's memory, or what waits on one): one per engine chunk. Other steps move their whole slice
// at once where it is ready (the executor's copySliceThroughKernel).
inline double chunkMoves(double bytes, const LevelCost& c) {
  return std::max(1.0, std::ceil(bytes / std::max(c.chunkBytes, 1.0)));
}

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
Status allReduceRabenseifner(const CollDesc& d, Schedule* s);
double allReduceRabenseifnerCost(const CollDesc& d, const LevelCost& c);
Status allReduceDoubleBinaryTree(const CollDesc& d, Schedule* s);
double allReduceDoubleBinaryTreeCost(const CollDesc& d, const LevelCost& c);
Status allReduceReduceBroadcast(const CollDesc& d, Schedule* s);
double allReduceReduceBroadcastCost(const CollDesc& d, const LevelCost& c);
Status allReduceDirect(const CollDesc& d, Schedule* s);
double allReduceDirectCost(const CollDesc& d, const LevelCost& c);
Status allGatherRecursiveDoubling(const CollDesc& d, Schedule* s);
double allGatherRecursiveDoublingCost(const CollDesc& d, const LevelCost& c);
Status allGatherBruck(const CollDesc& d, Schedule* s);
double allGatherBruckCost(const CollDesc& d, const LevelCost& c);
Status allGatherDirect(const CollDesc& d, Schedule* s);
double allGatherDirectCost(const CollDesc& d, const LevelCost& c);
Status reduceScatterRecursiveHalving(const CollDesc& d, Schedule* s);
double reduceScatterRecursiveHalvingCost(const CollDesc& d, const LevelCost& c);
Status reduceScatterPairwise(const CollDesc& d, Schedule* s);
double reduceScatterPairwiseCost(const CollDesc& d, const LevelCost& c);
Status broadcastChain(const CollDesc& d, Schedule* s);
double broadcastChainCost(const CollDesc& d, const LevelCost& c);
Status broadcastScatterAllgather(const CollDesc& d, Schedule* s);
double broadcastScatterAllgatherCost(const CollDesc& d, const LevelCost& c);
Status sendDirect(const CollDesc& d, Schedule* s);
Status recvDirect(const CollDesc& d, Schedule* s);
double p2pDirectCost(const CollDesc& d, const LevelCost& c);
// One-sided algorithms (they run where CollDesc::peerAccess is set).
bool needsPeerAccess(const CollDesc& d);
Status allReduceOneSided(const CollDesc& d, Schedule* s);
double allReduceOneSidedCost(const CollDesc& d, const LevelCost& c);
Status allGatherOneSided(const CollDesc& d, Schedule* s);
double allGatherOneSidedCost(const CollDesc& d, const LevelCost& c);
Status allGatherStaged(const CollDesc& d, Schedule* s);
double allGatherStagedCost(const CollDesc& d, const LevelCost& c);
Status broadcastStaged(const CollDesc& d, Schedule* s);
double broadcastStagedCost(const CollDesc& d, const LevelCost& c);
Status reduceScatterOneSided(const CollDesc& d, Schedule* s);
double reduceScatterOneSidedCost(const CollDesc& d, const LevelCost& c);
Status broadcastOneSided(const CollDesc& d, Schedule* s);
double broadcastOneSidedCost(const CollDesc& d, const LevelCost& c);
Status allToAllOneSided(const CollDesc& d, Schedule* s);
double allToAllOneSidedCost(const CollDesc& d, const LevelCost& c);
Status allToAllStaged(const CollDesc& d, Schedule* s);
double allToAllStagedCost(const CollDesc& d, const LevelCost& c);
// A single rank: copy the input to the output where they differ.
Status selfCopy(const CollDesc& d, Schedule* s);
Status allToAllPairwise(const CollDesc& d, Schedule* s);
double allToAllPairwiseCost(const CollDesc& d, const LevelCost& c);
Status allToAllBruck(const CollDesc& d, Schedule* s);
double allToAllBruckCost(const CollDesc& d, const LevelCost& c);
Status allToAllvPairwise(const CollDesc& d, Schedule* s);
double allToAllvPairwiseCost(const CollDesc& d, const LevelCost& c);
Status gatherLinear(const CollDesc& d, Schedule* s);
double gatherLinearCost(const CollDesc& d, const LevelCost& c);
Status gatherBinomialTree(const CollDesc& d, Schedule* s);
double gatherBinomialTreeCost(const CollDesc& d, const LevelCost& c);
Status scatterLinear(const CollDesc& d, Schedule* s);
double scatterLinearCost(const CollDesc& d, const LevelCost& c);
Status scatterBinomialTree(const CollDesc& d, Schedule* s);
double scatterBinomialTreeCost(const CollDesc& d, const LevelCost& c);
// Hierarchical algorithms (algorithms/hier/): flat algorithms composed over the ranks of each node
// and across nodes (patterns/subgroup.h). Each has canRun `fooHierCanRun` and, besides
// `fooHierCost` (its two-level estimate with one level's costs for both), `fooHierModelCost` for
// hierCost.
bool allReduceHierCanRun(const CollDesc& d);
Status allReduceHier(const CollDesc& d, Schedule* s);
double allReduceHierCost(const CollDesc& d, const LevelCost& c);
double allReduceHierModelCost(const CollDesc& d, const CostModel& m);
bool allGatherHierCanRun(const CollDesc& d);
Status allGatherHier(const CollDesc& d, Schedule* s);
double allGatherHierCost(const CollDesc& d, const LevelCost& c);
double allGatherHierModelCost(const CollDesc& d, const CostModel& m);
bool reduceScatterHierCanRun(const CollDesc& d);
Status reduceScatterHier(const CollDesc& d, Schedule* s);
double reduceScatterHierCost(const CollDesc& d, const LevelCost& c);
double reduceScatterHierModelCost(const CollDesc& d, const CostModel& m);
bool broadcastHierCanRun(const CollDesc& d);
Status broadcastHier(const CollDesc& d, Schedule* s);
double broadcastHierCost(const CollDesc& d, const LevelCost& c);
double broadcastHierModelCost(const CollDesc& d, const CostModel& m);
bool reduceHierCanRun(const CollDesc& d);
Status reduceHier(const CollDesc& d, Schedule* s);
double reduceHierCost(const CollDesc& d, const LevelCost& c);
double reduceHierModelCost(const CollDesc& d, const CostModel& m);
bool allToAllHierCanRun(const CollDesc& d);
Status allToAllHier(const CollDesc& d, Schedule* s);
double allToAllHierCost(const CollDesc& d, const LevelCost& c);
double allToAllHierModelCost(const CollDesc& d, const CostModel& m);
}  // namespace algo

}  // namespace weft
