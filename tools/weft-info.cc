// weft-info: what this build of weft is and what it would do.
//
//   weft-info [--json] [--version] [--params] [--algorithms] [--model] [--topology]
//   weft-info [--json] --explain COLLECTIVE BYTES [--nodes LAYOUT | --nranks N] [--dtype TYPE]
//                      [--op OP] [--in-place] [--no-peer-access] [--registered]
//   weft-info [--json] --table [--nodes LAYOUT | --nranks N] [--dtype TYPE] [--op OP]
//                      [--collectives A,B,...] [--sizes LO-HI] [--in-place] [--no-peer-access]
//                      [--registered]
//   weftrun -n N weft-info [--json] --comm [--dtype TYPE] [--op OP] [--collectives A,B,...]
//                                         [--sizes LO-HI]
//
// Without a section flag every section is printed. Sections are entries of one table (kSections)
// with a text and a JSON printer each, so that a new one is one more entry. --topology is this
// node as a communicator would see it (discoverTopology(): WEFT_TOPO_FILE, hwloc or /sys).
// --explain prints the tuner's candidate table for a hypothetical call: every algorithm of the
// collective with its estimated time, or why it is not eligible, and the choice, under the
// settings of this environment (WEFT_ALGO, WEFT_TUNE_FILE), as WEFT_DEBUG_SUBSYS=TUNING logs it for
// real calls. BYTES is the per-rank message of the call, count x element size (docs/tuning.md).
// --nodes gives the hypothetical communicator a layout over nodes ("2x4": 2 nodes of 4 ranks;
// "3+2+4": nodes of 3, 2 and 4 ranks): the call's CollDesc then carries it and the tuner's level
// chooser, as a real call's does, so that hierarchical algorithms are estimated level by level
// and flat ones with the inter-node costs. --table prints the tuner's choice and its estimate for
// every collective and a range of sizes.
// --comm starts a real communicator from the launcher's environment (weftrun, torchrun, mpirun,
// srun), runs one small all-reduce so that the transports connect, and prints on rank 0 its
// layout, where every rank runs, the transports every rank uses and the --table of its layout.
//
// The tool links weft's internals (the settings and algorithm tables, the tuner, the communicator)
// rather than the public API alone: it describes the library, and none of that is part of the
// C ABI.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "api/comm.h"
#include "core/coll.h"
#include "core/config.h"
#include "core/dtype.h"
#include "core/layout.h"
#include "core/run_list.h"
#include "topology/node_topology.h"
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
  // A value that is JSON text already, written by a producer that indents its lines after the
  // first for depth() levels (NodeTopology::toJson).
  void raw(const std::string& json) {
    comma();
    std::fputs(json.c_str(), out_);
  }
  int depth() const { return static_cast<int>(first_.size()); }
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

// This node as discoverTopology() finds it. A discovery error (a WEFT_TOPO_FILE that cannot be
// read, say; the message names the variable and the file) is the section's content and makes the
// exit status 1.
void topologyText(Context& ctx) {
  std::printf("\nTopology (this node, as a communicator started here would see it)\n");
  weft::Result<weft::topo::NodeTopology> topo = weft::topo::discoverTopology();
  if (!topo.ok()) {
    std::printf("  error: %s\n", topo.status().message().c_str());
    ctx.exitStatus = 1;
    return;
  }
  const std::string text = topo->summary();
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::printf("  %.*s\n", static_cast<int>(end - pos), text.c_str() + pos);
    pos = end + 1;
  }
}
void topologyJson(Context& ctx, Json& j) {
  weft::Result<weft::topo::NodeTopology> topo = weft::topo::discoverTopology();
  if (!topo.ok()) {
    j.beginObject();
    j.key("error").value(topo.status().message());
    j.endObject();
    ctx.exitStatus = 1;
    return;
  }
  j.raw(topo->toJson(j.depth()));
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
    {"topology", "this node: NUMA nodes, CPUs, caches, binding, GPUs and NICs (WEFT_TOPO_FILE)",
     topologyText, topologyJson},
};

// ---- The hypothetical communicator of --explain and --table, and the real one of --comm ----
struct CallArgs {
  std::string coll, bytes, dtype = "float32", op = "sum";
  int nranks = 8;
  bool nranksGiven = false;
  std::string nodes;  // --nodes LAYOUT
  bool nodesGiven = false;
  bool inPlace = false;
  bool peerAccess = true;
  bool registered = false;         // buffers registered weftMemAlloc memory on every rank
  std::string collectives, sizes;  // --table
};

// Where a call runs: the rank count, the layout over nodes where one is known (nullptr: every
// rank counts as on one node) and the tuner that decides for it.
struct Shape {
  int nranks = 8;
  const weft::CommLayout* layout = nullptr;
  weft::Tuner tuner;
  bool peerAccess = true;
  bool peerAccessNet = false;  // some of that reach over a network (CollDesc::peerAccessNet)
};

