// weft-tune: measures this machine's cost-model constants through weft's public API and writes a
// tuning file for WEFT_TUNE_FILE (format in docs/tuning.md). Run it under a launcher:
//
//   weftrun -n 2 build/tools/weft-tune -o tune.txt     (a few seconds; --quick: under one)
//
// What is measured for the intra-node level (the median of several repetitions; times combined
// over ranks by their maximum):
//   alpha  half the round trip of a 1-byte send/recv ping-pong between ranks 0 and 1
//   beta   half the round trip of a large ping-pong, less alpha, per byte
//   gamma  a reduce-scatter less an all-gather of the same bytes per rank, per byte reduced:
//          (T_rs - T_ag)/((p-1) n). Algorithms of one family (ring and ring, one_sided and
//          one_sided) move the same bytes in both and differ by the reduction; the file notes
//          which ran, and warns when they differ.
//   copy   memcpy of a large buffer written beforehand (no page faults), per byte
//   kernel process_vm_readv of as many bytes from this process into another buffer, against
//          the memcpy: the kernel path of a one-sided step on buffers peers cannot map (pinning
//          the pages and copying, as a read of a peer's memory does), written as that share of
//          beta's two copies, (T_kernel / T_copy) beta / 2, as a communicator calibrates it at
//          init; where the kernel refuses it, the built-in default stands and the file says why
//   kernel_call  one process_vm_readv of 64 bytes from this process, the mean of 32: what each
//          kernel copy costs beyond its bytes (the system call, finding the pages)
//   mapped the copy's rate: a one-sided step in mapped memory is a plain copy
//   sync   a 1-element all-reduce over all ranks: the cheapest barrier the API offers
// The ranks first learn their layout as weft does: each computes its host key (WEFT_HOST_ID, or
// host name and boot id, as src/api/init.cc does) and they all-gather it; the nodes are the
// distinct keys, in order of first rank.
//
// On one node the above runs over all ranks, and the inter-node constants keep their defaults. On
// several nodes:
//   intra  the above, among the ranks of the first node that has two, through a communicator of
//          their own (weftCommInitRank with an id broadcast over the launcher's communicator), so
//          that no network step enters it; with no such node, the defaults stand
//   inter  alpha: the 1-byte ping-pong between the first ranks of nodes 0 and 1; beta: the large
//          ping-pong between them alone, and on every rail at once (the k-th ranks of nodes 0 and
//          1, for every k both have), the slowest pair's, as hierarchical algorithms run their
//          rails in parallel over shared links and CPUs: the file has the loaded one; gamma and
//          copy: the intra values (reductions and copies happen in memory either way); sync: the
//          1-element all-reduce over all ranks
// Rank 0 writes the file (to a temporary name, then renamed); without -o it prints it.
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "core/run_list.h"
#include "weft/weft.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Plan {
  size_t copyBytes;
  int copyReps;
  int pingIters, pingReps;
  size_t bigBytes;
  int bigIters, bigReps;
  size_t redBytes;  // per rank
  int redIters, redReps;
  int syncIters, syncReps;
};
constexpr Plan kFull = {64u << 20, 7, 1000, 7, 16u << 20, 4, 7, 4u << 20, 4, 7, 1000, 7};
constexpr Plan kQuick = {8u << 20, 3, 200, 3, 2u << 20, 3, 3, 1u << 20, 3, 3, 200, 3};

// A communicator and this process's place in it; the label names it in error messages.
struct Comm {
  weftComm_t comm = nullptr;
  int rank = 0, size = 1;
  std::string label;  // "" for the launcher's communicator
};

weftComm_t gWorld = nullptr;     // the launcher's communicator
weftComm_t gNodeComm = nullptr;  // a node's own, while its ranks measure the intra-node level
int gRank = 0;                   // in gWorld, for messages

