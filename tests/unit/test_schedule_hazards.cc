// Every algorithm's schedules, all ranks together, checked for races on memory: two operations
// that touch overlapping bytes of one rank's buffers (its send, receive and scratch buffers,
// aliased as the call's in-place convention lays them), at least one of them writing, must be
// ordered by a chain of dependencies and messages. A rank's own steps count, and so do its peers'
// one-sided steps in its window. Messages are matched as the engine matches them: the k-th
// message from a to b (on one channel) meets the k-th that b receives from a, and the two must
// carry the same bytes. A send's reads end before its receive completes (a direct transfer
// completes the send once the receiver has copied), so a message orders what comes before the
// send before what comes after the receive.
//
// The check runs on the schedules (step by step) and on the plans the engine compiles from them
// (chunk by chunk, over several channels, with the window protocol around one-sided schedules),
// where a dependency between steps of one size streams chunk by chunk and must line up with the
// bytes both touch. Running the collectives finds a race
// only where timing exposes it; this finds it in every schedule, at rank counts and sizes the
// multi-process tests never reach.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "algorithms/registry.h"
#include "core/layout.h"
#include "engine/plan.h"
#include "engine/window.h"

namespace weft {
namespace {

struct Access {
  uint64_t begin, end;  // in the rank's address space, see Space
  uint32_t node;
  bool write;
};

// One rank's buffers in one address space: out of place they are apart; in place the send buffer
// lies inside the receive buffer (or the receive buffer inside the send buffer) as weft.h defines.
struct Space {
  uint64_t base[kBuffersPerPart];
};

constexpr uint64_t kApart = uint64_t{1} << 40;

Space spaceFor(const CollDesc& d) {
  Space s{{0, kApart, 2 * kApart}};  // send, receive, scratch
  if (!d.inPlace) return s;
  const uint64_t n = d.bytes();
  switch (d.type) {
    case CollType::kAllGather:
      s.base[kSendBuf] = s.base[kRecvBuf] + static_cast<uint64_t>(d.rank) * n;
      break;
    case CollType::kGather:
      s.base[kSendBuf] = s.base[kRecvBuf] + static_cast<uint64_t>(d.root) * n;
      break;
    case CollType::kReduceScatter:
      s.base[kRecvBuf] = s.base[kSendBuf] + static_cast<uint64_t>(d.rank) * n;
      break;
    case CollType::kScatter:
      s.base[kRecvBuf] = s.base[kSendBuf] + static_cast<uint64_t>(d.root) * n;
      break;
    default:
      s.base[kSendBuf] = s.base[kRecvBuf];
      break;
  }
  return s;
}

// What the checker sees of one rank: its operations (schedule steps, or a plan's chunks), each
// with the operations before it on this rank, and its message queues, each in message order.
struct Op {
  StepKind kind;
  int32_t windowPeer;
  Region dst, src, remote;
  uint64_t msgBytes;  // what a matched message must carry
  std::vector<uint32_t> after;
  std::string name;
};
struct Queue {
  int peer;
  int channel;
  bool sends;
  std::vector<uint32_t> ops;
};
struct RankOps {
  std::vector<CollDesc> parts;  // the operations of a group, in order (one for a single call)
  std::vector<Op> ops;
  std::vector<Queue> queues;
};

RankOps fromSchedule(const std::vector<CollDesc>& d, const Schedule& s) {
  RankOps r{d, {}, {}};
  std::map<std::pair<int, bool>, std::vector<std::pair<uint32_t, uint32_t>>> q;  // (phase, step)
  for (StepId i = 0; i < s.steps.size(); ++i) {
    const Step& st = s.steps[i];
    Op op{st.kind, st.windowPeer, st.dst, st.src, st.remote, st.bytes(), {}, ""};
    for (uint32_t k = 0; k < st.depCount; ++k)
      op.after.push_back(s.deps[st.depBegin + k]);
    op.name = "step " + std::to_string(i) + " (" + stepKindName(st.kind) + ")";
    r.ops.push_back(std::move(op));
    if (stepSends(st.kind)) q[{st.sendPeer, true}].push_back({st.phase, i});
    if (stepReceives(st.kind)) q[{st.recvPeer, false}].push_back({st.phase, i});
  }
  for (auto& [key, list] : q) {
    std::stable_sort(list.begin(), list.end());
    Queue out{key.first, 0, key.second, {}};
    for (const auto& e : list)
      out.ops.push_back(e.second);
    r.queues.push_back(std::move(out));
  }
  return r;
}

RankOps fromPlan(const std::vector<CollDesc>& d, const Plan& plan) {
  RankOps r{d, {}, {}};
  r.ops.resize(plan.ops.size());
  for (uint32_t i = 0; i < plan.ops.size(); ++i) {
    const PlanOp& p = plan.ops[i];
    Op& op = r.ops[i];
    op.kind = p.kind;
    op.windowPeer = p.windowPeer;
    op.dst = p.dst;
    op.src = p.src;
    op.remote = p.remote;
    op.msgBytes = p.bytes;
    op.name = "step " + std::to_string(p.step) + " (" + stepKindName(p.kind) + ") channel " +
              std::to_string(p.channel) + " chunk " + std::to_string(p.chunk);
    for (uint32_t k = 0; k < p.succCount; ++k)
      r.ops[plan.succ[p.succBegin + k]].after.push_back(i);
  }
  for (const PeerQueues& pq : plan.peers) {
    r.queues.push_back({pq.rank, pq.channel, true, pq.sends});
    r.queues.push_back({pq.rank, pq.channel, false, pq.recvs});
  }
  return r;
}

class HazardChecker {
 public:
  explicit HazardChecker(std::vector<RankOps> ranks) : ranks_(std::move(ranks)) {}

