// All-to-all, all-to-all-v, gather and scatter: the peer arithmetic of their patterns, every
// algorithm's schedule checked for matching messages and in-bounds regions for 1..64 ranks, every
// algorithm run in the in-memory runner for 1..33 and 64 ranks (several data types, counts 0, 1, 7,
// 1021 and a larger one, in place where the API allows it, every root), all-to-all-v with
// deterministic random counts including zeros and gaps (gap bytes must stay untouched), the plan
// cache, non-blocking and group calls, every bad argument, and mismatched all-to-all-v counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "algorithms/patterns/bruck.h"
#include "algorithms/patterns/subtree.h"
#include "algorithms/patterns/tree.h"
#include "algorithms/registry.h"
#include "coll_check.h"
#include "engine/plan.h"
#include "runner.h"

namespace weft::test {
namespace {

constexpr unsigned char kSentinel = 0x5a;

bool isNewColl(CollType c) {
  return c == CollType::kAllToAll || c == CollType::kAllToAllv || c == CollType::kGather ||
         c == CollType::kScatter;
}

// Element i of the block that rank `src` sends to rank `dst`: a small integer, exact in every data
// type tested (bfloat16 holds integers up to 256), different for neighbouring blocks.
double blockValue(int src, int dst, uint64_t i) {
  return static_cast<double>(
      (static_cast<uint64_t>(src) * 37 + static_cast<uint64_t>(dst) * 11 + i * 3) % 251);
}

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
uint64_t mix3(uint64_t a, uint64_t b, uint64_t c) {
  return mix(a * 0x100000001b3ULL ^ mix(b * 0x9e3779b1ULL ^ mix(c)));
}

// One rank's all-to-all-v arrays, from counts that every rank derives alike: count(from, to) is
// zero one time in four, else up to maxCount. Send ranges ascend with gaps; receive ranges ascend
// with gaps for even seeds and descend (the API sorts them to check overlaps) for odd ones.
struct VLayout {
  std::vector<size_t> sc, sd, rc, rd;
  size_t sendElems = 0, recvElems = 0;  // buffer sizes, trailing gap included
};

size_t vcount(int from, int to, int seed, size_t maxCount) {
  const uint64_t h =
      mix3(static_cast<uint64_t>(from), static_cast<uint64_t>(to), static_cast<uint64_t>(seed));
  if (maxCount == 0 || h % 4 == 0) return 0;
  return static_cast<size_t>((h >> 8) % maxCount) + 1;
}

VLayout makeLayout(int r, int n, int seed, size_t maxCount) {
  VLayout v;
  const auto un = static_cast<size_t>(n);
  v.sc.resize(un);
  v.sd.resize(un);
  v.rc.resize(un);
  v.rd.resize(un);
  size_t off = 0;
  for (int j = 0; j < n; ++j) {
    off += mix3(7, static_cast<uint64_t>(r), static_cast<uint64_t>(j)) % 3;  // a gap
    v.sc[j] = vcount(r, j, seed, maxCount);
    v.sd[j] = off;
    off += v.sc[j];
  }
  v.sendElems = off + 2;
  off = 0;
  for (int k = 0; k < n; ++k) {
    const int j = seed % 2 == 0 ? k : n - 1 - k;
    off += 1 + mix3(9, static_cast<uint64_t>(r), static_cast<uint64_t>(j)) % 3;  // a gap
    v.rc[j] = vcount(j, r, seed, maxCount);
    v.rd[j] = off;
    off += v.rc[j];
  }
  v.recvElems = off + 3;
  return v;
}

// ---- Patterns ----

TEST(AllToAllPatterns, BruckMovesEveryBlockExactlyItsDistance) {
  for (int p = 1; p <= 70; ++p) {
    const int phases = patterns::bruckPhases(p);
    EXPECT_EQ(phases, p == 1 ? 0 : static_cast<int>(log2Ceil(p))) << p;
    std::vector<int> travelled(static_cast<size_t>(p), 0), lastPhase(static_cast<size_t>(p), -1);
    for (int k = 0; k < phases; ++k) {
      const std::vector<int> blocks = patterns::bruckBlocks(p, k);
      EXPECT_FALSE(blocks.empty()) << "p=" << p << " phase " << k;
      EXPECT_TRUE(std::is_sorted(blocks.begin(), blocks.end()));
      for (int i : blocks) {
        travelled[static_cast<size_t>(i)] += 1 << k;
        lastPhase[static_cast<size_t>(i)] = k;
      }
    }
    for (int i = 1; i < p; ++i) {
      EXPECT_EQ(travelled[static_cast<size_t>(i)], i) << "p=" << p << " block " << i;
      EXPECT_EQ(lastPhase[static_cast<size_t>(i)], patterns::bruckLastPhase(i));
    }
  }
}

TEST(AllToAllPatterns, SubtreesPartitionTheRanks) {
  for (int p = 1; p <= 70; ++p) {
    EXPECT_EQ(patterns::binomialSubtreeSize(0, p), p);
    for (int v = 0; v < p; ++v) {
      // A subtree is the rank itself followed by its children's subtrees, back to back.
      int next = v + 1;
      const std::vector<int> children = patterns::binomialChildren(v, p);
      for (auto it = children.rbegin(); it != children.rend(); ++it) {
        EXPECT_EQ(*it, next) << "p=" << p << " v=" << v;
        next += patterns::binomialSubtreeSize(*it, p);
      }
      EXPECT_EQ(next, v + patterns::binomialSubtreeSize(v, p)) << "p=" << p << " v=" << v;
    }
    for (int root = 0; root < p; ++root) {
      for (int a = 0; a < p; ++a) {
        for (int b = a + 1; b <= p; ++b) {
          const auto pieces = patterns::wrapPieces(a, b, root, p);
          int at = a;
          for (auto [x, y] : pieces) {
            EXPECT_EQ(x, at);
            EXPECT_LT(x, y);
            // Real ranks of a piece are contiguous: no wrap inside.
            EXPECT_EQ(patterns::fromVirtual(y - 1, root, p) - patterns::fromVirtual(x, root, p),
                      y - 1 - x);
            at = y;
          }
          EXPECT_EQ(at, b);
        }
      }
    }
  }
}

// ---- Schedules: every message meets a receive of the same size; every region is in bounds ----

struct Built {
  Schedule s;
  CollDesc d;
  VLayout v;  // all-to-all-v: the arrays d.layout points at
};

CollDesc baseDesc(CollType coll, int r, int n, uint64_t count, weftDataType_t dt, int root,
                  bool inPlace) {
  CollDesc d;
  d.type = coll;
  d.count = count;
  d.dtype = dt;
  d.rank = r;
  d.nranks = n;
  d.root = (coll == CollType::kGather || coll == CollType::kScatter) ? root : -1;
  d.elemSize = dtypeSize(dt);
  d.inPlace = inPlace && (coll == CollType::kAllToAll || r == root);
  return d;
}

std::string checkSchedules(const AlgorithmInfo& a, int n, uint64_t count, int root, bool inPlace,
                           int seed) {
  std::vector<Built> b(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    Built& x = b[static_cast<size_t>(r)];
    x.d = baseDesc(a.coll, r, n, count, weftFloat32, root, inPlace);
    if (a.coll == CollType::kAllToAllv) {
      x.v = makeLayout(r, n, seed, count);
      x.d.inPlace = false;
      x.d.layout = PeerLayout{x.v.sc.data(), x.v.sd.data(), x.v.rc.data(), x.v.rd.data()};
      x.d.sendSpan = x.v.sendElems;
      x.d.recvSpan = x.v.recvElems;
    }
    x.s.elemSize = x.d.elemSize;
    Status st = a.build(x.d, &x.s);
    if (!st.ok()) return "rank " + std::to_string(r) + ": " + st.message();
    auto plan = compilePlan(x.s, 4096);
    if (!plan.ok()) return "rank " + std::to_string(r) + ": " + plan.status().message();
  }
  // Message sizes per ordered pair, in step order.
  std::vector<std::vector<std::vector<uint64_t>>> sent(static_cast<size_t>(n)),
      got(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) {
    const Built& x = b[static_cast<size_t>(r)];
    sent[static_cast<size_t>(r)].resize(static_cast<size_t>(n));
    got[static_cast<size_t>(r)].resize(static_cast<size_t>(n));
    const uint64_t limit[3] = {x.d.sendBufBytes(), x.d.recvBufBytes(), x.s.scratchBytes};
    for (size_t i = 0; i < x.s.steps.size(); ++i) {
      const Step& st = x.s.steps[i];
      for (const Region* reg : {&st.src, &st.dst}) {
        if (reg->buf == kNoBuf) continue;
        if (reg->buf >= 3 || reg->offset + reg->bytes > limit[reg->buf])
          return "rank " + std::to_string(r) + " step " + std::to_string(i) +
                 " is out of bounds:\n" + x.s.dump();
      }
      if (stepSends(st.kind))
        sent[static_cast<size_t>(r)][static_cast<size_t>(st.sendPeer)].push_back(st.bytes());
      if (stepReceives(st.kind))
        got[static_cast<size_t>(r)][static_cast<size_t>(st.recvPeer)].push_back(st.bytes());
    }
  }
  for (int r = 0; r < n; ++r)
    for (int q = 0; q < n; ++q)
      if (sent[static_cast<size_t>(r)][static_cast<size_t>(q)] !=
          got[static_cast<size_t>(q)][static_cast<size_t>(r)])
        return "messages from rank " + std::to_string(r) + " to rank " + std::to_string(q) +
               " do not match its receives";
  return "";
}

TEST(AllToAllSchedules, MessagesMatchAndRegionsStayInBounds) {
  for (const AlgorithmInfo& a : algorithmTable()) {
    if (a.hierCost != nullptr) continue;  // test_hier.cc runs them over multi-node layouts
    if (!isNewColl(a.coll)) continue;
    for (int n : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 31, 32, 33, 63, 64}) {
      for (uint64_t count : {0u, 1u, 5u}) {
        for (int inPlace = 0; inPlace < 2; ++inPlace) {
          const int roots = a.coll == CollType::kGather || a.coll == CollType::kScatter ? n : 1;
          for (int root = 0; root < roots; ++root) {
            const std::string err = checkSchedules(a, n, count, root, inPlace, root + inPlace);
            EXPECT_EQ(err, "") << collName(a.coll) << ":" << a.name << " n=" << n
                               << " count=" << count << " root=" << root
                               << (inPlace ? " in place" : "");
          }
        }
      }
    }
  }
}

// ---- Every algorithm in the in-memory runner ----

struct Case {
  CollType coll;
  std::string algo;
  int nranks;
  int channels = 1;  // WEFT_NCHANNELS
};

std::vector<Case> allCases() {
  std::vector<Case> cases;
  const std::vector<int> sizes = testRankCounts();
  for (const AlgorithmInfo& a : algorithmTable()) {
    if (a.hierCost != nullptr) continue;  // test_hier.cc runs them over multi-node layouts
    if (!isNewColl(a.coll)) continue;
    for (int n : sizes)
      cases.push_back({a.coll, a.name, n});
    // Steps split over several channels (slices with their own FIFOs and message order).
    for (int n : {2, 3, 5, 8})
      for (int ch : {2, 3})
        cases.push_back({a.coll, a.name, n, ch});
  }
  return cases;
}

std::string caseName(const testing::TestParamInfo<Case>& info) {
  return std::string(collName(info.param.coll)) + "_" + info.param.algo + "_" +
         std::to_string(info.param.nranks) +
         (info.param.channels > 1 ? "_ch" + std::to_string(info.param.channels) : "");
}

std::vector<uint64_t> countsFor(int n) {
  std::vector<uint64_t> c = {0, 1, 7, 1021};
  if (n <= 8) c.push_back(16411);
  return c;
}

std::vector<weftDataType_t> typesFor(CollType coll, int n) {
  // Rooted collectives run once per root: fewer types where there are many roots.
  if ((coll == CollType::kGather || coll == CollType::kScatter) && n > 16)
    return {weftFloat32, weftBfloat16};
  return {weftFloat32, weftUint8, weftFloat64, weftBfloat16};
}

// Failures from every rank's thread, reported once all have joined.
struct Failures {
  std::mutex mu;
  std::vector<std::string> list;
  void add(int r, const std::string& what) {
    if (what.empty()) return;
    std::lock_guard<std::mutex> lock(mu);
    list.push_back("rank " + std::to_string(r) + ": " + what);
  }
  ~Failures() {
    for (size_t i = 0; i < list.size() && i < 20; ++i)
      ADD_FAILURE() << list[i];
    if (list.size() > 20) ADD_FAILURE() << list.size() - 20 << " more failures";
  }
};

std::string callError(const std::string& what, weftResult_t res, weftComm_t comm) {
  return what + ": " + weftGetErrorString(res) + ": " + weftGetLastError(comm);
}

constexpr int kEach = -1;  // in fillBlocks: the block's index

// Fills blocks 0..nblocks-1 of count elements: block q holds what `src` sends to `dst`, either of
// which may be kEach (q itself).
void fillBlocks(std::vector<char>* buf, weftDataType_t t, uint64_t count, int nblocks, int src,
                int dst) {
  const size_t es = dtypeSize(t);
  for (int q = 0; q < nblocks; ++q)
    for (uint64_t i = 0; i < count; ++i)
      storeValue(t, blockValue(src == kEach ? q : src, dst == kEach ? q : dst, i),
                 buf->data() + (static_cast<uint64_t>(q) * count + i) * es);
}

std::string runAllToAll(int n, int r, weftComm_t comm, uint64_t count, weftDataType_t t,
                        bool inPlace) {
  const size_t es = dtypeSize(t);
  const uint64_t total = count * static_cast<uint64_t>(n);
  std::vector<char> in(total * es), out(total * es + 64, static_cast<char>(kSentinel)),
      want(total * es + 64, static_cast<char>(kSentinel));
  fillBlocks(&in, t, count, n, r, kEach);
  fillBlocks(&want, t, count, n, kEach, r);
  const void* send = in.data();
  if (inPlace) {
    if (total > 0) std::memcpy(out.data(), in.data(), total * es);
    send = out.data();
  }
  const std::string what = std::string("all_to_all count=") + std::to_string(count) + " " +
                           dtypeName(t) + (inPlace ? " in place" : "");
  weftResult_t res = weftAllToAll(send, out.data(), count, t, comm, nullptr);
  if (res != weftSuccess) return callError(what, res, comm);
  std::string diff = compareElems(weftUint8, out.data(), want.data(), out.size());
  return diff.empty() ? "" : what + ": " + diff;
}

// The expected receive buffer of an all-to-all-v: sentinel bytes, with each peer's range filled.
std::vector<char> expectedV(const VLayout& v, int r, weftDataType_t t) {
  const size_t es = dtypeSize(t);
  std::vector<char> want(v.recvElems * es, static_cast<char>(kSentinel));
  for (size_t j = 0; j < v.rc.size(); ++j)
    for (size_t i = 0; i < v.rc[j]; ++i)
      storeValue(t, blockValue(static_cast<int>(j), r, i), want.data() + (v.rd[j] + i) * es);
  return want;
}

std::vector<char> inputV(const VLayout& v, int r, weftDataType_t t) {
  const size_t es = dtypeSize(t);
  std::vector<char> in(v.sendElems * es, 0x11);
  for (size_t j = 0; j < v.sc.size(); ++j)
    for (size_t i = 0; i < v.sc[j]; ++i)
      storeValue(t, blockValue(r, static_cast<int>(j), i), in.data() + (v.sd[j] + i) * es);
  return in;
}

std::string runAllToAllv(int n, int r, weftComm_t comm, int seed, size_t maxCount,
                         weftDataType_t t) {
  const VLayout v = makeLayout(r, n, seed, maxCount);
  const std::vector<char> in = inputV(v, r, t), want = expectedV(v, r, t);
  std::vector<char> out(want.size(), static_cast<char>(kSentinel));
  const std::string what = std::string("all_to_all_v seed=") + std::to_string(seed) +
                           " max=" + std::to_string(maxCount) + " " + dtypeName(t);
  weftResult_t res = weftAllToAllv(in.data(), v.sc.data(), v.sd.data(), out.data(), v.rc.data(),
                                   v.rd.data(), t, comm, nullptr);
  if (res != weftSuccess) return callError(what, res, comm);
  std::string diff = compareElems(weftUint8, out.data(), want.data(), out.size());
  return diff.empty() ? "" : what + ": " + diff;
}

std::string runRooted(CollType coll, int n, int r, weftComm_t comm, uint64_t count,
                      weftDataType_t t, int root, bool inPlace) {
  const size_t es = dtypeSize(t);
  const uint64_t total = count * static_cast<uint64_t>(n);
  const bool isRoot = r == root;
  const std::string what = std::string(collDisplayName(coll)) + " count=" + std::to_string(count) +
                           " " + dtypeName(t) + " root=" + std::to_string(root) +
                           (inPlace ? " in place" : "");
  weftResult_t res;
  if (coll == CollType::kGather) {
    std::vector<char> in(count * es), out(total * es + 64, static_cast<char>(kSentinel)),
        want = out;
    fillBlocks(&in, t, count, 1, r, root);
    if (isRoot) fillBlocks(&want, t, count, n, kEach, root);
    const void* send = in.data();
    if (inPlace && isRoot) {
      char* mine = out.data() + static_cast<uint64_t>(root) * count * es;
      if (count > 0) std::memcpy(mine, in.data(), count * es);
      send = mine;
    }
    // Elsewhere than on the root the output is unused: NULL on odd ranks, untouched on even ones.
    void* recv = isRoot || r % 2 == 0 ? out.data() : nullptr;
    res = weftGather(send, recv, count, t, root, comm, nullptr);
    if (res != weftSuccess) return callError(what, res, comm);
    std::string diff = compareElems(weftUint8, out.data(), want.data(), out.size());
    return diff.empty() ? "" : what + ": " + diff;
  }
  std::vector<char> in(total * es + 64), out(count * es + 64, static_cast<char>(kSentinel)),
      want = out;
  fillBlocks(&in, t, count, n, root, kEach);
  for (uint64_t i = 0; i < count; ++i)
    storeValue(t, blockValue(root, r, i), want.data() + i * es);
  void* recv = out.data();
  if (inPlace && isRoot) {
    recv = in.data() + static_cast<uint64_t>(root) * count * es;
    want.assign(in.begin(), in.end());
  }
  const void* send = isRoot || r % 2 == 0 ? in.data() : nullptr;
  res = weftScatter(send, recv, count, t, root, comm, nullptr);
  if (res != weftSuccess) return callError(what, res, comm);
  const char* got = inPlace && isRoot ? in.data() : out.data();
  std::string diff = compareElems(weftUint8, got, want.data(), want.size());
  return diff.empty() ? "" : what + ": " + diff;
}

class NewCollectives : public testing::TestWithParam<Case> {};

TEST_P(NewCollectives, MatchReference) {
  const Case c = GetParam();
  const int n = c.nranks;
  RunnerOptions opt;
  opt.algo = std::string(collName(c.coll)) + ":" + c.algo;
  opt.channels = c.channels;
  Failures failures;
  runRanks(
      n,
      [&](int r, weftComm_t comm) {
        if (c.coll == CollType::kAllToAllv) {
          const size_t maxCounts[] = {0, 1, 7, 300, 1021, 5000};
          for (size_t maxCount : maxCounts) {
            if (maxCount > 1021 && n > 8) continue;
            for (weftDataType_t t : typesFor(c.coll, n)) {
              for (int seed = 0; seed < 2; ++seed) {
                const std::string e = runAllToAllv(n, r, comm, seed, maxCount, t);
                failures.add(r, e);
                if (!e.empty()) return;
              }
            }
          }
          return;
        }
        for (uint64_t count : countsFor(n)) {
          for (weftDataType_t t : typesFor(c.coll, n)) {
            for (int inPlace = 0; inPlace < 2; ++inPlace) {
              if (c.coll == CollType::kAllToAll) {
                const std::string e = runAllToAll(n, r, comm, count, t, inPlace);
                failures.add(r, e);
                if (!e.empty()) return;
                continue;
              }
              // Every root for the small counts, a few for the larger ones.
              for (int root = 0; root < n; ++root) {
                if (count > 7 && root != 0 && root != n - 1 && root != n / 2) continue;
                const std::string e = runRooted(c.coll, n, r, comm, count, t, root, inPlace);
                failures.add(r, e);
                if (!e.empty()) return;
              }
            }
          }
        }
      },
      opt);
}

INSTANTIATE_TEST_SUITE_P(InMemory, NewCollectives, testing::ValuesIn(allCases()), caseName);

// Large blocks through bigger slots: many chunks per message, several in flight.
TEST(NewCollectivesLarge, SeveralMiB) {
  for (int n : {2, 3, 5}) {
    for (const char* algo : {"pairwise", "bruck"}) {
      RunnerOptions opt;
      opt.slotBytes = 64 * 1024;
      opt.algo = std::string("alltoall:") + algo + ";gather:linear;scatter:tree";
      Failures failures;
      runRanks(
          n,
          [&](int r, weftComm_t comm) {
            const uint64_t count = (1u << 20) / 4 + 3;  // just over 1 MiB per block
            failures.add(r, runAllToAll(n, r, comm, count, weftFloat32, false));
            failures.add(r, runAllToAll(n, r, comm, count, weftFloat32, true));
            failures.add(r, runRooted(CollType::kGather, n, r, comm, count, weftFloat32, 1, false));
            failures.add(r, runRooted(CollType::kScatter, n, r, comm, count, weftFloat32, 1, true));
            failures.add(r, runAllToAllv(n, r, comm, 3, 300000, weftFloat32));
          },
          opt);
    }
  }
}

// ---- The tuner ----

// Pairwise's exchanges overlap (one hand-off, then a message's own cost each); Bruck's log2(p)
// hand-offs go in sequence. Small blocks: pairwise up to a few tens of ranks, Bruck beyond.
TEST(NewCollectivesTuner, BruckForSmallBlocksOnManyRanksPairwiseOtherwise) {
  Tuner tuner;
  for (int n : {4, 8, 16, 32, 64}) {
    CollDesc d = baseDesc(CollType::kAllToAll, 0, n, 4, weftFloat32, -1, false);
    auto small = tuner.choose(d);
    ASSERT_TRUE(small.ok());
    EXPECT_STREQ(small.value()->name, n >= 32 ? "bruck" : "pairwise") << n;
    d.count = 1 << 20;
    auto large = tuner.choose(d);
    ASSERT_TRUE(large.ok());
    EXPECT_STREQ(large.value()->name, "pairwise") << n;
    CollDesc g = baseDesc(CollType::kGather, 0, n, 1, weftFloat32, 0, false);
    EXPECT_STREQ(tuner.choose(g).value()->name, "tree") << n;
    g.count = 1 << 20;
    EXPECT_STREQ(tuner.choose(g).value()->name, "linear") << n;
  }
  auto ov = parseAlgoOverride("alltoall:bruck;alltoallv:pairwise;gather:tree;scatter:^tree");
  ASSERT_TRUE(ov.ok()) << ov.status().message();
  CollDesc s = baseDesc(CollType::kScatter, 0, 8, 1, weftFloat32, 0, false);
  EXPECT_STREQ(Tuner(ov.value()).choose(s).value()->name, "linear");
  auto bad = parseAlgoOverride("alltoall:ring");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("pairwise"), std::string::npos) << bad.status().message();
}