[[noreturn]] void die(const Comm& c, weftResult_t r, const char* what) {
  std::fprintf(stderr, "weft-tune: rank %d%s: %s failed: %s: %s\n", gRank, c.label.c_str(), what,
               weftGetErrorString(r), weftGetLastError(c.comm));
  // Abort, which never waits for peers: they may be the reason for the failure.
  if (gNodeComm != nullptr) weftCommAbort(gNodeComm);
  if (gWorld != nullptr) weftCommAbort(gWorld);
  std::exit(1);
}
void check(const Comm& c, weftResult_t r, const char* what) {
  if (r != weftSuccess) die(c, r, what);
}
// The message is built only on failure: the ping-pong loops call this thousands of times.
void checkPeer(const Comm& c, weftResult_t r, const char* what, int peer) {
  if (r == weftSuccess) return;
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s rank %d", what, peer);
  die(c, r, buf);
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void barrier(const Comm& c) {
  float in = 0, out = 0;
  check(c, weftAllReduce(&in, &out, 1, weftFloat32, weftSum, c.comm, nullptr),
        "barrier all-reduce");
}

// Half the round trip of `iters` ping-pongs of `bytes` between ranks a and b of c (a sends first),
// in us, on those two. The other ranks make no call and get 0: point-to-point calls concern only
// the two ranks, so the others need not (and must not) make matching ones.
double pingPong(const Comm& c, int a, int b, std::vector<char>& buf, size_t bytes, int iters) {
  if (c.rank != a && c.rank != b) return 0;
  const bool first = c.rank == a;
  const int peer = first ? b : a;
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    if (first) {
      checkPeer(c, weftSend(buf.data(), bytes, weftUint8, peer, c.comm, nullptr), "send to", peer);
      checkPeer(c, weftRecv(buf.data(), bytes, weftUint8, peer, c.comm, nullptr), "recv from",
                peer);
    } else {
      checkPeer(c, weftRecv(buf.data(), bytes, weftUint8, peer, c.comm, nullptr), "recv from",
                peer);
      checkPeer(c, weftSend(buf.data(), bytes, weftUint8, peer, c.comm, nullptr), "send to", peer);
    }
  }
  return seconds(t0, Clock::now()) * 1e6 / iters / 2;
}

// The round trip, in us, of kBurst 1-byte messages from a to b sent together (one group),
// answered by one 1-byte message from b, averaged over `iters`; 0 on the other ranks. Against two
// 1-byte hand-offs it shows what each further message of a burst costs (the model's msg).
constexpr int kBurst = 8;
constexpr ssize_t kSmallRead = 64;  // bytes of the process_vm_readv that prices one call
double burst(const Comm& c, int a, int b, std::vector<char>& buf, int iters) {
  if (c.rank != a && c.rank != b) return 0;
  const bool first = c.rank == a;
  const int peer = first ? b : a;
  auto group = [&](bool send) {
    check(c, weftGroupStart(), "weftGroupStart");
    for (int m = 0; m < kBurst; ++m) {
      char* p = buf.data() + m;
      checkPeer(c,
                send ? weftSend(p, 1, weftUint8, peer, c.comm, nullptr)
                     : weftRecv(p, 1, weftUint8, peer, c.comm, nullptr),
                send ? "send to" : "recv from", peer);
    }
    check(c, weftGroupEnd(), "weftGroupEnd");
  };
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    if (first) {
      group(true);
      checkPeer(c, weftRecv(buf.data(), 1, weftUint8, peer, c.comm, nullptr), "recv from", peer);
    } else {
      group(false);
      checkPeer(c, weftSend(buf.data(), 1, weftUint8, peer, c.comm, nullptr), "send to", peer);
    }
  }
  return seconds(t0, Clock::now()) * 1e6 / iters;
}

// Median over reps of the time per call of `call`, each rep `iters` calls after a barrier, in us.
template <typename F>
double timeCalls(const Comm& c, int reps, int iters, F call) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    barrier(c);
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i)
      call();
    t.push_back(seconds(t0, Clock::now()) * 1e6 / iters);
  }
  return median(t);
}

// The time of a 1-element all-reduce over c's ranks (after a warm-up), the cheapest barrier the API
// offers, in us.
double syncTime(const Comm& c, const Plan& plan) {
  float one = 1, sum = 0;
  for (int i = 0; i < 20; ++i)
    check(c, weftAllReduce(&one, &sum, 1, weftFloat32, weftSum, c.comm, nullptr), "all-reduce");
  return timeCalls(c, plan.syncReps, plan.syncIters, [&] {
    check(c, weftAllReduce(&one, &sum, 1, weftFloat32, weftSum, c.comm, nullptr), "all-reduce");
  });
}

// The medians, on ranks a and b (0 elsewhere), of the 1-byte and the large ping-pong between them
// and of the burst round trip, each after a warm-up (which also makes the connection).
struct PingPongs {
  double smallUs, bigUs, burstUs;
};
PingPongs pingPongs(const Comm& c, int a, int b, std::vector<char>& buf, const Plan& plan) {
  std::vector<double> small, big;
  barrier(c);
  (void)pingPong(c, a, b, buf, 1, plan.pingIters / 10 + 1);
  for (int r = 0; r < plan.pingReps; ++r)
    small.push_back(pingPong(c, a, b, buf, 1, plan.pingIters));
  std::vector<double> bursts;
  (void)burst(c, a, b, buf, plan.pingIters / 10 + 1);
  for (int r = 0; r < plan.pingReps; ++r)
    bursts.push_back(burst(c, a, b, buf, plan.pingIters));
  (void)pingPong(c, a, b, buf, plan.bigBytes, 1);
  for (int r = 0; r < plan.bigReps; ++r)
    big.push_back(pingPong(c, a, b, buf, plan.bigBytes, plan.bigIters));
  return {median(small), median(big), median(bursts)};
}

void appendf(std::string* out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string* out, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  *out += buf;
}

// ---- The layout ----

