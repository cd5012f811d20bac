// weftrun: start N local ranks of a program and supervise them, a tiny mpirun for one host.
//
//   weftrun -n N [-p] [-x NAME[=VALUE]]... [--root HOST:PORT] [--grace S] [--timeout S]
//           [--bind-to none|core] [--] program [args...]
//
// Every rank gets weftrun's environment plus WEFT_RANK, WEFT_WORLD_SIZE, WEFT_LOCAL_RANK,
// WEFT_LOCAL_SIZE and WEFT_ROOT (127.0.0.1 and a port that was free a moment ago, where rank 0 will
// listen). Ranks are started with posix_spawnp() (no code of ours runs between fork and exec), each
// in a process group of its own so that signals also reach the processes a rank starts. Rank 0
// reads weftrun's stdin unless that is a terminal (a background process group cannot read one);
// the other ranks read /dev/null.
//
// With --bind-to core, rank r may run on the (r mod n)-th of the n CPUs weftrun itself may run on
// only (as mpirun's --bind-to core --map-by core, overloading CPUs where there are more ranks):
// posix_spawn has no affinity attribute, so weftrun binds itself to that CPU while it starts the
// rank, which inherits the mask, and returns to its own mask after. Unbound ranks move between
// CPUs at the scheduler's will: with 4 ranks on 2 CPUs a 16-byte all-gather took either 1.8 or
// 2.7 us from one run to the next, bound 1.7-1.9 us every time. The default is none, so that jobs
// run side by side (ctest -j) are not all bound to the first CPUs.
//
// The parent is one poll() loop. Signal handlers (SIGCHLD, SIGINT, SIGTERM) only record the signal
// and write a byte to a self-pipe, so the loop never misses a wakeup. With -p the loop also reads a
// stdout and a stderr pipe per rank and prints whole lines with a "[rank] " prefix.
//
// Ending: when a rank fails (non-zero status or a signal) weftrun names it on stderr, lets the
// others run for the grace period, then sends SIGTERM to the process groups of the job and
// SIGKILL one grace period later. --timeout and a SIGINT/SIGTERM sent to weftrun start at the
// SIGTERM step (the signal received is forwarded as it is; a second one sends SIGKILL). Once the
// job is ending, weftrun also waits for what ranks left in their process groups; on Linux it is
// the subreaper of those orphans, so it sees them end. A job whose ranks all exit 0 ends when they
// do, whatever they left running. Exit status: 0 if every rank exited 0, 124 on timeout, else the
// status of the first rank that failed by itself (128+signal when killed), or 128+signal when
// weftrun was interrupted.

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point After(double seconds) {
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

constexpr int kMaxRanks = 4096;
constexpr int kUsageStatus = 2;
constexpr int kTimeoutStatus = 124;
constexpr int kCannotRunStatus = 127;
constexpr size_t kMaxLine = size_t{64} * 1024;  // a longer line without '\n' is printed in pieces

constexpr char kUsage[] =
    "usage: weftrun -n N [options] [--] program [args...]\n"
    "Start N local ranks of program and supervise them.\n"
    "\n"
    "  -n N                 number of ranks, 1..4096 (required)\n"
    "  -p, --tag-output     prefix every line of stdout and stderr with \"[rank] \"\n"
    "  -x NAME=VALUE        set NAME in every rank's environment (repeatable);\n"
    "  -x NAME              pass weftrun's own value of NAME\n"
    "  --root HOST:PORT     value of WEFT_ROOT (default 127.0.0.1 and a free port)\n"
    "  --grace S            seconds to wait after a failure before SIGTERM, and after\n"
    "                       SIGTERM before SIGKILL (default 5, decimals allowed)\n"
    "  --timeout S          end the job after S seconds with exit status 124\n"
    "  --bind-to none|core  none (default): ranks run where the scheduler puts them; core:\n"
    "                       rank r on the (r mod n)-th of the n CPUs weftrun may use\n"
    "  -h, --help           print this help\n"
    "\n"
    "Exit status: 0 if every rank exited 0, else the status of the first rank that failed\n"
    "(128+signal if it was killed); 124 on timeout; 128+signal if weftrun was interrupted;\n"
    "2 for a usage error; 127 if program cannot be run; 1 if the job cannot be set up.\n";

struct Options {
  int nranks = 0;
  bool help = false;
  bool tag_output = false;
  double grace_s = 5.0;
  double timeout_s = 0;              // 0: none
  bool bind_core = false;            // --bind-to core
  std::string root;                  // empty: 127.0.0.1 and a free port
  std::vector<std::string> exports;  // NAME=VALUE from -x
  std::vector<char*> argv;           // program and its arguments, null-terminated
};

bool ParseSeconds(const std::string& text, double& out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || errno != 0 || *end != '\0' || !std::isfinite(v) || v < 0 || v > 1e7) {
    return false;
  }
  out = v;
  return true;
}

