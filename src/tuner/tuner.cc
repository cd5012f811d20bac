#include "tuner/tuner.h"

#include <strings.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <set>
#include <tuple>

#include "core/config.h"
#include "core/log.h"

namespace weft {
namespace {

std::string callText(const CollDesc& d) {
  return strprintf("%s (%llu B per rank) on %d rank%s", d.describe().c_str(),
                   static_cast<unsigned long long>(d.bytes()), d.nranks, d.nranks == 1 ? "" : "s");
}

// Whether init measured a price: a positive, finite value (0 says it was not measured).
bool measured(double v) {
  return v > 0 && std::isfinite(v);
}

// Shapes whose decision has been logged: at most this many, then no more.
constexpr size_t kMaxLoggedShapes = 4096;

}  // namespace

struct Tuner::LogMemo {
  std::mutex mu;
  std::set<std::tuple<int, uint64_t, int, int, bool, int>> seen;
  bool full = false;
  // True the first time a shape is seen (and the log has room).
  bool first(const CollDesc& d) {
    std::lock_guard<std::mutex> lock(mu);
    if (full) return false;
    if (seen.size() >= kMaxLoggedShapes) {
      full = true;
      WEFT_INFO(kTuning, "tuner: %zu call shapes logged; no more will be", seen.size());
      return false;
    }
    return seen
        .emplace(static_cast<int>(d.type), d.bytes(), static_cast<int>(d.dtype),
                 static_cast<int>(d.op), d.inPlace, d.nranks)
        .second;
  }
};

double estimateUs(const AlgorithmInfo& algo, const CollDesc& d, const LevelCost& level) {
  if (d.nranks == 1) return d.inPlace ? 0 : static_cast<double>(d.bytes()) * level.copyUsPerByte;
  return algo.cost(d, level);
}

double estimateUs(const AlgorithmInfo& algo, const CollDesc& d, const CostModel& m) {
  if (algo.hierCost != nullptr && d.nranks > 1) return algo.hierCost(d, m);
  const bool inter = d.topo != nullptr && d.topo->nnodes() > 1;
  return estimateUs(algo, d, inter ? m.inter : m.intra);
}

const AlgorithmInfo* TunerLevelChooser::choose(const CollDesc& sub, Level level) const {
  const LevelCost& cost = level == Level::kIntra ? model_.intra : model_.inter;
  const std::string& wanted = choice_.name[static_cast<int>(level)];
  const AlgorithmInfo* best = nullptr;
  double bestUs = 0;
  for (const AlgorithmInfo* a : algorithmsFor(sub.type)) {
    if (a->hierCost != nullptr || !a->canRun(sub)) continue;
    if (!wanted.empty() && strcasecmp(a->name, wanted.c_str()) == 0) return a;
    const double us = estimateUs(*a, sub, cost);
    if (best == nullptr || us < bestUs) {
      best = a;
      bestUs = us;
    }
  }
  return best;
}

std::string Explanation::statusOf(const Candidate& c) const {
  if (c.algo == chosen) return "chosen";
  if (!c.canRun) return "ineligible: cannot run this call (its canRun is false)";
  if (!c.allowed)
    return std::string("ineligible: ") + (rule.exclude ? "excluded by " : "not listed by ") +
           rule.where();
  if (c.namedOnly)
    return "ineligible: its one-sided steps would cross the network (RMA); runs where WEFT_ALGO "
           "names it";
  return "eligible";
}

std::string Explanation::ruleText() const {
  if (hasRule) return rule.where() + ": " + rule.listText();
  if (gap)
    return strprintf(
        "none: the size ranges set for %s leave %llu B uncovered, so the tuner "
        "chooses among every algorithm",
        collName(desc.type), static_cast<unsigned long long>(desc.bytes()));
  return "none: the tuner chooses among every algorithm";
}

std::vector<std::string> Explanation::lines() const {
  std::vector<std::string> out;
  out.push_back(strprintf("%s%s%s: %s costs (%s)", callText(desc).c_str(),
                          desc.inPlace ? ", in place" : "",
                          desc.peerAccess ? ", peers' memory reachable" : "",
                          interNode ? "inter-node" : "intra-node", modelSource.c_str()));
  out.push_back("  rule: " + ruleText());
  out.push_back(strprintf("  %-24s %14s  %s", "algorithm", "estimate (us)", "status"));
  for (const Candidate& c : candidates) {
    const std::string est = c.canRun ? strprintf("%14.3f", c.us) : strprintf("%14s", "-");
    out.push_back(strprintf("  %-24s %s  %s", c.algo->name, est.c_str(), statusOf(c).c_str()));
  }
  if (chosen != nullptr)
    out.push_back(std::string("  choice: ") + chosen->name);
  else
    out.push_back("  choice: none: " + status.message());
  return out;
}

Explanation decide(std::span<const AlgorithmInfo* const> algos, const CollDesc& d,
                   const AlgoOverride& ov, const CostModel& model, bool interNode,
                   const std::string& modelSource) {
  Explanation ex;
  ex.desc = d;
  ex.interNode = interNode;
  ex.modelSource = modelSource;
  if (const AlgoRule* rule = ov.ruleFor(d.type, d.bytes())) {
    ex.hasRule = true;
    ex.rule = *rule;
  } else {
    ex.gap = !ov.colls[static_cast<int>(d.type)].ranges.empty();
  }
  const LevelCost& level = interNode ? model.inter : model.intra;
  double bestUs = 0;
  for (const AlgorithmInfo* a : algos) {
    Explanation::Candidate c;
    c.algo = a;
    c.canRun = a->canRun(d);
    c.allowed = !ex.hasRule || ex.rule.allows(a);
    c.namedOnly =
        a->oneSided && d.peerAccessNet && !(ex.hasRule && !ex.rule.exclude && ex.rule.allows(a));
    if (c.canRun)
      c.us =
          a->hierCost != nullptr && d.nranks > 1 ? a->hierCost(d, model) : estimateUs(*a, d, level);
    if (c.canRun && c.allowed && !c.namedOnly && (ex.chosen == nullptr || c.us < bestUs)) {
      ex.chosen = a;
      bestUs = c.us;
    }
    ex.candidates.push_back(c);
  }
  if (ex.chosen != nullptr) return ex;
  const std::string call = callText(d);
  if (!ex.hasRule) {
    ex.status = Status(weftInvalidUsage,
                       "no algorithm of " + std::string(collName(d.type)) + " can run " + call);
  } else if (ex.rule.exclude) {
    ex.status = Status(weftInvalidArgument, ex.rule.where() + " excludes " + ex.rule.names() +
                                                " for " + collName(d.type) +
                                                " and no other algorithm can run " + call);
  } else {
    const bool one = ex.rule.algos.size() == 1;
    ex.status =
        Status(weftInvalidArgument, ex.rule.where() + " forces " + ex.rule.listText() + " for " +
                                        collName(d.type) + ", but " +
                                        (one ? ex.rule.algos[0]->name + std::string(" cannot run ")
                                             : std::string("none of them can run ")) +
                                        call);
  }
  return ex;
}

Tuner::Tuner() : memo_(std::make_shared<LogMemo>()) {
  makeChoosers();
}

Tuner::Tuner(AlgoOverride ov, CostModel model, std::string modelSource)
    : override_(std::move(ov)),
      model_(model),
      modelSource_(std::move(modelSource)),
      memo_(std::make_shared<LogMemo>()) {
  makeChoosers();
}

void Tuner::makeChoosers() {
  auto set = std::make_shared<std::vector<TunerLevelChooser>>();
  for (int c = 0; c < static_cast<int>(CollType::kCount); ++c)
    set->emplace_back(override_.levels[c], model_);
  choosers_ = std::move(set);
}

bool Tuner::setByFile(const char* key) const {
  return std::find(fileKeys_.begin(), fileKeys_.end(), key) != fileKeys_.end();
}

void Tuner::calibrateKernelCopy(const KernelCopyTimes& t) {
  bool changed = false;
  if (!setByFile("intra.kernel_copy_us_per_byte") && measured(t.ratio)) {
    model_.intra.kernelCopyUsPerByte = t.ratio * model_.intra.betaUsPerByte / 2;
    modelSource_ += strprintf(", kernel copy %.2fx memcpy measured at init", t.ratio);
    changed = true;
    WEFT_INFO(kTuning,
              "tuner: process_vm_readv takes %.2fx memcpy's time here: kernel copy %.3g us/B",
              t.ratio, model_.intra.kernelCopyUsPerByte);
  }
  if (measured(t.cachedUsPerByte)) {
    model_.intra.kernelCopyCachedUsPerByte = t.cachedUsPerByte;
    modelSource_ += strprintf(", cached %.3g us/B", t.cachedUsPerByte);
    changed = true;
    WEFT_INFO(kTuning, "tuner: process_vm_readv of cached data takes %.3g us/B here",
              t.cachedUsPerByte);
  }
  if (!setByFile("intra.kernel_call_us") && measured(t.callUs)) {
    model_.intra.kernelCallUs = t.callUs;
    modelSource_ += strprintf(", kernel call %.3g us measured at init", t.callUs);
    changed = true;
    WEFT_INFO(kTuning, "tuner: a 64-byte process_vm_readv takes %.3g us here", t.callUs);
  }
  if (changed) makeChoosers();
}

void Tuner::setChunkBytes(uint64_t bytes) {
  if (bytes == 0) return;
  model_.intra.chunkBytes = model_.inter.chunkBytes = static_cast<double>(bytes);
  makeChoosers();
}

void Tuner::calibrateSync(double us) {
  if (setByFile("intra.sync_us") || !measured(us)) return;
  // Measured where each rank has a CPU of its own, a sync dearer than the price for ranks that
  // share CPUs says the measurement was disturbed (other programs on the CPUs, a loaded test
  // machine): one noisy millisecond at init must not price the communicator's whole life.
  if (us >= model_.intra.syncUs) {
    WEFT_INFO(kTuning,
              "tuner: a 1-element all-reduce took %.3g us, not below the price %.3g us: kept", us,
              model_.intra.syncUs);
    return;
  }
  model_.intra.syncUs = us;
  modelSource_ += strprintf(", sync %.3g us measured at init", us);
  makeChoosers();
  WEFT_INFO(kTuning, "tuner: a 1-element all-reduce takes %.3g us here: sync %.3g us", us,
            model_.intra.syncUs);
}

Explanation Tuner::explain(const CollDesc& d) const {
  CollDesc desc = d;
  if (desc.chooser == nullptr) desc.chooser = chooserFor(d.type);
  return decide(algorithmsFor(d.type), desc, override_, model_, interNode_, modelSource_);
}

Result<const AlgorithmInfo*> Tuner::choose(const CollDesc& d) const {
  Explanation ex = explain(d);
  if (log::enabled(log::kInfo, log::kTuning) && memo_ && memo_->first(d))
    for (const std::string& line : ex.lines())
      WEFT_INFO(kTuning, "tuner: %s", line.c_str());
  if (ex.chosen == nullptr) return ex.status;
  return ex.chosen;
}

Result<Tuner> tunerFromConfig() {
  WEFT_ASSIGN_OR_RETURN(AlgoOverride ov, parseAlgoOverride(config::stringValue("WEFT_ALGO")));
  const auto chunk = static_cast<uint64_t>(config::intValue("WEFT_CHUNK_SIZE"));
  const std::string path = config::stringValue("WEFT_TUNE_FILE");
  if (path.empty()) {
    Tuner t(std::move(ov));
    t.setChunkBytes(chunk);
    return t;
  }
  WEFT_ASSIGN_OR_RETURN(TuneFile tf, loadTuneFile(path));
  WEFT_INFO(kTuning,
            "tuner: WEFT_TUNE_FILE=%s: intra alpha %.3g us, beta %.3g us/B, gamma %.3g us/B, copy "
            "%.3g us/B, kernel copy %.3g us/B + %.3g us a call, sync %.3g us%s%s",
            path.c_str(), tf.model.intra.alphaUs, tf.model.intra.betaUsPerByte,
            tf.model.intra.gammaUsPerByte, tf.model.intra.copyUsPerByte,
            tf.model.intra.kernelCopyUsPerByte, tf.model.intra.kernelCallUs, tf.model.intra.syncUs,
            tf.hasAlgo ? "; algo = " : "", tf.hasAlgo ? tf.algoText.c_str() : "");
  Tuner t(AlgoOverride::merge(ov, tf.algo), tf.model, "WEFT_TUNE_FILE=" + path);
  t.fileKeys_ = std::move(tf.keys);
  t.setChunkBytes(chunk);
  return t;
}

}  // namespace weft