// --nodes: "NxL" (N nodes of L ranks) or per-node rank counts joined by '+' ("3+2+4"; one count
// is one node).
weft::Result<std::vector<int>> parseNodes(const std::string& text) {
  const weft::Status bad(
      weftInvalidArgument,
      "--nodes \"" + text +
          "\" is not a layout: give NxL (N nodes of L ranks each, e.g. 2x4) or the ranks of "
          "each node joined by '+' (e.g. 3+2+4), every number at least 1");
  auto number = [](const std::string& t, int* out) {
    if (t.empty() || t.size() > 7 || t.find_first_not_of("0123456789") != std::string::npos)
      return false;
    *out = std::atoi(t.c_str());
    return *out >= 1;
  };
  std::vector<int> counts;
  const size_t x = text.find_first_of("xX");
  if (x != std::string::npos) {
    int n = 0, l = 0;
    if (!number(text.substr(0, x), &n) || !number(text.substr(x + 1), &l)) return bad;
    if (static_cast<int64_t>(n) * l > 1000000)
      return weft::Status(weftInvalidArgument,
                          "--nodes \"" + text + "\" makes more than 1000000 ranks");
    counts.assign(static_cast<size_t>(n), l);
    return counts;
  }
  int64_t total = 0;
  for (size_t pos = 0;;) {
    const size_t plus = text.find('+', pos);
    int c = 0;
    if (!number(text.substr(pos, plus == std::string::npos ? std::string::npos : plus - pos), &c))
      return bad;
    counts.push_back(c);
    total += c;
    if (total > 1000000)
      return weft::Status(weftInvalidArgument,
                          "--nodes \"" + text + "\" makes more than 1000000 ranks");
    if (plus == std::string::npos) break;
    pos = plus + 1;
  }
  return counts;
}

// The shape --nranks and --nodes describe; *layout keeps the layout alive. Errors are usage
// errors; the caller checks the tuner.
weft::Status hypotheticalShape(const Context& ctx, const CallArgs& a,
                               std::optional<weft::CommLayout>* layout, Shape* shape) {
  shape->nranks = a.nranks;
  if (a.nodesGiven) {
    weft::Result<std::vector<int>> counts = parseNodes(a.nodes);
    if (!counts.ok()) return counts.status();
    layout->emplace(weft::CommLayout::blocks(*counts));
    if (a.nranksGiven && a.nranks != (*layout)->nranks())
      return weft::errorStatus(weftInvalidArgument,
                               "--nodes %s makes %d ranks but --nranks is %d: give one of them, "
                               "or make them agree",
                               a.nodes.c_str(), (*layout)->nranks(), a.nranks);
    shape->nranks = (*layout)->nranks();
    shape->layout = &**layout;
  }
  if (shape->nranks < 1) return weft::Status(weftInvalidArgument, "--nranks must be at least 1");
  if (ctx.tuner.ok()) shape->tuner = ctx.tuner.value();
  const bool multiNode = shape->layout != nullptr && shape->layout->nnodes() > 1;
  shape->tuner.setInterNode(multiNode);
  // Ranks on different nodes cannot reach each other's memory, so one-sided algorithms are out,
  // as for a real communicator that spans hosts.
  shape->peerAccess = a.peerAccess && !multiNode;
  return weft::Status::Ok();
}

// The data type, op and placement of the call; the messages name the bad value.
weft::Status callOptions(const CallArgs& a, weft::CollDesc* d) {
  if (!weft::parseDtype(a.dtype.c_str(), &d->dtype))
    return weft::Status(weftInvalidArgument, "unknown data type \"" + a.dtype + "\"");
  if (!weft::parseOp(a.op.c_str(), &d->op))
    return weft::Status(weftInvalidArgument, "unknown reduction op \"" + a.op + "\"");
  d->elemSize = weft::dtypeSize(d->dtype);
  d->inPlace = a.inPlace;
  d->mapped = a.registered;
  return weft::Status::Ok();
}

// `base` (dtype, op, placement) made a call of `type` with `count` elements per rank on `shape`,
// as rank 0 of a communicator would describe it: root 0, peer 1, the op only where it reduces.
weft::CollDesc callOf(weft::CollType type, uint64_t count, const weft::CollDesc& base,
                      const Shape& shape) {
  weft::CollDesc d = base;
  d.type = type;
  d.count = count;
  d.nranks = shape.nranks;
  d.rank = 0;
  const std::string name = weft::collName(d.type);
  if (name != "allreduce" && name != "reducescatter" && name != "reduce") d.op = weftSum;
  if (name == "broadcast" || name == "reduce" || name == "gather" || name == "scatter") d.root = 0;
  if (d.type == weft::CollType::kSend || d.type == weft::CollType::kRecv) d.peer = 1 % d.nranks;
  d.peerAccess = shape.peerAccess;
  d.peerAccessNet = shape.peerAccessNet;
  // As the shared-memory transport sets it: peers map each other's scratch.
  d.scratchShared = shape.peerAccess && !shape.peerAccessNet;
  // As the API flags a call: registered buffers that the peers can map.
  d.mapped = base.mapped && shape.peerAccess && d.type != weft::CollType::kAllToAllv &&
             d.type != weft::CollType::kSend && d.type != weft::CollType::kRecv;
  d.topo = shape.layout;
  d.chooser = shape.tuner.chooserFor(type);
  return d;
}