// Parses the command line into opt; returns an error message, empty on success.
std::string ParseArgs(int argc, char** argv, Options& opt) {
  int i = 1;
  for (; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') break;  // the program
    // "--name=value" and "-nVALUE" carry their value inline.
    std::string_view name = arg;
    std::optional<std::string> inline_value;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = std::string(arg.substr(eq + 1));
    } else if (!arg.starts_with("--") && arg.size() > 2) {
      name = arg.substr(0, 2);
      inline_value = std::string(arg.substr(2));
    }
    bool takes_value = name == "-n" || name == "-x" || name == "--root" || name == "--grace" ||
                       name == "--timeout" || name == "--bind-to";
    if (!takes_value) {
      if (!inline_value && (name == "-h" || name == "--help")) {
        opt.help = true;
        return "";
      }
      if (inline_value || (name != "-p" && name != "--tag-output")) {
        return "unknown option '" + std::string(arg) + "'";
      }
      opt.tag_output = true;
      continue;
    }
    if (!inline_value && i + 1 == argc) return "option '" + std::string(name) + "' needs a value";
    std::string value = inline_value ? *inline_value : argv[++i];
    if (name == "-n") {
      char* end = nullptr;
      errno = 0;
      long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || errno != 0 || *end != '\0' || n < 1 || n > kMaxRanks) {
        return "-n needs a number of ranks from 1 to 4096, not '" + value + "'";
      }
      opt.nranks = static_cast<int>(n);
    } else if (name == "-x") {
      size_t eq = value.find('=');
      if (eq == 0 || value.empty()) return "-x needs NAME=VALUE or NAME, not '" + value + "'";
      if (eq == std::string::npos) {  // pass on weftrun's own value
        const char* current = std::getenv(value.c_str());
        if (current == nullptr) return "-x " + value + ": " + value + " is not set";
        value = value + '=' + current;
      }
      opt.exports.push_back(value);
    } else if (name == "--bind-to") {
      if (value != "none" && value != "core") {
        return "--bind-to needs none or core, not '" + value + "'";
      }
      opt.bind_core = value == "core";
    } else if (name == "--root") {
      if (value.find(':') == std::string::npos || value.front() == ':' || value.back() == ':') {
        return "--root needs HOST:PORT, not '" + value + "'";
      }
      opt.root = value;
    } else {
      double& target = name == "--grace" ? opt.grace_s : opt.timeout_s;
      if (!ParseSeconds(value, target) || (name == "--timeout" && target == 0)) {
        return std::string(name) + " needs a number of seconds, not '" + value + "'";
      }
    }
  }
  if (opt.nranks == 0) return "missing -n N";
  if (i >= argc) return "missing program";
  opt.argv.assign(argv + i, argv + argc);
  opt.argv.push_back(nullptr);
  return "";
}

// Sets NAME=VALUE in env, replacing an earlier entry for NAME.
void SetVar(std::vector<std::string>& env, std::string entry) {
  std::string_view name(entry.data(), entry.find('=') + 1);  // "NAME="
  for (std::string& e : env) {
    if (e.starts_with(name)) {
      e = std::move(entry);
      return;
    }
  }
  env.push_back(std::move(entry));
}

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it back, close); 0 on
// error.
int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// Writes all of data, waiting while fd is full; drops it when the reader has gone (EPIPE).
void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, -1);
    } else if (errno != EINTR) {
      return;
    }
  }
}

// ---- Signals: the handlers record and wake the poll loop through a self-pipe. ----

int g_wake_read = -1;
int g_wake_write = -1;
std::atomic<int> g_stop_signal{0};  // the last SIGINT/SIGTERM received
std::atomic<int> g_stop_count{0};   // how many were received
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void OnSignal(int sig) {
  int saved_errno = errno;
  if (sig != SIGCHLD) {
    g_stop_signal.store(sig);
    g_stop_count.fetch_add(1);
  }
  char byte = 0;
  if (write(g_wake_write, &byte, 1) < 0) {
    // The pipe is full: a wakeup is pending already.
  }
  errno = saved_errno;
}