// ---- All-to-all-v: the plan cache tells layouts apart ----

TEST(AllToAllv, PlanCacheHitsRepeatedArraysAndTellsChangedOnesApart) {
  const int n = 4;
  Failures failures;
  runRanks(n, [&](int r, weftComm_t comm) {
    const weftDataType_t t = weftInt32;
    failures.add(r, runAllToAllv(n, r, comm, 5, 40, t));
    const size_t plans = comm->engine->cachedPlans();
    // The same layout in other arrays: a cache hit.
    failures.add(r, runAllToAllv(n, r, comm, 5, 40, t));
    if (comm->engine->cachedPlans() != plans) failures.add(r, "same layout, new plan");
    // The same arrays rewritten with another layout: a new plan, and the right data.
    const VLayout v = makeLayout(r, n, 5, 40);
    const VLayout w = makeLayout(r, n, 6, 40);
    std::vector<size_t> sc = v.sc, sd = v.sd, rc = v.rc, rd = v.rd;
    for (const VLayout* l : {&v, &w, &v}) {
      std::copy(l->sc.begin(), l->sc.end(), sc.begin());
      std::copy(l->sd.begin(), l->sd.end(), sd.begin());
      std::copy(l->rc.begin(), l->rc.end(), rc.begin());
      std::copy(l->rd.begin(), l->rd.end(), rd.begin());
      const std::vector<char> in = inputV(*l, r, t), want = expectedV(*l, r, t);
      std::vector<char> out(want.size(), static_cast<char>(kSentinel));
      weftResult_t res = weftAllToAllv(in.data(), sc.data(), sd.data(), out.data(), rc.data(),
                                       rd.data(), t, comm, nullptr);
      if (res != weftSuccess) {
        failures.add(r, callError("rewritten arrays", res, comm));
        return;
      }
      failures.add(r, compareElems(weftUint8, out.data(), want.data(), out.size()));
    }
    if (comm->engine->cachedPlans() != plans + 1)
      failures.add(r, "expected exactly one new plan, have " +
                          std::to_string(comm->engine->cachedPlans() - plans));
  });
}