// A collective named on the command line; alltoallv has per-peer counts no size describes.
// `alternative` says what to ask instead of an alltoallv.
weft::Status parseColl(const std::string& text, const char* alternative, weft::CollType* type) {
  if (!weft::parseCollName(text, type)) {
    std::string accepted;
    for (int c = 0; c < static_cast<int>(weft::CollType::kCount); ++c)
      accepted += (c ? ", " : "") + std::string(weft::collName(static_cast<weft::CollType>(c)));
    return weft::Status(weftInvalidArgument,
                        "unknown collective \"" + text + "\" (accepted: " + accepted + ")");
  }
  if (std::string(weft::collName(*type)) == "alltoallv")
    return weft::Status(weftInvalidArgument,
                        std::string("alltoallv's counts are per-peer arrays; ") + alternative);
  return weft::Status::Ok();
}

void layoutJson(Json& j, const weft::CommLayout& layout) {
  j.key("layout").value(layout.describe());
  j.key("ranks_per_node").beginArray();
  for (int n = 0; n < layout.nnodes(); ++n)
    j.value(static_cast<int64_t>(layout.nodeRanks(n).size()));
  j.endArray();
}

// ---- --explain ----
int explain(Context& ctx, const CallArgs& a, bool json) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "weft-info: --explain: %s\n", msg.c_str());
    return 2;
  };
  weft::CollDesc base;
  weft::CollType type = weft::CollType::kAllReduce;
  if (weft::Status s = parseColl(a.coll, "explain alltoall with the bytes per peer", &type);
      !s.ok())
    return fail(s.message());
  weft::Result<int64_t> bytes = weft::config::parseBytes(a.bytes);
  if (!bytes.ok())
    return fail("BYTES \"" + a.bytes + "\" is not a size (" + bytes.status().message() +
                "; a byte count with an optional K, M or G)");
  if (weft::Status s = callOptions(a, &base); !s.ok()) return fail(s.message());
  std::optional<weft::CommLayout> layout;
  Shape shape;
  if (weft::Status s = hypotheticalShape(ctx, a, &layout, &shape); !s.ok())
    return fail(s.message());
  if (static_cast<uint64_t>(*bytes) % base.elemSize != 0)
    return fail(weft::strprintf("BYTES %lld is not a multiple of the %s element size (%llu)",
                                static_cast<long long>(*bytes), weft::dtypeName(base.dtype),
                                static_cast<unsigned long long>(base.elemSize)));
  if (!ctx.tuner.ok()) {
    std::fprintf(stderr, "weft-info: %s\n", ctx.tuner.status().message().c_str());
    return 1;
  }
  const weft::CollDesc d = callOf(type, static_cast<uint64_t>(*bytes) / base.elemSize, base, shape);
  const weft::Explanation ex = shape.tuner.explain(d);
  if (!json) {
    std::vector<std::string> lines = ex.lines();
    if (shape.layout != nullptr && !lines.empty()) {
      // The layout goes into the header line, after the rank count: "on 8 ranks as 2 nodes x 4
      // ranks".
      const std::string ranks =
          weft::strprintf(" on %d rank%s", d.nranks, d.nranks == 1 ? "" : "s");
      const std::string where = " as " + shape.layout->describe();
      const size_t at = lines[0].find(ranks);
      if (at != std::string::npos)
        lines[0].insert(at + ranks.size(), where);
      else
        lines[0] += where;
    }
    for (const std::string& line : lines)
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
  if (shape.layout != nullptr) layoutJson(j, *shape.layout);
  j.key("in_place").value(d.inPlace);
  j.key("peer_access").value(d.peerAccess);
  j.key("registered").value(d.mapped);
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

// ---- --table ----
constexpr uint64_t kTableLo = 8;
constexpr uint64_t kTableHi = uint64_t{256} << 20;

struct Table {
  std::vector<weft::CollType> colls;
  std::vector<uint64_t> sizes;  // bytes per rank, multiples of the element size, none 0
  struct Cell {
    const weft::AlgorithmInfo* algo = nullptr;  // nullptr: the rules leave none (error says why)
    double us = 0;
    std::string error;
  };
  std::vector<Cell> cells;  // sizes x colls, row by row
  std::string model;
  bool interNode = false;
  const Cell& at(size_t size, size_t coll) const { return cells[size * colls.size() + coll]; }
};

// --collectives and --sizes: the collectives and the sizes (LO, 4 LO, 16 LO, ... up to HI, each
// rounded down to a multiple of the element size, those of no element left out).
weft::Status tableArgs(const CallArgs& a, uint64_t elemSize, Table* t) {
  if (a.collectives.empty()) {
    t->colls = {weft::CollType::kAllReduce,     weft::CollType::kAllGather,
                weft::CollType::kReduceScatter, weft::CollType::kBroadcast,
                weft::CollType::kReduce,        weft::CollType::kAllToAll};
  } else {
    for (size_t pos = 0;;) {
      const size_t comma = a.collectives.find(',', pos);
      const std::string name =
          a.collectives.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      weft::CollType type = weft::CollType::kAllReduce;
      if (weft::Status s =
              parseColl(name, "ask for alltoall, whose size is the bytes per peer", &type);
          !s.ok())
        return weft::Status(weftInvalidArgument, "--collectives: " + s.message());
      t->colls.push_back(type);
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  uint64_t lo = kTableLo, hi = kTableHi;
  if (!a.sizes.empty()) {
    const size_t dash = a.sizes.find('-');
    const std::string loText = a.sizes.substr(0, dash);
    const std::string hiText = dash == std::string::npos ? loText : a.sizes.substr(dash + 1);
    const weft::Result<int64_t> l = weft::config::parseBytes(loText);
    const weft::Result<int64_t> h = weft::config::parseBytes(hiText);
    if (!l.ok() || !h.ok() || *l < 1 || *h < *l)
      return weft::Status(weftInvalidArgument,
                          "--sizes \"" + a.sizes +
                              "\" is not a size range: give LO-HI, two byte counts with an "
                              "optional K, M or G, 1 <= LO <= HI (e.g. 1K-64M)");
    lo = static_cast<uint64_t>(*l);
    hi = static_cast<uint64_t>(*h);
  }
  for (uint64_t s = lo;; s *= 4) {
    if (s / elemSize > 0) t->sizes.push_back(s / elemSize * elemSize);
    if (s > hi / 4) break;
  }
  return weft::Status::Ok();
}

void fillTable(const Shape& shape, const weft::CollDesc& base, Table* t) {
  for (uint64_t bytes : t->sizes)
    for (weft::CollType type : t->colls) {
      const weft::Explanation ex =
          shape.tuner.explain(callOf(type, bytes / base.elemSize, base, shape));
      t->model = ex.modelSource;
      t->interNode = ex.interNode;
      Table::Cell cell;
      cell.algo = ex.chosen;
      for (const weft::Explanation::Candidate& c : ex.candidates)
        if (c.algo == ex.chosen) cell.us = c.us;
      if (ex.chosen == nullptr) cell.error = ex.status.message();
      t->cells.push_back(std::move(cell));
    }
}

bool tableComplete(const Table& t) {
  for (const Table::Cell& c : t.cells)
    if (c.algo == nullptr) return false;
  return true;
}

std::string shapeText(const Shape& shape) {
  std::string s = weft::strprintf("%d rank%s", shape.nranks, shape.nranks == 1 ? "" : "s");
  if (shape.layout != nullptr) s += " as " + shape.layout->describe();
  return s;
}

void tableText(const Shape& shape, const weft::CollDesc& base, const Table& t) {
  std::printf(
      "Tuner's choice and estimate (us) per collective and size: %s, %s, op %s%s%s%s: "
      "%s costs (%s)\n",
      shapeText(shape).c_str(), weft::dtypeName(base.dtype), weft::opName(base.op),
      base.inPlace ? ", in place" : "", shape.peerAccess ? ", peers' memory reachable" : "",
      base.mapped && shape.peerAccess ? ", registered buffers" : "",
      t.interNode ? "inter-node" : "intra-node", t.model.c_str());
  // Each column: the algorithm's name left-aligned, its estimate right-aligned.
  const size_t ncolls = t.colls.size();
  std::vector<std::string> est(t.cells.size());
  std::vector<size_t> nameW(ncolls), estW(ncolls);
  for (size_t i = 0; i < t.cells.size(); ++i) {
    const Table::Cell& cell = t.cells[i];
    est[i] = cell.algo != nullptr ? weft::strprintf("%.2f", cell.us) : "-";
    nameW[i % ncolls] =
        std::max(nameW[i % ncolls], std::strlen(cell.algo != nullptr ? cell.algo->name : "none"));
    estW[i % ncolls] = std::max(estW[i % ncolls], est[i].size());
  }
  std::string line = weft::strprintf("  %-8s", "bytes");
  for (size_t c = 0; c < ncolls; ++c) {
    const int w =
        static_cast<int>(std::max(nameW[c] + 1 + estW[c], std::strlen(weft::collName(t.colls[c]))));
    line += weft::strprintf("  %-*s", w, weft::collName(t.colls[c]));
    nameW[c] = static_cast<size_t>(w) - 1 - estW[c];  // a long header widens the name part
  }
  std::printf("%s\n", line.substr(0, line.find_last_not_of(' ') + 1).c_str());
  for (size_t s = 0; s < t.sizes.size(); ++s) {
    line = weft::strprintf("  %-8s", weft::formatSize(t.sizes[s]).c_str());
    for (size_t c = 0; c < ncolls; ++c) {
      const Table::Cell& cell = t.at(s, c);
      line += weft::strprintf("  %-*s %*s", static_cast<int>(nameW[c]),
                              cell.algo != nullptr ? cell.algo->name : "none",
                              static_cast<int>(estW[c]), est[s * ncolls + c].c_str());
    }
    std::printf("%s\n", line.c_str());
  }
  for (size_t s = 0; s < t.sizes.size(); ++s)
    for (size_t c = 0; c < ncolls; ++c)
      if (t.at(s, c).algo == nullptr)
        std::printf("  none for %s %s: %s\n", weft::collName(t.colls[c]),
                    weft::formatSize(t.sizes[s]).c_str(), t.at(s, c).error.c_str());
}

void tableJson(Json& j, const Shape& shape, const weft::CollDesc& base, const Table& t) {
  j.beginObject();
  j.key("nranks").value(static_cast<int64_t>(shape.nranks));
  if (shape.layout != nullptr)
    layoutJson(j, *shape.layout);
  else
    j.key("layout").null();
  j.key("dtype").value(weft::dtypeName(base.dtype));
  j.key("op").value(weft::opName(base.op));
  j.key("in_place").value(base.inPlace);
  j.key("peer_access").value(shape.peerAccess);
  j.key("registered").value(base.mapped && shape.peerAccess);
  j.key("level").value(t.interNode ? "inter" : "intra");
  j.key("model").value(t.model);
  j.key("choices").beginArray();
  for (size_t s = 0; s < t.sizes.size(); ++s)
    for (size_t c = 0; c < t.colls.size(); ++c) {
      const Table::Cell& cell = t.at(s, c);
      j.beginObject();
      j.key("collective").value(weft::collName(t.colls[c]));
      j.key("bytes").value(static_cast<int64_t>(t.sizes[s]));
      if (cell.algo != nullptr) {
        j.key("algorithm").value(cell.algo->name);
        j.key("estimate_us").value(cell.us);
      } else {
        j.key("algorithm").null();
        j.key("estimate_us").null();
        j.key("error").value(cell.error);
      }
      j.endObject();
    }
  j.endArray();
  j.endObject();
}

int table(Context& ctx, const CallArgs& a, bool json) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "weft-info: --table: %s\n", msg.c_str());
    return 2;
  };
  weft::CollDesc base;
  if (weft::Status s = callOptions(a, &base); !s.ok()) return fail(s.message());
  std::optional<weft::CommLayout> layout;
  Shape shape;
  if (weft::Status s = hypotheticalShape(ctx, a, &layout, &shape); !s.ok())
    return fail(s.message());
  Table t;
  if (weft::Status s = tableArgs(a, base.elemSize, &t); !s.ok()) return fail(s.message());
  if (!ctx.tuner.ok()) {
    std::fprintf(stderr, "weft-info: %s\n", ctx.tuner.status().message().c_str());
    return 1;
  }
  fillTable(shape, base, &t);
  if (json) {
    Json j(stdout);
    j.beginObject();
    j.key("table");
    tableJson(j, shape, base, t);
    j.endObject();
    j.finish();
  } else {
    tableText(shape, base, t);
  }
  return tableComplete(t) ? 0 : 1;
}

