// Shared driver of the perf binaries: see common.h.
#include "common.h"

#include <unistd.h>

#include <getopt.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>

namespace weftperf {
namespace {

// ------------------------------------------------------------------------------------------------
// Data types

enum class Kind { kSigned, kUnsigned, kFloat };

struct TypeInfo {
  weftDataType_t type;
  const char* name;
  size_t size;
  Kind kind;
  int exp_bits;  // floating types: exponent and mantissa bits (0 for integers)
  int man_bits;
  bool finite_only;  // e4m3 "fn": no infinities, all-ones is NaN
  double max_exact;  // every integer of magnitude <= max_exact is representable
  int max_log2;      // 2^max_log2 (and -2^max_log2 for signed types) is representable
};

constexpr double kTwo53 = 9007199254740992.0;
const TypeInfo kTypes[] = {
    {weftInt8, "int8", 1, Kind::kSigned, 0, 0, false, 127, 6},
    {weftUint8, "uint8", 1, Kind::kUnsigned, 0, 0, false, 255, 7},
    {weftInt32, "int32", 4, Kind::kSigned, 0, 0, false, 2147483647.0, 30},
    {weftUint32, "uint32", 4, Kind::kUnsigned, 0, 0, false, 4294967295.0, 31},
    {weftInt64, "int64", 8, Kind::kSigned, 0, 0, false, kTwo53, 62},
    {weftUint64, "uint64", 8, Kind::kUnsigned, 0, 0, false, kTwo53, 63},
    {weftFloat16, "half", 2, Kind::kFloat, 5, 10, false, 2048, 15},
    {weftFloat32, "float", 4, Kind::kFloat, 8, 23, false, 16777216.0, 127},
    {weftFloat64, "double", 8, Kind::kFloat, 11, 52, false, kTwo53, 1023},
    {weftBfloat16, "bfloat16", 2, Kind::kFloat, 8, 7, false, 256, 127},
    {weftFloat8e4m3, "f8e4m3", 1, Kind::kFloat, 4, 3, true, 16, 8},
    {weftFloat8e5m2, "f8e5m2", 1, Kind::kFloat, 5, 2, false, 8, 15},
};

struct OpInfo {
  weftRedOp_t op;
  const char* name;
};
const OpInfo kOps[] = {
    {weftSum, "sum"}, {weftProd, "prod"}, {weftMax, "max"}, {weftMin, "min"}, {weftAvg, "avg"}};

// Rounds v to the nearest (ties to even) value of a small binary floating format and returns its
// bits.
uint64_t EncodeMinifloat(double v, int exp_bits, int man_bits, bool finite_only) {
  const uint64_t sign = std::signbit(v) ? uint64_t{1} << (exp_bits + man_bits) : 0;
  const uint64_t exp_all = (uint64_t{1} << exp_bits) - 1;
  const uint64_t man_all = (uint64_t{1} << man_bits) - 1;
  const uint64_t nan = sign | (exp_all << man_bits) | man_all;
  if (std::isnan(v)) return nan;
  const uint64_t overflow = finite_only ? nan : (sign | (exp_all << man_bits));
  if (std::isinf(v)) return overflow;
  const double a = std::fabs(v);
  if (a == 0) return sign;
  const int bias = (1 << (exp_bits - 1)) - 1;
  int e = 0;
  std::frexp(a, &e);
  int exponent = std::max(e - 1, 1 - bias);  // below the normal range: the subnormal scale
  uint64_t m = static_cast<uint64_t>(std::nearbyint(std::ldexp(a, man_bits - exponent)));
  if (m >= (uint64_t{2} << man_bits)) {  // rounding carried into the next binade
    m >>= 1;
    ++exponent;
  }
  uint64_t exp_field = 0;
  if (m >= (uint64_t{1} << man_bits)) {
    exp_field = static_cast<uint64_t>(exponent + bias);
    m -= uint64_t{1} << man_bits;
  }
  const uint64_t max_exp = finite_only ? exp_all : exp_all - 1;
  if (exp_field > max_exp || (finite_only && exp_field == exp_all && m == man_all)) return overflow;
  return sign | (exp_field << man_bits) | m;
}

// The bits of v (an exactly representable value, or an average to be rounded) stored in type t.
uint64_t Encode(const TypeInfo& t, double v) {
  switch (t.kind) {
    case Kind::kSigned: {
      uint64_t bits = static_cast<uint64_t>(static_cast<int64_t>(v));
      return t.size == 8 ? bits : bits & ((uint64_t{1} << (8 * t.size)) - 1);
    }
    case Kind::kUnsigned:
      return static_cast<uint64_t>(v);
    case Kind::kFloat:
      break;
  }
  if (t.type == weftFloat32) {
    float f = static_cast<float>(v);
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits;
  }
  if (t.type == weftFloat64) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    return bits;
  }
  return EncodeMinifloat(v, t.exp_bits, t.man_bits, t.finite_only);
}

// Distance in units in the last place between two values of a sign-magnitude floating type `bits`
// wide.
uint64_t UlpDistance(uint64_t a, uint64_t b, int bits) {
  const uint64_t sign = uint64_t{1} << (bits - 1);
  auto ordered = [sign](uint64_t x) {
    return (x & sign) ? -static_cast<int64_t>(x & ~sign) : static_cast<int64_t>(x);
  };
  const int64_t d = ordered(a) - ordered(b);
  return static_cast<uint64_t>(d < 0 ? -d : d);
}

// ------------------------------------------------------------------------------------------------
// Input values

// Inputs repeat every kPeriod elements; a prime, so that chunks moved by a power of two are caught.
constexpr size_t kPeriod = 4093;
// Largest magnitude of an input value.
constexpr double kCap = 1000;

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

enum class Mode { kSum, kProd, kAny };  // sum and avg; prod; max, min and copies

// Value of input index k (mod kPeriod) on `rank`, chosen so that the reduction over all ranks is
// exact in any order: sums stay within the type's exact integers, products are +-1 and +-2 with at
// most max_log2 factors of two in all.
double InputValue(const TypeInfo& t, Mode mode, int nranks, int rank, uint64_t seed, size_t k) {
  const uint64_t h = Mix(seed * 0x100000001b3ULL ^ Mix(static_cast<uint64_t>(rank) << 32 | k));
  const bool negatives = t.kind != Kind::kUnsigned;
  if (mode == Mode::kProd) {
    const int twos = std::min(nranks, t.max_log2);
    const double mag = (rank < twos && (h & 1)) ? 2 : 1;
    return (negatives && (h & 2)) ? -mag : mag;
  }
  double limit = std::min(kCap, t.max_exact);
  if (mode == Mode::kSum) {
    // The ranks that contribute (all of them unless the type is tiny) share the exact range.
    const int contributors = static_cast<int>(std::min<double>(nranks, t.max_exact));
    if (rank >= contributors) return 0;
    limit = std::min(kCap, std::floor(t.max_exact / contributors));
  }
  const uint64_t span = static_cast<uint64_t>(limit);
  if (negatives)
    return static_cast<double>(static_cast<int64_t>(h % (2 * span + 1)) - int64_t(span));
  return static_cast<double>(h % (span + 1));
}

// The expected result of reducing `vals` (one per rank) with op, rounded into type t.
uint64_t Reduce(const TypeInfo& t, weftRedOp_t op, const double* vals, int nranks) {
  double r = vals[0];
  for (int q = 1; q < nranks; ++q) {
    switch (op) {
      case weftProd:
        r *= vals[q];
        break;
      case weftMax:
        r = std::max(r, vals[q]);
        break;
      case weftMin:
        r = std::min(r, vals[q]);
        break;
      default:
        r += vals[q];
        break;
    }
  }
  if (op == weftAvg) {
    if (t.kind == Kind::kFloat) return Encode(t, r / nranks);
    return Encode(t, static_cast<double>(static_cast<int64_t>(r) / nranks));  // truncated
  }
  return Encode(t, r);
}

// Per-rank input tables and the reduced table for one (type, op, seed), kPeriod entries each, as
// raw bits.
struct Tables {
  std::vector<std::vector<uint64_t>> input;  // [rank][k]
  std::vector<uint64_t> reduced;             // [k]
};

Tables MakeTables(const TypeInfo& t, bool reduces, weftRedOp_t op, int nranks, uint64_t seed) {
  const Mode mode = !reduces                           ? Mode::kAny
                    : (op == weftSum || op == weftAvg) ? Mode::kSum
                    : op == weftProd                   ? Mode::kProd
                                                       : Mode::kAny;
  Tables tab;
  tab.input.assign(nranks, std::vector<uint64_t>(kPeriod));
  if (reduces) tab.reduced.resize(kPeriod);
  std::vector<double> vals(nranks);
  for (size_t k = 0; k < kPeriod; ++k) {
    for (int q = 0; q < nranks; ++q) {
      vals[q] = InputValue(t, mode, nranks, q, seed, k);
      tab.input[q][k] = Encode(t, vals[q]);
    }
    if (reduces) tab.reduced[k] = Reduce(t, op, vals.data(), nranks);
  }
  return tab;
}

template <typename U>
void FillTyped(void* dst, size_t count, const std::vector<uint64_t>& table) {
  U* d = static_cast<U*>(dst);
  U period[kPeriod];
  for (size_t k = 0; k < kPeriod; ++k)
    period[k] = static_cast<U>(table[k]);
  for (size_t i = 0; i < count; i += kPeriod) {
    std::memcpy(d + i, period, std::min(kPeriod, count - i) * sizeof(U));
  }
}

void Fill(void* dst, size_t count, size_t elt, const std::vector<uint64_t>& table) {
  switch (elt) {
    case 1:
      FillTyped<uint8_t>(dst, count, table);
      break;
    case 2:
      FillTyped<uint16_t>(dst, count, table);
      break;
    case 4:
      FillTyped<uint32_t>(dst, count, table);
      break;
    default:
      FillTyped<uint64_t>(dst, count, table);
      break;
  }
}

struct Mismatch {
  size_t wrong = 0;
  size_t first_index = 0;
  uint64_t got = 0, want = 0;
};

// Compares out[0, length) with table[(start + j) % kPeriod]; ulp_tol > 0 allows that many ulps
// (floats).
template <typename U>
void CompareTyped(const void* out, size_t offset, size_t length, const std::vector<uint64_t>& table,
                  size_t start, uint64_t ulp_tol, Mismatch* mm) {
  const U* o = static_cast<const U*>(out) + offset;
  U want[kPeriod];
  for (size_t k = 0; k < kPeriod; ++k)
    want[k] = static_cast<U>(table[k]);
  size_t k = start % kPeriod;
  for (size_t j = 0; j < length; ++j) {
    if (o[j] != want[k] && (ulp_tol == 0 || UlpDistance(o[j], want[k], 8 * sizeof(U)) > ulp_tol)) {
      if (mm->wrong++ == 0) {
        mm->first_index = offset + j;
        mm->got = o[j];
        mm->want = want[k];
      }
    }
    if (++k == kPeriod) k = 0;
  }
}

void Compare(const void* out, size_t elt, const Segment& s, const std::vector<uint64_t>& table,
             uint64_t ulp_tol, Mismatch* mm) {
  switch (elt) {
    case 1:
      CompareTyped<uint8_t>(out, s.offset, s.length, table, s.src_index, ulp_tol, mm);
      break;
    case 2:
      CompareTyped<uint16_t>(out, s.offset, s.length, table, s.src_index, ulp_tol, mm);
      break;
    case 4:
      CompareTyped<uint32_t>(out, s.offset, s.length, table, s.src_index, ulp_tol, mm);
      break;
    default:
      CompareTyped<uint64_t>(out, s.offset, s.length, table, s.src_index, ulp_tol, mm);
      break;
  }
}

// ------------------------------------------------------------------------------------------------
// Flags

struct Options {
  size_t min_bytes = 32 << 20;
  size_t max_bytes = 32 << 20;
  size_t step_bytes = 1 << 20;
  uint64_t factor = 1;  // > 1: sizes grow by this factor, otherwise by step_bytes
  int iters = 20;
  int warmup = 5;
  int checks = 1;
  std::vector<const OpInfo*> ops{&kOps[0]};
  std::vector<const TypeInfo*> types{&kTypes[7]};
  int root = 0;
  int blocking = 1;
  int timeout_s = 0;
  int average = 2;     // 0 mean, 1 min, 2 max, 3 sum
  int registered = 0;  // 1: buffers from weftMemAlloc, registered with weftCommRegister
  std::string json;
};

const char* const kAverageNames[] = {"average", "min", "max", "sum"};

int EnvRank() {
  for (const char* v : {"WEFT_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"}) {
    if (const char* s = std::getenv(v)) return std::atoi(s);
  }
  return 0;
}

void Usage(FILE* f, const char* prog) {
  std::fprintf(
      f,
      "usage: weftrun -n NRANKS %s [flags]\n"
      "  -b SIZE   smallest size in bytes (K/M/G suffixes; default 32M)\n"
      "  -e SIZE   largest size in bytes (default 32M; the sweep always ends with it)\n"
      "  -f N      multiply the size by N from one row to the next (N > 1; default 1 = use -i)\n"
      "  -i SIZE   add SIZE bytes from one row to the next when -f is 1 (default 1M)\n"
      "  -n N      timed iterations per row (default 20)\n"
      "  -w N      warm-up iterations per row (default 5)\n"
      "  -c N      checked iterations per row, each with other data and shifted buffers (default "
      "1;\n"
      "            0 = no checks)\n"
      "  -o OP     sum, prod, max, min, avg or all (default sum; reductions only)\n"
      "  -d TYPE   int8, uint8, int32, uint32, int64, uint64, half, float, double, bfloat16, "
      "f8e4m3,\n"
      "            f8e5m2 or all (default float); a comma-separated list is accepted too\n"
      "  -r ROOT   root rank (default 0; rooted collectives only)\n"
      "  -z 0|1    1 = blocking calls (default), 0 = non-blocking calls waited for after each "
      "loop\n"
      "  -T SEC    abort with an error when one row takes longer than SEC seconds (default 0 = "
      "never)\n"
      "  -a N      time per iteration across ranks: 0 average, 1 min, 2 max (default), 3 sum\n"
      "  -J FILE   also write every row as JSON to FILE (rank 0)\n"
      "  -R 0|1    1 = buffers from weftMemAlloc, registered with weftCommRegister, which peers\n"
      "            on this host map directly (default 0: ordinary heap buffers)\n"
      "  -h        this help\n"
      "Exit status: 0 all results right, 1 wrong results or a failed call, 2 bad flags, 3 "
      "timeout.\n",
      prog);
}

bool ParseInt(const char* s, long min, long max, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < min || v > max) return false;
  *out = v;
  return true;
}