// The size of PeerInfo::hostKey in src/api/init.cc: a key cut there is cut here alike.
constexpr size_t kHostKeyBytes = 96;

// This process's host key, computed exactly as weft computes it at init (src/api/init.cc), so that
// the nodes found here are the communicator's: "id:<WEFT_HOST_ID>" when the variable is set (even
// empty), otherwise "<hostname>/<boot_id>".
std::string hostKey() {
  char key[kHostKeyBytes] = {};
  if (const char* id = std::getenv("WEFT_HOST_ID")) {
    std::snprintf(key, sizeof key, "id:%s", id);
  } else {
    char host[64] = {};
    gethostname(host, sizeof host - 1);
    std::ifstream boot("/proc/sys/kernel/random/boot_id");
    std::string bootId;
    boot >> bootId;
    std::snprintf(key, sizeof key, "%.54s/%.36s", host, bootId.c_str());
  }
  return key;
}

struct Layout {
  std::vector<std::vector<int>> nodes;  // each node's ranks, nodes in order of first rank
  std::vector<std::string> keys;        // each node's host key
  int node = 0, local = 0;              // this rank's node and its index there
};

// Every rank's host key, all-gathered as fixed-size records.
Layout discoverLayout(const Comm& w) {
  std::vector<uint8_t> mine(kHostKeyBytes, 0), all(kHostKeyBytes * static_cast<size_t>(w.size));
  const std::string key = hostKey();
  std::memcpy(mine.data(), key.data(), std::min(key.size(), kHostKeyBytes - 1));
  check(w, weftAllGather(mine.data(), all.data(), kHostKeyBytes, weftUint8, w.comm, nullptr),
        "all-gather of the host keys");
  Layout l;
  for (int r = 0; r < w.size; ++r) {
    const char* rec = reinterpret_cast<const char*>(all.data()) + r * kHostKeyBytes;
    const std::string k(rec, strnlen(rec, kHostKeyBytes));
    const size_t n = std::find(l.keys.begin(), l.keys.end(), k) - l.keys.begin();
    if (n == l.keys.size()) {
      l.keys.push_back(k);
      l.nodes.emplace_back();
    }
    if (r == w.rank) {
      l.node = static_cast<int>(n);
      l.local = static_cast<int>(l.nodes[n].size());
    }
    l.nodes[n].push_back(r);
  }
  return l;
}

using weft::runList;

// ---- The intra-node level ----

// Its times, combined over the ranks that measured them by their maximum. Plain data, so that the
// node that measured them can broadcast them as bytes to the rank that writes the file.
struct IntraTimes {
  double smallUs, bigUs, rsUs, agUs, syncUs, copyUs, burstUs;
  double kernelUs;      // NaN where process_vm_readv was refused (kernelErrno says why)
  double kernelCallUs;  // one 64-byte process_vm_readv; NaN where refused
  int kernelErrno;
  uint64_t redBytes;  // per rank, in the reduce-scatter and the all-gather
  char rsAlgo[48], agAlgo[48];
};

const char* algorithmFor(const Comm& c, const char* coll, size_t count) {
  const char* name = nullptr;
  check(c, weftCommGetAlgorithm(c.comm, coll, count, weftFloat32, weftSum, &name),
        "weftCommGetAlgorithm");
  return name;
}

