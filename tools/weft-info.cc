// weft-info: what this build of weft is and what it would do, without starting a communicator.
//
//   weft-info [--json] [--version] [--params] [--algorithms] [--model]
//   weft-info [--json] --explain COLLECTIVE BYTES [--nranks N] [--dtype TYPE] [--op OP]
//                      [--in-place] [--no-peer-access]
//
// Without a section flag every section is printed. Sections are entries of one table (kSections)
// with a text and a JSON printer each, so that a new one (topology, transports) is one more entry.
// --explain prints the tuner's candidate table for a hypothetical call: every algorithm of the
// collective with its estimated time, or why it is not eligible, and the choice, under the
// settings of this environment (WEFT_ALGO, WEFT_TUNE_FILE), as WEFT_DEBUG_SUBSYS=TUNING logs it for
// real calls. BYTES is the per-rank message of the call, count x element size (docs/tuning.md).
//
// The tool links weft's internals (the settings and algorithm tables, the tuner) rather than the
// public API alone: it describes the library, and none of that is part of the C ABI.
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "core/coll.h"
#include "core/config.h"
#include "core/dtype.h"
#include "tuner/tuner.h"
#include "weft/weft.h"

namespace {

using weft::config::Param;
using weft::config::Type;

// ---- A small JSON writer: values, objects and arrays with commas and escapes handled. ----
class Json {
 public:
  explicit Json(FILE* out) : out_(out) {}
  void beginObject() { open('{'); }
  void endObject() { close('}'); }
  void beginArray() { open('['); }
  void endArray() { close(']'); }
  Json& key(const char* k) {
    comma();
    str(k);
    std::fputs(": ", out_);
    pendingKey_ = true;
    return *this;
  }
  void value(const std::string& s) {
    comma();
    str(s.c_str());
  }
  void value(const char* s) {
    comma();
    if (s == nullptr)
      std::fputs("null", out_);
    else
      str(s);
  }
  void value(double v) {
    comma();
    if (std::isfinite(v))
      std::fprintf(out_, "%.6g", v);
    else
      std::fputs("null", out_);
  }
  void value(int64_t v) {
    comma();
    std::fprintf(out_, "%" PRId64, v);
  }
  void value(bool v) {
    comma();
    std::fputs(v ? "true" : "false", out_);
  }
  void null() {
    comma();
    std::fputs("null", out_);
  }
  void finish() { std::fputc('\n', out_); }

 private:
  void comma() {
    if (pendingKey_) {
      pendingKey_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) std::fputc(',', out_);
      first_.back() = false;
      std::fputc('\n', out_);
      for (size_t i = 0; i < first_.size(); ++i)
        std::fputs("  ", out_);
    }
  }
  void open(char c) {
    comma();
    std::fputc(c, out_);
    first_.push_back(true);
  }
  void close(char c) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) {
      std::fputc('\n', out_);
      for (size_t i = 0; i < first_.size(); ++i)
        std::fputs("  ", out_);
    }
    std::fputc(c, out_);
  }
  void str(const char* s) {
    std::fputc('"', out_);
    for (; *s != '\0'; ++s) {
      const unsigned char ch = static_cast<unsigned char>(*s);
      if (ch == '"' || ch == '\\')
        std::fprintf(out_, "\\%c", ch);
      else if (ch < 0x20)
        std::fprintf(out_, "\\u%04x", ch);
      else
        std::fputc(ch, out_);
    }
    std::fputc('"', out_);
  }

  FILE* out_;
  std::vector<bool> first_;
  bool pendingKey_ = false;
};

// ---- Shared state: the settings and the tuner they ask for. ----
struct Context {
  weft::Status configStatus;  // a bad WEFT_* value (the defaults stand in for it)
  weft::Result<weft::Tuner> tuner = weft::Status(weftInternalError, "not built");
  int exitStatus = 0;
};

const weft::Tuner& tunerOrDefault(const Context& ctx) {
  static const weft::Tuner kDefault;
  return ctx.tuner.ok() ? ctx.tuner.value() : kDefault;
}

std::string effectiveValue(const Param& p) {
  if (!weft::config::isSet(p.name) && p.defaultValue[0] == '\0') return "";
  switch (p.type) {
    case Type::kInt:
    case Type::kBool:
      return std::to_string(weft::config::intValue(p.name));
    case Type::kBytes:
      return weft::formatSize(static_cast<uint64_t>(weft::config::intValue(p.name)));
    case Type::kSeconds:
      return weft::strprintf("%g", weft::config::secondsValue(p.name));
    case Type::kEnum:
    case Type::kString:
      return weft::config::stringValue(p.name);
  }
  return "";
}

