// weft_p2p_perf: point-to-point latency and bandwidth between ranks 0 and 1 through the public API
// (weftSend/weftRecv); any other ranks stay idle (they only create and destroy the communicator).
//
// Per size: lat_us = half the round trip of a ping-pong (rank 0 sends, rank 1 sends the message
// back); bw_GBps = W messages sent back to back in one weftGroupStart/weftGroupEnd (rank 1 receives
// them in one group), then a 1-byte ack from rank 1; GB/s = W * size / time, 1e9 bytes. Before the
// timed loops, one checked iteration of each: fresh patterns per message, receive buffers poisoned
// first, and rank 0 checks the echo of its ping. transport = the transport whose bytes rose the
// most on rank 0 during the timed bandwidth loop (weftCommTransportStats).
#include <getopt.h>

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "weft/weft.h"

namespace {

struct Options {
  size_t min_bytes = 8, max_bytes = 4 << 20;
  size_t factor = 2;
  int iters = 100, warmup = 10, window = 16, checks = 1;
  bool same_buffer = false;
};

weftComm_t gComm = nullptr;
int gRank = 0;

void Ok(weftResult_t r, const char* what) {
  if (r == weftSuccess) return;
  std::fflush(stdout);
  std::fprintf(stderr, "weft_p2p_perf: rank %d: %s failed: %s: %s\n", gRank, what,
               weftGetErrorString(r), weftGetLastError(gComm));
  if (gComm) weftCommAbort(gComm);
  std::exit(1);
}

bool ParseSize(const char* s, size_t* out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *s == '-') return false;
  int shift = 0;
  if (*end == 'K' || *end == 'k') shift = 10;
  if (*end == 'M' || *end == 'm') shift = 20;
  if (*end == 'G' || *end == 'g') shift = 30;
  if (shift) ++end;
  if (*end != '\0' || v == 0) return false;
  *out = static_cast<size_t>(v) << shift;
  return true;
}

int Usage(const char* prog, int status) {
  if (gRank == 0 || status == 0)
    std::fprintf(
        status ? stderr : stdout,
        "usage: weftrun -n 2 %s [-b SIZE] [-e SIZE] [-f FACTOR] [-n ITERS] [-w WARMUP] [-W WINDOW] "
        "[-c 0|1]\n"
        "  -b/-e smallest/largest message (K/M/G; default 8 / 4M), -f size factor (default 2),\n"
        "  -n timed iterations (default 100), -w warm-up iterations (default 10),\n"
        "  -W messages per bandwidth iteration (default 16), -c 0 skips the data checks,\n"
        "  -S 1 sends every message of a timed window from one buffer into one buffer, as\n"
        "     ucx_perftest's tag_bw does (default 0: a buffer per message, as an application "
        "would)\n",
        prog);
  return status;
}

// Byte i of message m of a checked iteration: period 251 (a prime), shifted per message and seed.
uint8_t Pattern(size_t i, size_t m, size_t seed) {
  return static_cast<uint8_t>((i + 13 * m + 7 * seed) % 251);
}
void Fill(uint8_t* p, size_t n, size_t m, size_t seed) {
  for (size_t i = 0; i < n; ++i)
    p[i] = Pattern(i, m, seed);
}
int64_t Wrong(const uint8_t* p, size_t n, size_t m, size_t seed) {
  int64_t w = 0;
  for (size_t i = 0; i < n; ++i)
    w += p[i] != Pattern(i, m, seed);
  return w;
}

double Now() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One ping-pong: rank 0 sends sbuf and receives the echo into rbuf; rank 1 echoes what it receives.
void PingPong(size_t n, uint8_t* sbuf, uint8_t* rbuf) {
  if (gRank == 0) {
    Ok(weftSend(sbuf, n, weftUint8, 1, gComm, nullptr), "weftSend (ping)");
    Ok(weftRecv(rbuf, n, weftUint8, 1, gComm, nullptr), "weftRecv (pong)");
  } else if (gRank == 1) {
    Ok(weftRecv(rbuf, n, weftUint8, 0, gComm, nullptr), "weftRecv (ping)");
    Ok(weftSend(rbuf, n, weftUint8, 0, gComm, nullptr), "weftSend (pong)");
  }
}

