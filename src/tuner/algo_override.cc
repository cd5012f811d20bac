#include "tuner/algo_override.h"

#include <strings.h>

#include <algorithm>
#include <cctype>

#include "core/config.h"

namespace weft {
namespace {

constexpr int kNumColls = static_cast<int>(CollType::kCount);

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits at `sep` outside parentheses (hier(intra=a,inter=b) stays one token).
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] == '(') ++depth;
    if (i < s.size() && s[i] == ')' && depth > 0) --depth;
    if (i == s.size() || (s[i] == sep && depth == 0)) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts)
    out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string acceptedCollectives() {
  std::vector<std::string> names;
  for (int c = 0; c < kNumColls; ++c)
    names.emplace_back(collName(static_cast<CollType>(c)));
  return join(names);
}

// The algorithm names of one collective, or of every collective (without repeats) when coll < 0.
std::string acceptedAlgorithms(int coll) {
  std::vector<std::string> names;
  for (const AlgorithmInfo& a : algorithmTable()) {
    if (coll >= 0 && static_cast<int>(a.coll) != coll) continue;
    if (std::find(names.begin(), names.end(), a.name) == names.end()) names.emplace_back(a.name);
  }
  return join(names);
}

bool looksLikeRange(const std::string& s) {
  return !s.empty() && std::isdigit(static_cast<unsigned char>(s[0])) &&
         s.find('-') != std::string::npos;
}

// One clause being parsed: errors carry the source and the clause.
class ClauseParser {
 public:
  ClauseParser(const std::string& source, const std::string& clause, AlgoOverride* ov)
      : source_(source), clause_(clause), ov_(ov) {}

  Status parse() {
    const size_t colon = clause_.find(':');
    if (colon == std::string::npos) return parseBare();
    const std::string coll = trim(clause_.substr(0, colon));
    if (looksLikeRange(coll))
      return fail("size range \"" + coll +
                  "\" needs a collective in front of it (e.g. allreduce:" + coll + ":ring)");
    CollType type;
    if (!parseCollName(coll, &type))
      return fail("unknown collective \"" + coll + "\" (accepted: " + acceptedCollectives() + ")");
    const int c = static_cast<int>(type);
    const std::vector<std::string> tokens = split(clause_.substr(colon + 1), ',');
    bool ranged = false;
    for (const std::string& t : tokens)
      ranged |= t.find(':') != std::string::npos;
    if (!ranged) {
      AlgoRule rule = newRule();
      WEFT_TRY(parseList(c, coll + ":", tokens, &rule));
      ov_->colls[c].hasWhole = true;
      ov_->colls[c].whole = std::move(rule);
      return Status::Ok();
    }
    // Ranged: "lo-hi:algo" starts a range, a plain "algo" adds to the current one.
    std::vector<AlgoRule> rules;
    std::vector<std::vector<std::string>> lists;
    for (const std::string& t : tokens) {
      const size_t rc = t.find(':');
      if (rc == std::string::npos) {
        if (rules.empty())
          return fail("\"" + t +
                      "\" comes before the first size range: give either one list for every "
                      "size (" +
                      coll + ":" + t + ") or a range before every list (" + coll + ":0-64K:" + t +
                      ")");
        lists.back().push_back(t);
        continue;
      }
      AlgoRule rule = newRule();
      rule.ranged = true;
      rule.range = trim(t.substr(0, rc));
      WEFT_TRY(parseRange(rule.range, &rule.lo, &rule.hi));
      rules.push_back(std::move(rule));
      lists.push_back({trim(t.substr(rc + 1))});
    }
    CollRules& cr = ov_->colls[c];
    for (size_t i = 0; i < rules.size(); ++i) {
      WEFT_TRY(parseList(c, rules[i].range + ":", lists[i], &rules[i]));
      for (const AlgoRule& other : cr.ranges) {
        if (rules[i].lo < other.hi && other.lo < rules[i].hi) {
          const std::string where =
              other.clause == clause_ ? "" : " (in clause \"" + other.clause + "\")";
          return fail("size ranges " + other.range + where + " and " + rules[i].range +
                      " overlap for " + collName(type));
        }
      }
      cr.ranges.push_back(rules[i]);
    }
    std::sort(cr.ranges.begin(), cr.ranges.end(),
              [](const AlgoRule& a, const AlgoRule& b) { return a.lo < b.lo; });
    return Status::Ok();
  }

 private:
  Status fail(const std::string& problem) const {
    return Status(weftInvalidArgument, source_ + ": clause \"" + clause_ + "\": " + problem);
  }