// ---- Sections ----
void versionText(Context&) {
  int code = 0;
  weftGetVersion(&code);
  std::printf("weft %d.%d.%d (version code %d)\n", code / 10000, code / 100 % 100, code % 100,
              code);
}
void versionJson(Context&, Json& j) {
  int code = 0;
  weftGetVersion(&code);
  j.beginObject();
  j.key("string").value(
      weft::strprintf("%d.%d.%d", code / 10000, code / 100 % 100, code % 100).c_str());
  j.key("code").value(static_cast<int64_t>(code));
  j.endObject();
}

void paramsText(Context& ctx) {
  std::printf("\nSettings (WEFT_* environment variables; * = set in the environment)\n");
  if (!ctx.configStatus.ok())
    std::printf("  error: %s (its default stands in)\n", ctx.configStatus.message().c_str());
  std::printf("  %-22s %-24s %s\n", "variable", "value", "default");
  for (const Param& p : weft::config::params()) {
    std::string v = effectiveValue(p);
    if (v.empty()) v = "(unset)";
    if (weft::config::isSet(p.name)) v += " *";
    std::printf("  %-22s %-24s %s\n", p.name, v.c_str(),
                p.defaultValue[0] != '\0' ? p.defaultValue : "(unset)");
    std::printf("      %s Accepted: %s.\n", p.help, p.accepted);
  }
}
void paramsJson(Context& ctx, Json& j) {
  j.beginArray();
  for (const Param& p : weft::config::params()) {
    j.beginObject();
    j.key("name").value(p.name);
    const std::string v = effectiveValue(p);
    if (v.empty())
      j.key("value").null();
    else
      j.key("value").value(v);
    j.key("set").value(weft::config::isSet(p.name));
    j.key("default").value(p.defaultValue);
    j.key("accepted").value(p.accepted);
    j.key("help").value(p.help);
    j.endObject();
  }
  j.endArray();
  (void)ctx;
}

void algorithmsText(Context&) {
  std::printf("\nAlgorithms (WEFT_ALGO names)\n");
  std::printf("  %-15s %-24s %s\n", "collective", "algorithm", "description");
  for (int c = 0; c < static_cast<int>(weft::CollType::kCount); ++c)
    for (const weft::AlgorithmInfo* a : weft::algorithmsFor(static_cast<weft::CollType>(c)))
      std::printf("  %-15s %-24s %s\n", weft::collName(a->coll), a->name, a->description);
}
void algorithmsJson(Context&, Json& j) {
  j.beginArray();
  for (const weft::AlgorithmInfo& a : weft::algorithmTable()) {
    j.beginObject();
    j.key("collective").value(weft::collName(a.coll));
    j.key("name").value(a.name);
    j.key("description").value(a.description);
    j.endObject();
  }
  j.endArray();
}

// Every rule of an override, one line each: "allreduce 0-64K: recursive_doubling (WEFT_ALGO)".
std::vector<std::pair<std::string, const weft::AlgoRule*>> rulesOf(const weft::AlgoOverride& ov) {
  std::vector<std::pair<std::string, const weft::AlgoRule*>> out;
  for (int c = 0; c < static_cast<int>(weft::CollType::kCount); ++c) {
    const weft::CollRules& cr = ov.colls[c];
    const char* name = weft::collName(static_cast<weft::CollType>(c));
    for (const weft::AlgoRule& r : cr.ranges)
      out.emplace_back(
          std::string(name) + " " + weft::formatSize(r.lo) + "-" + weft::formatSize(r.hi), &r);
    if (cr.hasWhole)
      out.emplace_back(std::string(name) + (cr.ranges.empty() ? "" : " elsewhere"), &cr.whole);
  }
  return out;
}

