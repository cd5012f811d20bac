// weft-tune: measures this machine's cost-model constants through weft's public API and writes a
// tuning file for WEFT_TUNE_FILE (format in docs/tuning.md). Run it under a launcher:
//
//   weftrun -n 2 build/tools/weft-tune -o tune.txt     (a few seconds; --quick: under one)
//
// What is measured (the median of several repetitions; times combined over ranks by their maximum):
//   alpha  half the round trip of a 1-byte send/recv ping-pong between ranks 0 and 1
//   beta   half the round trip of a large ping-pong, less alpha, per byte
//   gamma  a reduce-scatter less an all-gather of the same bytes per rank, per byte reduced:
//          (T_rs - T_ag)/((p-1) n). Algorithms of one family (ring and ring, one_sided and
//          one_sided) move the same bytes in both and differ by the reduction; the file notes
//          which ran, and warns when they differ.
//   copy   memcpy of a large buffer written beforehand (no page faults), per byte
//   sync   a 1-element all-reduce over all ranks: the cheapest barrier the API offers
// Only the intra-node level is measured (the ranks of one weftrun share a node); the file leaves
// the inter-node constants at their defaults. Rank 0 writes the file (to a temporary name, then
// renamed); without -o it prints it.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

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

weftComm_t gComm = nullptr;
int gRank = 0;

[[noreturn]] void die(weftResult_t r, const char* what) {
  std::fprintf(stderr, "weft-tune: rank %d: %s failed: %s: %s\n", gRank, what,
               weftGetErrorString(r), weftGetLastError(gComm));
  if (gComm != nullptr) weftCommAbort(gComm);
  std::exit(1);
}
void check(weftResult_t r, const char* what) {
  if (r != weftSuccess) die(r, what);
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void barrier() {
  float in = 0, out = 0;
  check(weftAllReduce(&in, &out, 1, weftFloat32, weftSum, gComm, nullptr), "barrier all-reduce");
}

// Half the round trip of `iters` ping-pongs of `bytes` between ranks 0 and 1, in us (0 elsewhere).
double pingPong(std::vector<char>& buf, size_t bytes, int iters) {
  if (gRank > 1) return 0;
  const int peer = 1 - gRank;
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) {
    if (gRank == 0) {
      check(weftSend(buf.data(), bytes, weftUint8, peer, gComm, nullptr), "send");
      check(weftRecv(buf.data(), bytes, weftUint8, peer, gComm, nullptr), "recv");
    } else {
      check(weftRecv(buf.data(), bytes, weftUint8, peer, gComm, nullptr), "recv");
      check(weftSend(buf.data(), bytes, weftUint8, peer, gComm, nullptr), "send");
    }
  }
  return seconds(t0, Clock::now()) * 1e6 / iters / 2;
}

// Median over reps of the time per call of `call`, each rep `iters` calls after a barrier, in us.
template <typename F>
double timeCalls(int reps, int iters, F call) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    barrier();
    const auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i)
      call();
    t.push_back(seconds(t0, Clock::now()) * 1e6 / iters);
  }
  return median(t);
}

