// Data types and reduction ops: sizes, names (nccl-tests spelling), parsing, and exact conversions
// between float and the 16- and 8-bit floating-point formats.
//
// The conversions are inline and branch-free so that the reduction kernels in reduce.cc can use
// them inside loops that the compiler vectorises. Every float -> small conversion rounds to
// nearest, ties to even (in the default rounding mode); every small -> float conversion is exact.
// Subnormals are handled exactly (no flush to zero). NaN stays NaN (quieted, keeping the top
// payload bits), the way x86 F16C converts.
//
// Formats:
//   half     IEEE binary16: 1.5.10, bias 15, inf and NaN.
//   bfloat16 1.8.7, bias 127 (the top half of a float), inf and NaN.
//   f8e4m3   OCP E4M3FN: 1.4.3, bias 7, no infinities, NaN = S.1111.111, max finite 448.
//   f8e5m2   OCP E5M2: 1.5.2, bias 15, IEEE-like with inf and NaN, max finite 57344.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "weft/weft.h"

namespace weft {

// Bytes per element; 0 for an invalid type.
size_t dtypeSize(weftDataType_t dtype);
bool validDtype(int dtype);
bool validOp(int op);

// "int8" "uint8" "int32" "uint32" "int64" "uint64" "half" "float" "double" "bfloat16" "f8e4m3"
// "f8e5m2"; "invalid" for anything else.
const char* dtypeName(weftDataType_t dtype);
// "sum" "prod" "max" "min" "avg"; "invalid" for anything else.
const char* opName(weftRedOp_t op);

// Case-insensitive. Types accept the names above and the aliases char, int, float16, fp16, float32,
// fp32, float64, fp64, bf16, fp8e4m3, fp8e5m2. Returns false (and leaves *out alone) for anything
// else.
bool parseDtype(const char* name, weftDataType_t* dtype);
bool parseOp(const char* name, weftRedOp_t* op);

// ---- Conversions ----
//
// Written to vectorise well: straight-line 32-bit integer code in which every choice is a bit mask,
// not a branch. (GCC turns ?: into branches and will not if-convert a float operation that only one
// branch uses, since under the default -ftrapping-math it might trap; that would stop the kernels'
// loops vectorising.) Masks come from signed compares of values below 2^31, which are single vector
// instructions. No float subnormal is an operand whose result matters, so the FTZ/DAZ bits do not
// change the conversions.

namespace detail {
// All ones when a < b, else 0. Both must be below 2^31.
constexpr uint32_t lessMask(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a) < static_cast<int32_t>(b) ? ~0u : 0u;
}
constexpr float asFloat(uint32_t bits) {
  return std::bit_cast<float>(bits);
}
constexpr uint32_t asBits(float f) {
  return std::bit_cast<uint32_t>(f);
}
}  // namespace detail

constexpr float halfToFloat(uint16_t h) {
  using namespace detail;
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  // Normal: move exponent and mantissa into place and rebias the exponent by 127 - 15. Subnormal
  // (exponent 0): give it exponent 1 instead, which adds the implicit 2^-14, and subtract 2^-14
  // (exact).
  const uint32_t sub = lessMask(em, 0x0400u);
  const uint32_t biased = (em << 13) + (112u << 23) + (sub & (1u << 23));
  const float value = asFloat(biased) - asFloat(sub & 0x38800000u);
  // Inf and NaN (exponent 31): biased has exponent 143 and the mantissa in place; make the exponent
  // all ones, and give NaNs the quiet bit.
  const uint32_t special = ~lessMask(em, 0x7c00u) & 0x7f800000u;
  const uint32_t quiet = ~lessMask(em, 0x7c01u) & 0x00400000u;
  return asFloat(asBits(value) | special | quiet | sign);
}

