// Tests of weftrun, the local launcher, run as a separate process on small /bin/sh programs:
// the job environment, tagged output, exit status propagation, the grace/SIGTERM/SIGKILL sequence,
// --timeout, signal forwarding and command-line errors. Each test takes well under a second but
// for the ones that wait out a grace period (0.5 s).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <sched.h>

namespace {

constexpr char kWeftrun[] = WEFT_BINARY_DIR "/tools/weftrun";
constexpr double kSafetyLimitS = 15;  // a hung weftrun is killed and the test fails

struct RunResult {
  int status = -1;  // exit status, or 128+signal
  std::string out, err;
  double seconds = 0;
};

// Runs weftrun with args, capturing its stdout and stderr. If sig is not 0, sends it to weftrun
// once weftrun has printed signal_after_lines lines on stdout.
RunResult RunWeftrun(const std::vector<std::string>& args, int sig = 0,
                     long signal_after_lines = 0) {
  std::vector<std::string> storage = {kWeftrun};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);

  RunResult result;
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  pid_t pid = fork();
  if (pid == 0) {               // only async-signal-safe calls until exec
    struct sigaction dfl = {};  // a shell may have started the test ignoring SIGINT
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGINT, &dfl, nullptr);
    sigaction(SIGTERM, &dfl, nullptr);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(126);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return result;
  }
  // Read until weftrun has exited and its pipes are empty; processes it failed to end may still
  // hold them open, so do not wait for end of file.
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  bool signalled = false, killed = false, exited = false;
  int status = 0;
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (!signalled && sig != 0 &&
        std::count(result.out.begin(), result.out.end(), '\n') >= signal_after_lines) {
      kill(pid, sig);
      signalled = true;
    }
    if (!killed && elapsed() > kSafetyLimitS) {
      ADD_FAILURE() << "weftrun still running after " << kSafetyLimitS << " s; killing it";
      kill(pid, SIGKILL);
      killed = true;
    }
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      result.seconds = elapsed();
    }
    int ready = poll(fds, 2, exited ? 0 : 20);
    if (ready < 0 && errno != EINTR) break;
    if (ready == 0 && exited) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd >= 0) close(fds[i].fd);
  }
  if (!exited) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.seconds = elapsed();
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// Runs `weftrun <options> /bin/sh -c <script>`.
RunResult RunSh(std::vector<std::string> options, const std::string& script, int sig = 0,
                long signal_after_lines = 0) {
  options.insert(options.end(), {"--", "/bin/sh", "-c", script});
  return RunWeftrun(options, sig, signal_after_lines);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> fields;
  std::istringstream in(text);
  for (std::string field; std::getline(in, field, sep);)
    fields.push_back(field);
  return fields;
}

// Lines of text that start with "[rank] ", without that prefix, in order.
std::vector<std::string> LinesOfRank(const std::string& text, int rank) {
  std::string prefix = "[" + std::to_string(rank) + "] ";
  std::vector<std::string> lines;
  for (const std::string& line : Lines(text)) {
    if (line.starts_with(prefix)) lines.push_back(line.substr(prefix.size()));
  }
  return lines;
}

// Whether process pid has ended, waiting up to 2 s for it. A zombie counts as ended: weftrun makes
// itself the subreaper of the processes its ranks leave, but where it cannot (not Linux), orphans
// go to init, which may be slow to reap them.
bool IsGone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() &&
        (line[paren + 2] == 'Z' || line[paren + 2] == 'X')) {
      return true;
    }
    usleep(10000);
  }
  kill(pid, SIGKILL);  // do not leave it behind
  return false;
}

class Weftrun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kWeftrun, X_OK) != 0) {
      GTEST_SKIP() << kWeftrun << " is not built (build the 'weftrun' target first)";
    }
  }
  void TearDown() override {
    if (!temp_dir_.empty()) rmdir(temp_dir_.c_str());
  }

  // A path in a directory of this test's own (the test removes the files it makes there).
  std::string TempPath(const std::string& name) {
    if (temp_dir_.empty()) {
      char dir[] = "/tmp/weftrun_test.XXXXXX";
      if (mkdtemp(dir) == nullptr) ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
      temp_dir_ = dir;
    }
    return temp_dir_ + "/" + name;
  }

 private:
  std::string temp_dir_;
};