// Installs the handlers; returns the signals a rank must get back at their default disposition.
// A SIGINT or SIGTERM that weftrun was started ignoring (as by `nohup` or `cmd &`) stays ignored.
bool InstallSignalHandlers(sigset_t& child_defaults) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  g_wake_read = fds[0];
  g_wake_write = fds[1];
  sigemptyset(&child_defaults);
  sigaddset(&child_defaults, SIGPIPE);
  sigaddset(&child_defaults, SIGCHLD);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  for (int sig : {SIGCHLD, SIGINT, SIGTERM}) {
    struct sigaction old {};
    sigaction(sig, nullptr, &old);
    if (sig != SIGCHLD && old.sa_handler == SIG_IGN) continue;
    sigaction(sig, &sa, nullptr);
    sigaddset(&child_defaults, sig);
  }
  signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill weftrun under -p
  return true;
}

// ---- The job ----

// Under -p, one output stream (stdout or stderr) of a rank: its pipe and the line not yet ended.
struct TaggedStream {
  int fd = -1;
  int out_fd = STDOUT_FILENO;
  std::string partial;
};

struct Rank {
  pid_t pid = -1;          // also its process group; -1 until started
  bool running = false;    // started and not yet reaped
  bool signalled = false;  // weftrun signalled it while it ran
  // Its process group gets the signals that end the job: set while it runs, and kept if it ends
  // after the job began to end. (Its pid stays reserved while the group has members; once they
  // are gone, the pid could be reused only after a wrap-around of pids within the two grace
  // periods that ending a job takes at most.)
  bool tracked = false;
  std::string prefix;  // "[rank] "
  TaggedStream streams[2];
};

class Job {
 public:
  Job(const Options& opt, const sigset_t& child_defaults)
      : opt_(opt), child_defaults_(child_defaults), ranks_(opt.nranks) {}

  int Run();

 private:
  enum class Phase { kRunning, kGrace, kTerm, kKill };

  bool Spawn(int rank, const std::vector<std::string>& base_env);
  void Emit(Rank& rank, TaggedStream& s, bool drain_all);
  void Reap(bool block = false);
  void OnRankEnded(Rank& rank, int status);
  void OnFailure(int status);
  void SignalGroups(int sig);
  bool AnyTrackedGroup() const;
  void StartTermination(int sig);
  void CheckDeadlines();
  int PollTimeoutMs() const;

  const Options& opt_;
  const sigset_t& child_defaults_;
  std::vector<Rank> ranks_;
  std::unordered_map<pid_t, int> rank_of_pid_;
  int running_ = 0, started_ = 0, failed_ = 0, terminated_ = 0;
  Phase phase_ = Phase::kRunning;
  Clock::time_point deadline_;  // end of the current grace period (kGrace, kTerm)
  std::optional<Clock::time_point> timeout_at_;
  std::optional<int> first_failure_;  // status of the first rank that failed by itself
  bool timed_out_ = false;
  int stops_handled_ = 0;
};

