// WEFT_ALGO: which algorithms a collective may use, per size range, in NCCL 2.24's grammar extended
// with size ranges. The full grammar, with examples, is in docs/tuning.md:
//
//   value  := clause (";" clause)*
//   clause := list                        every collective that has one of the algorithms
//           | coll ":" list               that collective, every size
//           | coll ":" range ":" list ("," range ":" list)*   that collective, per size range
//   list   := ["^"] algo ("," algo)*      "^" excludes the algorithms listed instead
//   algo   := name | "hier(" level ("," level)* ")"   a hierarchical algorithm and, optionally,
//   level  := ("intra" | "inter") "=" name              the flat algorithm each level runs
//   range  := size "-" (size | "inf")     [lo, hi) in bytes of CollDesc::bytes(): the count
//                                         argument of the call times the element size
//   size   := integer with an optional K, M or G suffix (powers of 1024)
//
// A list of several algorithms means "choose among these" (by estimated time). Names are
// case-insensitive. For a call of B bytes the range holding B decides; otherwise the collective's
// all-sizes clause; otherwise (a gap, or a collective not named) the tuner chooses freely.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "core/coll.h"
#include "core/status.h"

namespace weft {

inline constexpr uint64_t kSizeInf = std::numeric_limits<uint64_t>::max();

// One rule: for calls whose bytes lie in [lo, hi), only `algos` (or all but them, if exclude).
struct AlgoRule {
  uint64_t lo = 0;
  uint64_t hi = kSizeInf;  // kSizeInf: no upper bound ("inf")
  bool ranged = false;     // written with a size range
  bool exclude = false;
  std::vector<const AlgorithmInfo*> algos;
  std::string source;  // where it was written: "WEFT_ALGO" or "WEFT_TUNE_FILE=path line N"
  std::string clause;  // the clause as written, for messages
  std::string range;   // the range as written ("0-64K"), empty when not ranged

  bool allows(const AlgorithmInfo* a) const;
  // "WEFT_ALGO clause \"allgather:0-64K:bruck\" (range 0-64K)"
  std::string where() const;
  // "ring, bruck": the algorithms listed
  std::string names() const;
  // "ring, bruck", or "all but ring" for an exclusion
  std::string listText() const;
};

struct CollRules {
  bool hasWhole = false;
  AlgoRule whole;                // the all-sizes rule
  std::vector<AlgoRule> ranges;  // sorted by lo, disjoint
  bool any() const { return hasWhole || !ranges.empty(); }
};

// What hier(intra=...,inter=...) asked of one collective's hierarchical algorithm: the flat
// algorithm by name for each level (empty: the tuner's choice). A name applies to each
// sub-collective of its level that has an algorithm of that name; the others are the tuner's.
struct LevelChoice {
  std::string name[2];  // indexed by Level
  std::string clause;   // where it was written, for messages
  bool any() const { return !name[0].empty() || !name[1].empty(); }
};

// A parsed WEFT_ALGO (or a tuning file's algo key).
struct AlgoOverride {
  CollRules colls[static_cast<int>(CollType::kCount)];
  LevelChoice levels[static_cast<int>(CollType::kCount)];

  // The rule for a call of `bytes` bytes of collective `type`, or nullptr: the tuner is free.
  const AlgoRule* ruleFor(CollType type, uint64_t bytes) const;
  bool empty() const;
  // Per collective, the rules of `over` where it has any, else those of `under` (WEFT_ALGO over a
  // tuning file's preferences).
  static AlgoOverride merge(const AlgoOverride& over, const AlgoOverride& under);
};

// Parses the grammar above. Errors are weftInvalidArgument:
//   `<source>: clause "<clause>": <problem>`
// where the problem is an unknown collective, an unknown algorithm (naming the collective and the
// accepted names), a malformed or empty size range, overlapping ranges, a misplaced "^", or a
// malformed hier(...) (an unknown level or algorithm, a level given twice, level choices that
// differ between two clauses of one collective).
// `source` names where the text came from ("WEFT_ALGO" by default).
Result<AlgoOverride> parseAlgoOverride(const std::string& text,
                                       const std::string& source = "WEFT_ALGO");

// "0", "64K", "1M", "inf"; exact multiples of 1024 use the largest suffix.
std::string formatSize(uint64_t bytes);

}  // namespace weft