  // An empty string, or what is wrong.
  std::string check() {
    const int p = static_cast<int>(ranks_.size());
    for (int r = 0; r < p; ++r) {
      first_.push_back(static_cast<uint32_t>(rankOf_.size()));
      rankOf_.insert(rankOf_.end(), ranks_[r].ops.size(), r);
    }
    preds_.assign(rankOf_.size(), {});
    for (int r = 0; r < p; ++r)
      for (uint32_t i = 0; i < ranks_[r].ops.size(); ++i)
        for (uint32_t a : ranks_[r].ops[i].after)
          preds_[first_[r] + i].push_back(first_[r] + a);
    std::string err = matchMessages();
    if (err.empty()) err = order();
    if (err.empty()) err = findRaces();
    return err;
  }

 private:
  const Op& op(uint32_t n) const { return ranks_[rankOf_[n]].ops[n - first_[rankOf_[n]]]; }
  std::string where(uint32_t n) const {
    return "rank " + std::to_string(rankOf_[n]) + " " + op(n).name;
  }

  // Adds an edge from every send to the receive it meets.
  std::string matchMessages() {
    std::map<std::tuple<int, int, int, bool>, const Queue*> queues;  // (rank, peer, channel, sends)
    for (int r = 0; r < static_cast<int>(ranks_.size()); ++r)
      for (const Queue& q : ranks_[r].queues)
        queues[{r, q.peer, q.channel, q.sends}] = &q;
    for (const auto& [key, out] : queues) {
      const auto [a, b, channel, sends] = key;
      auto it = queues.find({b, a, channel, !sends});
      const size_t theirs = it == queues.end() ? 0 : it->second->ops.size();
      if (out->ops.size() != theirs)
        return "rank " + std::to_string(a) + (sends ? " sends " : " receives ") +
               std::to_string(out->ops.size()) + " messages " + (sends ? "to" : "from") + " rank " +
               std::to_string(b) + " on channel " + std::to_string(channel) + ", which has " +
               std::to_string(theirs) + " for it";
      if (!sends) continue;
      for (size_t k = 0; k < theirs; ++k) {
        const uint32_t from = first_[a] + out->ops[k], to = first_[b] + it->second->ops[k];
        if (op(from).msgBytes != op(to).msgBytes)
          return where(from) + " sends " + std::to_string(op(from).msgBytes) + " bytes to " +
                 where(to) + ", which receives " + std::to_string(op(to).msgBytes);
        preds_[to].push_back(from);
      }
    }
    return "";
  }