// Starts one rank; on failure prints why and returns false.
bool Job::Spawn(int r, const std::vector<std::string>& base_env) {
  Rank& rank = ranks_[r];
  std::vector<std::string> env = base_env;
  SetVar(env, "WEFT_RANK=" + std::to_string(r));
  SetVar(env, "WEFT_LOCAL_RANK=" + std::to_string(r));
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (r != 0 || isatty(STDIN_FILENO)) {
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  }
  int child_ends[2] = {-1, -1};
  bool ok = true;
  if (opt_.tag_output) {
    for (int i = 0; i < 2 && ok; ++i) {
      int fds[2];
      if (pipe2(fds, O_CLOEXEC) != 0) {
        std::fprintf(stderr, "weftrun: cannot create a pipe for rank %d: %s\n", r,
                     std::strerror(errno));
        ok = false;
        break;
      }
      fcntl(fds[0], F_SETFL, O_NONBLOCK);
      rank.streams[i].fd = fds[0];
      rank.streams[i].out_fd = i == 0 ? STDOUT_FILENO : STDERR_FILENO;
      child_ends[i] = fds[1];
      posix_spawn_file_actions_adddup2(&actions, fds[1], rank.streams[i].out_fd);
    }
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  posix_spawnattr_setsigdefault(&attr, &child_defaults_);

  if (ok) {
    int err = posix_spawnp(&rank.pid, opt_.argv[0], &actions, &attr, opt_.argv.data(), envp.data());
    if (err != 0) {
      std::fprintf(stderr, "weftrun: cannot run '%s': %s\n", opt_.argv[0], std::strerror(err));
      ok = false;
    }
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  for (int i = 0; i < 2; ++i) {
    if (child_ends[i] >= 0) close(child_ends[i]);
    if (!ok && rank.streams[i].fd >= 0) {
      close(rank.streams[i].fd);
      rank.streams[i].fd = -1;
    }
  }
  if (!ok) {
    rank.pid = -1;
    return false;
  }
  rank.running = rank.tracked = true;
  rank_of_pid_[rank.pid] = r;
  ++running_;
  ++started_;
  return true;
}

// Reads what s has (one chunk, or all of it when drain_all) and prints its complete lines with the
// rank's prefix; at end of file also the last, unterminated line.
void Job::Emit(Rank& rank, TaggedStream& s, bool drain_all) {
  char buf[65536];
  std::string out;
  for (int reads = 0; s.fd >= 0 && reads < (drain_all ? 64 : 1); ++reads) {
    ssize_t n = read(s.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    bool eof = n <= 0;
    std::string_view data(buf, eof ? 0 : static_cast<size_t>(n));
    for (size_t nl; (nl = data.find('\n')) != std::string_view::npos; data.remove_prefix(nl + 1)) {
      out += rank.prefix;
      out += s.partial;
      out.append(data.substr(0, nl + 1));
      s.partial.clear();
    }
    s.partial.append(data);
    if (s.partial.size() >= kMaxLine || (eof && !s.partial.empty())) {
      out += rank.prefix + s.partial + '\n';
      s.partial.clear();
    }
    if (eof) {
      close(s.fd);
      s.fd = -1;
    }
  }
  WriteAll(s.out_fd, out);
}

// Reaps what has ended; with block, waits until no rank is left.
void Job::Reap(bool block) {
  while (!block || running_ > 0) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, block ? 0 : WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    // A pid that is not a rank's is an orphan a rank left, reparented to weftrun (its subreaper).
    if (auto it = rank_of_pid_.find(pid); it != rank_of_pid_.end()) {
      int r = it->second;
      rank_of_pid_.erase(it);  // the pid may be reused
      OnRankEnded(ranks_[r], status);
    }
  }
}

void Job::OnRankEnded(Rank& rank, int status) {
  rank.running = false;
  --running_;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    rank.tracked = phase_ != Phase::kRunning;
    return;
  }
  if (rank.signalled) {  // its end is weftrun's doing, not a failure of its own
    ++terminated_;
    return;
  }
  ++failed_;
  int r = static_cast<int>(&rank - ranks_.data());
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    std::fprintf(stderr, "weftrun: rank %d (pid %d) was killed by signal %d (%s)\n", r,
                 static_cast<int>(rank.pid), sig, strsignal(sig));
    OnFailure(128 + sig);
  } else {
    std::fprintf(stderr, "weftrun: rank %d (pid %d) exited with status %d\n", r,
                 static_cast<int>(rank.pid), WEXITSTATUS(status));
    OnFailure(WEXITSTATUS(status));
  }
}

// The first failure sets the exit status and starts the grace period.
void Job::OnFailure(int status) {
  if (!first_failure_) first_failure_ = status;
  if (phase_ == Phase::kRunning) {
    phase_ = Phase::kGrace;
    deadline_ = After(opt_.grace_s);
  }
}

// Sends sig to the process groups of the tracked ranks.
void Job::SignalGroups(int sig) {
  for (Rank& rank : ranks_) {
    if (!rank.tracked) continue;
    rank.signalled = rank.signalled || rank.running;
    kill(-rank.pid, sig);
    if (sig != SIGKILL) kill(-rank.pid, SIGCONT);  // a stopped process must see it too
  }
}

// Whether a tracked group still has processes (perhaps only zombies that init has yet to reap).
bool Job::AnyTrackedGroup() const {
  return std::any_of(ranks_.begin(), ranks_.end(), [](const Rank& rank) {
    return rank.tracked && (rank.running || kill(-rank.pid, 0) == 0);
  });
}

// Sends sig to every tracked group, then SIGKILL after the grace period.
void Job::StartTermination(int sig) {
  SignalGroups(sig);
  phase_ = Phase::kTerm;
  deadline_ = After(opt_.grace_s);
}