// Every measurement of the intra-node level, over all ranks of c (which share a node).
IntraTimes measureIntra(const Comm& c, const Plan& plan) {
  // copy: memcpy between two buffers written beforehand, on every rank at once.
  std::vector<double> copyT;
  {
    std::vector<char> a(plan.copyBytes, 1), b(plan.copyBytes, 2);
    std::memcpy(b.data(), a.data(), plan.copyBytes);  // warm-up
    barrier(c);
    for (int r = 0; r < plan.copyReps; ++r) {
      const auto t0 = Clock::now();
      std::memcpy(r % 2 ? a.data() : b.data(), r % 2 ? b.data() : a.data(), plan.copyBytes);
      copyT.push_back(seconds(t0, Clock::now()) * 1e6);
    }
  }
  const double copyUs = median(copyT);

  // kernel: process_vm_readv from this process, on every rank at once.
  std::vector<double> kernelT, callT;
  int kernelErrno = 0;
  {
    std::vector<char> a(plan.copyBytes, 1), b(plan.copyBytes, 2);
    barrier(c);
    for (int r = 0; r <= plan.copyReps && kernelErrno == 0; ++r) {  // the first: warm-up
      iovec local = {r % 2 ? a.data() : b.data(), plan.copyBytes};
      iovec remote = {r % 2 ? b.data() : a.data(), plan.copyBytes};
      const auto t0 = Clock::now();
      const ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
      const double us = seconds(t0, Clock::now()) * 1e6;
      if (got < 0)
        kernelErrno = errno;
      else if (static_cast<size_t>(got) != plan.copyBytes)
        kernelErrno = EIO;  // a partial copy: not a rate to price whole steps with
      else if (r > 0)
        kernelT.push_back(us);
    }
    // One call with next to no bytes, the same way: its price beyond the bytes.
    for (int r = 0; r <= plan.copyReps && kernelErrno == 0; ++r) {
      constexpr int kCalls = 32;
      iovec local = {b.data(), kSmallRead};
      iovec remote = {a.data(), kSmallRead};
      const auto t0 = Clock::now();
      for (int k = 0; k < kCalls && kernelErrno == 0; ++k)
        if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != kSmallRead) kernelErrno = errno;
      if (r > 0) callT.push_back(seconds(t0, Clock::now()) * 1e6 / kCalls);
    }
  }

  // alpha and beta: ping-pong between ranks 0 and 1.
  std::vector<char> pbuf(plan.bigBytes, 3);
  const PingPongs pp = pingPongs(c, 0, 1, pbuf, plan);
  const double smallUs = pp.smallUs, bigUs = pp.bigUs, burstUs = pp.burstUs;
  pbuf = std::vector<char>();

  // sync: a 1-element all-reduce.
  const double syncUs = syncTime(c, plan);

  // gamma: reduce-scatter against all-gather of the same bytes per rank.
  const size_t redBytes =
      std::max<size_t>(64 << 10, std::min(plan.redBytes, (size_t{64} << 20) / c.size)) / 4 * 4;
  const size_t count = redBytes / sizeof(float);
  IntraTimes t = {};
  t.kernelUs = kernelErrno == 0 ? median(kernelT) : std::numeric_limits<double>::quiet_NaN();
  t.kernelCallUs = kernelErrno == 0 ? median(callT) : std::numeric_limits<double>::quiet_NaN();
  t.kernelErrno = kernelErrno;
  std::snprintf(t.rsAlgo, sizeof t.rsAlgo, "%s", algorithmFor(c, "reducescatter", count));
  std::snprintf(t.agAlgo, sizeof t.agAlgo, "%s", algorithmFor(c, "allgather", count));
  double rsUs = 0, agUs = 0;
  {
    std::vector<float> whole(count * static_cast<size_t>(c.size), 1.0f), part(count, 1.0f);
    check(
        c,
        weftReduceScatter(whole.data(), part.data(), count, weftFloat32, weftSum, c.comm, nullptr),
        "reduce-scatter");
    rsUs = timeCalls(c, plan.redReps, plan.redIters, [&] {
      check(c,
            weftReduceScatter(whole.data(), part.data(), count, weftFloat32, weftSum, c.comm,
                              nullptr),
            "reduce-scatter");
    });
    check(c, weftAllGather(part.data(), whole.data(), count, weftFloat32, c.comm, nullptr),
          "all-gather");
    agUs = timeCalls(c, plan.redReps, plan.redIters, [&] {
      check(c, weftAllGather(part.data(), whole.data(), count, weftFloat32, c.comm, nullptr),
            "all-gather");
    });
  }

  // Every rank's times, combined by their maximum.
  double mine[7] = {smallUs, bigUs, rsUs, agUs, syncUs, copyUs, burstUs}, all[7] = {};
  check(c, weftAllReduce(mine, all, 7, weftFloat64, weftMax, c.comm, nullptr), "combining times");
  t.smallUs = all[0];
  t.bigUs = all[1];
  t.rsUs = all[2];
  t.agUs = all[3];
  t.syncUs = all[4];
  t.copyUs = all[5];
  t.burstUs = all[6];
  t.redBytes = redBytes;
  return t;
}

// A level's constants; NaN for one not measured, whose key the file leaves out.
struct Constants {
  double alpha, beta, gamma, copy, sync, msg, mapped, kernel, kernelCall;
};
constexpr double kUnmeasured = std::numeric_limits<double>::quiet_NaN();

// msg from a burst round trip against two 1-byte hand-offs; unmeasured (the default stands, with a
// note) where the burst was not slower.
double msgFromBurst(double burstUs, double alphaUs, const char* level, std::string* notes) {
  const double msg = (burstUs - 2 * alphaUs) / (kBurst - 1);
  if (msg > 0) return msg;
  appendf(notes,
          "# %s msg: %d messages at once were not slower than one; the built-in default stands\n",
          level, kBurst);
  return kUnmeasured;
}