bool ParseSize(const char* s, size_t* out) {
  char* end = nullptr;
  errno = 0;
  if (*s == '-') return false;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || end == s) return false;
  unsigned shift = 0;
  switch (*end) {
    case 'k':
    case 'K':
      shift = 10;
      ++end;
      break;
    case 'm':
    case 'M':
      shift = 20;
      ++end;
      break;
    case 'g':
    case 'G':
      shift = 30;
      ++end;
      break;
    default:
      break;
  }
  if (*end == 'b' || *end == 'B') ++end;
  if (*end != '\0' || v > (~0ULL >> shift)) return false;
  *out = static_cast<size_t>(v << shift);
  return true;
}

template <typename T>
bool ParseList(const char* s, const T* table, size_t n, std::vector<const T*>* out) {
  out->clear();
  std::string arg(s);
  if (arg == "all") {
    for (size_t i = 0; i < n; ++i)
      out->push_back(&table[i]);
    return true;
  }
  size_t pos = 0;
  while (pos <= arg.size()) {
    size_t comma = arg.find(',', pos);
    if (comma == std::string::npos) comma = arg.size();
    std::string name = arg.substr(pos, comma - pos);
    const T* found = nullptr;
    for (size_t i = 0; i < n; ++i) {
      if (name == table[i].name) found = &table[i];
    }
    if (!found) return false;
    out->push_back(found);
    pos = comma + 1;
  }
  return !out->empty();
}