// ---- --comm ----
// What one rank's transports carried, gathered to rank 0 as one fixed-size record per rank.
constexpr int kMaxTransports = 4;
struct TransportRecord {
  int32_t count = 0;  // transports of the rank (records beyond kMaxTransports are left out)
  int32_t reserved = 0;
  weftTransportStats_t stats[kMaxTransports] = {};
};

using weft::runList;

std::string orDash(const std::string& s) {
  return s.empty() ? "-" : s;
}

void intArray(Json& j, const std::vector<int>& v) {
  j.beginArray();
  for (int x : v)
    j.value(static_cast<int64_t>(x));
  j.endArray();
}

void commText(const weftComm& comm, const std::vector<TransportRecord>& records) {
  const weft::CommLayout& l = comm.layout;
  std::printf("Communicator: %d rank%s, %s, transport %s\n", comm.nranks,
              comm.nranks == 1 ? "" : "s", l.describe().c_str(), comm.transport->name());
  for (int n = 0; n < l.nnodes(); ++n)
    std::printf("  node %d: ranks %s, leader %d, %d NUMA group%s\n", n,
                runList(l.nodeRanks(n)).c_str(), l.leaderOf(n), l.numaGroups(n),
                l.numaGroups(n) == 1 ? "" : "s");
  for (int i = 0; i < l.maxLocalSize(); ++i)
    std::printf("  rail %d: ranks %s\n", i, runList(l.rail(i)).c_str());
  std::printf(
      "\nRanks (node, local rank and NUMA group in the layout; host, NUMA node, binding and "
      "nearest devices as each rank found them)\n");
  std::printf("  %-5s %-5s %-5s %-5s %-20s %-5s %-16s %-16s %s\n", "rank", "node", "local", "group",
              "host", "NUMA", "binding", "nearest NIC", "nearest accelerator");
  for (int r = 0; r < comm.nranks; ++r) {
    weft::RankPlace p;
    if (static_cast<size_t>(r) < comm.places.size()) p = comm.places[static_cast<size_t>(r)];
    std::printf("  %-5d %-5d %-5d %-5d %-20s %-5s %-16s %-16s %s\n", r, l.nodeOf(r), l.localRank(r),
                l.numaOf(r), orDash(p.host).c_str(),
                p.numa >= 0 ? std::to_string(p.numa).c_str() : "-", orDash(p.binding).c_str(),
                orDash(p.nic).c_str(), orDash(p.accel).c_str());
  }
  std::printf("\nTransports (what each rank uses, the peers it reaches through each)\n");
  std::printf("  %-5s %-10s %-6s %s\n", "rank", "transport", "peers", "device");
  for (int r = 0; r < comm.nranks; ++r) {
    const TransportRecord& rec = records[static_cast<size_t>(r)];
    for (int i = 0; i < std::min(rec.count, kMaxTransports); ++i)
      std::printf("  %-5d %-10s %-6d %s\n", r, rec.stats[i].name, rec.stats[i].peers,
                  orDash(rec.stats[i].device).c_str());
    if (rec.count > kMaxTransports)
      std::printf("  %-5d (%d more)\n", r, rec.count - kMaxTransports);
  }
}

