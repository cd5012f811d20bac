// Every algorithm's schedules, all ranks together, checked for races on memory: two steps that
// touch overlapping bytes of one rank's buffers (its send, receive and scratch buffers, aliased as
// the call's in-place convention lays them), at least one of them writing, must be ordered by a
// chain of dependencies and messages. A step's local accesses count, and so do the one-sided
// steps of its peers in its window. Messages are matched as the engine matches them: the k-th
// step that sends from a to b meets the k-th step on b that receives from a, in (phase, step)
// order, and the two must carry the same bytes.
//
// Running the collectives finds such races only where the timing happens to expose them; this
// finds them in every schedule, at rank counts and sizes the multi-process tests never reach. It
// is an approximation at chunk level (a dependency between steps of one size streams chunk by
// chunk, and a message edge orders its send's start before its receive's end), which is what the
// schedules' own orderings rely on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "core/layout.h"

namespace weft {
namespace {

struct Node {
  int rank;
  StepId step;
};

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

class HazardChecker {
 public:
  HazardChecker(std::vector<CollDesc> descs, std::vector<Schedule> scheds)
      : descs_(std::move(descs)), scheds_(std::move(scheds)) {}

  // An empty string, or what is wrong.
  std::string check() {
    const int p = static_cast<int>(scheds_.size());
    for (int r = 0; r < p; ++r) {
      first_.push_back(static_cast<uint32_t>(nodes_.size()));
      for (StepId i = 0; i < scheds_[r].steps.size(); ++i)
        nodes_.push_back({r, i});
    }
    preds_.assign(nodes_.size(), {});
    for (int r = 0; r < p; ++r) {
      const Schedule& s = scheds_[r];
      for (StepId i = 0; i < s.steps.size(); ++i)
        for (uint32_t k = 0; k < s.steps[i].depCount; ++k)
          preds_[id(r, i)].push_back(id(r, s.deps[s.steps[i].depBegin + k]));
    }
    std::string err = matchMessages();
    if (!err.empty()) return err;
    err = order();
    if (!err.empty()) return err;
    collectAccesses();
    return findRaces();
  }

 private:
  uint32_t id(int rank, StepId step) const { return first_[rank] + step; }

  std::string where(uint32_t n) const {
    const Node& x = nodes_[n];
    const Step& st = scheds_[x.rank].steps[x.step];
    std::ostringstream o;
    o << "rank " << x.rank << " step " << x.step << " (" << stepKindName(st.kind) << ")";
    return o.str();
  }

  // Adds an edge from every send to the receive it meets.
  std::string matchMessages() {
    const int p = static_cast<int>(scheds_.size());
    // sends[a][b], recvs[b][a]: (phase, step) lists.
    std::vector<std::vector<std::vector<std::pair<uint32_t, StepId>>>> sends(
        p, std::vector<std::vector<std::pair<uint32_t, StepId>>>(p)),
        recvs = sends;
    for (int r = 0; r < p; ++r)
      for (StepId i = 0; i < scheds_[r].steps.size(); ++i) {
        const Step& st = scheds_[r].steps[i];
        if (stepSends(st.kind)) sends[r][st.sendPeer].push_back({st.phase, i});
        if (stepReceives(st.kind)) recvs[r][st.recvPeer].push_back({st.phase, i});
      }
    for (int a = 0; a < p; ++a)
      for (int b = 0; b < p; ++b) {
        auto& out = sends[a][b];
        auto& in = recvs[b][a];
        std::stable_sort(out.begin(), out.end());
        std::stable_sort(in.begin(), in.end());
        if (out.size() != in.size())
          return "rank " + std::to_string(a) + " sends " + std::to_string(out.size()) +
                 " messages to rank " + std::to_string(b) + ", which receives " +
                 std::to_string(in.size());
        for (size_t k = 0; k < out.size(); ++k) {
          const uint32_t from = id(a, out[k].second), to = id(b, in[k].second);
          const uint64_t sb = scheds_[a].steps[out[k].second].bytes(),
                         rb = scheds_[b].steps[in[k].second].bytes();
          if (sb != rb || out[k].first != in[k].first)
            return where(from) + " sends " + std::to_string(sb) + " bytes in phase " +
                   std::to_string(out[k].first) + " to " + where(to) + ", which receives " +
                   std::to_string(rb) + " in phase " + std::to_string(in[k].first);
          preds_[to].push_back(from);
        }
      }
    return "";
  }