// Returns -1 when the run should go on, otherwise the exit status.
int ParseOptions(int argc, char** argv, Options* o) {
  const bool talk = EnvRank() == 0;
  auto bad = [&](const char* what) {
    if (talk) {
      if (what) std::fprintf(stderr, "%s: %s\n", argv[0], what);
      Usage(stderr, argv[0]);
    }
    return 2;
  };
  opterr = talk ? 1 : 0;
  int c;
  long v;
  while ((c = getopt(argc, argv, "b:e:f:i:n:w:c:o:d:r:z:T:a:J:R:h")) != -1) {
    switch (c) {
      case 'b':
        if (!ParseSize(optarg, &o->min_bytes) || o->min_bytes == 0) return bad("bad -b");
        break;
      case 'e':
        if (!ParseSize(optarg, &o->max_bytes) || o->max_bytes == 0) return bad("bad -e");
        break;
      case 'f':
        if (!ParseInt(optarg, 1, 1L << 20, &v)) return bad("bad -f");
        o->factor = static_cast<uint64_t>(v);
        break;
      case 'i':
        if (!ParseSize(optarg, &o->step_bytes) || o->step_bytes == 0) return bad("bad -i");
        break;
      case 'n':
        if (!ParseInt(optarg, 1, 1L << 30, &v)) return bad("bad -n");
        o->iters = static_cast<int>(v);
        break;
      case 'w':
        if (!ParseInt(optarg, 0, 1L << 30, &v)) return bad("bad -w");
        o->warmup = static_cast<int>(v);
        break;
      case 'c':
        if (!ParseInt(optarg, 0, 1L << 20, &v)) return bad("bad -c");
        o->checks = static_cast<int>(v);
        break;
      case 'o':
        if (!ParseList(optarg, kOps, std::size(kOps), &o->ops)) return bad("bad -o");
        break;
      case 'd':
        if (!ParseList(optarg, kTypes, std::size(kTypes), &o->types)) return bad("bad -d");
        break;
      case 'r':
        if (!ParseInt(optarg, 0, 1L << 30, &v)) return bad("bad -r");
        o->root = static_cast<int>(v);
        break;
      case 'z':
        if (!ParseInt(optarg, 0, 1, &v)) return bad("bad -z");
        o->blocking = static_cast<int>(v);
        break;
      case 'T':
        if (!ParseInt(optarg, 0, 1L << 30, &v)) return bad("bad -T");
        o->timeout_s = static_cast<int>(v);
        break;
      case 'a':
        if (!ParseInt(optarg, 0, 3, &v)) return bad("bad -a");
        o->average = static_cast<int>(v);
        break;
      case 'J':
        o->json = optarg;
        break;
      case 'R':
        if (!ParseInt(optarg, 0, 1, &v)) return bad("bad -R (0 or 1)");
        o->registered = static_cast<int>(v);
        break;
      case 'h':
        if (talk) Usage(stdout, argv[0]);
        return 0;
      default:
        return bad(nullptr);
    }
  }
  if (optind < argc) return bad("unexpected argument");
  if (o->max_bytes < o->min_bytes) return bad("-e is smaller than -b");
  return -1;
}