  // A topological order and, for every operation, the set of operations that come before it.
  std::string order() {
    const size_t n = rankOf_.size();
    std::vector<std::vector<uint32_t>> succ(n);
    std::vector<uint32_t> indeg(n, 0);
    for (uint32_t v = 0; v < n; ++v)
      for (uint32_t u : preds_[v]) {
        succ[u].push_back(v);
        ++indeg[v];
      }
    std::vector<uint32_t> topo, ready;
    for (uint32_t v = 0; v < n; ++v)
      if (indeg[v] == 0) ready.push_back(v);
    while (!ready.empty()) {
      const uint32_t u = ready.back();
      ready.pop_back();
      topo.push_back(u);
      for (uint32_t v : succ[u])
        if (--indeg[v] == 0) ready.push_back(v);
    }
    for (uint32_t v = 0; v < n && topo.size() != n; ++v)
      if (indeg[v] != 0) return "a cycle of dependencies and messages through " + where(v);
    words_ = (n + 63) / 64;
    before_.assign(n * words_, 0);
    for (uint32_t v : topo)
      for (uint32_t u : preds_[v]) {
        uint64_t* dst = &before_[v * words_];
        const uint64_t* src = &before_[u * words_];
        for (size_t w = 0; w < words_; ++w)
          dst[w] |= src[w];
        dst[u / 64] |= uint64_t{1} << (u % 64);
      }
    return "";
  }

  bool ordered(uint32_t a, uint32_t b) const {
    return ((before_[b * words_ + a / 64] >> (a % 64)) & 1) != 0 ||
           ((before_[a * words_ + b / 64] >> (b % 64)) & 1) != 0;
  }

  std::string findRaces() {
    const int p = static_cast<int>(ranks_.size());
    // Part k of a group has buffers 3k..3k+2, apart from every other part's.
    std::vector<std::vector<uint64_t>> spaces(p);
    // The window protocol's two buffers (the engine's plans) come after them.
    for (int r = 0; r < p; ++r) {
      const size_t n = ranks_[r].parts.size();
      for (size_t k = 0; k < n; ++k) {
        const Space s = spaceFor(ranks_[r].parts[k]);
        for (uint64_t b : s.base)
          spaces[r].push_back(b + k * kBuffersPerPart * kApart);
      }
      spaces[r].push_back(n * kBuffersPerPart * kApart);
      spaces[r].push_back((n * kBuffersPerPart + 1) * kApart);
    }
    std::vector<std::vector<Access>> acc(p);
    auto add = [&](int rank, const Region& g, uint32_t node, bool write) {
      if (g.buf == kNoBuf || g.bytes == 0) return;
      const uint64_t b = spaces[rank].at(g.buf) + g.offset;
      acc[rank].push_back({b, b + g.bytes, node, write});
    };
    for (uint32_t v = 0; v < rankOf_.size(); ++v) {
      const Op& o = op(v);
      const int r = rankOf_[v];
      switch (o.kind) {
        case StepKind::kSend:
        case StepKind::kRecvReduceSend:
          add(r, o.src, v, false);
          break;
        case StepKind::kRecv:
        case StepKind::kRecvCopySend:
          add(r, o.dst, v, true);
          break;
        case StepKind::kRecvReduce:
        case StepKind::kRecvReduceCopySend:
        case StepKind::kCopy:
        case StepKind::kReduce:
          add(r, o.src, v, false);
          add(r, o.dst, v, true);
          break;
        case StepKind::kGet:
          add(r, o.dst, v, true);
          add(o.windowPeer, o.remote, v, false);
          break;
        case StepKind::kGetReduce:
          add(r, o.src, v, false);
          add(r, o.dst, v, true);
          add(o.windowPeer, o.remote, v, false);
          break;
        case StepKind::kPut:
          add(r, o.src, v, false);
          add(o.windowPeer, o.remote, v, true);
          break;
      }
    }
    for (int r = 0; r < p; ++r) {
      auto& list = acc[r];
      std::sort(list.begin(), list.end(),
                [](const Access& a, const Access& b) { return a.begin < b.begin; });
      for (size_t i = 0; i < list.size(); ++i)
        for (size_t j = i + 1; j < list.size() && list[j].begin < list[i].end; ++j) {
          const Access &a = list[i], &b = list[j];
          if (a.node == b.node || !(a.write || b.write) || ordered(a.node, b.node)) continue;
          const uint64_t space = a.begin / kApart % kBuffersPerPart,
                         part = a.begin / kApart / kBuffersPerPart;
          std::ostringstream o;
          o << where(a.node) << (a.write ? " writes" : " reads") << " bytes [" << a.begin % kApart
            << ", " << a.end % kApart << ") and " << where(b.node)
            << (b.write ? " writes" : " reads") << " [" << b.begin % kApart << ", "
            << b.end % kApart << ") of rank " << r << "'s "
            << (space == 0   ? "send"
                : space == 1 ? "receive"
                             : "scratch")
            << " buffer (part " << part << ") with nothing ordering them";
          return o.str();
        }
    }
    return "";
  }