TEST_F(Weftrun, EveryRankGetsTheJobEnvironment) {
  RunResult r = RunSh({"-n", "3", "-x", "WEFT_TEST_FOO=bar baz"},
                      "echo \"$WEFT_RANK|$WEFT_WORLD_SIZE|$WEFT_LOCAL_RANK|$WEFT_LOCAL_SIZE|"
                      "$WEFT_ROOT|$WEFT_TEST_FOO\"");
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  std::set<std::string> ranks, roots;
  for (const std::string& line : lines) {
    std::vector<std::string> f = Split(line, '|');
    ASSERT_EQ(f.size(), 6u) << line;
    ranks.insert(f[0]);
    EXPECT_EQ(f[1], "3") << line;
    EXPECT_EQ(f[2], f[0]) << "WEFT_LOCAL_RANK must equal WEFT_RANK: " << line;
    EXPECT_EQ(f[3], "3") << line;
    roots.insert(f[4]);
    EXPECT_EQ(f[5], "bar baz") << line;
  }
  EXPECT_EQ(ranks, (std::set<std::string>{"0", "1", "2"}));
  ASSERT_EQ(roots.size(), 1u) << "all ranks must see the same WEFT_ROOT";
  const std::string& root = *roots.begin();
  ASSERT_TRUE(root.starts_with("127.0.0.1:")) << root;
  long port = std::strtol(root.c_str() + 10, nullptr, 10);
  EXPECT_TRUE(port > 0 && port < 65536 && root.substr(10) == std::to_string(port)) << root;
}

// --bind-to core binds rank r to the (r mod n)-th of weftrun's n CPUs (here the test's own), more
// ranks than CPUs wrapping around; without it every rank may run on all of them. weftrun itself
// is back on all of them once the ranks are started (its children's children would show it).
TEST_F(Weftrun, BindToCoreGivesEachRankOneCpuInTurn) {
  cpu_set_t own;
  CPU_ZERO(&own);
  ASSERT_EQ(sched_getaffinity(0, sizeof own, &own), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &own)) cpus.push_back(c);
  ASSERT_FALSE(cpus.empty());
  const int n = static_cast<int>(cpus.size()) + 1;  // one rank more than CPUs
  const char* script = "echo \"$WEFT_RANK $(grep Cpus_allowed_list /proc/self/status | cut -f2)\"";
  RunResult bound = RunSh({"-n", std::to_string(n), "--bind-to", "core"}, script);
  ASSERT_EQ(bound.status, 0) << bound.err;
  RunResult unbound = RunSh({"-n", std::to_string(n)}, script);
  ASSERT_EQ(unbound.status, 0) << unbound.err;
  std::set<std::string> all;
  for (const std::string& line : Lines(unbound.out))
    all.insert(line.substr(line.find(' ') + 1));
  EXPECT_EQ(all.size(), 1u) << unbound.out;  // every rank: weftrun's whole mask
  std::vector<std::string> lines = Lines(bound.out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(n)) << bound.out;
  for (const std::string& line : lines) {
    std::vector<std::string> f = Split(line, ' ');
    ASSERT_EQ(f.size(), 2u) << line;
    const int r = std::atoi(f[0].c_str());
    EXPECT_EQ(f[1], std::to_string(cpus[static_cast<size_t>(r) % cpus.size()])) << line;
  }
}

TEST_F(Weftrun, RootOptionOverridesWeftRoot) {
  RunResult r = RunSh({"-n", "2", "--root", "10.1.2.3:4567"}, "echo \"$WEFT_ROOT\"");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "10.1.2.3:4567\n10.1.2.3:4567\n");
}

TEST_F(Weftrun, ProgramArgumentsAreNotOptions) {
  RunResult r = RunWeftrun({"-n", "1", "/bin/sh", "-c", "echo \"$0 $1\"", "x", "-n"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "x -n\n");
}

TEST_F(Weftrun, TagOutputPrefixesEveryLineOnItsOwnStream) {
  RunResult r = RunSh({"-n", "2", "-p"}, "printf 'a\\nb\\n'; printf 'err\\n' >&2; printf partial");
  ASSERT_EQ(r.status, 0) << r.err;
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(LinesOfRank(r.out, rank), (std::vector<std::string>{"a", "b", "partial"})) << r.out;
    EXPECT_EQ(LinesOfRank(r.err, rank), (std::vector<std::string>{"err"})) << r.err;
  }
  EXPECT_EQ(Lines(r.out).size(), 6u) << r.out;
  EXPECT_EQ(Lines(r.err).size(), 2u) << r.err;
  EXPECT_TRUE(r.out.ends_with("\n"));
}