std::vector<size_t> Sizes(const Options& o) {
  std::vector<size_t> sizes;
  for (size_t s = o.min_bytes; s <= o.max_bytes;) {
    sizes.push_back(s);
    const size_t next = o.factor > 1 ? s * o.factor : s + o.step_bytes;
    if (next <= s || (o.factor > 1 && next / o.factor != s)) break;  // overflow
    s = next;
  }
  if (sizes.empty() || sizes.back() != o.max_bytes) sizes.push_back(o.max_bytes);
  return sizes;
}

// ------------------------------------------------------------------------------------------------
// Watchdog for -T: a thread that ends the process when the current row runs past its deadline.

class Watchdog {
 public:
  ~Watchdog() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Start(int seconds, int rank) {
    if (seconds <= 0) return;
    seconds_ = seconds;
    rank_ = rank;
    thread_ = std::thread([this] { Loop(); });
  }
  void SetRank(int rank) {
    std::lock_guard<std::mutex> lk(mu_);
    rank_ = rank;
  }
  void Arm(std::string what) {
    if (seconds_ <= 0) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      what_ = std::move(what);
      phase_.clear();
      deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(seconds_);
      armed_ = true;
    }
    cv_.notify_all();
  }

  // Names the current step of the armed row (for the timeout message); keeps the deadline.
  void Note(std::string phase) {
    if (seconds_ <= 0) return;
    std::lock_guard<std::mutex> lk(mu_);
    phase_ = std::move(phase);
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
      if (!armed_) {
        cv_.wait(lk);
        continue;
      }
      const auto deadline = deadline_;
      if (std::chrono::steady_clock::now() >= deadline) {
        std::fflush(stdout);
        std::fprintf(
            stderr, "weft perf: rank %d: timeout: %s%s%s did not finish within -T %d s; aborting\n",
            rank_, what_.c_str(), phase_.empty() ? "" : ", ", phase_.c_str(), seconds_);
        std::fflush(stderr);
        std::_Exit(3);
      }
      cv_.wait_until(lk, deadline);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  std::chrono::steady_clock::time_point deadline_;
  std::string what_;
  std::string phase_;
  int seconds_ = 0;
  int rank_ = -1;
  bool armed_ = false;
  bool stop_ = false;
};

