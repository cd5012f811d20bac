// Hierarchical algorithms (algorithms/hier/) and the composition under them
// (algorithms/patterns/subgroup.h): how a sub-schedule's peers, buffers, dependencies, finalize
// flags and phases are mapped; the intra-node order and rails; which algorithms may run where; the
// levels' choices through a LevelChooser; and every hierarchical algorithm in the in-memory runner
// over nodes of equal and unequal sizes, nodes of non-consecutive ranks, NUMA groups, several data
// types and ops, counts that do not divide by the node sizes (and smaller than the rank count),
// every root on a node boundary and inside nodes, in place and out of place, checked bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "algorithms/patterns/subgroup.h"
#include "algorithms/registry.h"
#include "api/comm.h"
#include "coll_check.h"
#include "runner.h"

namespace weft::test {
namespace {

std::vector<StepId> depsOf(const Schedule& s, StepId i) {
  const Step& st = s.steps[i];
  return {s.deps.begin() + st.depBegin, s.deps.begin() + st.depBegin + st.depCount};
}

bool sameRegion(const Region& a, const Region& b) {
  return a.buf == b.buf && a.offset == b.offset && a.bytes == b.bytes;
}

// ---- The composition primitive ----

// A sub-schedule written by hand: a send, a receive, and a copy of what arrived into scratch.
Schedule handMadeSub() {
  Schedule sub;
  sub.elemSize = 4;
  sub.send(1, sendRegion(0, 8));
  const StepId got = sub.recv(2, recvRegion(8, 8));
  const StepId kept = sub.copy(scratchRegion(0, 8), recvRegion(8, 8), {got});
  sub.steps[kept].finalize = true;
  sub.scratchBytes = 8;
  return sub;
}

TEST(HierSubgroup, MapsPeersBuffersDependenciesAndPhase) {
  Schedule out;
  out.elemSize = 4;
  out.scratchBytes = 100;
  const StepId before = out.copy(recvRegion(0, 16), sendRegion(0, 16));
  patterns::SubCall call;
  call.desc.count = 2;
  call.members = {5, 3, 7};
  call.send = patterns::recvAt(100);
  call.recv = patterns::scratchAt(64);
  call.after = {before};
  call.phase = 2;
  auto r = patterns::appendSchedule(handMadeSub(), call, &out);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const patterns::SubSteps x = r.value();
  // A join after `before`, the three steps, a join after the sinks.
  ASSERT_EQ(out.steps.size(), 6u) << out.dump();
  EXPECT_EQ(x.begin, 1u);
  EXPECT_EQ(x.end, 6u);
  EXPECT_EQ(x.done, 5u);
  const StepId entry = 1, send = 2, recv = 3, copy = 4;
  EXPECT_EQ(out.steps[entry].bytes(), 0u);
  EXPECT_EQ(depsOf(out, entry), std::vector<StepId>{before});
  // Peers through the member list.
  EXPECT_EQ(out.steps[send].sendPeer, 3);
  EXPECT_EQ(out.steps[recv].recvPeer, 7);
  // Buffers: send -> recv+100, recv -> scratch+64, scratch -> a fresh slice after the outer's 100
  // bytes, 64-byte aligned.
  EXPECT_TRUE(sameRegion(out.steps[send].src, Region{kRecvBuf, 100, 8}));
  EXPECT_TRUE(sameRegion(out.steps[recv].dst, Region{kScratchBuf, 72, 8}));
  EXPECT_TRUE(sameRegion(out.steps[copy].dst, Region{kScratchBuf, 128, 8}));
  EXPECT_TRUE(sameRegion(out.steps[copy].src, Region{kScratchBuf, 72, 8}));
  EXPECT_EQ(out.scratchBytes, 136u);
  // Dependencies: entry steps wait for the join, the copy for the receive (renumbered).
  EXPECT_EQ(depsOf(out, send), std::vector<StepId>{entry});
  EXPECT_EQ(depsOf(out, recv), std::vector<StepId>{entry});
  EXPECT_EQ(depsOf(out, copy), std::vector<StepId>{recv});
  EXPECT_EQ(depsOf(out, x.done), (std::vector<StepId>{send, copy}));
  // finalize dropped unless asked for; every step, joins included, in the call's phase.
  EXPECT_FALSE(out.steps[copy].finalize);
  for (StepId i = x.begin; i < x.end; ++i)
    EXPECT_EQ(out.steps[i].phase, 2) << i;
}

TEST(HierSubgroup, StreamsKeepsFinalizeAndPlacesScratch) {
  Schedule out;
  out.elemSize = 4;
  const StepId before = out.copy(recvRegion(0, 8), sendRegion(0, 8));
  patterns::SubCall call;
  call.desc.count = 2;
  call.members = {1, 0, 2};
  call.send = patterns::sendAt(0);
  call.recv = patterns::recvAt(0);
  call.scratch = patterns::scratchAt(256);
  call.after = {before};
  call.stream = true;
  call.keepFinalize = true;
  auto r = patterns::appendSchedule(handMadeSub(), call, &out);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // No entry join: the entry steps wait for `before` itself (chunk by chunk where sizes match).
  EXPECT_EQ(depsOf(out, 1), std::vector<StepId>{before});
  EXPECT_EQ(depsOf(out, 2), std::vector<StepId>{before});
  EXPECT_TRUE(out.steps[3].finalize);
  EXPECT_TRUE(sameRegion(out.steps[3].dst, Region{kScratchBuf, 256, 8}));
  EXPECT_EQ(out.scratchBytes, 0u);  // placed by the caller
}

TEST(HierSubgroup, RefusesBuffersItDoesNotPlaceAndPeersOutsideTheGroup) {
  Schedule out;
  patterns::SubCall call;
  call.desc.count = 2;
  call.members = {0, 1, 2};
  call.send = patterns::sendAt(0);  // recv left unplaced
  auto r = patterns::appendSchedule(handMadeSub(), call, &out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not place"), std::string::npos) << r.status().message();
  call.recv = patterns::recvAt(0);
  call.members = {0, 1};
  r = patterns::appendSchedule(handMadeSub(), call, &out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("outside the group"), std::string::npos);
}

TEST(HierSubgroup, AppendsAFlatAlgorithmsScheduleOverAGroup) {
  // A ring all-gather over ranks {6, 2, 4} of a larger communicator, as group index 1 (rank 2).
  CollDesc outer;
  outer.type = CollType::kAllGather;
  outer.count = 3;
  outer.rank = 2;
  outer.nranks = 8;
  const std::vector<int> members = {6, 2, 4};
  Schedule out;
  out.elemSize = 4;
  patterns::SubCall call = patterns::subCall(outer, CollType::kAllGather, 3, members,
                                             patterns::sendAt(0), patterns::scratchAt(0));
  EXPECT_EQ(call.desc.rank, 1);
  EXPECT_EQ(call.desc.nranks, 3);
  EXPECT_FALSE(call.desc.peerAccess);
  EXPECT_EQ(call.desc.topo, nullptr);
  auto r = patterns::appendSub(*findAlgorithm(CollType::kAllGather, "ring"), call, &out);
  ASSERT_TRUE(r.ok()) << r.status().message();
  // Every message goes to the ring neighbour after rank 2 in the group (4) and comes from the one
  // before it (6); every region lies in the output slice of scratch.
  for (const Step& s : out.steps) {
    if (stepSends(s.kind)) {
      EXPECT_EQ(s.sendPeer, 4);
    }
    if (stepReceives(s.kind)) {
      EXPECT_EQ(s.recvPeer, 6);
    }
    if (s.dst.bytes > 0) {
      EXPECT_EQ(s.dst.buf, kScratchBuf);
      EXPECT_LE(s.dst.offset + s.dst.bytes, 3u * 12u);
    }
  }
}

TEST(HierSubgroup, CopyBlocksMergesContiguousRuns) {
  Schedule s;
  const std::vector<Region> dst = {recvRegion(0, 4), recvRegion(4, 4), recvRegion(12, 4),
                                   recvRegion(16, 4), scratchRegion(0, 4)};
  const std::vector<Region> src = {sendRegion(8, 4), sendRegion(12, 4), sendRegion(20, 4),
                                   sendRegion(0, 4), scratchRegion(0, 4)};
  const StepId done = patterns::copyBlocks(&s, dst, src, {});
  // A start join, three copies (the first two merged, the last a no-op), a final join.
  std::vector<Step> copies;
  for (const Step& st : s.steps)
    if (st.bytes() > 0) copies.push_back(st);
  ASSERT_EQ(copies.size(), 3u) << s.dump();
  EXPECT_TRUE(sameRegion(copies[0].dst, recvRegion(0, 8)));
  EXPECT_TRUE(sameRegion(copies[0].src, sendRegion(8, 8)));
  EXPECT_EQ(done, s.steps.size() - 1);
}

TEST(HierSubgroup, NodeViewOrdersNumaGroupsTogetherAndFormsRails) {
  // Two nodes (a, b) of three ranks each, interleaved; on node a, ranks 0 and 4 share a NUMA node.
  const CommLayout t({"a", "b", "a", "b", "a", "b"}, {1, 0, 0, 0, 1, 1});
  const patterns::NodeView v = patterns::nodeView(t, 4);
  ASSERT_EQ(v.nnodes(), 2);
  EXPECT_EQ(v.nodes[0], (std::vector<int>{0, 4, 2}));
  EXPECT_EQ(v.nodes[1], (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(v.node, 0);
  EXPECT_EQ(v.pos, 1);
  EXPECT_EQ(v.rail(1), (std::vector<int>{4, 3}));
  EXPECT_FALSE(v.rankOrdered());
  EXPECT_TRUE(patterns::nodeView(CommLayout::blocks({3, 2, 4}), 5).rankOrdered());
  EXPECT_EQ(patterns::nodeView(CommLayout::blocks({3, 2, 4}), 5).rail(2), (std::vector<int>{2, 7}));
}

// ---- Where they run ----

CollDesc descFor(CollType type, const CommLayout* t, int rank = 0, uint64_t count = 10) {
  CollDesc d;
  d.type = type;
  d.count = count;
  d.rank = rank;
  d.nranks = t != nullptr ? t->nranks() : 8;
  d.root = type == CollType::kBroadcast || type == CollType::kReduce ? 0 : -1;
  d.topo = t;
  return d;
}

const std::vector<CollType>& hierColls() {
  static const std::vector<CollType> c = {CollType::kAllReduce,     CollType::kAllGather,
                                          CollType::kReduceScatter, CollType::kBroadcast,
                                          CollType::kReduce,        CollType::kAllToAll};
  return c;
}

TEST(HierCanRun, OnlyWhereTwoLevelsExist) {
  const CommLayout one = CommLayout::flat(8), single = CommLayout::blocks({1, 1, 1, 1}),
                   two = CommLayout::blocks({4, 4}), uneven = CommLayout::blocks({3, 2, 4});
  for (CollType c : hierColls()) {
    const AlgorithmInfo* a = findAlgorithm(c, "hier");
    ASSERT_NE(a, nullptr) << collName(c);
    ASSERT_NE(a->hierCost, nullptr);
    EXPECT_FALSE(a->canRun(descFor(c, nullptr))) << collName(c);
    EXPECT_FALSE(a->canRun(descFor(c, &one))) << collName(c);
    EXPECT_FALSE(a->canRun(descFor(c, &single))) << collName(c);
    CollDesc wrongSize = descFor(c, &two);
    wrongSize.nranks = 6;
    EXPECT_FALSE(a->canRun(wrongSize)) << collName(c);
    EXPECT_TRUE(a->canRun(descFor(c, &two))) << collName(c);
    // Uneven nodes: all but all-to-all.
    const bool unevenOk = c != CollType::kAllToAll;
    EXPECT_EQ(a->canRun(descFor(c, &uneven)), unevenOk) << collName(c);
  }
}

TEST(HierCanRun, BuildingWithoutTwoLevelsGivesTheFlatSchedule) {
  // The tuner never picks them there, but a direct build still gives a working schedule.
  const CommLayout one = CommLayout::flat(4);
  for (CollType c : hierColls()) {
    CollDesc d = descFor(c, &one, 1, 6);
    d.elemSize = 4;
    Schedule hier, flat;
    hier.elemSize = flat.elemSize = 4;
    ASSERT_TRUE(findAlgorithm(c, "hier")->build(d, &hier).ok());
    const char* flatName = c == CollType::kAllToAll                              ? "pairwise"
                           : c == CollType::kBroadcast || c == CollType::kReduce ? "tree"
                                                                                 : "ring";
    ASSERT_TRUE(findAlgorithm(c, flatName)->build(d, &flat).ok());
    EXPECT_EQ(hier.dump(), flat.dump()) << collName(c);
  }
}

TEST(HierCost, SumsTheLevelsAndIsFiniteWhereItRuns) {
  const CommLayout two = CommLayout::blocks({4, 4}), uneven = CommLayout::blocks({3, 2, 4});
  CostModel m;
  m.inter.alphaUs = 5;
  m.inter.betaUsPerByte = 1e-3;
  for (CollType c : hierColls()) {
    const AlgorithmInfo* a = findAlgorithm(c, "hier");
    for (const CommLayout* t : {&two, &uneven}) {
      for (uint64_t count : {1u, 7u, 1000u, 1000000u}) {
        CollDesc d = descFor(c, t, 0, count);
        const double us = a->hierCost(d, m);
        EXPECT_GT(us, 0) << collName(c) << " " << t->describe() << " count=" << count;
        EXPECT_LT(us, 1e12) << collName(c) << " " << t->describe() << " count=" << count;
        // `cost` is the same estimate with one level's costs for both.
        EXPECT_DOUBLE_EQ(a->cost(d, m.inter), a->hierCost(d, CostModel{m.inter, m.inter}));
      }
    }
  }
  // The inter-node level's costs matter: slower links cost more.
  const AlgorithmInfo* ar = findAlgorithm(CollType::kAllReduce, "hier");
  CostModel slow = m;
  slow.inter.betaUsPerByte *= 10;
  const CollDesc big = descFor(CollType::kAllReduce, &two, 0, 1 << 20);
  EXPECT_GT(ar->hierCost(big, slow), ar->hierCost(big, m));
}

// ---- The levels' choices ----

// Picks by (collective, level) from a table, and remembers what it was asked.
class FakeChooser : public LevelChooser {
 public:
  std::map<std::pair<CollType, Level>, std::string> picks;
  bool refuse = false;
  struct Asked {
    CollType coll;
    Level level;
    int nranks;
    uint64_t count;
  };
  const AlgorithmInfo* choose(const CollDesc& sub, Level level) const override {
    std::lock_guard<std::mutex> lock(mu_);
    asked_.push_back({sub.type, level, sub.nranks, sub.count});
    if (refuse) return nullptr;
    auto it = picks.find({sub.type, level});
    if (it != picks.end()) return findAlgorithm(sub.type, it->second);
    return findAlgorithm(sub.type, sub.type == CollType::kAllToAll ? "pairwise"
                                   : sub.type == CollType::kAllReduce ||
                                           sub.type == CollType::kAllGather ||
                                           sub.type == CollType::kReduceScatter
                                       ? "ring"
                                       : "tree");
  }
  std::vector<Asked> asked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return asked_;
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<Asked> asked_;
};

// Flat algorithms other than the defaults for every level, two sets between them.
void pickAlternatives(int variant, FakeChooser* chooser) {
  FakeChooser& f = *chooser;
  using C = CollType;
  const Level in = Level::kIntra, out = Level::kInter;
  if (variant == 0) {
    f.picks = {{{C::kReduceScatter, in}, "pairwise"},
               {{C::kAllGather, in}, "bruck"},
               {{C::kAllReduce, in}, "recursive_doubling"},
               {{C::kBroadcast, in}, "chain"},
               {{C::kReduce, in}, "tree"},
               {{C::kScatter, in}, "linear"},
               {{C::kAllToAll, in}, "bruck"},
               {{C::kAllReduce, out}, "rabenseifner"},
               {{C::kAllGather, out}, "recursive_doubling"},
               {{C::kReduceScatter, out}, "recursive_halving"},
               {{C::kBroadcast, out}, "scatter_allgather"},
               {{C::kReduce, out}, "tree"},
               {{C::kAllToAll, out}, "bruck"}};
  } else {
    f.picks = {{{C::kReduceScatter, in}, "recursive_halving"},
               {{C::kAllGather, in}, "recursive_doubling"},
               {{C::kAllReduce, in}, "double_binary_tree"},
               {{C::kBroadcast, in}, "scatter_allgather"},
               {{C::kReduce, in}, "tree"},
               {{C::kScatter, in}, "tree"},
               {{C::kAllToAll, in}, "pairwise"},
               {{C::kAllReduce, out}, "reduce_broadcast"},
               {{C::kAllGather, out}, "bruck"},
               {{C::kReduceScatter, out}, "pairwise"},
               {{C::kBroadcast, out}, "chain"},
               {{C::kReduce, out}, "tree"},
               {{C::kAllToAll, out}, "pairwise"}};
  }
}

TEST(HierChooser, AsksForEachLevelsSubCall) {
  const CommLayout t = CommLayout::blocks({4, 4});
  struct Want {
    CollType coll;
    std::vector<std::tuple<CollType, Level, int, uint64_t>> asks;
  };
  // count 10 per rank (all-reduce: 10 = 4 * 2 + 2, a tail of 2).
  const std::vector<Want> wants = {
      {CollType::kAllReduce,
       {{CollType::kReduceScatter, Level::kIntra, 4, 2},
        {CollType::kAllReduce, Level::kIntra, 4, 2},
        {CollType::kAllReduce, Level::kInter, 2, 2},
        {CollType::kAllReduce, Level::kInter, 2, 2},
        {CollType::kAllGather, Level::kIntra, 4, 2}}},
      {CollType::kAllGather,
       {{CollType::kAllGather, Level::kInter, 2, 10},
        {CollType::kAllGather, Level::kIntra, 4, 20}}},
      {CollType::kReduceScatter,
       {{CollType::kReduceScatter, Level::kIntra, 4, 20},
        {CollType::kReduceScatter, Level::kInter, 2, 10}}},
      {CollType::kBroadcast,
       {{CollType::kBroadcast, Level::kInter, 2, 10},
        {CollType::kBroadcast, Level::kIntra, 4, 10}}},
      {CollType::kReduce,
       {{CollType::kReduce, Level::kIntra, 4, 10}, {CollType::kReduce, Level::kInter, 2, 10}}},
      {CollType::kAllToAll,
       {{CollType::kAllToAll, Level::kInter, 2, 40}, {CollType::kAllToAll, Level::kIntra, 4, 20}}},
  };
  for (const Want& w : wants) {
    FakeChooser f;
    CollDesc d = descFor(w.coll, &t, 0);
    d.chooser = &f;
    Schedule s;
    s.elemSize = 4;
    ASSERT_TRUE(findAlgorithm(w.coll, "hier")->build(d, &s).ok()) << collName(w.coll);
    const auto asked = f.asked();
    ASSERT_EQ(asked.size(), w.asks.size()) << collName(w.coll);
    for (size_t i = 0; i < asked.size(); ++i) {
      const auto [coll, level, nranks, count] = w.asks[i];
      EXPECT_EQ(asked[i].coll, coll) << collName(w.coll) << " #" << i;
      EXPECT_EQ(asked[i].level, level) << collName(w.coll) << " #" << i;
      EXPECT_EQ(asked[i].nranks, nranks) << collName(w.coll) << " #" << i;
      EXPECT_EQ(asked[i].count, count) << collName(w.coll) << " #" << i;
    }
  }
}

TEST(HierChooser, UsesThePickedAlgorithms) {
  // Inter-node all-reduce by recursive doubling: rank 0 of 2 x 4 exchanges with its rail peer (4),
  // both ways, where the default ring would send and receive there too; the intra-node all-gather
  // by recursive doubling talks to ranks 1 and 2, where the ring talks to 1 and 3 only.
  const CommLayout t = CommLayout::blocks({4, 4});
  FakeChooser f;
  f.picks = {{{CollType::kAllGather, Level::kIntra}, "recursive_doubling"}};
  CollDesc d = descFor(CollType::kAllReduce, &t, 0, 8);
  d.elemSize = 4;
  Schedule picked, byDefault;
  picked.elemSize = byDefault.elemSize = 4;
  ASSERT_TRUE(algo::allReduceHier(d, &byDefault).ok());
  d.chooser = &f;
  ASSERT_TRUE(algo::allReduceHier(d, &picked).ok());
  auto peersOfPhase = [](const Schedule& s, uint16_t phase) {
    std::vector<int> p;
    for (const Step& st : s.steps)
      if (st.phase == phase && st.sendPeer >= 0) p.push_back(st.sendPeer);
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
    return p;
  };
  EXPECT_EQ(peersOfPhase(byDefault, 4), std::vector<int>{1});
  EXPECT_EQ(peersOfPhase(picked, 4), (std::vector<int>{1, 2}));
}

TEST(HierChooser, NoAlgorithmForALevelIsAClearError) {
  const CommLayout t = CommLayout::blocks({4, 4});
  for (CollType c : hierColls()) {
    FakeChooser f;
    f.refuse = true;
    CollDesc d = descFor(c, &t);
    d.chooser = &f;
    Schedule s;
    s.elemSize = 4;
    const Status st = findAlgorithm(c, "hier")->build(d, &s);
    ASSERT_FALSE(st.ok()) << collName(c);
    EXPECT_NE(st.message().find("hier"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("-node algorithm can run"), std::string::npos) << st.message();
  }
  // Hierarchical picks for a level are refused as well.
  class Recursive : public LevelChooser {
   public:
    const AlgorithmInfo* choose(const CollDesc& sub, Level) const override {
      return findAlgorithm(sub.type, "hier");
    }
  } recursive;
  CollDesc d = descFor(CollType::kBroadcast, &t);
  d.chooser = &recursive;
  Schedule s;
  const Status st = algo::broadcastHier(d, &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot run"), std::string::npos) << st.message();
}

// ---- In the runner ----

struct LayoutCase {
  std::string name;
  CommLayout layout;
};

std::vector<LayoutCase> layoutCases() {
  return {
      {"2x4", CommLayout::blocks({4, 4})},
      {"3x3", CommLayout::blocks({3, 3, 3})},
      {"4x2", CommLayout::blocks({2, 2, 2, 2})},
      {"uneven_3_2_4", CommLayout::blocks({3, 2, 4})},
      // Nodes of non-consecutive ranks, NUMA groups out of local-rank order.
      {"interleaved_2x3_numa", CommLayout({"a", "b", "a", "b", "a", "b"}, {1, 0, 0, 0, 1, 1})},
      {"interleaved_uneven_3_2_1", CommLayout({"a", "a", "b", "a", "c", "b"}, {0, 1, 0, 0, 0, 0})},
      {"uneven_1_3", CommLayout::blocks({1, 3})},
  };
}

std::string layoutName(const testing::TestParamInfo<LayoutCase>& info) {
  return info.param.name;
}

struct Variant {
  weftDataType_t dtype;
  weftRedOp_t op;
};

// Element i of rank r's input for the non-reducing collectives: distinct per rank and position,
// exact in every type tested (bfloat16 holds integers to 256).
double blockValue(int r, uint64_t i) {
  return static_cast<double>((static_cast<uint64_t>(r) * 13 + i * 7) % 200);
}

std::vector<char> filled(weftDataType_t t, uint64_t count, int r, uint64_t base = 0) {
  const size_t es = dtypeSize(t);
  std::vector<char> v(count * es + 1, 0);
  for (uint64_t i = 0; i < count; ++i)
    storeValue(t, blockValue(r, base + i), v.data() + i * es);
  return v;
}

// One collective call on this rank, checked against the host reference: "" or what went wrong.
// A call that canRun refuses on this layout is skipped ("" as well).
std::string runAndCheck(CollType coll, Variant v, uint64_t count, bool inPlace, int root, int r,
                        int n, weftComm_t comm) {
  const size_t es = dtypeSize(v.dtype);
  const auto un = static_cast<uint64_t>(n);
  uint64_t inCount = count, outCount = count;
  if (coll == CollType::kAllGather) outCount = count * un;
  if (coll == CollType::kReduceScatter) inCount = count * un;
  if (coll == CollType::kAllToAll) inCount = outCount = count * un;
  std::vector<char> in, want(outCount * es + 1, 0), out(outCount * es + 1, 0x5a);
  const bool reduces =
      coll == CollType::kAllReduce || coll == CollType::kReduceScatter || coll == CollType::kReduce;
  in = reduces ? fillInput(v.op, v.dtype, n, r, inCount) : filled(v.dtype, inCount, r);
  if (coll == CollType::kAllToAll)  // block for rank q: values that name sender and receiver
    for (int q = 0; q < n; ++q)
      for (uint64_t i = 0; i < count; ++i)
        storeValue(v.dtype, blockValue(r * n + q, i), in.data() + (q * count + i) * es);
  for (uint64_t i = 0; i < outCount; ++i) {
    double x = 0;
    switch (coll) {
      case CollType::kAllGather:
        x = blockValue(static_cast<int>(i / count), i % count);
        break;
      case CollType::kBroadcast:
        x = blockValue(root, i);
        break;
      case CollType::kReduceScatter:
        x = reduceRef(v.op, v.dtype, n, static_cast<uint64_t>(r) * count + i);
        break;
      case CollType::kAllToAll:
        x = blockValue(static_cast<int>(i / count) * n + r, i % count);
        break;
      default:
        x = reduceRef(v.op, v.dtype, n, i);
        break;
    }
    storeValue(v.dtype, x, want.data() + i * es);
  }
  const void* send = in.data();
  void* recv = out.data();
  if (inPlace) {
    switch (coll) {
      case CollType::kAllGather:
        std::memcpy(out.data() + static_cast<size_t>(r) * count * es, in.data(), count * es);
        send = out.data() + static_cast<size_t>(r) * count * es;
        break;
      case CollType::kReduceScatter:
        recv = in.data() + static_cast<size_t>(r) * count * es;
        break;
      default:
        std::memcpy(out.data(), in.data(), inCount * es);
        send = out.data();
        break;
    }
  }
  weftResult_t res = weftSuccess;
  switch (coll) {
    case CollType::kAllReduce:
      res = weftAllReduce(send, recv, count, v.dtype, v.op, comm, nullptr);
      break;
    case CollType::kAllGather:
      res = weftAllGather(send, recv, count, v.dtype, comm, nullptr);
      break;
    case CollType::kReduceScatter:
      res = weftReduceScatter(send, recv, count, v.dtype, v.op, comm, nullptr);
      break;
    case CollType::kBroadcast:
      res = weftBroadcast(send, recv, count, v.dtype, root, comm, nullptr);
      break;
    case CollType::kReduce:
      res = weftReduce(send, recv, count, v.dtype, v.op, root, comm, nullptr);
      break;
    case CollType::kAllToAll:
      res = weftAllToAll(send, recv, count, v.dtype, comm, nullptr);
      break;
    default:
      break;
  }
  const std::string what = std::string(collName(coll)) + " count=" + std::to_string(count) + " " +
                           dtypeName(v.dtype) + " " + opName(v.op) +
                           (root >= 0 ? " root=" + std::to_string(root) : "") +
                           (inPlace ? " in place" : "");
  if (res != weftSuccess)
    return what + ": " + weftGetErrorString(res) + ": " + weftGetLastError(comm);
  if (coll == CollType::kReduce && r != root) return "";
  const std::string diff = compareElems(v.dtype, recv, want.data(), outCount);
  return diff.empty() ? "" : what + ": " + diff;
}

// Failures from every rank's thread, reported once all have joined.
struct Failures {
  std::mutex mu;
  std::vector<std::string> list;
  void add(int r, const std::string& what) {
    if (what.empty()) return;
    std::lock_guard<std::mutex> lock(mu);
    if (list.size() < 40) list.push_back("rank " + std::to_string(r) + ": " + what);
  }
  ~Failures() {
    for (const std::string& f : list)
      ADD_FAILURE() << f;
  }
};

// Whether hier can run `coll` on this layout (canRun of any rank: they agree).
bool hierRuns(CollType coll, const CommLayout& t) {
  CollDesc d = descFor(coll, &t);
  return findAlgorithm(coll, "hier")->canRun(d);
}

// Roots at node boundaries and inside nodes: the first rank of every node, the last rank, and one
// in the middle of the largest node.
std::vector<int> rootsFor(const CommLayout& t) {
  std::vector<int> roots;
  for (int m = 0; m < t.nnodes(); ++m)
    roots.push_back(t.nodeRanks(m).front());
  roots.push_back(t.nranks() - 1);
  for (int m = 0; m < t.nnodes(); ++m)
    if (t.nodeRanks(m).size() >= 3) roots.push_back(t.nodeRanks(m)[1]);
  std::sort(roots.begin(), roots.end());
  roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
  return roots;
}

class HierRunner : public testing::TestWithParam<LayoutCase> {};

TEST_P(HierRunner, EveryCollectiveMatchesTheReference) {
  const CommLayout& t = GetParam().layout;
  const int n = t.nranks();
  RunnerOptions opt;
  opt.algo = "hier";
  opt.layout = t;
  Failures failures;
  const std::vector<Variant> reducing = {{weftFloat32, weftSum},
                                         {weftInt32, weftMax},
                                         {weftFloat64, weftAvg},
                                         {weftBfloat16, weftSum}};
  const std::vector<Variant> moving = {{weftFloat32, weftSum},
                                       {weftBfloat16, weftSum},
                                       {weftFloat64, weftSum},
                                       {weftInt32, weftSum}};
  // Counts: 1, fewer than the ranks, not divisible by the node sizes, and one whose steps span
  // several 4 KiB chunks.
  const std::vector<uint64_t> counts = {1, 5, 13, 1021, 8195};
  const std::vector<int> roots = rootsFor(t);
  runRanks(
      n,
      [&](int r, weftComm_t comm) {
        for (CollType coll : hierColls()) {
          if (!hierRuns(coll, t)) continue;  // HierCanRun says where and why
          const bool reduces = coll == CollType::kAllReduce || coll == CollType::kReduceScatter ||
                               coll == CollType::kReduce;
          const bool rooted = coll == CollType::kBroadcast || coll == CollType::kReduce;
          for (const Variant& v : reduces ? reducing : moving) {
            for (uint64_t count : counts) {
              if (count > 1100 && v.dtype != weftFloat32) continue;
              for (int inPlace = 0; inPlace < 2; ++inPlace) {
                if (!rooted) {
                  failures.add(r, runAndCheck(coll, v, count, inPlace, -1, r, n, comm));
                  continue;
                }
                for (int root : roots)
                  failures.add(r, runAndCheck(coll, v, count, inPlace, root, r, n, comm));
              }
            }
          }
        }
      },
      opt);
}

INSTANTIATE_TEST_SUITE_P(Layouts, HierRunner, testing::ValuesIn(layoutCases()), layoutName);

TEST(HierRunnerLimits, ForcingHierWhereFlatIsTheSameIsAClearError) {
  for (const CommLayout& t : {CommLayout::flat(8), CommLayout::blocks({1, 1, 1, 1, 1, 1, 1, 1})}) {
    RunnerOptions opt;
    opt.algo = "hier";
    opt.layout = t;
    runRanks(
        8,
        [&](int, weftComm_t comm) {
          std::vector<float> in(16, 1.0f), out(16);
          expectError(weftAllReduce(in.data(), out.data(), 16, weftFloat32, weftSum, comm, nullptr),
                      weftInvalidArgument, comm, "hier cannot run");
          expectError(weftBroadcast(in.data(), out.data(), 16, weftFloat32, 0, comm, nullptr),
                      weftInvalidArgument, comm, "hier cannot run");
        },
        opt);
  }
}

TEST(HierRunnerLimits, AllToAllNeedsNodesOfEqualSize) {
  const CommLayout t = CommLayout::blocks({3, 2, 4});
  RunnerOptions opt;
  opt.algo = "alltoall:hier";
  opt.layout = t;
  runRanks(
      9,
      [&](int, weftComm_t comm) {
        std::vector<float> in(18, 1.0f), out(18);
        expectError(weftAllToAll(in.data(), out.data(), 2, weftFloat32, comm, nullptr),
                    weftInvalidArgument, comm, "hier cannot run");
      },
      opt);
}

// Large buffers through small slots: every step spans many chunks, and the phases that reuse a
// node's links wait for earlier ones as a whole (the engine's phase ordering keeps them apart).
TEST(HierRunnerLarge, ManyChunksPerStep) {
  for (const CommLayout& t : {CommLayout::blocks({2, 2, 2}), CommLayout::blocks({3, 1, 2})}) {
    RunnerOptions opt;
    opt.algo = "hier";
    opt.layout = t;
    opt.slotBytes = 4096;
    opt.nslots = 2;
    const int n = t.nranks();
    Failures failures;
    runRanks(
        n,
        [&](int r, weftComm_t comm) {
          for (CollType coll : hierColls()) {
            if (!hierRuns(coll, t)) continue;
            const uint64_t count = coll == CollType::kAllGather ||
                                           coll == CollType::kReduceScatter ||
                                           coll == CollType::kAllToAll
                                       ? 40000
                                       : 200003;
            failures.add(
                r, runAndCheck(coll, {weftFloat32, weftSum}, count, false, n - 1, r, n, comm));
          }
        },
        opt);
  }
}

// Several hierarchical calls in one group: the engine appends their schedules as parts of one.
TEST(HierRunnerGroups, HierarchicalCallsInOneGroup) {
  for (const CommLayout& t : {CommLayout::blocks({3, 3}), CommLayout::blocks({2, 3})}) {
    RunnerOptions opt;
    opt.algo = "hier";
    opt.layout = t;
    const int n = t.nranks();
    Failures failures;
    runRanks(
        n,
        [&](int r, weftComm_t comm) {
          const uint64_t count = 5003;
          std::vector<char> a = fillInput(weftSum, weftFloat32, n, r, count), aOut(count * 4);
          std::vector<char> b = filled(weftInt32, count, r), bOut(count * 4 * n);
          std::vector<char> c = filled(weftFloat32, count, 2), cOut(count * 4);
          ASSERT_EQ(weftGroupStart(), weftSuccess);
          ASSERT_EQ(
              weftAllReduce(a.data(), aOut.data(), count, weftFloat32, weftSum, comm, nullptr),
              weftSuccess);
          ASSERT_EQ(weftAllGather(b.data(), bOut.data(), count, weftInt32, comm, nullptr),
                    weftSuccess);
          ASSERT_EQ(weftBroadcast(c.data(), cOut.data(), count, weftFloat32, 2, comm, nullptr),
                    weftSuccess);
          ASSERT_EQ(weftGroupEnd(), weftSuccess) << weftGetLastError(comm);
          std::vector<char> want(count * 4 * n);
          for (uint64_t i = 0; i < count; ++i)
            storeValue(weftFloat32, reduceRef(weftSum, weftFloat32, n, i), want.data() + i * 4);
          failures.add(r, compareElems(weftFloat32, aOut.data(), want.data(), count));
          for (uint64_t i = 0; i < count * n; ++i)
            storeValue(weftInt32, blockValue(static_cast<int>(i / count), i % count),
                       want.data() + i * 4);
          failures.add(r, compareElems(weftInt32, bOut.data(), want.data(), count * n));
          for (uint64_t i = 0; i < count; ++i)
            storeValue(weftFloat32, blockValue(2, i), want.data() + i * 4);
          failures.add(r, compareElems(weftFloat32, cOut.data(), want.data(), count));
        },
        opt);
  }
}

// ---- The levels' picks, run ----

// One hierarchical call through the engine with a chooser of the test's own (the tuner supplies
// the communicator's in a real call): "" or what went wrong.
std::string runWithChooser(CollType coll, const LevelChooser* chooser, uint64_t count, bool inPlace,
                           int r, weftComm_t comm) {
  const int n = comm->nranks;
  const auto un = static_cast<uint64_t>(n);
  CollDesc d;
  d.type = coll;
  d.count = count;
  d.dtype = weftFloat32;
  d.op = weftSum;
  d.root = coll == CollType::kBroadcast || coll == CollType::kReduce ? n / 2 : -1;
  d.rank = r;
  d.nranks = n;
  d.elemSize = 4;
  d.topo = &comm->layout;
  d.chooser = chooser;
  uint64_t inCount = count, outCount = count;
  if (coll == CollType::kAllGather) outCount = count * un;
  if (coll == CollType::kReduceScatter) inCount = count * un;
  if (coll == CollType::kAllToAll) inCount = outCount = count * un;
  std::vector<char> in = fillInput(weftSum, weftFloat32, n, r, inCount), out(outCount * 4),
                    want(outCount * 4);
  for (uint64_t i = 0; i < outCount; ++i) {
    double x = 0;
    switch (coll) {
      case CollType::kAllGather:
        x = inputValue(weftSum, weftFloat32, n, static_cast<int>(i / count), i % count);
        break;
      case CollType::kBroadcast:
        x = inputValue(weftSum, weftFloat32, n, d.root, i);
        break;
      case CollType::kReduceScatter:
        x = reduceRef(weftSum, weftFloat32, n, static_cast<uint64_t>(r) * count + i);
        break;
      case CollType::kAllToAll:  // rank q's block for r: its elements r*count..
        x = inputValue(weftSum, weftFloat32, n, static_cast<int>(i / count),
                       static_cast<uint64_t>(r) * count + i % count);
        break;
      default:
        x = reduceRef(weftSum, weftFloat32, n, i);
        break;
    }
    storeValue(weftFloat32, x, want.data() + i * 4);
  }
  // Buffers per the in-place conventions of weft.h.
  const void* send = in.data();
  void* recv = out.data();
  if (inPlace) {
    switch (coll) {
      case CollType::kAllGather:
        std::memcpy(out.data() + static_cast<size_t>(r) * count * 4, in.data(), count * 4);
        send = out.data() + static_cast<size_t>(r) * count * 4;
        break;
      case CollType::kReduceScatter:
        recv = in.data() + static_cast<size_t>(r) * count * 4;
        break;
      default:
        std::memcpy(out.data(), in.data(), inCount * 4);
        send = out.data();
        break;
    }
  }
  d.inPlace = inPlace && (coll != CollType::kReduce || r == d.root);
  OpCall call;
  call.desc = d;
  call.algo = findAlgorithm(coll, "hier");
  call.send = send;
  call.recv = recv;
  const Status st = commExecute(comm, std::span<const OpCall>(&call, 1));
  const std::string what = std::string(collName(coll)) + " count=" + std::to_string(count) +
                           (inPlace ? " in place" : "");
  if (!st.ok()) return what + ": " + st.message();
  if (coll == CollType::kReduce && r != d.root) return "";
  const std::string diff = compareElems(weftFloat32, recv, want.data(), outCount);
  return diff.empty() ? "" : what + ": " + diff;
}

class HierPicks : public testing::TestWithParam<std::tuple<LayoutCase, int>> {};

TEST_P(HierPicks, EveryLevelAlgorithmComposes) {
  const CommLayout& t = std::get<0>(GetParam()).layout;
  FakeChooser chooser;
  pickAlternatives(std::get<1>(GetParam()), &chooser);
  RunnerOptions opt;
  opt.layout = t;
  const int n = t.nranks();
  Failures failures;
  runRanks(
      n,
      [&](int r, weftComm_t comm) {
        for (CollType coll : hierColls()) {
          if (!hierRuns(coll, t)) continue;
          for (uint64_t count : {3u, 37u, 3001u})
            for (bool inPlace : {false, true})
              failures.add(r, runWithChooser(coll, &chooser, count, inPlace, r, comm));
        }
      },
      opt);
}

INSTANTIATE_TEST_SUITE_P(Layouts, HierPicks,
                         testing::Combine(testing::Values(layoutCases()[0], layoutCases()[3],
                                                          layoutCases()[4], layoutCases()[5]),
                                          testing::Values(0, 1)),
                         [](const testing::TestParamInfo<std::tuple<LayoutCase, int>>& info) {
                           return std::get<0>(info.param).name + "_picks" +
                                  std::to_string(std::get<1>(info.param));
                         });

// More shapes, small counts, every root: nodes of one rank beside larger ones, many small nodes,
// ranks of three nodes interleaved with NUMA groups split across them.
TEST(HierRunnerShapes, SmallCountsEveryRoot) {
  const std::vector<CommLayout> layouts = {
      CommLayout::blocks({2, 3}),
      CommLayout::blocks({4, 1, 1}),
      CommLayout::blocks({5, 5}),
      CommLayout::blocks({2, 2, 2, 2, 2}),
      CommLayout::blocks({3, 3, 1, 2}),
      CommLayout({"x", "y", "y", "x", "z", "x", "z", "y", "z"}, {0, 1, 0, 1, 0, 0, 1, 1, 1}),
      CommLayout({"x", "y", "x", "y", "x", "x", "y"}, {3, 3, 2, 2, 3, 2, 3})};
  for (const CommLayout& t : layouts) {
    RunnerOptions opt;
    opt.algo = "hier";
    opt.layout = t;
    const int n = t.nranks();
    Failures failures;
    runRanks(
        n,
        [&](int r, weftComm_t comm) {
          for (CollType coll : hierColls()) {
            if (!hierRuns(coll, t)) continue;
            const bool rooted = coll == CollType::kBroadcast || coll == CollType::kReduce;
            for (uint64_t count = 1; count <= 23; count += 2) {
              for (int inPlace = 0; inPlace < 2; ++inPlace) {
                for (int root = rooted ? 0 : -1; root < (rooted ? n : 0); ++root) {
                  const std::string err =
                      runAndCheck(coll, {weftFloat32, weftAvg}, count, inPlace, root, r, n, comm);
                  failures.add(r, err.empty() ? err : t.describe() + ": " + err);
                }
              }
            }
          }
        },
        opt);
  }
}

}  // namespace
}  // namespace weft::test