Constants intraConstants(const IntraTimes& t, int nranks, const Plan& plan, std::string* notes) {
  Constants k;
  const double p = nranks, n = static_cast<double>(t.redBytes);
  k.alpha = t.smallUs;
  k.beta = (t.bigUs - k.alpha) / static_cast<double>(plan.bigBytes);
  k.copy = t.copyUs / static_cast<double>(plan.copyBytes);
  k.gamma = (t.rsUs - t.agUs) / ((p - 1) * n);
  k.sync = t.syncUs;
  k.msg = msgFromBurst(t.burstUs, t.smallUs, "intra", notes);
  // A one-sided step in mapped memory is a plain copy between two buffers.
  k.mapped = k.copy;
  // The kernel's copy against memcpy of the same bytes, priced like the communicator's own
  // calibration at init (Tuner::calibrateKernelCopy): as that share of a message's two copies, so
  // that it compares with beta measured the same way on any machine.
  k.kernel = t.kernelUs / t.copyUs * k.beta / 2;
  k.kernelCall = t.kernelCallUs;
  if (t.kernelErrno != 0)
    appendf(notes,
            "# kernel copy: process_vm_readv was refused (%s); the built-in default stands\n",
            std::strerror(t.kernelErrno));
  if (!(k.beta > 0)) {
    *notes +=
        "# beta: the large ping-pong was not slower than the small one; copy's rate stands in\n";
    k.beta = k.copy;
  }
  if (std::strcmp(t.rsAlgo, t.agAlgo) != 0)
    *notes += std::string(
                  "# gamma assumes that the reduce-scatter and the all-gather move the same "
                  "bytes, as\n# algorithms of one family do; the tuner chose ") +
              t.rsAlgo + " and " + t.agAlgo + " (force one with WEFT_ALGO)\n";
  if (!(k.gamma > 0)) {
    *notes += "# gamma: the reduction did not show above the noise; copy's rate stands in\n";
    k.gamma = k.copy;
  }
  return k;
}

void appendIntraLines(std::string* text, const IntraTimes& t, const Plan& plan) {
  appendf(text, "# ping-pong half round trip: 1 B %.3f us, %zu B %.1f us (%.2f GB/s)\n", t.smallUs,
          plan.bigBytes, t.bigUs, static_cast<double>(plan.bigBytes) / t.bigUs / 1e3);
  appendf(text, "# %llu B per rank: reduce-scatter (%s) %.1f us, all-gather (%s) %.1f us\n",
          static_cast<unsigned long long>(t.redBytes), t.rsAlgo, t.rsUs, t.agAlgo, t.agUs);
  appendf(text, "# %d 1-byte messages at once, answered by one: %.3f us round trip\n", kBurst,
          t.burstUs);
  appendf(text, "# 1-element all-reduce %.3f us; memcpy of %zu B %.1f us (%.2f GB/s)\n", t.syncUs,
          plan.copyBytes, t.copyUs, static_cast<double>(plan.copyBytes) / t.copyUs / 1e3);
  if (t.kernelErrno == 0)
    appendf(text,
            "# process_vm_readv of %zu B from this process %.1f us (%.2f GB/s), of %zu B %.3f us\n",
            plan.copyBytes, t.kernelUs, static_cast<double>(plan.copyBytes) / t.kernelUs / 1e3,
            kSmallRead, t.kernelCallUs);
}

// The keys of a level, those not measured left out so that the built-in defaults stand.
void appendLevel(std::string* text, const char* level, const Constants& k) {
  struct Row {
    const char* key;
    double value;
    const char* help;
  };
  const Row rows[] = {
      {"alpha_us", k.alpha, "latency of one message hand-off (us)"},
      {"beta_us_per_byte", k.beta, "per byte moved through a message (us/B)"},
      {"gamma_us_per_byte", k.gamma, "per byte reduced (us/B)"},
      {"copy_us_per_byte", k.copy, "per byte copied in a rank's own memory (us/B)"},
      {"sync_us", k.sync, "one barrier-like synchronisation (us)"},
      {"msg_us", k.msg, "one more message of several sent at once (us)"},
      {"mapped_copy_us_per_byte", k.mapped, "per byte moved in a peer's mapped memory (us/B)"},
      {"kernel_copy_us_per_byte", k.kernel,
       "per byte moved from a peer's unmapped memory through the kernel (us/B)"},
      {"kernel_call_us", k.kernelCall, "one such move beyond its bytes: a system call (us)"},
  };
  for (const Row& r : rows) {
    if (std::isnan(r.value)) continue;
    const std::string key = std::string(level) + "." + r.key;
    appendf(text, "%-29s = %-12.6g # %s\n", key.c_str(), r.value, r.help);
  }
}

// ---- The inter-node level ----

struct InterTimes {
  double smallUs, bigUs, burstUs;  // the first ranks of nodes 0 and 1, alone
  double loadedUs;  // the same large ping-pong on every rail at once: the slowest pair
  double syncUs;    // over all ranks
  int rails;
};