  std::vector<RankOps> ranks_;
  std::vector<int> rankOf_;
  std::vector<uint32_t> first_;
  std::vector<std::vector<uint32_t>> preds_;
  size_t words_ = 0;
  std::vector<uint64_t> before_;
};

// The all-to-all-v arrays of every rank: rank r sends (r + 2 j) % 4 * unit elements to rank j,
// zero counts included, packed in rank order on both sides.
struct VLayouts {
  std::vector<std::vector<size_t>> sc, sd, rc, rd;
  VLayouts(int p, uint64_t unit) : sc(p), sd(p), rc(p), rd(p) {
    auto amount = [&](int from, int to) { return (from + 2 * to) % 4 * unit; };
    for (int r = 0; r < p; ++r) {
      size_t so = 0, ro = 0;
      for (int j = 0; j < p; ++j) {
        sc[r].push_back(amount(r, j));
        sd[r].push_back(so);
        so += sc[r].back();
        rc[r].push_back(amount(j, r));
        rd[r].push_back(ro);
        ro += rc[r].back();
      }
    }
  }
};

struct Case {
  CollType coll;
  int nranks;
  uint64_t count;
  bool inPlace;
  bool mapped;
  int channels = 0;  // 0: the schedules; otherwise the plans compiled over this many channels
  uint64_t chunkBytes = 0;
  int levelPick = -1;  // hierarchical: RotatingChooser's k, or -1 for the builders' defaults
};

// Picks, for a hierarchical algorithm's level, the (k + level)-th flat algorithm (in table order)
// that can run the sub-call, wrapping around: k = 0, 1, ... walks every level through its
// algorithms in different pairings.
class RotatingChooser : public LevelChooser {
 public:
  explicit RotatingChooser(int k) : k_(k) {}
  const AlgorithmInfo* choose(const CollDesc& sub, Level level) const override {
    std::vector<const AlgorithmInfo*> can;
    for (const AlgorithmInfo* a : algorithmsFor(sub.type))
      if (a->hierCost == nullptr && a->canRun(sub)) can.push_back(a);
    if (can.empty()) return nullptr;
    return can[static_cast<size_t>(k_ + static_cast<int>(level)) % can.size()];
  }