// Send ranges may overlap: the same data goes to every rank.
TEST(AllToAllv, OverlappingSendRangesAreAllowed) {
  const int n = 5;
  Failures failures;
  runRanks(n, [&](int r, weftComm_t comm) {
    const size_t un = n;
    std::vector<size_t> sc(un, 3), sd(un, 0), rc(un, 3), rd(un);
    for (size_t j = 0; j < un; ++j)
      rd[j] = 4 * j;
    std::vector<float> in = {static_cast<float>(r), 1, 2}, out(4 * un, -1.0f);
    weftResult_t res = weftAllToAllv(in.data(), sc.data(), sd.data(), out.data(), rc.data(),
                                     rd.data(), weftFloat32, comm, nullptr);
    if (res != weftSuccess) return failures.add(r, callError("overlapping sends", res, comm));
    for (size_t j = 0; j < un; ++j) {
      if (out[4 * j] != static_cast<float>(j) || out[4 * j + 1] != 1 || out[4 * j + 2] != 2 ||
          out[4 * j + 3] != -1.0f)
        failures.add(r, "block " + std::to_string(j) + " is wrong");
    }
  });
}

// ---- Non-blocking and group calls: the arrays may be reused at once ----

TEST(AllToAllv, NonBlockingAndGroupCallsCopyTheArrays) {
  for (int n : {1, 3, 6}) {
    Failures failures;
    runRanks(n, [&](int r, weftComm_t comm) {
      const weftDataType_t t = weftFloat32;
      const size_t es = 4;
      VLayout a = makeLayout(r, n, 11, 50), b = makeLayout(r, n, 12, 2000);
      const std::vector<char> inA = inputV(a, r, t), wantA = expectedV(a, r, t);
      const std::vector<char> inB = inputV(b, r, t), wantB = expectedV(b, r, t);
      std::vector<char> outA(wantA.size(), static_cast<char>(kSentinel));
      std::vector<char> outB(wantB.size(), static_cast<char>(kSentinel));
      auto scramble = [](VLayout* v) {
        for (auto* arr : {&v->sc, &v->sd, &v->rc, &v->rd})
          std::fill(arr->begin(), arr->end(), size_t{999999});
      };
      // Non-blocking: post, scramble the arrays, post more, then wait.
      weftRequest_t ra = nullptr, rb = nullptr, rg = nullptr;
      weftResult_t res = weftIAllToAllv(inA.data(), a.sc.data(), a.sd.data(), outA.data(),
                                        a.rc.data(), a.rd.data(), t, comm, nullptr, &ra);
      if (res != weftSuccess) return failures.add(r, callError("weftIAllToAllv", res, comm));
      const VLayout keepA = a;
      scramble(&a);
      std::vector<float> mine(3, static_cast<float>(r)), all(3 * static_cast<size_t>(n), -1);
      res = weftIGather(mine.data(), all.data(), 3, weftFloat32, n - 1, comm, nullptr, &rg);
      if (res != weftSuccess) return failures.add(r, callError("weftIGather", res, comm));
      std::vector<int32_t> blocks(2 * static_cast<size_t>(n)), back(2 * static_cast<size_t>(n));
      for (int j = 0; j < n; ++j)
        blocks[2 * j] = blocks[2 * j + 1] = r * 100 + j;
      res = weftIAllToAll(blocks.data(), back.data(), 2, weftInt32, comm, nullptr, &rb);
      if (res != weftSuccess) return failures.add(r, callError("weftIAllToAll", res, comm));
      for (weftRequest_t q : {ra, rg, rb})
        if ((res = weftWait(q)) != weftSuccess)
          return failures.add(r, callError("weftWait", res, comm));
      failures.add(r, compareElems(weftUint8, outA.data(), wantA.data(), outA.size()));
      if (r == n - 1)
        for (int q = 0; q < n; ++q)
          if (all[3 * q] != static_cast<float>(q)) failures.add(r, "igather block wrong");
      for (int j = 0; j < n; ++j)
        if (back[2 * j] != j * 100 + r || back[2 * j + 1] != j * 100 + r)
          failures.add(r, "ialltoall block wrong");
      // A group of two all-to-all-v with the arrays scrambled in between, and a scatter.
      a = keepA;
      std::fill(outA.begin(), outA.end(), static_cast<char>(kSentinel));
      std::vector<float> part(2, -1), whole(2 * static_cast<size_t>(n));
      for (int q = 0; q < n; ++q)
        whole[2 * q] = whole[2 * q + 1] = static_cast<float>(q + 10);
      if (weftGroupStart() != weftSuccess) return failures.add(r, "group start");
      res = weftAllToAllv(inA.data(), a.sc.data(), a.sd.data(), outA.data(), a.rc.data(),
                          a.rd.data(), t, comm, nullptr);
      scramble(&a);
      weftResult_t res2 = weftAllToAllv(inB.data(), b.sc.data(), b.sd.data(), outB.data(),
                                        b.rc.data(), b.rd.data(), t, comm, nullptr);
      scramble(&b);
      weftResult_t res3 = weftScatter(whole.data(), part.data(), 2, weftFloat32, 0, comm, nullptr);
      weftResult_t end = weftGroupEnd();
      if (res != weftSuccess || res2 != weftSuccess || res3 != weftSuccess || end != weftSuccess)
        return failures.add(r, callError("group", end, comm));
      failures.add(r, compareElems(weftUint8, outA.data(), wantA.data(), outA.size()));
      failures.add(r, compareElems(weftUint8, outB.data(), wantB.data(), outB.size()));
      if (part[0] != static_cast<float>(r + 10) || part[1] != static_cast<float>(r + 10))
        failures.add(r, "group scatter wrong");
      (void)es;
    });
  }
}