void modelText(Context& ctx) {
  const weft::Tuner& t = tunerOrDefault(ctx);
  std::printf("\nCost model (%s)\n", t.modelSource().c_str());
  if (!ctx.tuner.ok())
    std::printf("  error: %s (the built-in defaults stand in)\n",
                ctx.tuner.status().message().c_str());
  std::printf("  %-24s %12s %12s  %s\n", "constant", "intra-node", "inter-node", "meaning");
  const std::vector<weft::TuneKey>& keys = weft::tuneKeys();
  for (size_t i = 0; i < keys.size() / 2; ++i) {
    const weft::TuneKey& k = keys[i];
    std::printf("  %-24s %12.4g %12.4g  %s\n", k.name + 6, t.model().intra.*(k.field),
                t.model().inter.*(k.field), k.help);
  }
  const auto rules = rulesOf(t.algoOverride());
  std::printf("\nAlgorithm rules (WEFT_ALGO, then the tuning file's algo)%s\n",
              rules.empty() ? ": none, the tuner chooses freely" : "");
  for (const auto& [what, r] : rules)
    std::printf("  %-32s %-28s from %s\n", what.c_str(), r->listText().c_str(),
                (r->source + " clause \"" + r->clause + "\"").c_str());
}
void modelJson(Context& ctx, Json& j) {
  const weft::Tuner& t = tunerOrDefault(ctx);
  j.beginObject();
  j.key("source").value(t.modelSource());
  if (!ctx.tuner.ok())
    j.key("error").value(ctx.tuner.status().message());
  else
    j.key("error").null();
  for (int inter = 0; inter < 2; ++inter) {
    j.key(inter ? "inter" : "intra").beginObject();
    for (const weft::TuneKey& k : weft::tuneKeys()) {
      if (k.inter != (inter != 0)) continue;
      j.key(k.name + 6).value((inter ? t.model().inter : t.model().intra).*(k.field));
    }
    j.endObject();
  }
  j.key("rules").beginArray();
  for (const auto& [what, r] : rulesOf(t.algoOverride())) {
    j.beginObject();
    j.key("applies").value(what);
    j.key("exclude").value(r->exclude);
    j.key("algorithms").beginArray();
    for (const weft::AlgorithmInfo* a : r->algos)
      j.value(a->name);
    j.endArray();
    j.key("source").value(r->source);
    j.key("clause").value(r->clause);
    j.endObject();
  }
  j.endArray();
  j.endObject();
}

struct Section {
  const char* flag;  // the option that selects it; also its key in the JSON output
  const char* help;
  void (*text)(Context&);
  void (*json)(Context&, Json&);
};

const Section kSections[] = {
    {"version", "the library's version", versionText, versionJson},
    {"params", "every WEFT_* setting with its effective value, default and meaning", paramsText,
     paramsJson},
    {"algorithms", "every algorithm of every collective", algorithmsText, algorithmsJson},
    {"model", "the cost model's constants in effect and the algorithm rules", modelText, modelJson},
};

// ---- --explain ----
struct ExplainArgs {
  std::string coll, bytes, dtype = "float32", op = "sum";
  int nranks = 8;
  bool inPlace = false;
  bool peerAccess = true;
};

int explain(Context& ctx, const ExplainArgs& a, bool json) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "weft-info: --explain: %s\n", msg.c_str());
    return 2;
  };
  weft::CollDesc d;
  if (!weft::parseCollName(a.coll, &d.type)) {
    std::string accepted;
    for (int c = 0; c < static_cast<int>(weft::CollType::kCount); ++c)
      accepted += (c ? ", " : "") + std::string(weft::collName(static_cast<weft::CollType>(c)));
    return fail("unknown collective \"" + a.coll + "\" (accepted: " + accepted + ")");
  }
  if (std::string(weft::collName(d.type)) == "alltoallv")
    return fail("alltoallv's counts are per-peer arrays; explain alltoall with the bytes per peer");
  weft::Result<int64_t> bytes = weft::config::parseBytes(a.bytes);
  if (!bytes.ok())
    return fail("BYTES \"" + a.bytes + "\" is not a size (" + bytes.status().message() +
                "; a byte count with an optional K, M or G)");
  if (!weft::parseDtype(a.dtype.c_str(), &d.dtype))
    return fail("unknown data type \"" + a.dtype + "\"");
  if (!weft::parseOp(a.op.c_str(), &d.op)) return fail("unknown reduction op \"" + a.op + "\"");
  if (a.nranks < 1) return fail("--nranks must be at least 1");
  d.elemSize = weft::dtypeSize(d.dtype);
  if (static_cast<uint64_t>(*bytes) % d.elemSize != 0)
    return fail(weft::strprintf("BYTES %lld is not a multiple of the %s element size (%llu)",
                                static_cast<long long>(*bytes), weft::dtypeName(d.dtype),
                                static_cast<unsigned long long>(d.elemSize)));
  d.count = static_cast<uint64_t>(*bytes) / d.elemSize;
  d.nranks = a.nranks;
  d.rank = 0;
  const std::string name = weft::collName(d.type);
  if (name != "allreduce" && name != "reducescatter" && name != "reduce") d.op = weftSum;
  if (name == "broadcast" || name == "reduce" || name == "gather" || name == "scatter") d.root = 0;
  if (d.type == weft::CollType::kSend || d.type == weft::CollType::kRecv) d.peer = 1 % d.nranks;
  d.inPlace = a.inPlace;
  d.peerAccess = a.peerAccess;
  if (!ctx.tuner.ok()) {
    std::fprintf(stderr, "weft-info: %s\n", ctx.tuner.status().message().c_str());
    return 1;
  }
  const weft::Explanation ex = ctx.tuner.value().explain(d);
  if (!json) {
    for (const std::string& line : ex.lines())
      std::printf("%s\n", line.c_str());
    return ex.chosen != nullptr ? 0 : 1;
  }
  Json j(stdout);
  j.beginObject();
  j.key("explain").beginObject();
  j.key("collective").value(weft::collDisplayName(d.type));
  j.key("bytes").value(static_cast<int64_t>(d.bytes()));
  j.key("count").value(static_cast<int64_t>(d.count));
  j.key("dtype").value(weft::dtypeName(d.dtype));
  j.key("op").value(weft::opName(d.op));
  j.key("nranks").value(static_cast<int64_t>(d.nranks));
  j.key("in_place").value(d.inPlace);
  j.key("peer_access").value(d.peerAccess);
  j.key("level").value(ex.interNode ? "inter" : "intra");
  j.key("model").value(ex.modelSource);
  j.key("rule").value(ex.ruleText());
  j.key("candidates").beginArray();
  for (const weft::Explanation::Candidate& c : ex.candidates) {
    j.beginObject();
    j.key("name").value(c.algo->name);
    if (c.canRun)
      j.key("estimate_us").value(c.us);
    else
      j.key("estimate_us").null();
    j.key("can_run").value(c.canRun);
    j.key("allowed").value(c.allowed);
    j.key("status").value(ex.statusOf(c));
    j.endObject();
  }
  j.endArray();
  j.key("chosen").value(ex.chosen != nullptr ? ex.chosen->name : nullptr);
  if (ex.chosen == nullptr)
    j.key("error").value(ex.status.message());
  else
    j.key("error").null();
  j.endObject();
  j.endObject();
  j.finish();
  return ex.chosen != nullptr ? 0 : 1;
}