// One bandwidth iteration: w messages of n bytes from rank 0 (message m at buf + m*stride), then
// an ack.
void Window(size_t n, int w, uint8_t* sbuf, uint8_t* rbuf, uint8_t* ack, size_t stride) {
  if (gRank > 1) return;
  Ok(weftGroupStart(), "weftGroupStart");
  for (int m = 0; m < w; ++m) {
    if (gRank == 0)
      Ok(weftSend(sbuf + m * stride, n, weftUint8, 1, gComm, nullptr), "weftSend (window)");
    else
      Ok(weftRecv(rbuf + m * stride, n, weftUint8, 0, gComm, nullptr), "weftRecv (window)");
  }
  Ok(weftGroupEnd(), "weftGroupEnd (window)");
  if (gRank == 0)
    Ok(weftRecv(ack, 1, weftUint8, 1, gComm, nullptr), "weftRecv (ack)");
  else
    Ok(weftSend(ack, 1, weftUint8, 0, gComm, nullptr), "weftSend (ack)");
}

// Ranks 0 and 1 in step: a 1-byte exchange. (Only point-to-point calls: weft numbers every call of
// a communicator, so a collective after calls that only ranks 0 and 1 made would not match on the
// others.)
void Barrier() {
  uint8_t b = 0;
  PingPong(1, &b, &b);
}

// The number of wrong bytes found on ranks 0 and 1, on rank 0.
int64_t SumWrong(int64_t wrong) {
  int64_t other = 0;
  if (gRank == 0) Ok(weftRecv(&other, 1, weftInt64, 1, gComm, nullptr), "weftRecv (#wrong)");
  if (gRank == 1) Ok(weftSend(&wrong, 1, weftInt64, 0, gComm, nullptr), "weftSend (#wrong)");
  return wrong + other;
}

std::vector<weftTransportStats_t> Stats() {
  int n = 0;
  Ok(weftCommTransportStats(gComm, nullptr, &n), "weftCommTransportStats");
  std::vector<weftTransportStats_t> st(static_cast<size_t>(n));
  Ok(weftCommTransportStats(gComm, st.data(), &n), "weftCommTransportStats");
  st.resize(static_cast<size_t>(n));
  return st;
}

}  // namespace

