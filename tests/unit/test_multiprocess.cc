// Multi-process tests: ranks as processes over the shared-memory transport, launched with weftrun,
// running the worker in tests/integration. Also the fault cases: a rank killed mid-collective,
// mismatched calls.
#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "multiprocess.h"

namespace weft::test {
namespace {

// Runs the worker with its segments in a directory of its own, checking that none is left.
RunResult runChecked(int n, const std::string& extra, const std::string& args) {
  ShmDir dir;
  RunResult r = run(launcher(n, extra + " -x WEFT_SHM_DIR=" + dir.path()) + " " + args);
  const std::vector<std::string> left = dir.leftovers();
  EXPECT_TRUE(left.empty()) << "shared-memory segments were left behind: " << left.size() << "\n"
                            << r.output;
  return r;
}

class MultiProcess : public testing::TestWithParam<int> {};

TEST_P(MultiProcess, EveryCollectiveEveryTypeAndOp) {
  RunResult r = runChecked(GetParam(), "--timeout 600 -x WEFT_TIMEOUT=120", "all");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("WORKER OK"), std::string::npos) << r.output;
}

TEST_P(MultiProcess, NonBlockingRequests) {
  RunResult r = run(launcher(GetParam(), "--timeout 120") + " nonblocking");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("WORKER OK"), std::string::npos) << r.output;
}

TEST_P(MultiProcess, CppLayer) {
  RunResult r = run(launcher(GetParam(), "--timeout 120") + " cpp");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("WORKER OK"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Shm, MultiProcess, testing::Values(2, 3, 4, 8),
                         [](const testing::TestParamInfo<int>& i) {
                           return std::to_string(i.param) + "ranks";
                         });

// The CPUs this process may run on (its children inherit them), lowest first.
std::vector<int> allowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Runs the command with this process bound to `cpus` (the launcher and its ranks inherit the
// mask), then restores the mask.
RunResult runOnCpus(const std::vector<int>& cpus, const std::string& cmd) {
  cpu_set_t saved, pinned;
  CPU_ZERO(&saved);
  CPU_ZERO(&pinned);
  for (int c : cpus)
    CPU_SET(c, &pinned);
  EXPECT_EQ(sched_getaffinity(0, sizeof saved, &saved), 0);
  EXPECT_EQ(sched_setaffinity(0, sizeof pinned, &pinned), 0);
  RunResult r = run(cmd);
  EXPECT_EQ(sched_setaffinity(0, sizeof saved, &saved), 0);
  return r;
}

const char* const kInitLog = " -x WEFT_DEBUG=INFO -x WEFT_DEBUG_SUBSYS=INIT,TUNING";

// Where each rank has a CPU of its own, init measures a synchronisation and the tuner prices with
// it (unless the measurement is not below the built-in price: a loaded machine); where they share
// CPUs (here 3 ranks bound to one), nothing is measured and the ranks yield.
TEST(InitCalibration, SyncMeasuredWhereRanksHaveCpusOfTheirOwn) {
  const std::vector<int> cpus = allowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs 2 CPUs, this process may use " << cpus.size();
  RunResult r = runOnCpus({cpus[0], cpus[1]},
                          launcher(2, std::string("--timeout 60") + kInitLog) + " nonblocking");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(contains(r.output, "yielding as soon as nothing moves")) << r.output;
  if (contains(r.output, "not below the price")) {
    EXPECT_TRUE(contains(r.output, "tuner: a 1-element all-reduce took")) << r.output;
  } else {
    EXPECT_TRUE(contains(r.output, "tuner: a 1-element all-reduce takes")) << r.output;
    EXPECT_TRUE(contains(r.output, "us measured at init)")) << r.output;
  }
}

TEST(InitCalibration, SyncLeftAloneWhereRanksShareACpu) {
  const std::vector<int> cpus = allowedCpus();
  ASSERT_FALSE(cpus.empty());
  RunResult r =
      runOnCpus({cpus[0]}, launcher(3, std::string("--timeout 60") + kInitLog) + " nonblocking");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "3 ranks on this machine's 1 CPUs: yielding")) << r.output;
  EXPECT_FALSE(contains(r.output, "tuner: a 1-element all-reduce t")) << r.output;
}

class Faults : public testing::TestWithParam<int> {};

TEST_P(Faults, KilledRankIsNamedByEveryOtherRank) {
  const int n = GetParam();
  const int victim = n - 1;
  // WEFT_TIMEOUT is long: the death must be noticed by itself, not by the timeout.
  RunResult r = runChecked(n, "--grace 60 --timeout 120 -x WEFT_TIMEOUT=60",
                           "kill " + std::to_string(victim));
  EXPECT_LT(r.seconds, 30.0) << r.output;
  EXPECT_NE(r.status, 0) << "weftrun must report the killed rank\n" << r.output;
  for (int rank = 0; rank < n; ++rank) {
    if (rank == victim) continue;
    EXPECT_NE(r.output.find("KILL DETECTED rank " + std::to_string(rank)), std::string::npos)
        << "rank " << rank << " did not report the death\n"
        << r.output;
  }
}

// The same with one-sided all-reduce: survivors may be reading the victim's memory
// (process_vm_readv) or waiting for its release when it dies.
TEST_P(Faults, KilledRankDuringOneSidedIsNamed) {
  const int n = GetParam();
  const int victim = 0;
  RunResult r = runChecked(n,
                           "--grace 60 --timeout 120 -x WEFT_TIMEOUT=60 -x "
                           "WEFT_ALGO=allreduce:one_sided",
                           "kill " + std::to_string(victim));
  EXPECT_LT(r.seconds, 30.0) << r.output;
  EXPECT_NE(r.status, 0) << r.output;
  for (int rank = 1; rank < n; ++rank)
    EXPECT_NE(r.output.find("KILL DETECTED rank " + std::to_string(rank)), std::string::npos)
        << "rank " << rank << " did not report the death\n"
        << r.output;
}

TEST_P(Faults, MismatchedCountsFailEverywhere) {
  const int n = GetParam();
  RunResult r = run(launcher(n, "--grace 30 --timeout 60 -x WEFT_TIMEOUT=20") + " mismatch");
  EXPECT_EQ(r.status, 0) << r.output;
  for (int rank = 0; rank < n; ++rank)
    EXPECT_NE(r.output.find("MISMATCH DETECTED rank " + std::to_string(rank)), std::string::npos)
        << r.output;
  EXPECT_LT(r.seconds, 25.0) << r.output;
}

// A node description that cannot be read fails init on every rank, naming the variable and file.
TEST(MultiProcessInit, UnreadableTopologyFileIsNamed) {
  RunResult r = run(launcher(2, "--timeout 60 -x WEFT_TOPO_FILE=/nonexistent/node.xml") + " all");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("WEFT_TOPO_FILE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("/nonexistent/node.xml"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Shm, Faults, testing::Values(2, 4),
                         [](const testing::TestParamInfo<int>& i) {
                           return std::to_string(i.param) + "ranks";
                         });

}  // namespace
}  // namespace weft::test
