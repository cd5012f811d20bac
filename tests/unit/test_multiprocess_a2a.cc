// All-to-all, all-to-all-v, gather and scatter as processes over the shared-memory transport,
// launched with weftrun running the worker in tests/integration ("a2a" and "a2av-mismatch" modes),
// for 2, 3, 4, 5 and 8 ranks: every algorithm forced in turn with WEFT_ALGO, and a mismatched
// all-to-all-v that must fail clearly on the receiving rank, then on every rank, without hanging.
//
// Each test puts its segments in a directory of its own (WEFT_SHM_DIR), so that the check that
// nothing is left behind neither sees nor disturbs the other multi-process tests ctest -j runs
// beside it (they look at /dev/shm itself).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "multiprocess.h"

namespace weft::test {
namespace {

class MultiProcessA2a : public testing::TestWithParam<int> {};

// The tuner's choice, then each algorithm forced (WEFT_ALGO names them; a small chunk size makes
// every large block many chunks); staged through scratch the peers map.
TEST_P(MultiProcessA2a, EveryAlgorithm) {
  const int n = GetParam();
  ShmDir dir;
  ASSERT_FALSE(dir.path().empty()) << "cannot create a directory in /dev/shm";
  for (const char* algo : {"", "alltoall:pairwise;gather:linear;scatter:linear",
                           "alltoall:bruck;gather:tree;scatter:tree", "alltoall:staged"}) {
    std::string extra =
        "--timeout 300 -x WEFT_TIMEOUT=60 -x WEFT_CHUNK_SIZE=16K -x WEFT_SHM_DIR=" + dir.path();
    if (*algo != '\0') extra += std::string(" -x WEFT_ALGO=\"") + algo + "\"";
    const RunResult r = run(launcher(n, extra) + " a2a");
    EXPECT_EQ(r.status, 0) << "WEFT_ALGO=" << algo << "\n" << r.output;
    EXPECT_NE(r.output.find("WORKER OK"), std::string::npos) << "WEFT_ALGO=" << algo << "\n"
                                                             << r.output;
  }
  EXPECT_TRUE(dir.leftovers().empty()) << "shared-memory segments were left behind";
}

// Rank 1 sends rank 0 more (in more chunks) than rank 0 expects: rank 0 fails with an error that
// names both counts; the next call fails everywhere; long before WEFT_TIMEOUT.
TEST_P(MultiProcessA2a, MismatchedAllToAllvFailsWithoutHanging) {
  const int n = GetParam();
  ShmDir dir;
  ASSERT_FALSE(dir.path().empty()) << "cannot create a directory in /dev/shm";
  const RunResult r = run(launcher(n,
                                   "--grace 30 --timeout 60 -x WEFT_TIMEOUT=30 "
                                   "-x WEFT_CHUNK_SIZE=4K -x WEFT_SHM_DIR=" +
                                       dir.path()) +
                          " a2av-mismatch");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("A2AV MISMATCH DETECTED rank 0"), std::string::npos) << r.output;
  for (int rank = 0; rank < n; ++rank)
    EXPECT_NE(r.output.find("A2AV FOLLOWUP FAILED rank " + std::to_string(rank)), std::string::npos)
        << r.output;
  EXPECT_LT(r.seconds, 20.0) << r.output;
  EXPECT_TRUE(dir.leftovers().empty()) << "shared-memory segments were left behind";
}

INSTANTIATE_TEST_SUITE_P(Shm, MultiProcessA2a, testing::Values(2, 3, 4, 5, 8),
                         [](const testing::TestParamInfo<int>& i) {
                           return std::to_string(i.param) + "ranks";
                         });

}  // namespace
}  // namespace weft::test