  AlgoRule newRule() const {
    AlgoRule r;
    r.source = source_;
    r.clause = clause_;
    return r;
  }

  Status parseRange(const std::string& text, uint64_t* lo, uint64_t* hi) const {
    const size_t dash = text.find('-');
    if (dash == std::string::npos)
      return fail("\"" + text + "\" is not a size range (write lo-hi, e.g. 0-64K or 64K-inf)");
    const std::string a = trim(text.substr(0, dash)), b = trim(text.substr(dash + 1));
    if (a.empty() || b.empty())
      return fail("size range \"" + text +
                  "\" is malformed: it needs a lower and an upper bound (e.g. 0-64K or 64K-inf)");
    auto bound = [&](const std::string& s, bool upper, uint64_t* out) -> Status {
      if (upper && strcasecmp(s.c_str(), "inf") == 0) {
        *out = kSizeInf;
        return Status::Ok();
      }
      Result<int64_t> v = config::parseBytes(s);
      if (!v.ok())
        return fail("size range \"" + text + "\" is malformed: \"" + s + "\" is not a size (" +
                    v.status().message() + "; write a byte count with an optional K, M or G" +
                    (upper ? ", or inf)" : ")"));
      *out = static_cast<uint64_t>(*v);
      return Status::Ok();
    };
    WEFT_TRY(bound(a, false, lo));
    WEFT_TRY(bound(b, true, hi));
    if (*hi <= *lo)
      return fail("size range \"" + text +
                  "\" is empty: the upper bound must be above the lower bound (ranges are "
                  "[lo, hi) in bytes)");
    return Status::Ok();
  }

  // Algorithm names of collective c (c < 0: any collective) into rule; `after` is what the list
  // follows, for messages.
  Status parseList(int c, const std::string& after, const std::vector<std::string>& names,
                   AlgoRule* rule) const {
    for (size_t i = 0; i < names.size(); ++i) {
      std::string name = names[i];
      if (!name.empty() && name[0] == '^') {
        if (i != 0)
          return fail("\"^\" in \"" + name +
                      "\" must come first in a list, where it excludes every algorithm listed");
        rule->exclude = true;
        name = trim(name.substr(1));
      }
      if (name.empty())
        return fail(names.size() == 1 && names[0].empty()
                        ? "no algorithm after \"" + after + "\""
                        : "empty algorithm name in the list after \"" + after + "\"");
      if (looksLikeRange(name))
        return fail("size range \"" + name + "\" has no algorithm (write " + name + ":algo)");
      const size_t paren = name.find('(');
      if (paren != std::string::npos) {
        WEFT_TRY(parseLevels(c, name.substr(paren)));
        name = trim(name.substr(0, paren));
        if (strcasecmp(name.c_str(), "hier") != 0)
          return fail("\"" + name + "(...)\": only hier takes level choices");
      }
      const AlgorithmInfo* a = findAlgorithm(static_cast<CollType>(c), name);
      if (a == nullptr)
        return fail("unknown algorithm \"" + name + "\" for " + collName(static_cast<CollType>(c)) +
                    " (accepted: " + acceptedAlgorithms(c) + ")");
      if (std::find(rule->algos.begin(), rule->algos.end(), a) == rule->algos.end())
        rule->algos.push_back(a);
    }
    return Status::Ok();
  }

  // "(intra=NAME,inter=NAME)" after hier in collective c's list.
  Status parseLevels(int c, const std::string& text) const {
    if (text.size() < 2 || text.back() != ')')
      return fail("\"hier" + text + "\" is malformed: write hier(intra=ALGO,inter=ALGO)");
    LevelChoice choice;
    choice.clause = clause_;
    for (const std::string& item : split(text.substr(1, text.size() - 2), ',')) {
      const size_t eq = item.find('=');
      const std::string level = trim(item.substr(0, eq));
      const int l = strcasecmp(level.c_str(), "intra") == 0   ? static_cast<int>(Level::kIntra)
                    : strcasecmp(level.c_str(), "inter") == 0 ? static_cast<int>(Level::kInter)
                                                              : -1;
      if (eq == std::string::npos || l < 0)
        return fail("\"" + item + "\" in hier(...) is not intra=ALGO or inter=ALGO");
      if (!choice.name[l].empty()) return fail("hier(...) gives " + level + " twice");
      const std::string name = trim(item.substr(eq + 1));
      bool known = false;
      for (const AlgorithmInfo& a : algorithmTable())
        known |= a.hierCost == nullptr && strcasecmp(a.name, name.c_str()) == 0;
      if (!known)
        return fail("unknown algorithm \"" + name + "\" for the " + level +
                    "-node level of hier (accepted: " + acceptedAlgorithms(-1) + ")");
      choice.name[l] = name;
    }
    LevelChoice& have = ov_->levels[c];
    if (have.any() && (strcasecmp(have.name[0].c_str(), choice.name[0].c_str()) != 0 ||
                       strcasecmp(have.name[1].c_str(), choice.name[1].c_str()) != 0))
      return fail("its hier(...) level choices differ from those of clause \"" + have.clause +
                  "\": a collective's hierarchical algorithm has one set");
    have = choice;
    return Status::Ok();
  }