void Job::CheckDeadlines() {
  Clock::time_point now = Clock::now();
  bool before_term = phase_ == Phase::kRunning || phase_ == Phase::kGrace;
  const char* what = nullptr;
  if (before_term && timeout_at_ && now >= *timeout_at_) {
    timed_out_ = true;
    std::fprintf(stderr, "weftrun: job timed out after %g s\n", opt_.timeout_s);
    what = "SIGTERM";
  } else if (phase_ == Phase::kGrace && now >= deadline_) {
    what = "SIGTERM";
  } else if (phase_ == Phase::kTerm && now >= deadline_) {
    what = "SIGKILL";
  } else {
    return;
  }
  std::fprintf(stderr, "weftrun: sending %s to the job's processes (%d ranks still running)\n",
               what, running_);
  if (phase_ == Phase::kTerm) {
    SignalGroups(SIGKILL);
    phase_ = Phase::kKill;
  } else {
    StartTermination(SIGTERM);
  }
}

int Job::PollTimeoutMs() const {
  std::optional<Clock::time_point> next;
  if (phase_ == Phase::kGrace || phase_ == Phase::kTerm) next = deadline_;
  if (timeout_at_ && (phase_ == Phase::kRunning || phase_ == Phase::kGrace)) {
    next = next ? std::min(*next, *timeout_at_) : *timeout_at_;
  }
  if (!next) return -1;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*next - Clock::now()).count();
  // With no rank left to reap, nothing signals that the last leftover process is gone: look often.
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, running_ > 0 ? INT_MAX : 50));
}