// ---- Bad arguments ----

TEST(NewCollectivesApi, BadArguments) {
  runRanks(2, [](int r, weftComm_t comm) {
    std::vector<float> buf(64, 1.0f), other(64, 0.0f);
    float* b = buf.data();
    float* o = other.data();
    const auto bad = static_cast<weftDataType_t>(12);
    int dummy = 0;
    weftRequest_t req = nullptr;
    // all-to-all
    expectError(weftAllToAll(b, o, 4, weftFloat32, nullptr, nullptr), weftInvalidArgument, nullptr,
                "comm is NULL");
    expectError(weftAllToAll(nullptr, o, 4, weftFloat32, comm, nullptr), weftInvalidArgument, comm,
                "sendbuff is NULL");
    expectError(weftAllToAll(b, nullptr, 4, weftFloat32, comm, nullptr), weftInvalidArgument, comm,
                "recvbuff is NULL");
    expectError(weftAllToAll(b, o, 4, bad, comm, nullptr), weftInvalidArgument, comm,
                "datatype 12");
    expectError(weftAllToAll(b, o, SIZE_MAX / 16, weftFloat64, comm, nullptr), weftInvalidArgument,
                comm, "overflows");
    expectError(weftAllToAll(b, o, 4, weftFloat32, comm, &dummy), weftInvalidUsage, comm, "stream");
    expectError(weftIAllToAll(b, o, 4, weftFloat32, comm, nullptr, nullptr), weftInvalidArgument,
                comm, "request is NULL");
    // gather, scatter
    expectError(weftGather(b, o, 4, weftFloat32, 2, comm, nullptr), weftInvalidArgument, comm,
                "root 2");
    expectError(weftScatter(b, o, 4, weftFloat32, -1, comm, nullptr), weftInvalidArgument, comm,
                "root -1");
    expectError(weftGather(nullptr, o, 4, weftFloat32, 0, comm, nullptr), weftInvalidArgument, comm,
                "sendbuff is NULL");
    if (r == 0) {
      expectError(weftGather(b, nullptr, 4, weftFloat32, 0, comm, nullptr), weftInvalidArgument,
                  comm, "recvbuff is NULL");
      expectError(weftScatter(nullptr, o, 4, weftFloat32, 0, comm, nullptr), weftInvalidArgument,
                  comm, "sendbuff is NULL");
    }
    expectError(weftScatter(b, nullptr, 4, weftFloat32, 0, comm, nullptr), weftInvalidArgument,
                comm, "recvbuff is NULL");
    expectError(weftGather(b, o, 4, bad, 0, comm, nullptr), weftInvalidArgument, comm,
                "datatype 12");
    expectError(weftScatter(b, o, SIZE_MAX / 16, weftFloat64, 0, comm, nullptr),
                weftInvalidArgument, comm, "overflows");
    expectError(weftIGather(b, o, 4, weftFloat32, 0, comm, nullptr, nullptr), weftInvalidArgument,
                comm, "request is NULL");
    expectError(weftIScatter(b, o, 4, weftFloat32, 0, comm, nullptr, nullptr), weftInvalidArgument,
                comm, "request is NULL");
    expectError(weftScatter(b, o, 4, weftFloat32, 0, comm, &dummy), weftInvalidUsage, comm,
                "stream");
    // all-to-all-v
    size_t sc[2] = {4, 4}, sd[2] = {0, 4}, rc[2] = {4, 4}, rd[2] = {0, 4};
    auto v = [&](const void* s, const size_t* c1, const size_t* d1, void* rv, const size_t* c2,
                 const size_t* d2, weftDataType_t t = weftFloat32) {
      return weftAllToAllv(s, c1, d1, rv, c2, d2, t, comm, nullptr);
    };
    expectError(weftAllToAllv(b, sc, sd, o, rc, rd, weftFloat32, nullptr, nullptr),
                weftInvalidArgument, nullptr, "comm is NULL");
    expectError(v(b, nullptr, sd, o, rc, rd), weftInvalidArgument, comm, "sendcounts is NULL");
    expectError(v(b, sc, nullptr, o, rc, rd), weftInvalidArgument, comm, "sdispls is NULL");
    expectError(v(b, sc, sd, o, nullptr, rd), weftInvalidArgument, comm, "recvcounts is NULL");
    expectError(v(b, sc, sd, o, rc, nullptr), weftInvalidArgument, comm, "rdispls is NULL");
    expectError(v(nullptr, sc, sd, o, rc, rd), weftInvalidArgument, comm, "sendbuff is NULL");
    expectError(v(b, sc, sd, nullptr, rc, rd), weftInvalidArgument, comm, "recvbuff is NULL");
    expectError(v(b, sc, sd, o, rc, rd, bad), weftInvalidArgument, comm, "datatype 12");
    expectError(v(b, sc, sd, b, rc, rd), weftInvalidArgument, comm,
                "sendbuff and recvbuff overlap");
    expectError(v(b, sc, sd, b + 6, rc, rd), weftInvalidArgument, comm, "overlap");
    {
      size_t rdo[2] = {2, 0};  // [2, 6) and [0, 4)
      expectError(v(b, sc, sd, o, rc, rdo), weftInvalidArgument, comm, "rdispls");
      expectError(v(b, sc, sd, o, rc, rdo), weftInvalidArgument, comm, "overlap");
      size_t rdo2[2] = {0, 3};  // ascending but overlapping
      expectError(v(b, sc, sd, o, rc, rdo2), weftInvalidArgument, comm, "overlap");
      size_t sdx[2] = {0, SIZE_MAX - 2};
      expectError(v(b, sc, sdx, o, rc, rd), weftInvalidArgument, comm, "sdispls[1]");
      expectError(v(b, sc, sdx, o, rc, rd), weftInvalidArgument, comm, "overflows");
      size_t rcx[2] = {SIZE_MAX / 4, 4};
      expectError(v(b, sc, sd, o, rcx, rd), weftInvalidArgument, comm, "recvcounts[0]");
      size_t rcs[2] = {4, 4};
      rcs[r] = 3;  // this rank's block to itself differs on the two sides
      expectError(v(b, sc, sd, o, rcs, rd), weftInvalidArgument, comm,
                  "sendcounts[" + std::to_string(r) + "] = 4 differs from recvcounts[" +
                      std::to_string(r) + "] = 3");
    }
    expectError(weftAllToAllv(b, sc, sd, o, rc, rd, weftFloat32, comm, &dummy), weftInvalidUsage,
                comm, "stream");
    expectError(weftIAllToAllv(b, sc, sd, o, rc, rd, weftFloat32, comm, nullptr, nullptr),
                weftInvalidArgument, comm, "request is NULL");
    // Zero counts with NULL buffers are fine, and none of the bad calls poisoned the communicator.
    size_t zero[2] = {0, 0};
    EXPECT_EQ(v(nullptr, zero, zero, nullptr, zero, zero), weftSuccess) << weftGetLastError(comm);
    EXPECT_EQ(weftAllToAll(nullptr, nullptr, 0, weftFloat32, comm, nullptr), weftSuccess);
    EXPECT_EQ(weftGather(b, r == 0 ? o : nullptr, 4, weftFloat32, 0, comm, nullptr), weftSuccess)
        << weftGetLastError(comm);
    EXPECT_EQ(weftScatter(r == 1 ? b : nullptr, o, 4, weftFloat32, 1, comm, nullptr), weftSuccess)
        << weftGetLastError(comm);
    for (int j = 0; j < 8; ++j)
      buf[j] = static_cast<float>(r * 10 + j / 4);
    ASSERT_EQ(v(b, sc, sd, o, rc, rd), weftSuccess) << weftGetLastError(comm);
    EXPECT_EQ(other[0], static_cast<float>(r));
    EXPECT_EQ(other[4], static_cast<float>(10 + r));
    (void)req;
  });
}