void commJson(Json& j, const weftComm& comm, const std::vector<TransportRecord>& records) {
  const weft::CommLayout& l = comm.layout;
  j.beginObject();
  j.key("nranks").value(static_cast<int64_t>(comm.nranks));
  j.key("layout").value(l.describe());
  j.key("transport").value(comm.transport->name());
  j.key("nodes").beginArray();
  for (int n = 0; n < l.nnodes(); ++n) {
    j.beginObject();
    j.key("node").value(static_cast<int64_t>(n));
    j.key("ranks");
    intArray(j, l.nodeRanks(n));
    j.key("leader").value(static_cast<int64_t>(l.leaderOf(n)));
    j.key("numa_groups").value(static_cast<int64_t>(l.numaGroups(n)));
    j.endObject();
  }
  j.endArray();
  j.key("rails").beginArray();
  for (int i = 0; i < l.maxLocalSize(); ++i)
    intArray(j, l.rail(i));
  j.endArray();
  j.key("ranks").beginArray();
  for (int r = 0; r < comm.nranks; ++r) {
    weft::RankPlace p;
    if (static_cast<size_t>(r) < comm.places.size()) p = comm.places[static_cast<size_t>(r)];
    j.beginObject();
    j.key("rank").value(static_cast<int64_t>(r));
    j.key("node").value(static_cast<int64_t>(l.nodeOf(r)));
    j.key("local_rank").value(static_cast<int64_t>(l.localRank(r)));
    j.key("numa_group").value(static_cast<int64_t>(l.numaOf(r)));
    j.key("host").value(p.host);
    if (p.numa >= 0)
      j.key("numa").value(static_cast<int64_t>(p.numa));
    else
      j.key("numa").null();
    for (const auto& [k, v] : {std::pair<const char*, const std::string*>{"binding", &p.binding},
                               {"nic", &p.nic},
                               {"accelerator", &p.accel}}) {
      if (v->empty())
        j.key(k).null();
      else
        j.key(k).value(*v);
    }
    j.endObject();
  }
  j.endArray();
  j.key("transports").beginArray();
  for (int r = 0; r < comm.nranks; ++r) {
    const TransportRecord& rec = records[static_cast<size_t>(r)];
    for (int i = 0; i < std::min(rec.count, kMaxTransports); ++i) {
      const weftTransportStats_t& s = rec.stats[i];
      j.beginObject();
      j.key("rank").value(static_cast<int64_t>(r));
      j.key("name").value(s.name);
      j.key("peers").value(static_cast<int64_t>(s.peers));
      j.key("device").value(s.device);
      j.key("bytes_sent").value(static_cast<int64_t>(s.bytesSent));
      j.key("bytes_received").value(static_cast<int64_t>(s.bytesReceived));
      j.endObject();
    }
  }
  j.endArray();
  j.endObject();
}

