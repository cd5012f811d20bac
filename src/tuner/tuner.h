// Algorithm choice: every algorithm of the collective that can run the call and that WEFT_ALGO (or
// the tuning file's preferences) allows for its size is estimated with the cost model of the level
// the communicator spans (latency, bytes over bandwidth, reduction, copies, synchronisations; see
// algorithms/cost.h) and the least wins. The constants are the defaults of algorithms/cost.h unless
// WEFT_TUNE_FILE gives measured ones (weft-tune writes them). WEFT_DEBUG_SUBSYS=TUNING prints,
// once per call shape, every candidate's estimate or why it was not eligible; weft-info --explain
// prints the same table for a hypothetical call. docs/tuning.md explains all of it.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "core/coll.h"
#include "core/status.h"
#include "tuner/algo_override.h"
#include "tuner/tune_file.h"

namespace weft {

// The algorithm's estimated time for the call; a single rank costs one local copy (nothing in
// place).
double estimateUs(const AlgorithmInfo& algo, const CollDesc& desc, const LevelCost& level);
double estimateUs(const AlgorithmInfo& algo, const CollDesc& desc, const CostModel& model);

// How one call was decided: every candidate, the rule that applied and the choice.
struct Explanation {
  struct Candidate {
    const AlgorithmInfo* algo = nullptr;
    bool canRun = false;
    bool allowed = true;  // by the rule for this size (always, without one)
    // A one-sided algorithm whose steps would cross the network: only where the rule names it.
    bool namedOnly = false;
    double us = 0;  // estimate; meaningful when canRun
  };
  CollDesc desc;
  bool interNode = false;   // costs of the inter-node level (otherwise intra-node)
  std::string modelSource;  // "built-in defaults" or "WEFT_TUNE_FILE=path"
  bool hasRule = false;
  AlgoRule rule;     // when hasRule
  bool gap = false;  // no rule: the collective has ranges, none of which holds this size
  std::vector<Candidate> candidates;
  const AlgorithmInfo* chosen = nullptr;
  Status status;  // why nothing was chosen

  // "chosen", "eligible", "cannot run this call ...", "not allowed by WEFT_ALGO ..."
  std::string statusOf(const Candidate& c) const;
  // What governed the choice, in words.
  std::string ruleText() const;
  // The table printed by WEFT_DEBUG_SUBSYS=TUNING and weft-info --explain, one line per entry.
  std::vector<std::string> lines() const;
};

// The decision for one call among `algos` (the collective's entries of the algorithm table; tests
// pass their own). Fails (weftInvalidArgument, naming the rule, the algorithms and the call) when
// the rule for this size leaves no algorithm that can run it.
Explanation decide(std::span<const AlgorithmInfo* const> algos, const CollDesc& desc,
                   const AlgoOverride& ov, const CostModel& model, bool interNode,
                   const std::string& modelSource = "built-in defaults");

// The tuner as a hierarchical algorithm sees it: for each level's sub-collective, the algorithm
// hier(intra=...,inter=...) names for the outer collective (where the sub-collective has one that
// can run it), otherwise the least estimated time with that level's costs. One per outer
// collective; it never picks a hierarchical algorithm.
class TunerLevelChooser final : public LevelChooser {
 public:
  TunerLevelChooser(LevelChoice choice, CostModel model)
      : choice_(std::move(choice)), model_(model) {}
  const AlgorithmInfo* choose(const CollDesc& sub, Level level) const override;

 private:
  LevelChoice choice_;
  CostModel model_;
};

// The kernel's copy (process_vm_readv) as init measures it on the ranks' machines, agreed by all
// ranks; 0 where not measured.
struct KernelCopyTimes {
  double ratio = 0;            // against memcpy of the same 1 MiB in cache
  double cachedUsPerByte = 0;  // that 1 MiB's time per byte
  double callUs = 0;           // one call of 64 bytes
};

class Tuner {
 public:
  Tuner();
  explicit Tuner(AlgoOverride ov, CostModel model = {},
                 std::string modelSource = "built-in defaults");

  // The algorithm for this call. Fails if the rule for its size (WEFT_ALGO, tuning file) leaves
  // none that can run it. With WEFT_DEBUG_SUBSYS=TUNING at INFO, the first decision for each call
  // shape is logged.
  Result<const AlgorithmInfo*> choose(const CollDesc& desc) const;
  // The same decision with every candidate, for weft-info and the log.
  Explanation explain(const CollDesc& desc) const;

  const CostModel& model() const { return model_; }
  const std::string& modelSource() const { return modelSource_; }
  const AlgoOverride& algoOverride() const { return override_; }
  // Whether the communicator's ranks are on more than one node (the inter-node costs apply). One
  // node until the topology layer says otherwise.
  void setInterNode(bool inter) { interNode_ = inter; }
  // Prices the kernel's copy of the intra-node level from what init measured on the ranks'
  // machines (kernelCopyCost()): kernel_copy_us_per_byte at ratio x beta / 2, beta being a
  // message's two copies; the same copy of cached data at its measured rate; each call
  // (kernel_call_us) at what a small one took. Each is left alone where the tuning file sets its
  // key, or where its measurement is 0 (not measured).
  void calibrateKernelCopy(const KernelCopyTimes& t);
  // The engine's chunk (WEFT_CHUNK_SIZE) on both levels: one-sided steps that reduce from peers'
  // memory make one kernel call per chunk.
  void setChunkBytes(uint64_t bytes);
  // Prices one synchronisation of the intra-node level (sync_us) at what a 1-element all-reduce
  // took on the communicator (calibrateSync in src/api, at init, where the ranks share one machine
  // and each has a CPU of its own). Left alone where the tuning file sets the key, where the
  // time is not a positive finite number, or where it is not below the price already set (the
  // built-in one is for ranks that share CPUs: more says the measurement was disturbed).
  void calibrateSync(double us);
  // What a call of this collective puts in CollDesc::chooser; valid while any copy of this tuner
  // lives.
  const LevelChooser* chooserFor(CollType type) const {
    return &choosers_->at(static_cast<size_t>(type));
  }

 private:
  friend Result<Tuner> tunerFromConfig();
  struct LogMemo;  // the call shapes already logged; shared by copies
  AlgoOverride override_;
  CostModel model_;
  std::string modelSource_ = "built-in defaults";
  bool interNode_ = false;
  // The constants WEFT_TUNE_FILE sets ("intra.sync_us", ...): init's calibrations leave them be.
  std::vector<std::string> fileKeys_;
  bool setByFile(const char* key) const;
  std::shared_ptr<LogMemo> memo_;
  std::shared_ptr<const std::vector<TunerLevelChooser>>
      choosers_;  // per CollType; shared by copies
  void makeChoosers();
};

// The tuner the settings ask for: the constants of WEFT_TUNE_FILE (if set) over the built-in
// defaults, and WEFT_ALGO over the tuning file's algorithm preferences, per collective. Errors name
// the variable, the file, the line and the key or clause.
Result<Tuner> tunerFromConfig();

}  // namespace weft