 private:
  int k_;
};

// Rank r's description of a call of `coll` in case c.
CollDesc descFor(CollType coll, const Case& c, int r, const VLayouts& v, const CommLayout* topo,
                 const LevelChooser* chooser) {
  const int p = c.nranks;
  CollDesc d;
  d.type = coll;
  d.count = c.count;
  d.rank = r;
  d.nranks = p;
  d.root = -1;
  if (coll == CollType::kBroadcast || coll == CollType::kReduce || coll == CollType::kGather ||
      coll == CollType::kScatter)
    d.root = p / 2;
  // The conventions that give an in-place call on this rank (a rooted gather or scatter is in
  // place on the root only).
  d.inPlace = c.inPlace && (d.root < 0 || coll == CollType::kBroadcast ||
                            coll == CollType::kReduce || r == d.root);
  d.peerAccess = true;
  d.scratchShared = true;
  d.mapped = c.mapped;
  d.topo = topo;
  d.chooser = chooser;
  if (coll == CollType::kAllToAllv) {
    d.layout = {v.sc[r].data(), v.sd[r].data(), v.rc[r].data(), v.rd[r].data()};
    d.count = d.sendSpan = v.sd[r].back() + v.sc[r].back();
    d.recvSpan = v.rd[r].back() + v.rc[r].back();
    d.layoutHash = 1;
    d.inPlace = false;
  }
  return d;
}

// Builds every rank's schedule of the call (one algorithm) or of a group of calls (several, each
// a part, merged as the engine merges them) and checks them together. *ran: whether every
// algorithm could run its call.
std::string runCase(const std::vector<const AlgorithmInfo*>& algos, const Case& c,
                    const CommLayout* topo, bool* ran) {
  *ran = false;
  const int p = c.nranks;
  VLayouts v(p, c.count);
  const RotatingChooser chooser(c.levelPick);
  std::vector<RankOps> ranks;
  for (int r = 0; r < p; ++r) {
    std::vector<CollDesc> parts;
    Schedule merged;
    for (size_t k = 0; k < algos.size(); ++k) {
      const CollDesc d =
          descFor(algos[k]->coll, c, r, v, topo, c.levelPick >= 0 ? &chooser : nullptr);
      if (!algos[k]->canRun(d)) return "";
      Schedule s;
      s.elemSize = d.elemSize;
      Status st = algos[k]->build(d, &s);
      if (!st.ok()) return "rank " + std::to_string(r) + " fails to build: " + st.message();
      parts.push_back(d);
      if (algos.size() == 1)
        merged = std::move(s);
      else
        merged.append(s, static_cast<uint16_t>(k));
    }
    merged.elemSize = 4;  // every part is float32
    if (c.channels == 0) {
      ranks.push_back(fromSchedule(parts, merged));
      continue;
    }
    // The plan the engine runs: one-sided schedules get the window protocol first.
    if (usesWindows(merged)) {
      Schedule withWindows;
      WindowLayout window;
      Status st =
          addWindowProtocol(merged, static_cast<int>(parts.size()), p, 16, &withWindows, &window);
      if (!st.ok()) return "rank " + std::to_string(r) + " fails to add windows: " + st.message();
      merged = std::move(withWindows);
    }
    auto plan = compilePlan(merged, c.chunkBytes, c.channels);
    if (!plan.ok())
      return "rank " + std::to_string(r) + " fails to compile: " + plan.status().message();
    ranks.push_back(fromPlan(parts, *plan));
  }
  *ran = true;
  return HazardChecker(std::move(ranks)).check();
}

std::string describe(const AlgorithmInfo& algo, const Case& c) {
  std::ostringstream o;
  o << collName(algo.coll) << ":" << algo.name << " on " << c.nranks << " ranks, count " << c.count
    << (c.inPlace ? ", in place" : "") << (c.mapped ? ", registered" : "");
  if (c.levelPick >= 0) o << ", levels chosen by rotation " << c.levelPick;
  if (c.channels > 0)
    o << ", plans of " << c.chunkBytes << "-byte chunks over " << c.channels << " channels";
  return o.str();
}

// Checks the algorithm over the rank counts (on one node, or `topo` alone where given): the
// schedules at counts of one element, an odd count that leaves short last chunks, and (where
// `large`) one element past four staging pieces of 256 KiB a block, so that staging slots are
// reused with a short last piece; and the plans the engine compiles from them over 1 and 3
// channels (where `plans`), whose chunk-by-chunk dependencies between steps of one size must
// line up with the bytes the steps touch.
// Returns the number of cases the algorithm can run.
int checkAlgorithm(const AlgorithmInfo& algo, const std::vector<int>& rankCounts, bool large,
                   bool plans, const CommLayout* topo = nullptr, int levelPick = -1) {
  std::vector<uint64_t> counts = {1, 1027};
  if (large) counts.push_back(4 * 65536 + 3);
  int cases = 0;
  for (int p : rankCounts)
    for (uint64_t count : counts)
      for (bool inPlace : {false, true})
        for (bool mapped : {false, true})
          for (int channels : {0, 1, 3}) {
            if ((mapped && !algo.oneSided) || (channels > 0 && !plans)) continue;
            // Chunks of about a sixth of a block, 64 bytes to 64 KiB: several per step.
            const uint64_t chunk = std::clamp<uint64_t>(count * 4 / 6 / 64 * 64, 64, 65536);
            const Case c{algo.coll, topo != nullptr ? topo->nranks() : p,
                         count,     inPlace,
                         mapped,    channels,
                         chunk,     levelPick};
            bool ran = false;
            const std::string err = runCase({&algo}, c, topo, &ran);
            cases += ran ? 1 : 0;
            EXPECT_EQ(err, "") << describe(algo, c);
          }
  return cases;
}

class ScheduleHazards : public ::testing::TestWithParam<const AlgorithmInfo*> {};

TEST_P(ScheduleHazards, NoUnorderedConflictingAccesses) {
  const AlgorithmInfo& algo = *GetParam();
  int cases = 0;
  if (algo.hierCost != nullptr) {
    // Hierarchical: over several node layouts, each level with the builders' defaults and with
    // every flat algorithm that can run it, in rotating pairings.
    for (const CommLayout& t :
         {CommLayout::blocks({2, 2}), CommLayout::blocks({3, 2, 4}), CommLayout::blocks({4, 4})})
      for (int pick = -1; pick < 6; ++pick)
        cases += checkAlgorithm(algo, {t.nranks()}, false, true, &t, pick);
  } else {
    cases += checkAlgorithm(algo, {1, 2, 3, 4, 5, 8}, true, true);
    cases += checkAlgorithm(algo, {7, 9, 12, 16, 17}, false, false);
  }
  EXPECT_GT(cases, 0) << collName(algo.coll) << ":" << algo.name << " ran nowhere";
}

std::vector<const AlgorithmInfo*> allAlgorithms() {
  std::vector<const AlgorithmInfo*> v;
  for (const AlgorithmInfo& a : algorithmTable())
    if (a.coll != CollType::kSend && a.coll != CollType::kRecv) v.push_back(&a);
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, ScheduleHazards, ::testing::ValuesIn(allAlgorithms()),
                         [](const ::testing::TestParamInfo<const AlgorithmInfo*>& i) {
                           return std::string(collName(i.param->coll)) + "_" + i.param->name;
                         });

// Groups: two operations merged into one schedule as the engine merges them (each a part with its
// own buffers and scratch, later parts in later phases), every flat algorithm paired with itself
// and with the next one in the table.
TEST(GroupHazards, TwoOperationsMergedStayOrdered) {
  std::vector<const AlgorithmInfo*> flat;
  for (const AlgorithmInfo* a : allAlgorithms())
    if (a->hierCost == nullptr) flat.push_back(a);
  int cases = 0;
  for (size_t i = 0; i < flat.size(); ++i)
    for (const AlgorithmInfo* second : {flat[i], flat[(i + 1) % flat.size()]})
      for (int p : {2, 3, 4, 5})
        for (bool inPlace : {false, true})
          for (int channels : {0, 3}) {
            const Case c{flat[i]->coll, p, 1027, inPlace, false, channels, 640, -1};
            bool ran = false;
            const std::string err = runCase({flat[i], second}, c, nullptr, &ran);
            cases += ran ? 1 : 0;
            EXPECT_EQ(err, "") << describe(*flat[i], c) << ", then " << collName(second->coll)
                               << ":" << second->name;
          }
  EXPECT_GT(cases, 100);
}

}  // namespace
}  // namespace weft