// Whether a launcher gave this process a rank (the variables weftCommInitFromEnv reads).
bool launched() {
  using weft::config::launcherEnv;
  return weft::config::isSet("WEFT_RANK") || weft::config::isSet("WEFT_WORLD_SIZE") ||
         launcherEnv("RANK") != nullptr || launcherEnv("OMPI_COMM_WORLD_RANK") != nullptr ||
         launcherEnv("SLURM_PROCID") != nullptr;
}

// Releases the communicator on every path: destroyed after success, aborted after a failure (its
// peers may be gone or stuck).
class CommHolder {
 public:
  ~CommHolder() {
    if (comm == nullptr) return;
    if (failed)
      (void)weftCommAbort(comm);
    else
      (void)weftCommDestroy(comm);
  }
  weftComm_t comm = nullptr;
  bool failed = true;
};

int commInfo(Context& ctx, const CallArgs& a, bool json) {
  auto fail = [](const std::string& msg) {
    std::fprintf(stderr, "weft-info: --comm: %s\n", msg.c_str());
    return 2;
  };
  if (a.nodesGiven || a.nranksGiven)
    return fail("--nodes and --nranks do not apply: --comm describes the communicator's own ranks");
  weft::CollDesc base;
  if (weft::Status s = callOptions(a, &base); !s.ok()) return fail(s.message());
  Table t;
  if (weft::Status s = tableArgs(a, base.elemSize, &t); !s.ok()) return fail(s.message());
  if (!launched())
    return fail(
        "no rank to start: run it under a launcher, e.g. weftrun -n 4 weft-info --comm (weftrun "
        "sets WEFT_RANK, WEFT_WORLD_SIZE and WEFT_ROOT), or torchrun, mpirun or srun");
  if (!ctx.configStatus.ok()) {
    std::fprintf(stderr, "weft-info: --comm: %s\n", ctx.configStatus.message().c_str());
    return 1;
  }
  CommHolder h;
  if (weftCommInitFromEnv(&h.comm) != weftSuccess) {
    std::fprintf(stderr, "weft-info: --comm: weftCommInitFromEnv failed: %s\n",
                 weftGetLastError(nullptr));
    return 1;
  }
  weftComm& comm = *h.comm;
  auto commFail = [&](const char* what) {
    std::fprintf(stderr, "weft-info: --comm: rank %d: %s failed: %s\n", comm.rank, what,
                 weftGetLastError(h.comm));
    return 1;
  };
  // One small all-reduce connects the transports (and checks that they work).
  float one = 1.0f, sum = 0.0f;
  if (weftAllReduce(&one, &sum, 1, weftFloat32, weftSum, h.comm, nullptr) != weftSuccess)
    return commFail("the all-reduce");
  if (sum != static_cast<float>(comm.nranks)) {
    std::fprintf(stderr, "weft-info: --comm: rank %d: the all-reduce of 1 over %d ranks gave %g\n",
                 comm.rank, comm.nranks, static_cast<double>(sum));
    return 1;
  }
  TransportRecord mine;
  mine.count = kMaxTransports;
  if (weftCommTransportStats(h.comm, mine.stats, &mine.count) != weftSuccess)
    return commFail("weftCommTransportStats");
  std::vector<TransportRecord> records(static_cast<size_t>(comm.nranks));
  if (weftAllGather(&mine, records.data(), sizeof mine, weftUint8, h.comm, nullptr) != weftSuccess)
    return commFail("gathering the transports (an all-gather)");
  h.failed = false;
  if (comm.rank != 0) return 0;

  Shape shape;
  shape.nranks = comm.nranks;
  shape.layout = &comm.layout;
  shape.tuner = comm.tuner;
  weft::CollDesc probe;  // how the communicator describes its calls
  comm.describeFor(weft::CollType::kAllReduce, &probe);
  shape.peerAccess = probe.peerAccess;
  shape.peerAccessNet = probe.peerAccessNet;
  fillTable(shape, base, &t);
  if (json) {
    Json j(stdout);
    j.beginObject();
    j.key("comm");
    commJson(j, comm, records);
    j.key("table");
    tableJson(j, shape, base, t);
    j.endObject();
    j.finish();
  } else {
    commText(comm, records);
    std::printf("\n");
    tableText(shape, base, t);
  }
  std::fflush(stdout);
  return tableComplete(t) ? 0 : 1;
}