// ------------------------------------------------------------------------------------------------
// The run

struct Row {
  size_t bytes, count;
  const char* type;
  const char* redop;
  int root;
  double time_us[2], algbw[2], busbw[2];
  int64_t wrong[2];        // -1: not checked
  const char* algo = "-";  // the tuner's choice for the out-of-place call (weftCommGetAlgorithmFor)
};

struct Buffer {
  char* ptr = nullptr;
  size_t bytes = 0;
  void* handle = nullptr;  // weftCommRegister's, released before the communicator goes
  bool shared = false;     // from weftMemAlloc
  ~Buffer() {
    if (shared) {
      weftMemFree(ptr);
    } else {
      std::free(ptr);
    }
  }
};

class Runner {
 public:
  Runner(const CollDesc& d, const Options& o, const char* prog) : d_(d), o_(o), prog_(prog) {}
  int Run();

 private:
  [[noreturn]] void Fail(weftResult_t r, const char* what);
  void Ok(weftResult_t r, const char* what) {
    if (r != weftSuccess) Fail(r, what);
  }
  void Launch(const CallArgs& a, int times);
  void Barrier();
  double CombineTime(double us);
  void Pointers(bool in_place, size_t shift_bytes, const Shape& s, size_t elt, const void** send,
                void** recv, char** region, size_t* region_bytes);
  double Time(bool in_place, const Shape& s, const TypeInfo& t, const OpInfo& op, int root);
  int64_t Check(bool in_place, const Shape& s, const TypeInfo& t, const OpInfo& op, int root);
  void Header();
  void PrintRow(const Row& r);
  void WriteJson();

  const CollDesc& d_;
  Options o_;
  const char* prog_;
  weftComm_t comm_ = nullptr;
  int rank_ = 0, nranks_ = 1;
  Buffer send_, recv_;
  Watchdog watchdog_;
  std::vector<Row> rows_;
  std::vector<weftRequest_t> requests_;
  std::string row_name_;
  int mismatch_reports_ = 0;
  static constexpr int kMaxMismatchReports = 10;
};

void Runner::Fail(weftResult_t r, const char* what) {
  std::fflush(stdout);
  std::fprintf(stderr, "weft perf: rank %d: %s failed during %s: %s (%d): %s\n", rank_, what,
               row_name_.c_str(), weftGetErrorString(r), static_cast<int>(r),
               weftGetLastError(comm_));
  std::fflush(stderr);
  if (rank_ == 0) WriteJson();
  if (comm_) weftCommAbort(comm_);
  std::exit(1);
}

void Runner::Launch(const CallArgs& a, int times) {
  if (o_.blocking) {
    for (int i = 0; i < times; ++i)
      Ok(d_.call(a, nullptr), d_.name);
    return;
  }
  requests_.assign(times, nullptr);
  for (int i = 0; i < times; ++i)
    Ok(d_.call(a, &requests_[i]), d_.name);
  for (int i = 0; i < times; ++i)
    Ok(weftWait(requests_[i]), "weftWait");
}

void Runner::Barrier() {
  float in = 1, out = 0;
  Ok(weftAllReduce(&in, &out, 1, weftFloat, weftSum, comm_, nullptr), "barrier all-reduce");
}