// Every measurement of the inter-node level, over the launcher's communicator. Every rank makes the
// same collective calls (the barriers, the all-reduces); the ping-pongs are made by their pairs
// only.
InterTimes measureInter(const Comm& w, const Layout& l, const Plan& plan) {
  std::vector<char> pbuf(plan.bigBytes, 3);
  const PingPongs pp = pingPongs(w, l.nodes[0][0], l.nodes[1][0], pbuf, plan);

  // Under load: the k-th rank of node 0 with the k-th of node 1, every pair at once, started
  // together by a barrier per repetition; a rep counts as long as its slowest pair. With one rail
  // there is no load to add: the pair alone stands for it. (Every rank knows the layout, so all
  // skip the barriers alike.)
  const int rails = static_cast<int>(std::min(l.nodes[0].size(), l.nodes[1].size()));
  std::vector<double> loaded;
  if (rails > 1) {
    int ra = -1, rb = -1;  // this rank's pair, if it is on a rail
    if (l.node <= 1 && l.local < rails) {
      ra = l.nodes[0][static_cast<size_t>(l.local)];
      rb = l.nodes[1][static_cast<size_t>(l.local)];
    }
    barrier(w);
    (void)pingPong(w, ra, rb, pbuf, plan.bigBytes, 1);  // connects the rails beyond the first
    for (int r = 0; r < plan.bigReps; ++r) {
      barrier(w);
      loaded.push_back(pingPong(w, ra, rb, pbuf, plan.bigBytes, plan.bigIters));
    }
  }
  pbuf = std::vector<char>();

  // sync: a 1-element all-reduce over all ranks, the multi-node barrier.
  const double syncUs = syncTime(w, plan);

  // Every rank's times, combined by their maximum: the pair's own, and per repetition the slowest
  // rail's (ranks that took no part give 0).
  std::vector<double> mine = {pp.smallUs, pp.bigUs, syncUs, pp.burstUs};
  mine.insert(mine.end(), loaded.begin(), loaded.end());
  std::vector<double> all(mine.size());
  check(w,
        weftAllReduce(mine.data(), all.data(), mine.size(), weftFloat64, weftMax, w.comm, nullptr),
        "combining times");
  InterTimes t;
  t.smallUs = all[0];
  t.bigUs = all[1];
  t.syncUs = all[2];
  t.burstUs = all[3];
  t.loadedUs = rails > 1 ? median(std::vector<double>(all.begin() + 4, all.end())) : t.bigUs;
  t.rails = rails;
  return t;
}