  // "algo[,algo]" or "^algo[,algo]" for every collective that has one of the algorithms.
  Status parseBare() {
    std::vector<std::string> names = split(clause_, ',');
    bool exclude = false;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!names[i].empty() && names[i][0] == '^') {
        if (i != 0)
          return fail("\"^\" in \"" + names[i] +
                      "\" must come first in a list, where it excludes every algorithm listed");
        exclude = true;
        names[i] = trim(names[i].substr(1));
      }
      if (names[i].empty()) return fail("empty algorithm name");
      if (names[i].find('(') != std::string::npos)
        return fail("\"" + names[i] +
                    "\" needs a collective in front of it (e.g. allreduce:" + names[i] + ")");
      bool known = false;
      for (const AlgorithmInfo& a : algorithmTable())
        known |= strcasecmp(a.name, names[i].c_str()) == 0;
      if (!known)
        return fail("unknown algorithm \"" + names[i] +
                    "\": no collective has it (accepted: " + acceptedAlgorithms(-1) + ")");
    }
    for (int c = 0; c < kNumColls; ++c) {
      AlgoRule rule = newRule();
      rule.exclude = exclude;
      for (const std::string& n : names) {
        const AlgorithmInfo* a = findAlgorithm(static_cast<CollType>(c), n);
        if (a != nullptr && std::find(rule.algos.begin(), rule.algos.end(), a) == rule.algos.end())
          rule.algos.push_back(a);
      }
      if (rule.algos.empty()) continue;
      ov_->colls[c].hasWhole = true;
      ov_->colls[c].whole = std::move(rule);
    }
    return Status::Ok();
  }

  const std::string source_;
  const std::string clause_;
  AlgoOverride* ov_;
};

}  // namespace

bool AlgoRule::allows(const AlgorithmInfo* a) const {
  const bool listed = std::find(algos.begin(), algos.end(), a) != algos.end();
  return listed != exclude;
}

std::string AlgoRule::where() const {
  std::string s = source + " clause \"" + clause + "\"";
  if (ranged) s += " (range " + range + ")";
  return s;
}

std::string AlgoRule::names() const {
  std::vector<std::string> out;
  for (const AlgorithmInfo* a : algos)
    out.emplace_back(a->name);
  return join(out);
}

std::string AlgoRule::listText() const {
  return (exclude ? "all but " : "") + names();
}

const AlgoRule* AlgoOverride::ruleFor(CollType type, uint64_t bytes) const {
  const CollRules& cr = colls[static_cast<int>(type)];
  for (const AlgoRule& r : cr.ranges)
    if (bytes >= r.lo && bytes < r.hi) return &r;
  return cr.hasWhole ? &cr.whole : nullptr;
}

bool AlgoOverride::empty() const {
  for (const CollRules& cr : colls)
    if (cr.any()) return false;
  for (const LevelChoice& lc : levels)
    if (lc.any()) return false;
  return true;
}

AlgoOverride AlgoOverride::merge(const AlgoOverride& over, const AlgoOverride& under) {
  AlgoOverride out;
  for (int c = 0; c < kNumColls; ++c) {
    out.colls[c] = over.colls[c].any() ? over.colls[c] : under.colls[c];
    out.levels[c] = over.levels[c].any() ? over.levels[c] : under.levels[c];
  }
  return out;
}

Result<AlgoOverride> parseAlgoOverride(const std::string& text, const std::string& source) {
  AlgoOverride ov;
  for (const std::string& clause : split(text, ';')) {
    if (clause.empty()) continue;
    WEFT_TRY(ClauseParser(source, clause, &ov).parse());
  }
  return ov;
}

std::string formatSize(uint64_t bytes) {
  if (bytes == kSizeInf) return "inf";
  static const char* const kSuffix[] = {"", "K", "M", "G"};
  int s = 0;
  while (s < 3 && bytes != 0 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++s;
  }
  return std::to_string(bytes) + kSuffix[s];
}

}  // namespace weft