constexpr uint16_t floatToHalf(float f) {
  using namespace detail;
  const uint32_t x = asBits(f);
  const uint32_t ax = x & 0x7fffffffu;
  // Subnormal results (below 2^-14): in |f| + 0.5 the last place of the float is 2^-24, the half's
  // subnormal unit, so the FPU does the rounding, to nearest even; 2^-14 - tiny rounds up to
  // 0x0400, the least normal.
  const uint32_t sub = lessMask(ax, 0x38800000u);
  const uint32_t subBits = asBits(asFloat(ax) + 0.5f) - 0x3f000000u;
  // Normal results: rebias, then round the 13 dropped bits to nearest even. A carry out of the
  // mantissa bumps the exponent, which is right, up to infinity: 65520 and above (inf and NaN too)
  // give >= 0x7c00.
  uint32_t normal = (ax - (112u << 23) + 0x0fffu + ((ax >> 13) & 1u)) >> 13;
  normal = normal < 0x7c00u ? normal : 0x7c00u;
  const uint32_t nan = ~lessMask(ax, 0x7f800001u) & (0x0200u | ((ax >> 13) & 0x3ffu));  // quiet NaN
  const uint32_t h = (subBits & sub) | (normal & ~sub) | nan | ((x >> 16) & 0x8000u);
  return static_cast<uint16_t>(h);
}

constexpr float bf16ToFloat(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

constexpr uint16_t floatToBf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  // Round the low 16 bits to nearest even; overflow carries into the exponent and gives inf, as it
  // should.
  const uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
  const uint32_t nan = (x >> 16) | 0x0040u;  // NaN: quiet NaN
  return static_cast<uint16_t>((x & 0x7fffffffu) > 0x7f800000u ? nan : r);
}

constexpr float fp8e4m3ToFloat(uint8_t v) {
  using namespace detail;
  const uint32_t sign = static_cast<uint32_t>(v & 0x80u) << 24;
  const uint32_t em = v & 0x7fu;
  // As halfToFloat: rebias by 127 - 7; subnormals get exponent 1 and lose 2^-6 again.
  const uint32_t sub = lessMask(em, 0x08u);
  const uint32_t biased = (em << 20) + (120u << 23) + (sub & (1u << 23));
  const float value = asFloat(biased) - asFloat(sub & 0x3c800000u);
  // S.1111.111 is NaN; there are no infinities.
  const uint32_t nan = ~lessMask(em, 0x7fu) & 0x7fc00000u;
  return asFloat(asBits(value) | nan | sign);
}

// Saturation off (the OCP spec's non-saturating mode, as ml_dtypes and CUDA's __NV_NOSAT): a value
// is rounded to nearest even as if the exponent were unbounded, and a result above 448 becomes NaN.
// So 464 (halfway between 448 and the missing 480, whose mantissa would be odd) rounds to 448;
// anything above 464, and +-inf, give NaN. The sign is kept on NaN.
constexpr uint8_t floatToFp8e4m3(float f) {
  using namespace detail;
  const uint32_t x = asBits(f);
  const uint32_t ax = x & 0x7fffffffu;
  // Subnormal results (below 2^-6): the last place of 2^14 + |f| is 2^-9, the subnormal unit.
  const uint32_t sub = lessMask(ax, 0x3c800000u);
  const uint32_t subBits = asBits(asFloat(ax) + 0x1p14f) - 0x46800000u;
  uint32_t normal = (ax - (120u << 23) + 0x7ffffu + ((ax >> 20) & 1u)) >> 20;
  normal = normal < 0x7fu ? normal : 0x7fu;  // overflow, inf and NaN: NaN
  return static_cast<uint8_t>((subBits & sub) | (normal & ~sub) | ((x >> 24) & 0x80u));
}

constexpr float fp8e5m2ToFloat(uint8_t v) {
  return halfToFloat(static_cast<uint16_t>(v << 8));
}

// IEEE-like: overflow rounds to inf (57344 + half an ulp = 61440 and above give inf).
constexpr uint8_t floatToFp8e5m2(float f) {
  using namespace detail;
  const uint32_t x = asBits(f);
  const uint32_t ax = x & 0x7fffffffu;
  // Subnormal results (below 2^-14): the last place of 2^7 + |f| is 2^-16, the subnormal unit.
  const uint32_t sub = lessMask(ax, 0x38800000u);
  const uint32_t subBits = asBits(asFloat(ax) + 0x1p7f) - 0x43000000u;
  uint32_t normal = (ax - (112u << 23) + 0xfffffu + ((ax >> 21) & 1u)) >> 21;
  normal = normal < 0x7cu ? normal : 0x7cu;  // overflow, inf and NaN: inf
  const uint32_t nan = ~lessMask(ax, 0x7f800001u) & (0x02u | ((ax >> 21) & 1u));  // quiet NaN
  return static_cast<uint8_t>((subBits & sub) | (normal & ~sub) | nan | ((x >> 24) & 0x80u));
}

}  // namespace weft
