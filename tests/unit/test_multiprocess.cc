// Multi-process tests: ranks as processes over the shared-memory transport, launched with weftrun,
// running the worker in tests/integration. Also the fault cases: a rank killed mid-collective,
// mismatched calls.
#include <dirent.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>

namespace {

std::set<std::string> weftSegments() {
  std::set<std::string> out;
  if (DIR* d = opendir("/dev/shm")) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name).rfind("weft-", 0) == 0) out.insert(e->d_name);
    closedir(d);
  }
  return out;
}

struct RunResult {
  int status = -1;
  std::string output;
  double seconds = 0;
};

RunResult run(const std::string& cmd) {
  RunResult r;
  const auto start = std::chrono::steady_clock::now();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

std::string launcher(int n, const std::string& extra = "") {
  return std::string(WEFT_BINARY_DIR) + "/tools/weftrun -n " + std::to_string(n) + " " + extra +
         " " + WEFT_BINARY_DIR + "/tests/integration/weft_test_worker";
}

class MultiProcess : public testing::TestWithParam<int> {};

TEST_P(MultiProcess, EveryCollectiveEveryTypeAndOp) {
  const auto before = weftSegments();
  RunResult r = run(launcher(GetParam(), "--timeout 600 -x WEFT_TIMEOUT=120") + " all");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("WORKER OK"), std::string::npos) << r.output;
  EXPECT_EQ(weftSegments(), before) << "shared-memory segments were left behind";
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

class Faults : public testing::TestWithParam<int> {};

TEST_P(Faults, KilledRankIsNamedByEveryOtherRank) {
  const int n = GetParam();
  const int victim = n - 1;
  const auto before = weftSegments();
  // WEFT_TIMEOUT is long: the death must be noticed by itself, not by the timeout.
  RunResult r = run(launcher(n, "--grace 60 --timeout 120 -x WEFT_TIMEOUT=60") + " kill " +
                    std::to_string(victim));
  EXPECT_LT(r.seconds, 30.0) << r.output;
  EXPECT_NE(r.status, 0) << "weftrun must report the killed rank\n" << r.output;
  for (int rank = 0; rank < n; ++rank) {
    if (rank == victim) continue;
    EXPECT_NE(r.output.find("KILL DETECTED rank " + std::to_string(rank)), std::string::npos)
        << "rank " << rank << " did not report the death\n"
        << r.output;
  }
  EXPECT_EQ(weftSegments(), before) << "shared-memory segments were left behind";
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

INSTANTIATE_TEST_SUITE_P(Shm, Faults, testing::Values(2, 4),
                         [](const testing::TestParamInfo<int>& i) {
                           return std::to_string(i.param) + "ranks";
                         });

}  // namespace
