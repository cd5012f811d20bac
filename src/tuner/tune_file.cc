#include "tuner/tune_file.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace weft {
namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::string acceptedKeys() {
  std::string out = "format";
  for (const TuneKey& k : tuneKeys())
    out += std::string(", ") + k.name;
  return out + ", algo";
}

}  // namespace

const std::vector<TuneKey>& tuneKeys() {
  static const char kAlpha[] = "latency of one message hand-off (us)";
  static const char kBeta[] = "time per byte moved through a message (us/B; 1/bandwidth)";
  static const char kGamma[] = "time per byte reduced (us/B)";
  static const char kCopy[] =
      "time per byte copied in a rank's own memory, out of memory rather than cache (us/B)";
  static const char kKernel[] =
      "time per byte a one-sided step moves from or to a peer's memory that is not mapped here "
      "(process_vm_readv; RMA between nodes) (us/B)";
  static const char kMapped[] =
      "time per byte a one-sided step moves in a peer's mapped memory (registered weftMemAlloc "
      "buffers) (us/B)";
  static const char kCall[] =
      "what one such move costs beyond its bytes: a process_vm_readv/writev call; an RMA "
      "operation between nodes (us)";
  static const char kSync[] = "one barrier-like synchronisation of the ranks (us)";
  static const char kMsg[] =
      "one more message among several that do not wait on each other, beyond their shared "
      "hand-off (us)";
  static const std::vector<TuneKey> kKeys = {
      {"intra.alpha_us", false, &LevelCost::alphaUs, kAlpha},
      {"intra.beta_us_per_byte", false, &LevelCost::betaUsPerByte, kBeta},
      {"intra.gamma_us_per_byte", false, &LevelCost::gammaUsPerByte, kGamma},
      {"intra.copy_us_per_byte", false, &LevelCost::copyUsPerByte, kCopy},
      {"intra.sync_us", false, &LevelCost::syncUs, kSync},
      {"intra.msg_us", false, &LevelCost::msgUs, kMsg},
      {"intra.mapped_copy_us_per_byte", false, &LevelCost::mappedCopyUsPerByte, kMapped},
      {"intra.kernel_copy_us_per_byte", false, &LevelCost::kernelCopyUsPerByte, kKernel},
      {"intra.kernel_call_us", false, &LevelCost::kernelCallUs, kCall},
      {"inter.alpha_us", true, &LevelCost::alphaUs, kAlpha},
      {"inter.beta_us_per_byte", true, &LevelCost::betaUsPerByte, kBeta},
      {"inter.gamma_us_per_byte", true, &LevelCost::gammaUsPerByte, kGamma},
      {"inter.copy_us_per_byte", true, &LevelCost::copyUsPerByte, kCopy},
      {"inter.sync_us", true, &LevelCost::syncUs, kSync},
      {"inter.msg_us", true, &LevelCost::msgUs, kMsg},
      {"inter.mapped_copy_us_per_byte", true, &LevelCost::mappedCopyUsPerByte, kMapped},
      {"inter.kernel_copy_us_per_byte", true, &LevelCost::kernelCopyUsPerByte, kKernel},
      {"inter.kernel_call_us", true, &LevelCost::kernelCallUs, kCall},
  };
  return kKeys;
}

Result<TuneFile> parseTuneFile(const std::string& text, const std::string& path) {
  TuneFile tf;
  tf.path = path;
  std::map<std::string, int> seen;  // key -> line
  std::istringstream in(text);
  std::string raw;
  int lineNo = 0;
  while (std::getline(in, raw)) {
    ++lineNo;
    const std::string where = "WEFT_TUNE_FILE=" + path + " line " + std::to_string(lineNo);
    auto fail = [&](const std::string& problem) {
      return Status(weftInvalidArgument, where + ": " + problem);
    };
    std::string line = raw;
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = trim(line);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) return fail("expected \"key = value\", found \"" + line + "\"");
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    if (key.empty()) return fail("no key before \"=\" in \"" + line + "\"");
    auto [it, fresh] = seen.emplace(key, lineNo);
    if (!fresh)
      return fail(key + " is set twice (first on line " + std::to_string(it->second) + ")");
    if (key == "format") {
      if (value != "1")
        return fail("format = \"" + value + "\": this version of weft reads format 1 only");
      continue;
    }
    if (key == "algo") {
      Result<AlgoOverride> ov = parseAlgoOverride(value, where + ": algo");
      if (!ov.ok()) return ov.status();
      tf.hasAlgo = true;
      tf.algo = std::move(ov.value());
      tf.algoText = value;
      continue;
    }
    const TuneKey* k = nullptr;
    for (const TuneKey& cand : tuneKeys())
      if (key == cand.name) k = &cand;
    if (k == nullptr) return fail("unknown key \"" + key + "\" (accepted: " + acceptedKeys() + ")");
    if (value.empty()) return fail(key + " has no value");
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (errno != 0 || end == value.c_str() || *end != '\0')
      return fail(key + " = \"" + value + "\" is not a number");
    if (!std::isfinite(v) || v < 0)
      return fail(key + " = \"" + value + "\" is out of range (a finite number >= 0)");
    LevelCost& level = k->inter ? tf.model.inter : tf.model.intra;
    level.*(k->field) = v;
    tf.keys.push_back(key);
  }
  return tf;
}

Result<TuneFile> loadTuneFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    return Status(weftInvalidArgument, "WEFT_TUNE_FILE=" + path +
                                           ": cannot open: " + std::strerror(errno) +
                                           " (write one with weft-tune, or unset WEFT_TUNE_FILE)");
  std::ostringstream text;
  text << f.rdbuf();
  if (f.bad()) return Status(weftInvalidArgument, "WEFT_TUNE_FILE=" + path + ": cannot read it");
  return parseTuneFile(text.str(), path);
}

std::string formatTuneFile(const CostModel& model, const std::string& comment) {
  std::string out;
  std::istringstream c(comment);
  std::string line;
  while (std::getline(c, line))
    out += line.empty() ? "#\n" : "# " + line + "\n";
  out += "format = 1\n";
  bool inter = false;
  for (const TuneKey& k : tuneKeys()) {
    if (k.inter && !inter) {
      out += "\n";
      inter = true;
    }
    const LevelCost& level = k.inter ? model.inter : model.intra;
    out += strprintf("%-24s = %-12.6g # %s\n", k.name, level.*(k.field), k.help);
  }
  return out;
}

}  // namespace weft