int main(int argc, char** argv) {
  for (const char* v : {"WEFT_RANK", "RANK", "OMPI_COMM_WORLD_RANK"})
    if (const char* s = std::getenv(v)) {
      gRank = std::atoi(s);
      break;
    }
  Options o;
  int c;
  opterr = gRank == 0;
  while ((c = getopt(argc, argv, "b:e:f:n:w:W:c:S:h")) != -1) {
    long v = optarg ? std::atol(optarg) : 0;
    switch (c) {
      case 'b':
        if (!ParseSize(optarg, &o.min_bytes)) return Usage(argv[0], 2);
        break;
      case 'e':
        if (!ParseSize(optarg, &o.max_bytes)) return Usage(argv[0], 2);
        break;
      case 'f':
        if (v < 2) return Usage(argv[0], 2);
        o.factor = static_cast<size_t>(v);
        break;
      case 'n':
        if ((o.iters = static_cast<int>(v)) < 1) return Usage(argv[0], 2);
        break;
      case 'w':
        if ((o.warmup = static_cast<int>(v)) < 0) return Usage(argv[0], 2);
        break;
      case 'W':
        if ((o.window = static_cast<int>(v)) < 1) return Usage(argv[0], 2);
        break;
      case 'c':
        o.checks = v != 0;
        break;
      case 'S':
        o.same_buffer = v != 0;
        break;
      case 'h':
        return Usage(argv[0], 0);
      default:
        return Usage(argv[0], 2);
    }
  }
  if (optind < argc || o.max_bytes < o.min_bytes) return Usage(argv[0], 2);

  Ok(weftCommInitFromEnv(&gComm), "weftCommInitFromEnv");
  int nranks = 0;
  Ok(weftCommUserRank(gComm, &gRank), "weftCommUserRank");
  Ok(weftCommCount(gComm, &nranks), "weftCommCount");
  if (nranks < 2) {
    std::fprintf(stderr, "weft_p2p_perf: needs at least 2 ranks (has %d)\n", nranks);
    weftCommDestroy(gComm);
    return 2;
  }
  const size_t cap = gRank <= 1 ? o.max_bytes * static_cast<size_t>(o.window) : 0;
  std::vector<uint8_t> sbuf(cap), rbuf(cap);  // written here: no first touch in the timed loops
  uint8_t ack = 0;
  if (gRank == 0) {
    int code = 0;
    weftGetVersion(&code);
    std::printf(
        "# weft %d.%d.%d p2p_perf: nranks %d, rank 0 <-> rank 1, window %d%s, iters %d, warmup %d, "
        "checks %d\n#\n",
        code / 10000, code / 100 % 100, code % 100, nranks, o.window,
        o.same_buffer ? " (one buffer)" : "", o.iters, o.warmup, o.checks);
    std::printf("%12s  %10s  %10s  %8s  %s\n", "# size (B)", "lat_us", "bw_GBps", "#wrong",
                "transport");
    std::fflush(stdout);
  }
  int64_t total_wrong = 0;
  std::vector<size_t> sizes;
  for (size_t n = o.min_bytes; n <= o.max_bytes && n >= o.min_bytes; n *= o.factor)
    sizes.push_back(n);
  if (sizes.back() != o.max_bytes) sizes.push_back(o.max_bytes);
  for (const size_t n : sizes) {
    // Checked iterations: a ping-pong (rank 1 checks the ping, rank 0 the echo) and a window.
    int64_t wrong = 0;
    if (o.checks && gRank <= 1) {
      const size_t seed = n % 97;
      Fill(sbuf.data(), n, 0, seed);
      std::memset(rbuf.data(), 0xff, n);
      PingPong(n, sbuf.data(), rbuf.data());
      wrong += Wrong(rbuf.data(), n, 0, seed);
      for (int m = 0; m < o.window; ++m)
        Fill(sbuf.data() + m * n, n, static_cast<size_t>(m) + 1, seed);
      std::memset(rbuf.data(), 0xff, n * o.window);
      Window(n, o.window, sbuf.data(), rbuf.data(), &ack, n);
      if (gRank == 1)
        for (int m = 0; m < o.window; ++m)
          wrong += Wrong(rbuf.data() + m * n, n, static_cast<size_t>(m) + 1, seed);
    }
    const int64_t sum = SumWrong(wrong);
    total_wrong += sum;

    // Latency.
    for (int i = 0; i < o.warmup; ++i)
      PingPong(n, sbuf.data(), rbuf.data());
    Barrier();
    double t0 = Now();
    for (int i = 0; i < o.iters; ++i)
      PingPong(n, sbuf.data(), rbuf.data());
    const double lat_us = (Now() - t0) / o.iters / 2;

    // Bandwidth.
    const size_t stride = o.same_buffer ? 0 : n;
    for (int i = 0; i < o.warmup; ++i)
      Window(n, o.window, sbuf.data(), rbuf.data(), &ack, stride);
    Barrier();
    const std::vector<weftTransportStats_t> before =
        gRank == 0 ? Stats() : std::vector<weftTransportStats_t>{};
    t0 = Now();
    for (int i = 0; i < o.iters; ++i)
      Window(n, o.window, sbuf.data(), rbuf.data(), &ack, stride);
    const double bw_us = (Now() - t0) / o.iters;
    if (gRank == 0) {
      const std::vector<weftTransportStats_t> after = Stats();
      std::string used = "-";
      unsigned long long most = 0;
      for (size_t k = 0; k < after.size() && k < before.size(); ++k) {
        const unsigned long long d = after[k].bytesSent - before[k].bytesSent;
        if (d > most) {
          most = d;
          used = after[k].name;
        }
      }
      const double gbps = static_cast<double>(n) * o.window / bw_us / 1e3;
      std::printf("%12zu  %10.2f  %10.4f  %8" PRId64 "  %s\n", n, lat_us, gbps, sum, used.c_str());
      std::fflush(stdout);
    }
    Barrier();
  }
  if (gRank == 0) {
    for (const weftTransportStats_t& t : Stats())
      std::printf("# transport %s device \"%s\" peers %d sent %llu B\n", t.name, t.device, t.peers,
                  t.bytesSent);
    std::printf("# Out of bounds values : %" PRId64 " %s\n", total_wrong,
                total_wrong ? "FAILED" : "OK");
  }
  Ok(weftCommDestroy(gComm), "weftCommDestroy");
  return total_wrong ? 1 : 0;
}