const char* algorithmFor(const char* coll, size_t count) {
  const char* name = nullptr;
  check(weftCommGetAlgorithm(gComm, coll, count, weftFloat32, weftSum, &name),
        "weftCommGetAlgorithm");
  return name;
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

void usage(FILE* f) {
  std::fprintf(f,
               "usage: weftrun -n N weft-tune [-o FILE] [--quick]\n"
               "Measures alpha, beta, gamma, copy and sync of the intra-node cost model through "
               "weft's API and\nwrites a tuning file for WEFT_TUNE_FILE (docs/tuning.md). N >= 2.\n"
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
  const auto start = Clock::now();
  const weftResult_t init = weftCommInitFromEnv(&gComm);
  if (init != weftSuccess) {
    std::fprintf(stderr,
                 "weft-tune: cannot create a communicator: %s\n(run it under a launcher: weftrun "
                 "-n 2 weft-tune -o tune.txt)\n",
                 weftGetLastError(nullptr));
    return 1;
  }
  int nranks = 1;
  check(weftCommUserRank(gComm, &gRank), "weftCommUserRank");
  check(weftCommCount(gComm, &nranks), "weftCommCount");
  if (nranks < 2) {
    std::fprintf(stderr, "weft-tune: needs at least 2 ranks (weftrun -n 2 weft-tune ...)\n");
    weftCommDestroy(gComm);
    return 2;
  }

  // copy: memcpy between two buffers written beforehand, on every rank at once.
  std::vector<double> copyT;
  {
    std::vector<char> a(plan.copyBytes, 1), b(plan.copyBytes, 2);
    std::memcpy(b.data(), a.data(), plan.copyBytes);  // warm-up
    barrier();
    for (int r = 0; r < plan.copyReps; ++r) {
      const auto t0 = Clock::now();
      std::memcpy(r % 2 ? a.data() : b.data(), r % 2 ? b.data() : a.data(), plan.copyBytes);
      copyT.push_back(seconds(t0, Clock::now()) * 1e6);
    }
  }
  const double copyUs = median(copyT);

  // alpha and beta: ping-pong between ranks 0 and 1.
  std::vector<char> pbuf(plan.bigBytes, 3);
  std::vector<double> small, big;
  barrier();
  (void)pingPong(pbuf, 1, plan.pingIters / 10 + 1);
  for (int r = 0; r < plan.pingReps; ++r)
    small.push_back(pingPong(pbuf, 1, plan.pingIters));
  (void)pingPong(pbuf, plan.bigBytes, 1);
  for (int r = 0; r < plan.bigReps; ++r)
    big.push_back(pingPong(pbuf, plan.bigBytes, plan.bigIters));
  const double smallUs = median(small), bigUs = median(big);
  pbuf = std::vector<char>();

  // sync: a 1-element all-reduce.
  float one = 1, sum = 0;
  for (int i = 0; i < 20; ++i)
    check(weftAllReduce(&one, &sum, 1, weftFloat32, weftSum, gComm, nullptr), "all-reduce");
  const double syncUs = timeCalls(plan.syncReps, plan.syncIters, [&] {
    check(weftAllReduce(&one, &sum, 1, weftFloat32, weftSum, gComm, nullptr), "all-reduce");
  });

  // gamma: reduce-scatter against all-gather of the same bytes per rank.
  const size_t redBytes =
      std::max<size_t>(64 << 10, std::min(plan.redBytes, (size_t{64} << 20) / nranks)) / 4 * 4;
  const size_t count = redBytes / sizeof(float);
  const char* rsAlgo = algorithmFor("reducescatter", count);
  const char* agAlgo = algorithmFor("allgather", count);
  double rsUs = 0, agUs = 0;
  {
    std::vector<float> whole(count * static_cast<size_t>(nranks), 1.0f), part(count, 1.0f);
    check(weftReduceScatter(whole.data(), part.data(), count, weftFloat32, weftSum, gComm, nullptr),
          "reduce-scatter");
    rsUs = timeCalls(plan.redReps, plan.redIters, [&] {
      check(
          weftReduceScatter(whole.data(), part.data(), count, weftFloat32, weftSum, gComm, nullptr),
          "reduce-scatter");
    });
    check(weftAllGather(part.data(), whole.data(), count, weftFloat32, gComm, nullptr),
          "all-gather");
    agUs = timeCalls(plan.redReps, plan.redIters, [&] {
      check(weftAllGather(part.data(), whole.data(), count, weftFloat32, gComm, nullptr),
            "all-gather");
    });
  }

  // Every rank's times, combined by their maximum.
  double mine[6] = {smallUs, bigUs, rsUs, agUs, syncUs, copyUs}, all[6] = {};
  check(weftAllReduce(mine, all, 6, weftFloat64, weftMax, gComm, nullptr), "combining times");
  const double p = nranks, n = static_cast<double>(redBytes);
  const double alpha = all[0];
  double beta = (all[1] - alpha) / static_cast<double>(plan.bigBytes);
  const double copy = all[5] / static_cast<double>(plan.copyBytes);
  double gamma = (all[2] - all[3]) / ((p - 1) * n);
  std::string notes;
  if (!(beta > 0)) {
    notes +=
        "# beta: the large ping-pong was not slower than the small one; copy's rate stands in\n";
    beta = copy;
  }
  if (std::strcmp(rsAlgo, agAlgo) != 0)
    notes += std::string(
                 "# gamma assumes that the reduce-scatter and the all-gather move the same "
                 "bytes, as\n# algorithms of one family do; the tuner chose ") +
             rsAlgo + " and " + agAlgo + " (force one with WEFT_ALGO)\n";
  if (!(gamma > 0)) {
    notes += "# gamma: the reduction did not show above the noise; copy's rate stands in\n";
    gamma = copy;
  }

  const double wall = seconds(start, Clock::now());
  int code = 0;
  weftGetVersion(&code);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  char date[64] = {};
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string text;
  appendf(&text, "# weft tuning file (docs/tuning.md), written by weft-tune of weft %d.%d.%d\n",
          code / 10000, code / 100 % 100, code % 100);
  appendf(&text, "# host %s, %d ranks, %s, %s measurement in %.1f s\n", host, nranks, date,
          quick ? "quick" : "full", wall);
  appendf(&text, "# ping-pong half round trip: 1 B %.3f us, %zu B %.1f us (%.2f GB/s)\n", all[0],
          plan.bigBytes, all[1], static_cast<double>(plan.bigBytes) / all[1] / 1e3);
  appendf(&text, "# %zu B per rank: reduce-scatter (%s) %.1f us, all-gather (%s) %.1f us\n",
          redBytes, rsAlgo, all[2], agAlgo, all[3]);
  appendf(&text, "# 1-element all-reduce %.3f us; memcpy of %zu B %.1f us (%.2f GB/s)\n", all[4],
          plan.copyBytes, all[5], static_cast<double>(plan.copyBytes) / all[5] / 1e3);
  text += notes;
  appendf(
      &text,
      "# The inter-node constants are not measured on one node: the built-in defaults stand.\n");
  appendf(&text, "format = 1\n");
  appendf(&text, "intra.alpha_us           = %-12.6g # latency of one message hand-off (us)\n",
          alpha);
  appendf(&text, "intra.beta_us_per_byte   = %-12.6g # per byte moved through a message (us/B)\n",
          beta);
  appendf(&text, "intra.gamma_us_per_byte  = %-12.6g # per byte reduced (us/B)\n", gamma);
  appendf(&text,
          "intra.copy_us_per_byte   = %-12.6g # per byte copied straight from memory (us/B)\n",
          copy);
  appendf(&text, "intra.sync_us            = %-12.6g # one barrier-like synchronisation (us)\n",
          all[4]);

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
      } else {
        std::printf(
            "weft-tune: wrote %s (%.1f s): alpha %.3g us, beta %.3g us/B, gamma %.3g us/B, copy "
            "%.3g us/B, sync %.3g us\nuse it with WEFT_TUNE_FILE=%s\n",
            outPath.c_str(), wall, alpha, beta, gamma, copy, all[4], outPath.c_str());
      }
    }
  }
  check(weftCommDestroy(gComm), "weftCommDestroy");
  return status;
}