double Runner::CombineTime(double us) {
  static const weftRedOp_t kCombine[] = {weftSum, weftMin, weftMax, weftSum};
  double out = 0;
  Ok(weftAllReduce(&us, &out, 1, weftDouble, kCombine[o_.average], comm_, nullptr),
     "time all-reduce");
  return o_.average == 0 ? out / nranks_ : out;
}

// Send/receive pointers for a placement, shifted by shift_bytes; region is the memory the call
// writes (and, in place, also reads).
void Runner::Pointers(bool in_place, size_t shift_bytes, const Shape& s, size_t elt,
                      const void** send, void** recv, char** region, size_t* region_bytes) {
  if (in_place) {
    char* buf = recv_.ptr + shift_bytes;
    d_.in_place(buf, s, elt, rank_, send, recv);
    *region = buf;
    *region_bytes = std::max(s.sendcount, s.recvcount) * elt;
  } else {
    *send = send_.ptr + shift_bytes;
    *recv = recv_.ptr + shift_bytes;
    *region = recv_.ptr + shift_bytes;
    *region_bytes = s.recvcount * elt;
  }
}

double Runner::Time(bool in_place, const Shape& s, const TypeInfo& t, const OpInfo& op, int root) {
  const void* send;
  void* recv;
  char* region;
  size_t region_bytes;
  Pointers(in_place, 0, s, t.size, &send, &recv, &region, &region_bytes);
  // Start from the check data of seed 0 so that repeated in-place reductions never produce
  // subnormals.
  Tables tab = MakeTables(t, d_.reduces, op.op, nranks_, 0);
  Fill(const_cast<void*>(send), s.sendcount, t.size, tab.input[rank_]);
  CallArgs a{send, recv, s, t.type, op.op, root, comm_};
  const std::string place = in_place ? "in-place" : "out-of-place";
  watchdog_.Note(place + " warm-up");
  Launch(a, o_.warmup);
  watchdog_.Note(place + " barrier");
  Barrier();
  watchdog_.Note(place + " timed iterations");
  const auto t0 = std::chrono::steady_clock::now();
  Launch(a, o_.iters);
  const auto t1 = std::chrono::steady_clock::now();
  const double us = std::chrono::duration<double, std::micro>(t1 - t0).count() / o_.iters;
  watchdog_.Note(place + " combining times");
  return CombineTime(us);
}

int64_t Runner::Check(bool in_place, const Shape& s, const TypeInfo& t, const OpInfo& op,
                      int root) {
  int64_t wrong = 0;
  const uint64_t ulp_tol = (t.kind == Kind::kFloat && d_.reduces && op.op == weftAvg) ? 2 : 0;
  for (int c = 0; c < o_.checks; ++c) {
    // Shift the buffers by a few elements from one checked iteration to the next, and change the
    // data.
    const size_t shift = static_cast<size_t>(c % 8) * 3 * t.size;
    const void* send;
    void* recv;
    char* region;
    size_t region_bytes;
    Pointers(in_place, shift, s, t.size, &send, &recv, &region, &region_bytes);
    Tables tab = MakeTables(t, d_.reduces, op.op, nranks_, static_cast<uint64_t>(c) + 1);
    if (!in_place) Fill(const_cast<void*>(send), s.sendcount, t.size, tab.input[rank_]);
    std::memset(region, 0xff, region_bytes);  // NaN for floating types: stale results cannot pass
    if (in_place) Fill(const_cast<void*>(send), s.sendcount, t.size, tab.input[rank_]);
    CallArgs a{send, recv, s, t.type, op.op, root, comm_};
    watchdog_.Note(std::string(in_place ? "in-place" : "out-of-place") + " check " +
                   std::to_string(c));
    Launch(a, 1);
    Mismatch mm;
    for (const Segment& seg : d_.outputs(s, rank_, nranks_, root)) {
      const auto& table = seg.src_rank == kReduced ? tab.reduced : tab.input[seg.src_rank];
      Compare(recv, t.size, seg, table, ulp_tol, &mm);
    }
    if (mm.wrong && ++mismatch_reports_ <= kMaxMismatchReports) {
      std::fprintf(
          stderr,
          "weft perf: rank %d: %s %s: check %d: %zu wrong elements; first at element %zu: got "
          "0x%0*" PRIx64 ", expected 0x%0*" PRIx64 "\n",
          rank_, row_name_.c_str(), in_place ? "in-place" : "out-of-place", c, mm.wrong,
          mm.first_index, static_cast<int>(2 * t.size), mm.got, static_cast<int>(2 * t.size),
          mm.want);
    }
    if (mm.wrong && mismatch_reports_ == kMaxMismatchReports) {
      std::fprintf(stderr, "weft perf: rank %d: further mismatch reports suppressed\n", rank_);
    }
    wrong += static_cast<int64_t>(mm.wrong);
  }
  return wrong;
}

