// Every algorithm of the reducing and data-moving collectives, forced with WEFT_ALGO, run as
// processes over the shared-memory transport by weftrun and the multi-process worker
// (tests/integration/worker.cc), for 2, 3, 4, 5 and 8 ranks, and for 3 ranks with every step split
// over three channels (WEFT_NCHANNELS=3). The worker checks every result bit for bit and prints
// "WORKER OK" on rank 0.
//
// To keep the suite short on two cores, each case runs the worker's quick modes: "cpp" (every
// collective through the C++ layer, small buffers) and, for all-reduce, "nonblocking" (several
// ~400 KB calls in flight, many chunks each). At 3 and 5 ranks, counts that fold or wrap in most
// algorithms, it also runs "all": every data type and op, in place and out of place, up to ~1 MiB.
//
// Each case keeps its shared-memory segments in a directory of its own (WEFT_SHM_DIR), so that it
// can check that none are left behind, and so that the segment check of Shm/MultiProcess, which
// lists /dev/shm, does not see this test's segments when ctest runs them side by side.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "multiprocess.h"

namespace weft::test {
namespace {

struct AlgoCase {
  CollType coll;
  std::string algo;
  int nranks;
  int channels = 1;  // WEFT_NCHANNELS
};

std::vector<AlgoCase> algoCases() {
  std::vector<AlgoCase> cases;
  for (const AlgorithmInfo& a : algorithmTable()) {
    if (a.hierCost != nullptr) continue;  // test_hier.cc runs them over multi-node layouts
    if (a.coll != CollType::kAllReduce && a.coll != CollType::kAllGather &&
        a.coll != CollType::kReduceScatter && a.coll != CollType::kBroadcast &&
        a.coll != CollType::kReduce)
      continue;
    for (int n : {2, 3, 4, 5, 8})
      cases.push_back({a.coll, a.name, n});
    cases.push_back({a.coll, a.name, 3, 3});  // steps split over three channels' FIFOs
  }
  return cases;
}

std::string algoCaseName(const testing::TestParamInfo<AlgoCase>& info) {
  return std::string(collName(info.param.coll)) + "_" + info.param.algo + "_" +
         std::to_string(info.param.nranks) + "ranks" +
         (info.param.channels > 1 ? "_" + std::to_string(info.param.channels) + "channels" : "");
}

class ForcedAlgo : public testing::TestWithParam<AlgoCase> {};

TEST_P(ForcedAlgo, WorkerSucceeds) {
  const AlgoCase c = GetParam();
  const std::string force = std::string(collName(c.coll)) + ":" + c.algo;
  std::vector<std::string> modes = {"cpp"};
  if (c.coll == CollType::kAllReduce) modes.push_back("nonblocking");
  if (c.nranks == 3 || c.nranks == 5) modes.push_back("all");
  ShmDir dir;
  ASSERT_FALSE(dir.path().empty()) << "cannot create a segment directory in /dev/shm";
  for (const std::string& mode : modes) {
    const RunResult r =
        run(launcher(c.nranks, "--timeout 240 -x WEFT_TIMEOUT=60 -x WEFT_SHM_DIR=" + dir.path() +
                                   " -x WEFT_ALGO=" + force +
                                   " -x WEFT_NCHANNELS=" + std::to_string(c.channels)) +
            " " + mode);
    EXPECT_EQ(r.status, 0) << "WEFT_ALGO=" << force << " worker " << mode << "\n" << r.output;
    EXPECT_NE(r.output.find("WORKER OK"), std::string::npos)
        << "WEFT_ALGO=" << force << " worker " << mode << "\n"
        << r.output;
  }
  EXPECT_TRUE(dir.leftovers().empty()) << "shared-memory segments were left behind";
}

INSTANTIATE_TEST_SUITE_P(Shm, ForcedAlgo, testing::ValuesIn(algoCases()), algoCaseName);

}  // namespace
}  // namespace weft::test