// ---- Mismatched all-to-all-v counts: an error on the receiving rank, never garbage or a hang ----

struct Mismatch {
  const char* name;
  size_t expected;  // recvcounts[1] on rank 0
  size_t sent;      // sendcounts[0] on rank 1
};

TEST(AllToAllv, MismatchedCountsFailClearlyWithoutHanging) {
  // Chunks are 4096 bytes: 3000 floats are 3 chunks where 2048 are 2, which a per-chunk size check
  // alone would take for a shorter message.
  const Mismatch cases[] = {{"more chunks sent", 2048, 3000},
                            {"fewer chunks sent", 3000, 2048},
                            {"zero sent", 5, 0},
                            {"zero expected", 0, 5},
                            {"a little more sent", 100, 101}};
  for (int n : {2, 3, 5}) {
    for (const Mismatch& m : cases) {
      RunnerOptions opt;
      opt.timeoutSec = 20;
      std::vector<weftResult_t> first(static_cast<size_t>(n)), after(static_cast<size_t>(n));
      std::vector<std::string> msg(static_cast<size_t>(n));
      const auto start = std::chrono::steady_clock::now();
      runRanks(
          n,
          [&](int r, weftComm_t comm) {
            const auto un = static_cast<size_t>(n);
            std::vector<size_t> sc(un, 16), sd(un), rc(un, 16), rd(un);
            if (r == 1) sc[0] = m.sent;
            if (r == 0) rc[1] = m.expected;
            size_t so = 0, ro = 0;
            for (size_t j = 0; j < un; ++j) {
              sd[j] = so;
              so += sc[j];
              rd[j] = ro;
              ro += rc[j];
            }
            std::vector<float> in(so + 1, 1.0f), out(ro + 1, 0.0f);
            first[r] = weftAllToAllv(in.data(), sc.data(), sd.data(), out.data(), rc.data(),
                                     rd.data(), weftFloat32, comm, nullptr);
            msg[r] = weftGetLastError(comm);
            // Every rank learns of the failure by the next call at the latest.
            float x = 1, y = 0;
            after[r] = weftAllReduce(&x, &y, 1, weftFloat32, weftSum, comm, nullptr);
          },
          opt);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      SCOPED_TRACE(std::string(m.name) + " n=" + std::to_string(n));
      EXPECT_LT(secs, 10.0) << "took as long as a timeout";
      EXPECT_EQ(first[0], weftInvalidUsage) << msg[0];
      EXPECT_NE(msg[0].find("sendcounts[0] on rank 1 must equal recvcounts[1] on rank 0"),
                std::string::npos)
          << msg[0];
      EXPECT_NE(msg[0].find("expected a message of " + std::to_string(m.expected * 4) +
                            " bytes from rank 1"),
                std::string::npos)
          << msg[0];
      EXPECT_NE(msg[0].find("sent " + std::to_string(m.sent * 4) + " bytes"), std::string::npos)
          << msg[0];
      for (int r = 0; r < n; ++r)
        EXPECT_NE(after[static_cast<size_t>(r)], weftSuccess) << "rank " << r;
    }
  }
}

}  // namespace
}  // namespace weft::test