TEST_F(Weftrun, TagOutputNamesTheRightRankForManyRanks) {
  RunResult r = RunSh({"-n", "64", "--tag-output"}, "echo \"$WEFT_RANK\"");
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 64u);
  std::set<std::string> seen;
  for (const std::string& line : lines) {
    // "[rank] rank", the prefix from weftrun and the rest from the rank itself
    size_t close = line.find("] ");
    ASSERT_TRUE(line.starts_with("[") && close != std::string::npos) << line;
    EXPECT_EQ(line.substr(1, close - 1), line.substr(close + 2)) << line;
    seen.insert(line.substr(close + 2));
  }
  EXPECT_EQ(seen.size(), 64u);
}

TEST_F(Weftrun, TagOutputKeepsLongOutputWholeAndInOrder) {
  // Lines cross the 64 KiB read boundaries; none may be lost, split or reordered.
  RunResult r =
      RunSh({"-n", "2", "-p"}, "i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 40000u);
  for (int rank = 0; rank < 2; ++rank) {
    std::vector<std::string> lines = LinesOfRank(r.out, rank);
    ASSERT_EQ(lines.size(), 20000u);
    for (int i = 0; i < 20000; ++i)
      ASSERT_EQ(lines[i], std::to_string(i));
  }
}

TEST_F(Weftrun, WithoutTagOutputRanksWriteDirectly) {
  RunResult r = RunSh({"-n", "2"}, "printf x; printf y >&2");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "xx");
  EXPECT_EQ(r.err, "yy");
}

TEST_F(Weftrun, ExitsZeroWhenEveryRankDoes) {
  RunResult r = RunSh({"-n", "4"}, "exit 0");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "");
}

