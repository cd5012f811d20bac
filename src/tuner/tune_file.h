// Tuning files (WEFT_TUNE_FILE): the cost model's constants measured on a machine, written by
// weft-tune and read when a communicator is created. A text file of "key = value" lines; "#" starts
// a comment; blank lines are ignored. Keys (docs/tuning.md):
//
//   format = 1                       optional; the only format there is
//   intra.alpha_us = 0.45            LevelCost fields of the intra-node level: alpha_us,
//   intra.beta_us_per_byte = 1e-4    beta_us_per_byte, gamma_us_per_byte, copy_us_per_byte,
//                                    sync_us, msg_us, mapped_copy_us_per_byte,
//                                    kernel_copy_us_per_byte
//   inter.alpha_us = 5               the same for the inter-node level
//   algo = allreduce:0-4K:recursive_doubling,4K-inf:ring
//                                    algorithm preferences in WEFT_ALGO's grammar; WEFT_ALGO
//                                    overrides them per collective
//
// Keys that are absent keep the built-in defaults of algorithms/cost.h. Every error is
// weftInvalidArgument naming the file, the line and the key.
#pragma once

#include <string>
#include <vector>

#include "algorithms/cost.h"
#include "core/status.h"
#include "tuner/algo_override.h"

namespace weft {

struct TuneFile {
  std::string path;
  CostModel model;
  std::vector<std::string> keys;  // the constants the file sets ("intra.alpha_us", ...)
  bool hasAlgo = false;
  AlgoOverride algo;
  std::string algoText;
};

// One number of the file: its key, what it means, where it goes.
struct TuneKey {
  const char* name;  // "intra.alpha_us"
  bool inter;
  double LevelCost::*field;
  const char* help;
};
const std::vector<TuneKey>& tuneKeys();

// Parses the text of a tuning file; `path` is only used in messages.
Result<TuneFile> parseTuneFile(const std::string& text, const std::string& path);
// Reads and parses a file. A file that cannot be read is an error naming it and the reason.
Result<TuneFile> loadTuneFile(const std::string& path);

// The file's text for a model (every key of both levels), after `comment` (lines without "#").
std::string formatTuneFile(const CostModel& model, const std::string& comment = "");

}  // namespace weft