void usage(FILE* f) {
  std::fprintf(
      f,
      "usage: weftrun -n N weft-tune [-o FILE] [--quick]\n"
      "Measures alpha, beta, gamma, copy and sync of the cost model through weft's API and writes\n"
      "a tuning file for WEFT_TUNE_FILE (docs/tuning.md). N >= 2. The intra-node level is\n"
      "measured among the ranks of one node; when the ranks span several nodes, the inter-node\n"
      "level too, between nodes 0 and 1 (and sync over all ranks).\n"
      "  -o FILE    write the file there (rank 0); default: print it\n"
      "  --quick    smaller sizes and fewer repetitions (under a second; less accurate)\n"
      "  -h         print this help\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string outPath;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "-o" && i + 1 < argc) {
      outPath = argv[++i];
    } else {
      std::fprintf(stderr, "weft-tune: unknown argument \"%s\"\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  const Plan& plan = quick ? kQuick : kFull;
  // gamma compares a reduce-scatter with an all-gather that moves the same bytes. The staged
  // all-gather makes fewer copies than any reduce-scatter can, so unless WEFT_ALGO says otherwise
  // this run's all-gathers leave it out (the file notes the algorithms that ran).
  setenv("WEFT_ALGO", "allgather:^staged", 0);
  const auto start = Clock::now();
  const weftResult_t init = weftCommInitFromEnv(&gWorld);
  if (init != weftSuccess) {
    std::fprintf(stderr,
                 "weft-tune: cannot create a communicator: %s\n(run it under a launcher: weftrun "
                 "-n 2 weft-tune -o tune.txt)\n",
                 weftGetLastError(nullptr));
    return 1;
  }
  Comm world;
  world.comm = gWorld;
  check(world, weftCommUserRank(gWorld, &gRank), "weftCommUserRank");
  check(world, weftCommCount(gWorld, &world.size), "weftCommCount");
  world.rank = gRank;
  const int nranks = world.size;
  if (nranks < 2) {
    std::fprintf(stderr, "weft-tune: needs at least 2 ranks (weftrun -n 2 weft-tune ...)\n");
    weftCommDestroy(gWorld);
    return 2;
  }
  const Layout layout = discoverLayout(world);
  const int nnodes = static_cast<int>(layout.nodes.size());

  std::string text, notes, interNotes;
  Constants intra = {kUnmeasured, kUnmeasured, kUnmeasured, kUnmeasured, kUnmeasured,
                     kUnmeasured, kUnmeasured, kUnmeasured, kUnmeasured};
  Constants inter = intra;
  IntraTimes it = {};
  InterTimes nt = {};
  double betaAlone = 0, betaLoaded = 0;  // inter beta from the pair alone, and on every rail
  int intraNode = -1;                    // the node whose ranks measured the intra-node level
  if (nnodes == 1) {
    it = measureIntra(world, plan);
    intraNode = 0;
    intra = intraConstants(it, nranks, plan, &notes);
  } else {
    for (int n = 0; n < nnodes && intraNode < 0; ++n)
      if (layout.nodes[static_cast<size_t>(n)].size() >= 2) intraNode = n;
    if (intraNode >= 0) {
      // The node's ranks get a communicator of their own, so that its collectives (sync, gamma)
      // stay inside the node. Its first rank makes the id; every rank takes part in the broadcasts,
      // which are collective on the launcher's communicator, and then waits in the second while
      // the node measures.
      const std::vector<int>& ranks = layout.nodes[static_cast<size_t>(intraNode)];
      const int root = ranks[0];
      weftUniqueId id;
      std::memset(&id, 0, sizeof id);
      if (gRank == root) check(world, weftGetUniqueId(&id), "weftGetUniqueId for a node's ranks");
      check(world, weftBroadcast(&id, &id, sizeof id, weftUint8, root, world.comm, nullptr),
            "broadcast of the node communicator's id");
      if (layout.node == intraNode) {
        Comm node;
        node.rank = layout.local;
        node.size = static_cast<int>(ranks.size());
        appendf(&node.label, " (rank %d of node %d's communicator)", node.rank, intraNode);
        check(node, weftCommInitRank(&gNodeComm, node.size, id, node.rank),
              "weftCommInitRank of the node's communicator");
        node.comm = gNodeComm;
        it = measureIntra(node, plan);
        check(node, weftCommDestroy(gNodeComm), "weftCommDestroy of the node's communicator");
        gNodeComm = nullptr;
      }
      check(world, weftBroadcast(&it, &it, sizeof it, weftUint8, root, world.comm, nullptr),
            "broadcast of the intra-node times");
      intra = intraConstants(it, static_cast<int>(ranks.size()), plan, &notes);
    }
    nt = measureInter(world, layout, plan);
    inter.alpha = nt.smallUs;
    const double bytes = static_cast<double>(plan.bigBytes);
    betaAlone = (nt.bigUs - nt.smallUs) / bytes;
    betaLoaded = (nt.loadedUs - nt.smallUs) / bytes;
    inter.beta = betaLoaded > 0 ? betaLoaded : betaAlone > 0 ? betaAlone : kUnmeasured;
    // Reductions and copies happen in memory whichever level the bytes crossed.
    inter.gamma = intra.gamma;
    inter.copy = intra.copy;
    inter.mapped = intra.mapped;
    inter.sync = nt.syncUs;
    inter.msg = msgFromBurst(nt.burstUs, nt.smallUs, "inter", &interNotes);
  }

  const double wall = seconds(start, Clock::now());
  int code = 0;
  weftGetVersion(&code);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  char date[64] = {};
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  appendf(&text, "# weft tuning file (docs/tuning.md), written by weft-tune of weft %d.%d.%d\n",
          code / 10000, code / 100 % 100, code % 100);
  if (nnodes == 1) {
    appendf(&text, "# host %s, %d ranks, %s, %s measurement in %.1f s\n", host, nranks, date,
            quick ? "quick" : "full", wall);
    appendIntraLines(&text, it, plan);
    text += notes;
    appendf(&text,
            "# The inter-node level was not measured (all %d ranks share one node): the built-in "
            "inter.* defaults stand.\n",
            nranks);
  } else {
    appendf(&text, "# host %s (rank 0), %d ranks on %d nodes, %s, %s measurement in %.1f s\n", host,
            nranks, nnodes, date, quick ? "quick" : "full", wall);
    constexpr int kNodesListed = 8;
    for (int n = 0; n < nnodes && n < kNodesListed; ++n)
      appendf(&text, "# node %d: rank%s %s (host key %s)\n", n,
              layout.nodes[static_cast<size_t>(n)].size() == 1 ? "" : "s",
              runList(layout.nodes[static_cast<size_t>(n)]).c_str(),
              layout.keys[static_cast<size_t>(n)].c_str());
    if (nnodes > kNodesListed) appendf(&text, "# ... and %d more nodes\n", nnodes - kNodesListed);
    if (intraNode >= 0) {
      const std::vector<int>& ranks = layout.nodes[static_cast<size_t>(intraNode)];
      appendf(&text,
              "# The intra-node level was measured on node %d, among its ranks %s through a "
              "communicator of\n# their own: ping-pong between ranks %d and %d, the collectives "
              "over those %zu ranks, memcpy on each:\n",
              intraNode, runList(ranks).c_str(), ranks[0], ranks[1], ranks.size());
      appendIntraLines(&text, it, plan);
      text += notes;
    } else {
      appendf(&text,
              "# The intra-node level was not measured (no node has two ranks): the built-in "
              "intra.* defaults stand.\n");
    }
    const int a = layout.nodes[0][0], b = layout.nodes[1][0];
    appendf(&text,
            "# The inter-node level was measured between nodes 0 and 1 (sync over all %d ranks):\n",
            nranks);
    appendf(&text,
            "# ping-pong half round trip between ranks %d (node 0) and %d (node 1): 1 B %.3f us, "
            "%zu B %.1f us (%.2f GB/s)\n",
            a, b, nt.smallUs, plan.bigBytes, nt.bigUs,
            static_cast<double>(plan.bigBytes) / nt.bigUs / 1e3);
    std::string pairs;
    for (int k = 0; k < nt.rails; ++k)
      appendf(&pairs, "%s%d-%d", k ? ", " : "", layout.nodes[0][static_cast<size_t>(k)],
              layout.nodes[1][static_cast<size_t>(k)]);
    if (nt.rails > 1) {
      appendf(&text,
              "# the same on all %d rails at once (ranks %s), slowest pair: %zu B %.1f us (%.2f "
              "GB/s)\n",
              nt.rails, pairs.c_str(), plan.bigBytes, nt.loadedUs,
              static_cast<double>(plan.bigBytes) / nt.loadedUs / 1e3);
      const char* which =
          betaLoaded > 0 ? "the file has the loaded one, as\n# hierarchical algorithms run every "
                           "rail at once"
          : betaAlone > 0
              ? "the loaded ping-pong was not slower than\n# the small one: the file has the one "
                "alone"
              : "neither large ping-pong was slower than\n# the small one: the built-in default "
                "stands";
      appendf(&text, "# inter beta: %.6g us/B alone, %.6g us/B loaded; %s\n", betaAlone, betaLoaded,
              which);
    } else {
      appendf(&text,
              "# one rail (ranks %s): no load to add, inter beta is the pair's alone: %.6g us/B\n",
              pairs.c_str(), betaAlone);
      if (!(betaAlone > 0))
        appendf(&text,
                "# inter beta: the large ping-pong was not slower than the small one; the built-in "
                "default stands\n");
    }
    appendf(&text, "# inter sync: 1-element all-reduce over all %d ranks %.3f us\n", nranks,
            nt.syncUs);
    appendf(&text, "# inter msg: %d 1-byte messages at once, answered by one: %.3f us round trip\n",
            kBurst, nt.burstUs);
    text += interNotes;
    if (intraNode >= 0)
      appendf(&text,
              "# inter gamma and copy: the intra-node values (reductions and copies happen in "
              "memory)\n");
    else
      appendf(&text,
              "# inter gamma and copy: not measured with the intra-node level: the built-in "
              "defaults stand\n");
    appendf(&text,
            "# inter kernel copy (one-sided steps over RMA): not measured; the built-in default "
            "stands\n");
  }
  appendf(&text, "format = 1\n");
  appendLevel(&text, "intra", intra);
  if (nnodes > 1) appendLevel(&text, "inter", inter);

  int status = 0;
  if (gRank == 0) {
    if (outPath.empty()) {
      std::fputs(text.c_str(), stdout);
    } else {
      const std::string tmp = outPath + ".tmp." + std::to_string(getpid());
      FILE* f = std::fopen(tmp.c_str(), "w");
      const bool ok = f != nullptr && std::fputs(text.c_str(), f) >= 0;
      if (f != nullptr && std::fclose(f) != 0) status = 1;
      if (!ok || status != 0 || std::rename(tmp.c_str(), outPath.c_str()) != 0) {
        std::fprintf(stderr, "weft-tune: cannot write %s: %s\n", outPath.c_str(),
                     std::strerror(errno));
        std::remove(tmp.c_str());
        status = 1;
      } else if (nnodes == 1) {
        std::printf(
            "weft-tune: wrote %s (%.1f s): alpha %.3g us, beta %.3g us/B, gamma %.3g us/B, copy "
            "%.3g us/B, sync %.3g us\nuse it with WEFT_TUNE_FILE=%s\n",
            outPath.c_str(), wall, intra.alpha, intra.beta, intra.gamma, intra.copy, intra.sync,
            outPath.c_str());
      } else {
        std::string intraSummary = "intra not measured (no node has two ranks)";
        if (intraNode >= 0) {
          char buf[192];
          std::snprintf(buf, sizeof buf,
                        "intra alpha %.3g us, beta %.3g us/B, gamma %.3g us/B, copy %.3g us/B, "
                        "sync %.3g us",
                        intra.alpha, intra.beta, intra.gamma, intra.copy, intra.sync);
          intraSummary = buf;
        }
        std::printf(
            "weft-tune: wrote %s (%.1f s, %d nodes): %s; inter alpha %.3g us, beta %.3g us/B, "
            "sync %.3g us\nuse it with WEFT_TUNE_FILE=%s\n",
            outPath.c_str(), wall, nnodes, intraSummary.c_str(), inter.alpha, inter.beta,
            inter.sync, outPath.c_str());
      }
    }
  }
  check(world, weftCommDestroy(gWorld), "weftCommDestroy");
  return status;
}