TEST_F(Weftrun, PropagatesTheStatusOfAFailedRank) {
  RunResult r = RunSh({"-n", "3"}, "[ \"$WEFT_RANK\" = 1 ] && exit 3; exit 0");
  EXPECT_EQ(r.status, 3);
  EXPECT_NE(r.err.find("weftrun: rank 1 (pid "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exited with status 3"), std::string::npos) << r.err;
}

TEST_F(Weftrun, KilledRankEndsTheOthersAfterTheGracePeriod) {
  RunResult r =
      RunSh({"-n", "3", "--grace", "0.5"}, "[ \"$WEFT_RANK\" = 2 ] && kill -9 $$; sleep 30");
  EXPECT_EQ(r.status, 128 + 9);
  EXPECT_NE(r.err.find("weftrun: rank 2 (pid "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("was killed by signal 9 (Killed)"), std::string::npos) << r.err;
  EXPECT_GE(r.seconds, 0.45) << "the others must get the grace period";
  EXPECT_LT(r.seconds, 5.0);
}

TEST_F(Weftrun, RanksIgnoringSigtermAreKilled) {
  RunResult r = RunSh({"-n", "2", "--grace", "0.3"},
                      "[ \"$WEFT_RANK\" = 0 ] && exit 1; trap '' TERM; sleep 30");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("SIGKILL"), std::string::npos) << r.err;
  EXPECT_GE(r.seconds, 0.55) << "grace before SIGTERM and again before SIGKILL";
  EXPECT_LT(r.seconds, 5.0);
}

// The pid a rank wrote to pid_file.
pid_t RecordedPid(const std::string& pid_file) {
  std::ifstream in(pid_file);
  pid_t pid = 0;
  in >> pid;
  unlink(pid_file.c_str());
  return pid;
}

TEST_F(Weftrun, ProcessesStartedByARankAreTerminatedToo) {
  // Rank 0 waits on a child of its own; rank 1 fails.
  std::string pid_file = TempPath("pid");
  RunResult r =
      RunSh({"-n", "2", "--grace", "0.2"}, "if [ \"$WEFT_RANK\" = 0 ]; then sleep 30 & echo $! > " +
                                               pid_file + "; wait; else sleep 0.3; exit 5; fi");
  EXPECT_EQ(r.status, 5) << r.err;
  pid_t pid = RecordedPid(pid_file);
  ASSERT_GT(pid, 0) << "rank 0 did not record its child";
  EXPECT_TRUE(IsGone(pid)) << "child " << pid << " of rank 0 survived the job";
}

TEST_F(Weftrun, ProcessesLeftByAFailedRankAreTerminated) {
  // Rank 0 fails at once, leaving a child in its process group; rank 1 succeeds.
  std::string pid_file = TempPath("pid");
  RunResult r =
      RunSh({"-n", "2", "--grace", "0.3"},
            "if [ \"$WEFT_RANK\" = 0 ]; then sleep 30 & echo $! > " + pid_file + "; exit 4; fi");
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("sending SIGTERM"), std::string::npos) << r.err;
  EXPECT_GE(r.seconds, 0.25) << "the leftover process must get the grace period";
  EXPECT_LT(r.seconds, 5.0);
  pid_t pid = RecordedPid(pid_file);
  ASSERT_GT(pid, 0) << "rank 0 did not record its child";
  EXPECT_TRUE(IsGone(pid)) << "child " << pid << " of rank 0 survived the job";
}

TEST_F(Weftrun, TimeoutEndsTheJobWithStatus124) {
  RunResult r = RunSh({"-n", "2", "--timeout", "0.3", "--grace", "0.5"}, "sleep 30");
  EXPECT_EQ(r.status, 124);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  EXPECT_GE(r.seconds, 0.25);
  EXPECT_LT(r.seconds, 5.0);
}

TEST_F(Weftrun, ForwardsSigintToTheRanks) {
  // The trap is set before "started" is printed, so the shell cannot lose the signal (a plain
  // `sleep` could be exec'd by sh -c just after sh caught SIGINT and before it acted on it).
  RunResult r = RunSh({"-n", "2", "--grace", "3"},
                      "trap 'echo interrupted; exit 7' INT; echo started; "
                      "while :; do sleep 0.05; done",
                      SIGINT, 2);
  EXPECT_EQ(r.status, 128 + SIGINT) << r.err;
  EXPECT_EQ(r.out, "started\nstarted\ninterrupted\ninterrupted\n");
  EXPECT_NE(r.err.find("weftrun: received signal 2"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 2.5) << "the ranks must end on the forwarded SIGINT, not on SIGTERM/SIGKILL";
}

TEST_F(Weftrun, BadArgumentsPrintUsageAndExit2) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"/bin/true"},
      {"-n", "2"},
      {"-n", "0", "/bin/true"},
      {"-n", "4097", "/bin/true"},
      {"-n", "two", "/bin/true"},
      {"-n"},
      {"--bogus", "-n", "1", "/bin/true"},
      {"-n", "1", "-q", "/bin/true"},
      {"-n", "1", "--grace", "-1", "/bin/true"},
      {"-n", "1", "--timeout", "soon", "/bin/true"},
      {"-n", "1", "-x", "=1", "/bin/true"},
      {"-n", "1", "--root", "nohostport", "/bin/true"},
      {"-n", "1", "--bind-to", "socket", "/bin/true"},
  };
  for (const auto& args : cases) {
    RunResult r = RunWeftrun(args);
    std::string joined;
    for (const std::string& a : args)
      joined += " " + a;
    EXPECT_EQ(r.status, 2) << "weftrun" << joined;
    EXPECT_NE(r.err.find("usage: weftrun"), std::string::npos) << "weftrun" << joined;
  }
}

TEST_F(Weftrun, HelpPrintsUsage) {
  RunResult r = RunWeftrun({"--help"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("usage: weftrun -n N"), std::string::npos) << r.out;
}

TEST_F(Weftrun, ProgramNotFoundExits127) {
  RunResult r = RunWeftrun({"-n", "2", "/nonexistent/weft_program"});
  EXPECT_EQ(r.status, 127);
  EXPECT_NE(r.err.find("weftrun: cannot run '/nonexistent/weft_program': No such file or "
                       "directory"),
            std::string::npos)
      << r.err;
  r = RunWeftrun({"-n", "1", "weft_no_such_program_on_path"});
  EXPECT_EQ(r.status, 127);
  EXPECT_NE(r.err.find("cannot run 'weft_no_such_program_on_path'"), std::string::npos) << r.err;
}

}  // namespace