void usage(FILE* f) {
  std::fprintf(
      f,
      "usage: weft-info [--json] [SECTION...]\n"
      "       weft-info [--json] --explain COLLECTIVE BYTES [--nodes LAYOUT | --nranks N]\n"
      "                 [--dtype TYPE] [--op OP] [--in-place] [--no-peer-access] [--registered]\n"
      "       weft-info [--json] --table [--nodes LAYOUT | --nranks N] [--dtype TYPE] "
      "[--op OP]\n"
      "                 [--collectives A,B,...] [--sizes LO-HI] [--in-place] "
      "[--no-peer-access] [--registered]\n"
      "       weftrun -n N weft-info [--json] --comm [--dtype TYPE] [--op OP]\n"
      "                 [--collectives A,B,...] [--sizes LO-HI]\n"
      "\nSections (all of them when none is named):\n");
  for (const Section& s : kSections)
    std::fprintf(f, "  --%-12s %s\n", s.flag, s.help);
  std::fprintf(
      f,
      "\n--explain prints the tuner's candidates for a hypothetical call under this "
      "environment's\nWEFT_ALGO and WEFT_TUNE_FILE: every algorithm's estimated time or "
      "why it is not eligible,\nand the choice. BYTES is the per-rank message (count x "
      "element size; K, M, G suffixes).\nDefaults: --nranks 8 --dtype float32 --op sum, "
      "out of place, ranks that can read each\nother's memory. See docs/tuning.md.\n"
      "  --nodes LAYOUT  the ranks' nodes: NxL (N nodes of L ranks, e.g. 2x4) or per-node "
      "counts\n                 joined by '+' (3+2+4); sets the rank count, and ranks on several "
      "nodes\n                 cannot read each other's memory\n"
      "  --registered    the call's buffers are registered weftMemAlloc memory on every rank:\n"
      "                 one-sided steps move bytes in mapped memory (mapped_copy_us_per_byte)\n"
      "\n--table prints the tuner's choice and its estimate (us) for every collective and "
      "size.\n"
      "  --collectives A,B,...  default allreduce,allgather,reducescatter,broadcast,reduce,"
      "alltoall\n"
      "  --sizes LO-HI          LO, 4 LO, 16 LO, ... up to HI bytes per rank (default 8-256M), "
      "each\n                         rounded down to a multiple of the element size\n"
      "\n--comm, under weftrun (or torchrun, mpirun, srun), starts a communicator, runs one "
      "all-reduce,\nand prints on rank 0 its nodes, rails and NUMA groups, every rank's place "
      "and transports,\nand the --table of its layout.\n"
      "\n  --json         print JSON instead of text\n"
      "  -h, --help     print this help\n");
}

}  // namespace