  // Topological order and, for every node, the set of nodes that come before it.
  std::string order() {
    const size_t n = nodes_.size();
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
    if (topo.size() != n) {
      for (uint32_t v = 0; v < n; ++v)
        if (indeg[v] != 0) return "a cycle of dependencies and messages through " + where(v);
    }
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

  void add(int rank, const Region& g, uint32_t node, bool write) {
    if (g.buf == kNoBuf || g.bytes == 0) return;
    const uint64_t b = spaces_[rank].base[g.buf % kBuffersPerPart] + g.offset;
    accesses_[rank].push_back({b, b + g.bytes, node, write});
  }

  void collectAccesses() {
    const int p = static_cast<int>(scheds_.size());
    accesses_.assign(p, {});
    for (int r = 0; r < p; ++r)
      spaces_.push_back(spaceFor(descs_[r]));
    for (int r = 0; r < p; ++r)
      for (StepId i = 0; i < scheds_[r].steps.size(); ++i) {
        const Step& st = scheds_[r].steps[i];
        const uint32_t v = id(r, i);
        switch (st.kind) {
          case StepKind::kSend:
          case StepKind::kRecvReduceSend:
            add(r, st.src, v, false);
            break;
          case StepKind::kRecv:
          case StepKind::kRecvCopySend:
            add(r, st.dst, v, true);
            break;
          case StepKind::kRecvReduce:
          case StepKind::kRecvReduceCopySend:
          case StepKind::kCopy:
          case StepKind::kReduce:
            add(r, st.src, v, false);
            add(r, st.dst, v, true);
            break;
          case StepKind::kGet:
            add(r, st.dst, v, true);
            add(st.windowPeer, st.remote, v, false);
            break;
          case StepKind::kGetReduce:
            add(r, st.src, v, false);
            add(r, st.dst, v, true);
            add(st.windowPeer, st.remote, v, false);
            break;
          case StepKind::kPut:
            add(r, st.src, v, false);
            add(st.windowPeer, st.remote, v, true);
            break;
        }
      }
  }

  std::string findRaces() {
    for (size_t r = 0; r < accesses_.size(); ++r) {
      auto& acc = accesses_[r];
      std::sort(acc.begin(), acc.end(),
                [](const Access& a, const Access& b) { return a.begin < b.begin; });
      for (size_t i = 0; i < acc.size(); ++i)
        for (size_t j = i + 1; j < acc.size() && acc[j].begin < acc[i].end; ++j) {
          const Access &a = acc[i], &b = acc[j];
          if (a.node == b.node || !(a.write || b.write) || ordered(a.node, b.node)) continue;
          std::ostringstream o;
          o << where(a.node) << (a.write ? " writes" : " reads") << " bytes [" << a.begin % kApart
            << ", " << a.end % kApart << ") and " << where(b.node)
            << (b.write ? " writes" : " reads") << " [" << b.begin % kApart << ", "
            << b.end % kApart << ") of rank " << r << "'s "
            << (a.begin / kApart == 0   ? "send"
                : a.begin / kApart == 1 ? "receive"
                                        : "scratch")
            << " buffer with nothing ordering them";
          return o.str();
        }
    }
    return "";
  }

  std::vector<CollDesc> descs_;
  std::vector<Schedule> scheds_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> first_;
  std::vector<std::vector<uint32_t>> preds_;
  size_t words_ = 0;
  std::vector<uint64_t> before_;
  std::vector<Space> spaces_;
  std::vector<std::vector<Access>> accesses_;
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
};

std::string runCase(const AlgorithmInfo& algo, const Case& c, const CommLayout* topo, bool* ran) {
  *ran = false;
  const int p = c.nranks;
  VLayouts v(p, c.count);
  std::vector<CollDesc> descs;
  std::vector<Schedule> scheds;
  for (int r = 0; r < p; ++r) {
    CollDesc d;
    d.type = c.coll;
    d.count = c.count;
    d.rank = r;
    d.nranks = p;
    d.root = -1;
    if (c.coll == CollType::kBroadcast || c.coll == CollType::kReduce ||
        c.coll == CollType::kGather || c.coll == CollType::kScatter)
      d.root = p / 2;
    // The conventions that give an in-place call on this rank (a rooted gather or scatter is in
    // place on the root only).
    d.inPlace = c.inPlace && (d.root < 0 || c.coll == CollType::kBroadcast ||
                              c.coll == CollType::kReduce || r == d.root);
    d.peerAccess = true;
    d.scratchShared = true;
    d.mapped = c.mapped;
    d.topo = topo;
    if (c.coll == CollType::kAllToAllv) {
      d.layout = {v.sc[r].data(), v.sd[r].data(), v.rc[r].data(), v.rd[r].data()};
      d.count = d.sendSpan = v.sd[r].back() + v.sc[r].back();
      d.recvSpan = v.rd[r].back() + v.rc[r].back();
      d.layoutHash = 1;
      d.inPlace = false;
    }
    if (!algo.canRun(d)) return "";
    Schedule s;
    Status st = algo.build(d, &s);
    if (!st.ok()) return "rank " + std::to_string(r) + " fails to build: " + st.message();
    descs.push_back(d);
    scheds.push_back(std::move(s));
  }
  *ran = true;
  return HazardChecker(std::move(descs), std::move(scheds)).check();
}

// Counts per collective: one element, an odd count that leaves short last chunks and pieces, and
// (where `large`) one past four staging pieces of 256 KiB a block, so that staging slots are
// reused with a short last piece.
std::vector<uint64_t> countsFor(bool large) {
  std::vector<uint64_t> c = {1, 1027};
  if (large) c.push_back(4 * 65536 + 3);
  return c;
}

void checkAlgorithm(const AlgorithmInfo& algo, const std::vector<int>& rankCounts, bool large) {
  if (algo.coll == CollType::kSend || algo.coll == CollType::kRecv) return;
  int cases = 0;
  for (int p : rankCounts)
    for (uint64_t count : countsFor(large))
      for (bool inPlace : {false, true})
        for (bool mapped : {false, true}) {
          if (mapped && !algo.oneSided) continue;
          bool ran = false;
          const std::string err =
              runCase(algo, {algo.coll, p, count, inPlace, mapped}, nullptr, &ran);
          cases += ran ? 1 : 0;
          EXPECT_EQ(err, "") << collName(algo.coll) << ":" << algo.name << " on " << p
                             << " ranks, count " << count << (inPlace ? ", in place" : "")
                             << (mapped ? ", registered" : "");
        }
  EXPECT_GT(cases, 0) << collName(algo.coll) << ":" << algo.name << " ran nowhere";
}

class ScheduleHazards : public ::testing::TestWithParam<const AlgorithmInfo*> {};

TEST_P(ScheduleHazards, NoUnorderedConflictingAccesses) {
  const AlgorithmInfo& algo = *GetParam();
  if (algo.hierCost != nullptr) {
    // Hierarchical: over several node layouts, each level with the algorithms' defaults.
    const std::vector<CommLayout> layouts = {
        CommLayout::blocks({2, 2}), CommLayout::blocks({3, 2, 4}), CommLayout::blocks({4, 4})};
    int cases = 0;
    for (const CommLayout& t : layouts)
      for (uint64_t count : countsFor(false))
        for (bool inPlace : {false, true}) {
          bool ran = false;
          const std::string err =
              runCase(algo, {algo.coll, t.nranks(), count, inPlace, false}, &t, &ran);
          cases += ran ? 1 : 0;
          EXPECT_EQ(err, "") << collName(algo.coll) << ":" << algo.name << " on " << t.nranks()
                             << " ranks, count " << count << (inPlace ? ", in place" : "");
        }
    EXPECT_GT(cases, 0) << collName(algo.coll) << ":" << algo.name << " ran nowhere";
    return;
  }
  checkAlgorithm(algo, {1, 2, 3, 4, 5, 7, 8, 9}, true);
  checkAlgorithm(algo, {12, 16, 17}, false);
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

}  // namespace
}  // namespace weft
