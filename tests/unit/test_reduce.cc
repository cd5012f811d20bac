// Data types, conversions and reduction kernels against references written plainly here.
//
// The small float formats get an independent reference: values decoded with ldexp from the bit
// fields, and rounding done by searching the sorted table of every finite value of the format (ties
// to the even encoding). Reductions of small types are computed in double and rounded once with
// that reference; double carries enough bits that this is the correctly rounded result, which the
// kernels must match bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/reduce.h"

namespace weft {
namespace {

// ---- Reference model of the small float formats ----

struct Format {
  int expBits;
  int mantBits;
  int bias;
  bool ieee;  // all-ones exponent: inf or NaN; else (E4M3FN) only S.1111.111 is NaN, no inf

  int bits() const { return 1 + expBits + mantBits; }
  uint32_t expMax() const { return (1u << expBits) - 1; }
  uint32_t mantMax() const { return (1u << mantBits) - 1; }
  // The largest finite non-negative encoding; the encodings below it are finite, ordered by value.
  uint32_t maxFinite() const { return (expMax() << mantBits) + (ieee ? 0 : mantMax()) - 1; }
};

constexpr Format kHalfFmt{5, 10, 15, true};
constexpr Format kBf16Fmt{8, 7, 127, true};
constexpr Format kE4m3Fmt{4, 3, 7, false};
constexpr Format kE5m2Fmt{5, 2, 15, true};

bool refIsNaN(const Format& f, uint32_t v) {
  const uint32_t e = (v >> f.mantBits) & f.expMax(), m = v & f.mantMax();
  if (e != f.expMax()) return false;
  return f.ieee ? m != 0 : m == f.mantMax();
}

double refDecode(const Format& f, uint32_t v) {
  const bool negative = (v >> (f.expBits + f.mantBits)) & 1;
  const uint32_t e = (v >> f.mantBits) & f.expMax(), m = v & f.mantMax();
  double x;
  if (refIsNaN(f, v)) {
    x = std::numeric_limits<double>::quiet_NaN();
  } else if (f.ieee && e == f.expMax()) {
    x = std::numeric_limits<double>::infinity();
  } else if (e == 0) {
    x = std::ldexp(static_cast<double>(m), 1 - f.bias - f.mantBits);
  } else {
    x = std::ldexp(static_cast<double>(m + (1u << f.mantBits)),
                   static_cast<int>(e) - f.bias - f.mantBits);
  }
  return negative ? -x : x;
}

// Every finite non-negative value of the format, indexed by encoding.
const std::vector<double>& finiteValues(const Format& f) {
  static std::map<const Format*, std::vector<double>> tables;
  std::vector<double>& t = tables[&f];
  for (uint32_t v = static_cast<uint32_t>(t.size()); v <= f.maxFinite(); ++v)
    t.push_back(refDecode(f, v));
  return t;
}

// Round to nearest, ties to even; beyond the largest finite value, as if the exponent went on: the
// encoding after it is inf (IEEE formats) or NaN (E4M3FN), and that is what an overflow gives.
uint32_t refEncode(const Format& f, double x) {
  const uint32_t sign = std::signbit(x) ? 1u << (f.expBits + f.mantBits) : 0u;
  const uint32_t overflow = f.maxFinite() + 1;
  if (std::isnan(x))
    return sign | (f.ieee ? (f.expMax() << f.mantBits) | (1u << (f.mantBits - 1)) : overflow);
  const double ax = std::fabs(x);
  if (std::isinf(ax)) return sign | overflow;
  const std::vector<double>& t = finiteValues(f);
  const uint32_t lo =
      static_cast<uint32_t>(std::upper_bound(t.begin(), t.end(), ax) - t.begin() - 1);
  const double vlo = t[lo];
  const double vhi = lo == f.maxFinite() ? vlo + (t[lo] - t[lo - 1]) : t[lo + 1];
  const double below = ax - vlo, above = vhi - ax;
  uint32_t r = below < above ? lo : below > above ? lo + 1 : (lo % 2 == 0 ? lo : lo + 1);
  if (r > overflow) r = overflow;
  return sign | r;
}

// ---- Element access: every buffer is raw bytes, every element a uint64_t of its bits ----

const Format* smallFormat(weftDataType_t dt) {
  switch (dt) {
    case weftFloat16:
      return &kHalfFmt;
    case weftBfloat16:
      return &kBf16Fmt;
    case weftFloat8e4m3:
      return &kE4m3Fmt;
    case weftFloat8e5m2:
      return &kE5m2Fmt;
    default:
      return nullptr;
  }
}

template <class T>
T as(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

template <class T>
uint64_t bitsOf(T v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof v);
  return bits;
}

uint64_t getElem(const std::vector<uint8_t>& buf, size_t i, size_t size) {
  uint64_t v = 0;
  std::memcpy(&v, buf.data() + i * size, size);
  return v;
}

void setElem(std::vector<uint8_t>& buf, size_t i, size_t size, uint64_t v) {
  std::memcpy(buf.data() + i * size, &v, size);
}

bool isNaNBits(weftDataType_t dt, uint64_t v) {
  if (const Format* f = smallFormat(dt)) return refIsNaN(*f, static_cast<uint32_t>(v));
  if (dt == weftFloat32) return std::isnan(as<float>(v));
  if (dt == weftFloat64) return std::isnan(as<double>(v));
  return false;
}

bool sameResult(weftDataType_t dt, uint64_t got, uint64_t want) {
  if (isNaNBits(dt, want)) return isNaNBits(dt, got);
  return got == want;
}

// ---- Reference reductions ----

template <class T>
T refMaxMin(weftRedOp_t op, T a, T b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  if (a == 0 && b == 0) {  // +0 beats -0 in max, -0 beats +0 in min
    const bool pickNegative =
        op == weftMin ? (std::signbit(a) || std::signbit(b)) : (std::signbit(a) && std::signbit(b));
    return pickNegative ? -T(0) : T(0);
  }
  if (op == weftMax) return a > b ? a : b;
  return a < b ? a : b;
}

template <class T>
T refFloatOp(weftRedOp_t op, T a, T b) {
  switch (op) {
    case weftSum:
    case weftAvg:
      return a + b;
    case weftProd:
      return a * b;
    default:
      return refMaxMin(op, a, b);
  }
}

template <class T>
T refIntOp(weftRedOp_t op, T a, T b) {
  using Wide = std::conditional_t<std::is_signed_v<T>, __int128, unsigned __int128>;
  switch (op) {
    case weftSum:
    case weftAvg:
      return static_cast<T>(static_cast<Wide>(a) + static_cast<Wide>(b));  // modular since C++20
    case weftProd:
      return static_cast<T>(static_cast<Wide>(a) * static_cast<Wide>(b));
    case weftMax:
      return std::max(a, b);
    default:
      return std::min(a, b);
  }
}

uint64_t refReduce(weftDataType_t dt, weftRedOp_t op, uint64_t a, uint64_t b) {
  switch (dt) {
    case weftInt8:
      return bitsOf(refIntOp(op, as<int8_t>(a), as<int8_t>(b)));
    case weftUint8:
      return bitsOf(refIntOp(op, as<uint8_t>(a), as<uint8_t>(b)));
    case weftInt32:
      return bitsOf(refIntOp(op, as<int32_t>(a), as<int32_t>(b)));
    case weftUint32:
      return bitsOf(refIntOp(op, as<uint32_t>(a), as<uint32_t>(b)));
    case weftInt64:
      return bitsOf(refIntOp(op, as<int64_t>(a), as<int64_t>(b)));
    case weftUint64:
      return bitsOf(refIntOp(op, as<uint64_t>(a), as<uint64_t>(b)));
    case weftFloat32:
      return bitsOf(refFloatOp(op, as<float>(a), as<float>(b)));
    case weftFloat64:
      return bitsOf(refFloatOp(op, as<double>(a), as<double>(b)));
    default: {
      const Format& f = *smallFormat(dt);
      const double x = refDecode(f, static_cast<uint32_t>(a)),
                   y = refDecode(f, static_cast<uint32_t>(b));
      return refEncode(f, refFloatOp(op, x, y));
    }
  }
}

// Integers: exact quotients in 128 bits, truncated toward zero by C++'s division.
template <class T>
uint64_t refIntDivide(uint64_t v, uint64_t d) {
  return bitsOf(static_cast<T>(static_cast<__int128>(as<T>(v)) / static_cast<__int128>(d)));
}

uint64_t refDivide(weftDataType_t dt, uint64_t v, uint64_t d) {
  switch (dt) {
    case weftInt8:
      return refIntDivide<int8_t>(v, d);
    case weftUint8:
      return refIntDivide<uint8_t>(v, d);
    case weftInt32:
      return refIntDivide<int32_t>(v, d);
    case weftUint32:
      return refIntDivide<uint32_t>(v, d);
    case weftInt64:
      return refIntDivide<int64_t>(v, d);
    case weftUint64:
      return refIntDivide<uint64_t>(v, d);
    case weftFloat32:
      return bitsOf(as<float>(v) / static_cast<float>(d));
    case weftFloat64:
      return bitsOf(as<double>(v) / static_cast<double>(d));
    default: {
      const Format& f = *smallFormat(dt);
      return refEncode(f, refDecode(f, static_cast<uint32_t>(v)) / static_cast<double>(d));
    }
  }
}

// ---- Test data: each type's edge values crossed, then random bits and random moderate values ----

std::vector<uint64_t> specials(weftDataType_t dt) {
  switch (dt) {
    case weftInt8:
      return {0, 1, 0xff, 0x7f, 0x80, 2, 0xfe, 100, 16};
    case weftUint8:
      return {0, 1, 0xff, 0x80, 0x7f, 2, 16, 200};
    case weftInt32:
      return {0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 65536, 0xffff0000, 46341, 2};
    case weftUint32:
      return {0, 1, 0xffffffff, 0x7fffffff, 0x80000000, 65536, 65537, 2};
    case weftInt64:
    case weftUint64:
      return {0, 1, ~0ull, 0x7fffffffffffffffull, 0x8000000000000000ull, 1ull << 32, 3037000500ull,
              2};
    case weftFloat32:
      return {0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000,
              0x7fc00000, 0xffc00001, 0x7f800001, 0x00000001, 0x80000001, 0x007fffff,
              0x00800000, 0x7f7fffff, 0xff7fffff, 0x3f800001, 0x4b800000, 0x33800000};
    case weftFloat64:
      return {0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000,
              0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000, 0xfff8000000000001,
              0x7ff0000000000001, 0x0000000000000001, 0x8000000000000001, 0x000fffffffffffff,
              0x0010000000000000, 0x7fefffffffffffff, 0xffefffffffffffff, 0x3ff0000000000001};
    case weftFloat16:
      return {0x0000, 0x8000, 0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe00,
              0x0001, 0x8001, 0x03ff, 0x0400, 0x7bff, 0xfbff, 0x3c01, 0x1400, 0x0002};
    case weftBfloat16:
      return {0x0000, 0x8000, 0x3f80, 0xbf80, 0x7f80, 0xff80, 0x7fc0, 0x7f81,
              0x0001, 0x8001, 0x007f, 0x0080, 0x7f7f, 0xff7f, 0x3f81, 0x3b80};
    case weftFloat8e4m3:
      return {0x00, 0x80, 0x38, 0xb8, 0x7f, 0xff, 0x01, 0x81,
              0x07, 0x08, 0x7e, 0xfe, 0x39, 0x20, 0x02};
    default:  // f8e5m2
      return {0x00, 0x80, 0x3c, 0xbc, 0x7c, 0xfc, 0x7e, 0x7d,
              0x01, 0x81, 0x03, 0x04, 0x7b, 0xfb, 0x3d};
  }
}

uint64_t randomElem(weftDataType_t dt, std::mt19937_64& rng) {
  const size_t size = dtypeSize(dt);
  const uint64_t mask = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
  if (rng() % 2 == 0) return rng() & mask;  // any bit pattern
  std::uniform_real_distribution<double> moderate(-64.0, 64.0);
  const double x = moderate(rng);
  switch (dt) {
    case weftFloat32:
      return bitsOf(static_cast<float>(x));
    case weftFloat64:
      return bitsOf(x);
    case weftFloat16:
    case weftBfloat16:
    case weftFloat8e4m3:
    case weftFloat8e5m2:
      return refEncode(*smallFormat(dt), x);
    default:
      return static_cast<uint64_t>(static_cast<int64_t>(x)) & mask;  // small integers
  }
}

// Element i of a and b: the specials crossed with each other first, then random.
std::vector<uint8_t> makeInput(weftDataType_t dt, size_t n, bool second, uint64_t seed) {
  const size_t size = dtypeSize(dt);
  const std::vector<uint64_t> s = specials(dt);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> buf(n * size);
  for (size_t i = 0; i < n; ++i) {
    uint64_t v;
    if (i < s.size() * s.size()) {
      v = second ? s[i / s.size()] : s[i % s.size()];
    } else {
      v = randomElem(dt, rng);
    }
    setElem(buf, i, size, v);
  }
  return buf;
}

constexpr weftDataType_t kAllTypes[] = {weftInt8,    weftUint8,    weftInt32,      weftUint32,
                                        weftInt64,   weftUint64,   weftFloat16,    weftFloat32,
                                        weftFloat64, weftBfloat16, weftFloat8e4m3, weftFloat8e5m2};
constexpr weftRedOp_t kAllOps[] = {weftSum, weftProd, weftMax, weftMin, weftAvg};
constexpr size_t kCounts[] = {0, 1, 7, 63, 64, 65, 1000, 4099};

std::vector<KernelIsa> supportedIsas() {
  std::vector<KernelIsa> isas;
  for (KernelIsa isa : {KernelIsa::kGeneric, KernelIsa::kAvx2}) {
    if (kernelIsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

// ---- Dtype ----

TEST(Dtype, SizesNamesAndValidity) {
  const size_t sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2, 1, 1};
  const char* names[] = {"int8", "uint8", "int32",  "uint32",   "int64",  "uint64",
                         "half", "float", "double", "bfloat16", "f8e4m3", "f8e5m2"};
  for (int i = 0; i < weftNumTypes; ++i) {
    const auto dt = static_cast<weftDataType_t>(i);
    EXPECT_EQ(dtypeSize(dt), sizes[i]);
    EXPECT_STREQ(dtypeName(dt), names[i]);
    EXPECT_TRUE(validDtype(i));
    weftDataType_t parsed = weftNumTypes;
    EXPECT_TRUE(parseDtype(names[i], &parsed));
    EXPECT_EQ(parsed, dt);
  }
  EXPECT_EQ(dtypeSize(weftNumTypes), 0u);
  EXPECT_EQ(dtypeSize(static_cast<weftDataType_t>(-1)), 0u);
  EXPECT_FALSE(validDtype(-1));
  EXPECT_FALSE(validDtype(weftNumTypes));
  const char* ops[] = {"sum", "prod", "max", "min", "avg"};
  for (int i = 0; i < weftNumOps; ++i) {
    EXPECT_TRUE(validOp(i));
    EXPECT_STREQ(opName(static_cast<weftRedOp_t>(i)), ops[i]);
    weftRedOp_t parsed = weftNumOps;
    EXPECT_TRUE(parseOp(ops[i], &parsed));
    EXPECT_EQ(parsed, i);
  }
  EXPECT_FALSE(validOp(-1));
  EXPECT_FALSE(validOp(weftNumOps));
  EXPECT_STREQ(opName(weftNumOps), "invalid");
  EXPECT_STREQ(dtypeName(weftNumTypes), "invalid");
}

TEST(Dtype, ParseAliasesAndCase) {
  const std::pair<const char*, weftDataType_t> cases[] = {
      {"FLOAT", weftFloat32},     {"Float32", weftFloat32},   {"float16", weftFloat16},
      {"HALF", weftHalf},         {"float64", weftFloat64},   {"bf16", weftBfloat16},
      {"BFloat16", weftBfloat16}, {"F8E4M3", weftFloat8e4m3}, {"f8e5m2", weftFloat8e5m2},
      {"Int8", weftInt8}};
  for (const auto& [name, want] : cases) {
    weftDataType_t got = weftNumTypes;
    EXPECT_TRUE(parseDtype(name, &got)) << name;
    EXPECT_EQ(got, want) << name;
  }
  weftDataType_t untouched = weftInt32;
  for (const char* bad :
       {"", "floa", "float32x", "int16", "fp8", static_cast<const char*>(nullptr)}) {
    EXPECT_FALSE(parseDtype(bad, &untouched)) << (bad ? bad : "null");
  }
  EXPECT_EQ(untouched, weftInt32);
  weftRedOp_t op = weftSum;
  EXPECT_TRUE(parseOp("MAX", &op));
  EXPECT_EQ(op, weftMax);
  EXPECT_TRUE(parseOp("Avg", &op));
  EXPECT_EQ(op, weftAvg);
  EXPECT_FALSE(parseOp("mean", &op));
  EXPECT_FALSE(parseOp(nullptr, &op));
  EXPECT_EQ(op, weftAvg);
}

// Every bit pattern decodes to the reference value and encodes back to itself (NaN: to a NaN).
template <class Small>
void checkAllPatterns(const Format& f, float (*toFloat)(Small), Small (*fromFloat)(float)) {
  for (uint32_t v = 0; v < (1u << f.bits()); ++v) {
    const float x = toFloat(static_cast<Small>(v));
    const double want = refDecode(f, v);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(x)) << std::hex << v;
      EXPECT_TRUE(refIsNaN(f, fromFloat(x))) << std::hex << v;
      continue;
    }
    EXPECT_EQ(bitsOf(x), bitsOf(static_cast<float>(want))) << std::hex << v;  // -0 too
    EXPECT_EQ(fromFloat(x), v) << std::hex << v;
  }
}

TEST(Dtype, HalfAllPatternsRoundTrip) {
  checkAllPatterns<uint16_t>(kHalfFmt, halfToFloat, floatToHalf);
}
TEST(Dtype, Bf16AllPatternsRoundTrip) {
  checkAllPatterns<uint16_t>(kBf16Fmt, bf16ToFloat, floatToBf16);
}
TEST(Dtype, Fp8e4m3AllPatternsRoundTrip) {
  checkAllPatterns<uint8_t>(kE4m3Fmt, fp8e4m3ToFloat, floatToFp8e4m3);
}
TEST(Dtype, Fp8e5m2AllPatternsRoundTrip) {
  checkAllPatterns<uint8_t>(kE5m2Fmt, fp8e5m2ToFloat, floatToFp8e5m2);
}

// Rounding: every midpoint between neighbours (exact ties), one float ulp either side, both signs,
// beyond the largest value, and random floats of every kind.
template <class Small>
void checkRounding(const Format& f, Small (*fromFloat)(float)) {
  const std::vector<double>& t = finiteValues(f);
  auto check = [&](float x) {
    const uint32_t want = refEncode(f, x);
    const uint32_t got = fromFloat(x);
    if (refIsNaN(f, want)) {
      EXPECT_TRUE(refIsNaN(f, got)) << x;
    } else {
      EXPECT_EQ(got, want) << std::hexfloat << x;
    }
  };
  const float inf = std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < t.size(); ++i) {
    const double next = i + 1 < t.size() ? t[i + 1] : t[i] + (t[i] - t[i - 1]);
    const float mid = static_cast<float>((t[i] + next) / 2);
    ASSERT_EQ(static_cast<double>(mid), (t[i] + next) / 2);  // the tie is exact in float
    for (float x :
         {static_cast<float>(t[i]), mid, std::nextafter(mid, 0.0f), std::nextafter(mid, inf)}) {
      check(x);
      check(-x);
    }
  }
  for (float x :
       {inf, -inf, std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
        std::numeric_limits<float>::quiet_NaN(), 1e30f, -1e-30f}) {
    check(x);
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i)
    check(as<float>(rng()));
}

TEST(Dtype, HalfRoundsToNearestEven) {
  checkRounding<uint16_t>(kHalfFmt, floatToHalf);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65519.99f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(floatToHalf(0x1p-24f), 0x0001);
  EXPECT_EQ(floatToHalf(0x1p-25f), 0x0000);    // tie with 0: even
  EXPECT_EQ(floatToHalf(0x1.8p-24f), 0x0002);  // tie between 1 and 2 units: even
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
}

TEST(Dtype, Bf16RoundsToNearestEven) {
  checkRounding<uint16_t>(kBf16Fmt, floatToBf16);
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(floatToBf16(as<float>(0x3f808000)), 0x3f80);  // tie: even
  EXPECT_EQ(floatToBf16(as<float>(0x3f818000)), 0x3f82);
}

TEST(Dtype, Fp8e4m3RoundsToNearestEvenOverflowIsNaN) {
  checkRounding<uint8_t>(kE4m3Fmt, floatToFp8e4m3);
  EXPECT_EQ(floatToFp8e4m3(448.0f), 0x7e);
  EXPECT_EQ(floatToFp8e4m3(464.0f), 0x7e);  // tie with the missing 480: even
  EXPECT_EQ(floatToFp8e4m3(464.01f), 0x7f);
  EXPECT_EQ(floatToFp8e4m3(-1000.0f), 0xff);
  EXPECT_EQ(floatToFp8e4m3(std::numeric_limits<float>::infinity()), 0x7f);
  EXPECT_EQ(floatToFp8e4m3(0x1p-9f), 0x01);
  EXPECT_EQ(floatToFp8e4m3(0x1p-10f), 0x00);
  EXPECT_EQ(fp8e4m3ToFloat(0x7e), 448.0f);
  EXPECT_EQ(fp8e4m3ToFloat(0x01), 0x1p-9f);
}

TEST(Dtype, Fp8e5m2RoundsToNearestEven) {
  checkRounding<uint8_t>(kE5m2Fmt, floatToFp8e5m2);
  EXPECT_EQ(floatToFp8e5m2(57344.0f), 0x7b);
  EXPECT_EQ(floatToFp8e5m2(61439.0f), 0x7b);
  EXPECT_EQ(floatToFp8e5m2(61440.0f), 0x7c);
  EXPECT_EQ(floatToFp8e5m2(-std::numeric_limits<float>::infinity()), 0xfc);
  EXPECT_EQ(floatToFp8e5m2(0x1p-16f), 0x01);
  EXPECT_EQ(fp8e5m2ToFloat(0x7b), 57344.0f);
}

// ---- Reduce ----

// Runs fn on dst/a/b laid out as asked (in place or not, offset by one element) and checks every
// element against the reference, and that nothing around dst was touched.
enum class Alias { kNone, kDstIsA, kDstIsB };

void checkKernel(ReduceFn fn, weftDataType_t dt, weftRedOp_t op, size_t n, Alias alias,
                 size_t offset, const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  const size_t size = dtypeSize(dt);
  const size_t guard = 3;
  auto place = [&](const std::vector<uint8_t>& src) {
    std::vector<uint8_t> buf((n + offset + guard) * size, 0xa5);
    if (n != 0) std::memcpy(buf.data() + offset * size, src.data(), n * size);
    return buf;
  };
  std::vector<uint8_t> bufA = place(a), bufB = place(b), bufD((n + offset + guard) * size, 0x5a);
  uint8_t* pa = bufA.data() + offset * size;
  uint8_t* pb = bufB.data() + offset * size;
  uint8_t* pd = alias == Alias::kDstIsA   ? pa
                : alias == Alias::kDstIsB ? pb
                                          : bufD.data() + offset * size;
  fn(pd, pa, pb, n);
  const std::vector<uint8_t>& out = alias == Alias::kDstIsA   ? bufA
                                    : alias == Alias::kDstIsB ? bufB
                                                              : bufD;
  int failures = 0;
  for (size_t i = 0; i < n && failures < 5; ++i) {
    const uint64_t x = getElem(a, i, size), y = getElem(b, i, size);
    const uint64_t want = refReduce(dt, op, x, y), got = getElem(out, offset + i, size);
    if (!sameResult(dt, got, want)) {
      ++failures;
      ADD_FAILURE() << dtypeName(dt) << " " << opName(op) << " n=" << n << " i=" << i << std::hex
                    << " a=0x" << x << " b=0x" << y << " want=0x" << want << " got=0x" << got;
    }
  }
  const uint8_t fill = alias == Alias::kNone ? 0x5a : 0xa5;
  for (size_t i = 0; i < offset * size; ++i)
    ASSERT_EQ(out[i], fill) << "before dst";
  for (size_t i = (offset + n) * size; i < out.size(); ++i)
    ASSERT_EQ(out[i], fill) << "after dst";
}

TEST(Reduce, EveryTypeOpCountAliasingAndOffset) {
  for (KernelIsa isa : supportedIsas()) {
    for (weftDataType_t dt : kAllTypes) {
      for (weftRedOp_t op : kAllOps) {
        ReduceFn fn = reduceFnFor(isa, dt, op);
        ASSERT_NE(fn, nullptr);
        for (size_t n : kCounts) {
          const std::vector<uint8_t> a = makeInput(dt, n, false, n * 31 + dt);
          const std::vector<uint8_t> b = makeInput(dt, n, true, n * 17 + dt + 1000);
          for (Alias alias : {Alias::kNone, Alias::kDstIsA, Alias::kDstIsB}) {
            for (size_t offset : {0, 1}) {
              SCOPED_TRACE(testing::Message() << kernelIsaName(isa) << " alias="
                                              << static_cast<int>(alias) << " offset=" << offset);
              checkKernel(fn, dt, op, n, alias, offset, a, b);
            }
          }
        }
      }
    }
  }
}

// All 65536 pairs of each fp8 format, every op.
TEST(Reduce, Fp8AllPairs) {
  for (weftDataType_t dt : {weftFloat8e4m3, weftFloat8e5m2}) {
    std::vector<uint8_t> a(65536), b(65536);
    for (size_t i = 0; i < 65536; ++i) {
      a[i] = static_cast<uint8_t>(i);
      b[i] = static_cast<uint8_t>(i >> 8);
    }
    for (KernelIsa isa : supportedIsas()) {
      for (weftRedOp_t op : kAllOps)
        checkKernel(reduceFnFor(isa, dt, op), dt, op, 65536, Alias::kNone, 0, a, b);
    }
  }
}

// Each 16-bit pattern against a random partner and against its neighbour pattern.
TEST(Reduce, SixteenBitAllPatternsAgainstRandom) {
  for (weftDataType_t dt : {weftFloat16, weftBfloat16}) {
    std::mt19937 rng(dt);
    std::vector<uint8_t> a(2 * 131072), b(2 * 131072);
    for (uint32_t i = 0; i < 131072; ++i) {
      setElem(a, i, 2, i & 0xffff);
      setElem(b, i, 2, i < 65536 ? rng() & 0xffff : (i + 1) & 0xffff);
    }
    for (KernelIsa isa : supportedIsas()) {
      for (weftRedOp_t op : kAllOps)
        checkKernel(reduceFnFor(isa, dt, op), dt, op, 131072, Alias::kNone, 0, a, b);
    }
  }
}

TEST(Reduce, IntegerWrapAndFloatEdgeCases) {
  int8_t i8a[] = {127, -128, -128, 64}, i8b[] = {1, -1, -1, 4}, i8d[4];
  reduce(i8d, i8a, i8b, 4, weftInt8, weftSum);
  EXPECT_EQ(i8d[0], -128);
  EXPECT_EQ(i8d[1], 127);
  reduce(i8d, i8a, i8b, 4, weftInt8, weftProd);
  EXPECT_EQ(i8d[2], -128);  // -128 * -1 wraps
  EXPECT_EQ(i8d[3], 0);     // 256 wraps to 0
  uint64_t u64a[] = {~0ull, 1ull << 63}, u64b[] = {1, 2}, u64d[2];
  reduce(u64d, u64a, u64b, 2, weftUint64, weftSum);
  EXPECT_EQ(u64d[0], 0u);
  reduce(u64d, u64a, u64b, 2, weftUint64, weftProd);
  EXPECT_EQ(u64d[1], 0u);
  uint32_t u32a[] = {0xffffffffu}, u32b[] = {1}, u32d[1];
  reduce(u32d, u32a, u32b, 1, weftUint32, weftMax);
  EXPECT_EQ(u32d[0], 0xffffffffu);  // unsigned compare
  int64_t i64a[] = {std::numeric_limits<int64_t>::min()}, i64b[] = {-1}, i64d[1];
  reduce(i64d, i64a, i64b, 1, weftInt64, weftProd);
  EXPECT_EQ(i64d[0], std::numeric_limits<int64_t>::min());
  reduce(i64d, i64a, i64b, 1, weftInt64, weftMin);
  EXPECT_EQ(i64d[0], std::numeric_limits<int64_t>::min());

  const float nan = std::numeric_limits<float>::quiet_NaN();
  float fa[] = {nan, 1.0f, 0.0f, -0.0f, -0.0f}, fb[] = {1.0f, nan, -0.0f, 0.0f, -0.0f}, fd[5];
  reduce(fd, fa, fb, 5, weftFloat32, weftMax);
  EXPECT_TRUE(std::isnan(fd[0]) && std::isnan(fd[1]));
  EXPECT_EQ(bitsOf(fd[2]), 0u);  // max(+0, -0) = +0, both orders
  EXPECT_EQ(bitsOf(fd[3]), 0u);
  EXPECT_EQ(bitsOf(fd[4]), 0x80000000u);
  reduce(fd, fa, fb, 5, weftFloat32, weftMin);
  EXPECT_TRUE(std::isnan(fd[0]) && std::isnan(fd[1]));
  EXPECT_EQ(bitsOf(fd[2]), 0x80000000u);  // min(+0, -0) = -0, both orders
  EXPECT_EQ(bitsOf(fd[3]), 0x80000000u);
}

TEST(Reduce, DispatchAndInvalidInputs) {
  for (weftDataType_t dt : kAllTypes) {
    for (weftRedOp_t op : kAllOps)
      EXPECT_NE(reduceFn(dt, op), nullptr);
    EXPECT_EQ(reduceFn(dt, weftAvg), reduceFn(dt, weftSum));
    EXPECT_EQ(reduceFn(dt, weftNumOps), nullptr);
    EXPECT_EQ(reduceFnFor(activeKernelIsa(), dt, weftMax), reduceFn(dt, weftMax));
  }
  EXPECT_EQ(reduceFn(weftNumTypes, weftSum), nullptr);
  EXPECT_EQ(reduceFn(static_cast<weftDataType_t>(-1), weftSum), nullptr);
  EXPECT_TRUE(kernelIsaSupported(KernelIsa::kGeneric));
  int32_t x = 5;
  reduce(&x, &x, &x, 1, weftNumTypes, weftSum);  // ignored
  reduce(&x, &x, &x, 1, weftInt32, static_cast<weftRedOp_t>(9));
  reduce(nullptr, nullptr, nullptr, 0, weftInt32, weftSum);
  EXPECT_EQ(x, 5);
}

// The instruction sets agree bit for bit on random bits (NaN payloads too, but for sum and prod of
// two NaNs).
TEST(Reduce, InstructionSetsAgree) {
  if (!kernelIsaSupported(KernelIsa::kAvx2)) GTEST_SKIP() << "no AVX2/F16C here";
  const size_t n = 4099;
  for (weftDataType_t dt : kAllTypes) {
    const size_t size = dtypeSize(dt);
    std::mt19937_64 rng(dt + 99);
    std::vector<uint8_t> a(n * size), b(n * size), d1(n * size), d2(n * size);
    for (auto& v : a)
      v = static_cast<uint8_t>(rng());
    for (auto& v : b)
      v = static_cast<uint8_t>(rng());
    for (weftRedOp_t op : kAllOps) {
      reduceFnFor(KernelIsa::kGeneric, dt, op)(d1.data(), a.data(), b.data(), n);
      reduceFnFor(KernelIsa::kAvx2, dt, op)(d2.data(), a.data(), b.data(), n);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t x = getElem(d1, i, size), y = getElem(d2, i, size);
        // NaN payloads may differ for sum and prod when both inputs are NaN: which operand's
        // payload an addition keeps depends on the operand order the compiler chose.
        const bool ok =
            x == y || (op != weftMax && op != weftMin && isNaNBits(dt, x) && isNaNBits(dt, y));
        ASSERT_TRUE(ok) << dtypeName(dt) << " " << opName(op) << " i=" << i << std::hex << " a=0x"
                        << getElem(a, i, size) << " b=0x" << getElem(b, i, size) << " generic=0x"
                        << x << " avx2=0x" << y;
      }
    }
  }
}