int main(int argc, char** argv) {
  Context ctx;
  bool json = false, explainMode = false, tableMode = false, commMode = false;
  CallArgs ea;
  std::vector<std::string> tableOnly;  // options that need --table or --comm
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
    } else if (arg == "--table") {
      tableMode = true;
    } else if (arg == "--comm") {
      commMode = true;
    } else if (arg == "--nranks") {
      const char* v = next("a number");
      char* end = nullptr;
      const long n = std::strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n < 1 || n > 1000000) {
        std::fprintf(stderr, "weft-info: --nranks \"%s\" is not a rank count (1..1000000)\n", v);
        return 2;
      }
      ea.nranks = static_cast<int>(n);
      ea.nranksGiven = true;
    } else if (arg == "--nodes") {
      ea.nodes = next("a layout: NxL (e.g. 2x4) or per-node rank counts (e.g. 3+2+4)");
      ea.nodesGiven = true;
    } else if (arg == "--collectives") {
      ea.collectives = next("a comma-separated list of collectives");
      tableOnly.push_back(arg);
    } else if (arg == "--sizes") {
      ea.sizes = next("a size range LO-HI");
      tableOnly.push_back(arg);
    } else if (arg == "--dtype") {
      ea.dtype = next("a data type");
    } else if (arg == "--op") {
      ea.op = next("a reduction op");
    } else if (arg == "--in-place") {
      ea.inPlace = true;
    } else if (arg == "--no-peer-access") {
      ea.peerAccess = false;
    } else if (arg == "--registered") {
      ea.registered = true;
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
  const int modes = int{explainMode} + int{tableMode || commMode};
  if (modes > 1) {
    std::fprintf(stderr, "weft-info: --explain cannot be combined with --table or --comm\n");
    return 2;
  }
  if (modes > 0 && !chosen.empty()) {
    std::fprintf(stderr, "weft-info: %s cannot be combined with sections\n",
                 explainMode ? "--explain" : (commMode ? "--comm" : "--table"));
    return 2;
  }
  if (ea.nodesGiven && !explainMode && !tableMode && !commMode) {
    std::fprintf(stderr, "weft-info: --nodes applies to --explain and --table\n");
    return 2;
  }
  if (!tableOnly.empty() && !tableMode && !commMode) {
    std::fprintf(stderr, "weft-info: %s applies to --table and --comm\n", tableOnly[0].c_str());
    return 2;
  }
  ctx.configStatus = weft::config::load();
  ctx.tuner = weft::tunerFromConfig();
  if (explainMode) return explain(ctx, ea, json);
  if (commMode) return commInfo(ctx, ea, json);
  if (tableMode) return table(ctx, ea, json);
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
  return ctx.configStatus.ok() && ctx.tuner.ok() && ctx.exitStatus == 0 ? 0 : 1;
}