void Runner::Header() {
  // Everyone's pid and host name, gathered with the library itself.
  struct Ident {
    int32_t pid;
    char host[60];
  } me{};
  me.pid = static_cast<int32_t>(getpid());
  gethostname(me.host, sizeof me.host - 1);
  std::vector<Ident> all(nranks_);
  Ok(weftAllGather(&me, all.data(), sizeof(Ident), weftUint8, comm_, nullptr),
     "all-gather of host names");
  if (rank_ != 0) return;
  int code = 0;
  weftGetVersion(&code);
  std::string step = o_.factor > 1 ? std::to_string(o_.factor) + "(factor)"
                                   : std::to_string(o_.step_bytes) + "(bytes)";
  std::printf(
      "# weft %d.%d.%d %s_perf: nranks %d minBytes %zu maxBytes %zu step: %s warmup iters: %d "
      "iters: %d "
      "check iters: %d blocking: %d timeout: %d time: %s over ranks registered: %d\n",
      code / 10000, code / 100 % 100, code % 100, d_.name, nranks_, o_.min_bytes, o_.max_bytes,
      step.c_str(), o_.warmup, o_.iters, o_.checks, o_.blocking, o_.timeout_s,
      kAverageNames[o_.average], o_.registered);
  std::printf("#\n# Using ranks\n");
  for (int r = 0; r < nranks_; ++r) {
    all[r].host[sizeof all[r].host - 1] = '\0';
    std::printf("#  Rank %2d Pid %7d on %s\n", r, all[r].pid, all[r].host);
  }
  std::printf("#\n");
  const char* fmt = "%-12s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  %s\n";
  std::printf("#%*s%*s\n", 69, "out-of-place", 33, "in-place");
  std::printf(fmt, "#       size", "count", "type", "redop", "root", "time", "algbw", "busbw",
              "#wrong", "time", "algbw", "busbw", "#wrong", "algo");
  std::printf(fmt, "#        (B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)",
              "(GB/s)", "(GB/s)", "", "");
  std::fflush(stdout);
}

std::string FormatTime(double us) {
  char b[32];
  if (us < 1e4) {
    std::snprintf(b, sizeof b, "%7.2f", us);
  } else if (us < 1e5) {
    std::snprintf(b, sizeof b, "%7.1f", us);
  } else {
    std::snprintf(b, sizeof b, "%7.0f", us);
  }
  return b;
}

std::string FormatWrong(int64_t w) {
  return w < 0 ? "N/A" : std::to_string(w);
}

void Runner::PrintRow(const Row& r) {
  std::printf("%12zu  %12zu  %8s  %6s  %6d", r.bytes, r.count, r.type, r.redop, r.root);
  for (int p = 0; p < 2; ++p) {
    std::printf("  %7s  %6.2f  %6.2f  %6s", FormatTime(r.time_us[p]).c_str(), r.algbw[p],
                r.busbw[p], FormatWrong(r.wrong[p]).c_str());
  }
  std::printf("  %s\n", r.algo);
  std::fflush(stdout);
}

void Runner::WriteJson() {
  if (o_.json.empty()) return;
  FILE* f = std::fopen(o_.json.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "weft perf: cannot write %s: %s\n", o_.json.c_str(), std::strerror(errno));
    return;
  }
  std::fprintf(f, "[");
  bool first = true;
  for (const Row& r : rows_) {
    for (int p = 0; p < 2; ++p) {
      std::fprintf(
          f,
          "%s\n  {\"coll\": \"%s\", \"size\": %zu, \"count\": %zu, \"type\": \"%s\", \"redop\": "
          "\"%s\", \"root\": %d, \"nranks\": %d, \"placement\": \"%s\", \"time_us\": %.6g, "
          "\"algbw\": %.6g, \"busbw\": %.6g, \"wrong\": %" PRId64 ", \"algo\": \"%s\"}",
          first ? "" : ",", d_.name, r.bytes, r.count, r.type, r.redop, r.root, nranks_,
          p == 0 ? "out" : "in", r.time_us[p], r.algbw[p], r.busbw[p], r.wrong[p], r.algo);
      first = false;
    }
  }
  std::fprintf(f, "\n]\n");
  std::fclose(f);
}