void usage(FILE* f) {
  std::fprintf(f,
               "usage: weft-info [--json] [SECTION...]\n"
               "       weft-info [--json] --explain COLLECTIVE BYTES [--nranks N] [--dtype TYPE] "
               "[--op OP]\n"
               "                 [--in-place] [--no-peer-access]\n"
               "\nSections (all of them when none is named):\n");
  for (const Section& s : kSections)
    std::fprintf(f, "  --%-12s %s\n", s.flag, s.help);
  std::fprintf(f,
               "\n--explain prints the tuner's candidates for a hypothetical call under this "
               "environment's\nWEFT_ALGO and WEFT_TUNE_FILE: every algorithm's estimated time or "
               "why it is not eligible,\nand the choice. BYTES is the per-rank message (count x "
               "element size; K, M, G suffixes).\nDefaults: --nranks 8 --dtype float32 --op sum, "
               "out of place, ranks that can read each\nother's memory. See docs/tuning.md.\n"
               "  --json         print JSON instead of text\n"
               "  -h, --help     print this help\n");
}

}  // namespace

int main(int argc, char** argv) {
  Context ctx;
  bool json = false, explainMode = false;
  ExplainArgs ea;
  std::vector<const Section*> chosen;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&](const char* what) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "weft-info: %s needs %s\n", arg.c_str(), what);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      usage(stdout);
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--explain") {
      explainMode = true;
      ea.coll = next("a collective and a size in bytes");
      ea.bytes = next("a size in bytes after the collective");
    } else if (arg == "--nranks") {
      const char* v = next("a number");
      char* end = nullptr;
      const long n = std::strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n < 1 || n > 1000000) {
        std::fprintf(stderr, "weft-info: --nranks \"%s\" is not a rank count (1..1000000)\n", v);
        return 2;
      }
      ea.nranks = static_cast<int>(n);
    } else if (arg == "--dtype") {
      ea.dtype = next("a data type");
    } else if (arg == "--op") {
      ea.op = next("a reduction op");
    } else if (arg == "--in-place") {
      ea.inPlace = true;
    } else if (arg == "--no-peer-access") {
      ea.peerAccess = false;
    } else {
      const Section* found = nullptr;
      for (const Section& s : kSections)
        if (arg == std::string("--") + s.flag) found = &s;
      if (found == nullptr) {
        std::fprintf(stderr, "weft-info: unknown option \"%s\"\n", arg.c_str());
        usage(stderr);
        return 2;
      }
      chosen.push_back(found);
    }
  }
  ctx.configStatus = weft::config::load();
  ctx.tuner = weft::tunerFromConfig();
  if (explainMode) {
    if (!chosen.empty()) {
      std::fprintf(stderr, "weft-info: --explain cannot be combined with sections\n");
      return 2;
    }
    return explain(ctx, ea, json);
  }
  if (chosen.empty())
    for (const Section& s : kSections)
      chosen.push_back(&s);
  if (json) {
    Json j(stdout);
    j.beginObject();
    for (const Section* s : chosen) {
      j.key(s->flag);
      s->json(ctx, j);
    }
    j.endObject();
    j.finish();
  } else {
    for (const Section* s : chosen)
      s->text(ctx);
  }
  return ctx.configStatus.ok() && ctx.tuner.ok() ? 0 : 1;
}