TEST(Reduce, DivideEveryType) {
  for (weftDataType_t dt : kAllTypes) {
    const size_t size = dtypeSize(dt);
    for (uint64_t divisor : {1ull, 2ull, 3ull, 7ull, 8ull, 1000ull, 1ull << 40, ~0ull}) {
      for (size_t n : kCounts) {
        for (bool inPlace : {false, true}) {
          const std::vector<uint8_t> src = makeInput(dt, n, false, n + divisor);
          std::vector<uint8_t> buf = src, out(n * size + 1, 0x77);
          void* dst = inPlace ? static_cast<void*>(buf.data()) : out.data();
          divide(dst, buf.data(), n, dt, divisor);
          const std::vector<uint8_t>& res = inPlace ? buf : out;
          for (size_t i = 0; i < n; ++i) {
            const uint64_t want = refDivide(dt, getElem(src, i, size), divisor);
            const uint64_t got = getElem(res, i, size);
            ASSERT_TRUE(sameResult(dt, got, want))
                << dtypeName(dt) << " / " << divisor << " i=" << i << std::hex << " x=0x"
                << getElem(src, i, size) << " want=0x" << want << " got=0x" << got;
          }
          if (!inPlace) {
            EXPECT_EQ(out[n * size], 0x77);
          }
        }
      }
    }
  }
  int64_t v[] = {std::numeric_limits<int64_t>::min(), -7, 7}, r[3];
  divide(r, v, 3, weftInt64, 1ull << 63);
  EXPECT_EQ(r[0], -1);
  EXPECT_EQ(r[1], 0);
  divide(r, v, 3, weftInt64, 2);
  EXPECT_EQ(r[0], std::numeric_limits<int64_t>::min() / 2);
  EXPECT_EQ(r[1], -3);  // truncation toward zero
  int8_t c[] = {-128, -3}, cr[2];
  divide(cr, c, 2, weftInt8, 2);
  EXPECT_EQ(cr[0], -64);
  EXPECT_EQ(cr[1], -1);
  divide(r, v, 3, weftInt64, 0);  // caller error: a copy
  EXPECT_EQ(r[1], -7);
}

TEST(Reduce, CopyBytes) {
  for (size_t bytes :
       {size_t{0}, size_t{1}, size_t{15}, size_t{4096}, kNonTemporalCopyBytes - 1,
        kNonTemporalCopyBytes, kNonTemporalCopyBytes + 17, 3 * kNonTemporalCopyBytes + 5}) {
    for (size_t dstOff : {0, 1, 8}) {
      for (size_t srcOff : {0, 3}) {
        std::vector<uint8_t> src(bytes + 32), dst(bytes + 32, 0xee);
        for (size_t i = 0; i < src.size(); ++i)
          src[i] = static_cast<uint8_t>(i * 131 + 7);
        copyBytes(dst.data() + dstOff, src.data() + srcOff, bytes);
        ASSERT_EQ(std::memcmp(dst.data() + dstOff, src.data() + srcOff, bytes), 0) << bytes;
        for (size_t i = 0; i < dstOff; ++i)
          ASSERT_EQ(dst[i], 0xee);
        for (size_t i = dstOff + bytes; i < dst.size(); ++i)
          ASSERT_EQ(dst[i], 0xee);
      }
    }
  }
  copyBytes(nullptr, nullptr, 0);
}

}  // namespace
}  // namespace weft