int Runner::Run() {
  watchdog_.Start(o_.timeout_s, EnvRank());
  row_name_ = "initialisation";
  watchdog_.Arm("communicator initialisation");
  Ok(weftCommInitFromEnv(&comm_), "weftCommInitFromEnv");
  Ok(weftCommUserRank(comm_, &rank_), "weftCommUserRank");
  Ok(weftCommCount(comm_, &nranks_), "weftCommCount");
  watchdog_.SetRank(rank_);
  if (d_.rooted && o_.root >= nranks_) {
    if (rank_ == 0)
      std::fprintf(stderr, "%s: -r %d: there are only %d ranks\n", prog_, o_.root, nranks_);
    weftCommDestroy(comm_);
    return 2;
  }
  const std::vector<size_t> sizes = Sizes(o_);

  // Buffers for the largest row of any type, plus room for the shifted checks; written once so that
  // no timed iteration pays for first touch.
  constexpr size_t kSlack = 4096;
  size_t send_bytes = 0, recv_bytes = 0;
  for (const TypeInfo* t : o_.types) {
    for (size_t b : sizes) {
      const Shape s = d_.shape(b, t->size, nranks_);
      send_bytes = std::max(send_bytes, s.sendcount * t->size);
      recv_bytes = std::max(recv_bytes, std::max(s.sendcount, s.recvcount) * t->size);
    }
  }
  for (Buffer* b : {&send_, &recv_}) {
    b->bytes = ((b == &send_ ? send_bytes : recv_bytes) + kSlack + 4095) / 4096 * 4096;
    if (o_.registered) {
      void* p = nullptr;
      if (weftMemAlloc(&p, b->bytes) == weftSuccess) {
        b->ptr = static_cast<char*>(p);
        b->shared = true;
      }
    } else {
      b->ptr = static_cast<char*>(std::aligned_alloc(4096, b->bytes));
    }
    if (!b->ptr) {
      std::fprintf(stderr, "weft perf: rank %d: cannot allocate %zu bytes\n", rank_, b->bytes);
      weftCommAbort(comm_);
      return 1;
    }
    std::memset(b->ptr, 0, b->bytes);
    if (o_.registered) {
      Ok(weftCommRegister(comm_, b->ptr, b->bytes, &b->handle), "weftCommRegister");
    }
  }

  watchdog_.Arm("header exchange");
  Header();

  const int root = d_.rooted ? o_.root : -1;
  static const OpInfo kNoOp = {weftSum, "none"};
  std::vector<const OpInfo*> ops = d_.reduces ? o_.ops : std::vector<const OpInfo*>{&kNoOp};
  int64_t total_wrong = 0;
  double busbw_sum = 0;
  int busbw_n = 0;
  for (const TypeInfo* t : o_.types) {
    for (const OpInfo* op : ops) {
      for (size_t b : sizes) {
        const Shape s = d_.shape(b, t->size, nranks_);
        row_name_ = std::string(d_.name) + " " + t->name + " " + op->name + " size " +
                    std::to_string(s.bytes);
        watchdog_.Arm(row_name_);
        Row row{s.bytes, s.paramcount, t->name, op->name, root, {}, {}, {}, {-1, -1}};
        // The algorithm the tuner picks for this row's out-of-place call, on its buffers (with -R 1
        // they are registered, which can change the choice); "-" where it cannot say
        // (all-to-all-v).
        const char* algo = nullptr;
        {
          const void* send = nullptr;
          void* recv = nullptr;
          char* region = nullptr;
          size_t region_bytes = 0;
          Pointers(false, 0, s, t->size, &send, &recv, &region, &region_bytes);
          if (weftCommGetAlgorithmFor(comm_, d_.name, send, recv, s.paramcount, t->type, op->op,
                                      &algo) == weftSuccess)
            row.algo = algo;
        }
        int64_t wrong[2] = {0, 0};
        for (int p = 0; p < 2; ++p) {
          const bool in_place = p == 1;
          row.time_us[p] = Time(in_place, s, *t, *op, root);
          row.algbw[p] =
              row.time_us[p] > 0 ? static_cast<double>(s.bytes) / row.time_us[p] / 1e3 : 0;
          row.busbw[p] = row.algbw[p] * d_.bus_factor(nranks_);
          if (o_.checks > 0) wrong[p] = Check(in_place, s, *t, *op, root);
        }
        if (o_.checks > 0) {
          watchdog_.Note("summing #wrong");
          int64_t sum[2] = {0, 0};
          Ok(weftAllReduce(wrong, sum, 2, weftInt64, weftSum, comm_, nullptr), "#wrong all-reduce");
          row.wrong[0] = sum[0];
          row.wrong[1] = sum[1];
          total_wrong += sum[0] + sum[1];
        }
        busbw_sum += row.busbw[0] + row.busbw[1];
        busbw_n += 2;
        rows_.push_back(row);
        if (rank_ == 0) PrintRow(row);
      }
    }
  }
  row_name_ = "shutdown";
  watchdog_.Arm("communicator shutdown");
  if (rank_ == 0) {
    std::printf("# Out of bounds values : %" PRId64 " %s\n", total_wrong,
                total_wrong ? "FAILED" : "OK");
    std::printf("# Avg bus bandwidth    : %g\n#\n", busbw_n ? busbw_sum / busbw_n : 0.0);
    std::fflush(stdout);
    WriteJson();
  }
  for (Buffer* b : {&send_, &recv_})
    if (b->handle != nullptr) Ok(weftCommDeregister(comm_, b->handle), "weftCommDeregister");
  const weftResult_t r = weftCommDestroy(comm_);
  if (r != weftSuccess) {
    std::fprintf(stderr, "weft perf: rank %d: weftCommDestroy failed: %s: %s\n", rank_,
                 weftGetErrorString(r), weftGetLastError(nullptr));
    return 1;
  }
  return total_wrong ? 1 : 0;
}

}  // namespace

int RunPerf(int argc, char** argv, const CollDesc& desc) {
  Options o;
  const int status = ParseOptions(argc, argv, &o);
  if (status >= 0) return status;
  Runner runner(desc, o, argv[0]);
  return runner.Run();
}

}  // namespace weftperf