int Job::Run() {
  std::string root = opt_.root;
  if (root.empty()) {
    int port = PickFreePort();
    if (port == 0) {
      std::fprintf(stderr, "weftrun: cannot find a free TCP port on 127.0.0.1: %s\n",
                   std::strerror(errno));
      return 1;
    }
    root = "127.0.0.1:" + std::to_string(port);
  }
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    env.emplace_back(*e);
  }
  for (const std::string& x : opt_.exports) {
    SetVar(env, x);
  }
  SetVar(env, "WEFT_WORLD_SIZE=" + std::to_string(opt_.nranks));
  SetVar(env, "WEFT_LOCAL_SIZE=" + std::to_string(opt_.nranks));
  SetVar(env, "WEFT_ROOT=" + root);

  if (opt_.timeout_s > 0) {
    timeout_at_ = After(opt_.timeout_s);
  }
  // --bind-to core: the CPUs weftrun may use, in order; the ranks are bound to them in turn.
  cpu_set_t own;
  std::vector<int> cpus;
  if (opt_.bind_core) {
    CPU_ZERO(&own);
    if (sched_getaffinity(0, sizeof own, &own) != 0) {
      std::fprintf(stderr, "weftrun: --bind-to core: cannot read weftrun's CPUs: %s\n",
                   std::strerror(errno));
      return 1;
    }
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &own)) cpus.push_back(c);
  }
  for (int r = 0; r < opt_.nranks && g_stop_count.load() == 0; ++r) {
    // Formatted into a buffer: GCC 12 warns falsely (-Wrestrict) on strings built from a literal
    // and std::to_string here, however they are joined.
    char tag[24];
    std::snprintf(tag, sizeof tag, "[%d] ", r);
    ranks_[r].prefix = tag;
    if (!cpus.empty()) {
      cpu_set_t one;
      CPU_ZERO(&one);
      const int cpu = cpus[static_cast<size_t>(r) % cpus.size()];
      CPU_SET(cpu, &one);
      if (sched_setaffinity(0, sizeof one, &one) != 0) {
        std::fprintf(stderr, "weftrun: --bind-to core: cannot bind rank %d to CPU %d: %s\n", r, cpu,
                     std::strerror(errno));
        OnFailure(1);
        break;
      }
    }
    const bool spawned = Spawn(r, env);
    if (!cpus.empty()) sched_setaffinity(0, sizeof own, &own);  // back to weftrun's own CPUs
    if (!spawned) {
      OnFailure(kCannotRunStatus);
      break;  // the other ranks would fail alike
    }
  }

  std::vector<pollfd> fds;
  std::vector<std::pair<Rank*, TaggedStream*>> owners;
  // Run until every rank is reaped and, if the job is being ended, nothing is left in the process
  // groups of its ranks.
  while (running_ > 0 ||
         ((phase_ == Phase::kGrace || phase_ == Phase::kTerm) && AnyTrackedGroup())) {
    fds.assign(1, pollfd{g_wake_read, POLLIN, 0});
    owners.assign(1, {nullptr, nullptr});
    for (Rank& rank : ranks_) {
      for (TaggedStream& s : rank.streams) {
        if (s.fd < 0) continue;
        fds.push_back(pollfd{s.fd, POLLIN, 0});
        owners.emplace_back(&rank, &s);
      }
    }
    if (poll(fds.data(), fds.size(), PollTimeoutMs()) < 0 && errno != EINTR) {
      std::fprintf(stderr, "weftrun: poll: %s; killing the job\n", std::strerror(errno));
      SignalGroups(SIGKILL);
      phase_ = Phase::kKill;
      Reap(/*block=*/true);
      break;
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) Emit(*owners[i].first, *owners[i].second, false);
    }
    if (fds[0].revents != 0) {  // a signal: empty the self-pipe first, then look at what changed
      char sink[256];
      while (read(g_wake_read, sink, sizeof(sink)) > 0) {
      }
      Reap();
    }
    if (int stops = g_stop_count.load(); stops != stops_handled_) {
      stops_handled_ = stops;
      int sig = g_stop_signal.load();
      if (phase_ == Phase::kTerm || phase_ == Phase::kKill) {  // already ending: stop waiting
        std::fprintf(stderr, "weftrun: received signal %d (%s); sending SIGKILL to the ranks\n",
                     sig, strsignal(sig));
        SignalGroups(SIGKILL);
        phase_ = Phase::kKill;
      } else {
        std::fprintf(stderr, "weftrun: received signal %d (%s); forwarding it to the ranks\n", sig,
                     strsignal(sig));
        StartTermination(sig);
      }
    }
    CheckDeadlines();
  }
  Reap();  // orphans that ended since the last look

  // Every rank is reaped: print what is left in the pipes, without waiting for processes that
  // ranks may have left holding them open.
  for (Rank& rank : ranks_) {
    for (TaggedStream& s : rank.streams) {
      Emit(rank, s, true);
      if (!s.partial.empty()) WriteAll(s.out_fd, rank.prefix + s.partial + '\n');
      if (s.fd >= 0) close(s.fd);
    }
  }

  int status = 0;
  if (timed_out_) {
    status = kTimeoutStatus;
  } else if (first_failure_) {
    status = *first_failure_;
  } else if (g_stop_count.load() > 0) {
    status = 128 + g_stop_signal.load();
  }
  if (status != 0) {
    std::fprintf(stderr,
                 "weftrun: job failed with exit status %d (ranks: %d failed, %d terminated by "
                 "weftrun, %d not started, of %d)\n",
                 status, failed_, terminated_, opt_.nranks - started_, opt_.nranks);
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (std::string error = ParseArgs(argc, argv, opt); !error.empty()) {
    std::fprintf(stderr, "weftrun: %s\n%s", error.c_str(), kUsage);
    return kUsageStatus;
  }
  if (opt.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  // Make sure fds 0-2 are open, so that no pipe of ours lands on them.
  for (int fd = 0; fd < 3; ++fd) {
    if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0) return 1;
  }
  // Under -p each rank needs two pipes: raise the soft limit on open files if needed (the ranks
  // inherit the raised limit).
  if (rlimit lim{}; opt.tag_output && getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    rlim_t needed = 2 * static_cast<rlim_t>(opt.nranks) + 64;
    if (lim.rlim_cur < needed) {
      lim.rlim_cur = std::min(needed, lim.rlim_max);
      if (lim.rlim_cur < needed || setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        std::fprintf(stderr, "weftrun: -p with %d ranks needs %llu open files; the limit is %llu\n",
                     opt.nranks, static_cast<unsigned long long>(needed),
                     static_cast<unsigned long long>(lim.rlim_max));
        return 1;
      }
    }
  }
#ifdef PR_SET_CHILD_SUBREAPER
  // Processes orphaned by a rank become weftrun's, so that their end is seen (and reaped) at once
  // rather than when init gets to it, or never where init does not reap.
  prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
  sigset_t child_defaults;
  if (!InstallSignalHandlers(child_defaults)) {
    std::fprintf(stderr, "weftrun: cannot create a pipe: %s\n", std::strerror(errno));
    return 1;
  }
  Job job(opt, child_defaults);
  return job.Run();
}
