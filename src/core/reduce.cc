// The reduction kernels: one instantiation per type x op x instruction set, picked once at
// start-up.
//
// Generic kernels walk the arrays in fixed-size blocks whose inner loops have a constant trip
// count, simple branch-free bodies and no loop-carried dependence (`#pragma GCC ivdep`: dst may be
// a or b exactly, which is fine element by element), so that GCC vectorises them even at -O2, whose
// "very cheap" cost model refuses loops that would need an epilogue or a run-time alias check. The
// small float types widen a block of each input into a float array, reduce it and narrow it back.
// The remainder runs the same code scalar.
//
// The AVX2 kernels (chosen at run time, so the library needs no -march flag) are the same templates
// instantiated in functions marked target("avx2,f16c") for the native types, and for the 16- and
// 8-bit floats a fused loop of intrinsics, 8 or 16 elements at a time: F16C converts half, and the
// fp8 types through half (every fp8 value is exactly a half, so widening is exact). fp8 is narrowed
// from float through half: two roundings, float -> half -> fp8, that give the same result as one
// because half carries more than 2p+2 bits of fp8's p and every value narrowed is the result of one
// operation on fp8 values (the Fp8AllPairs test checks every pair). divide() therefore narrows fp8
// directly.
#include "core/reduce.h"

#include <cstring>
#include <type_traits>

#include "core/dtype.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define WEFT_REDUCE_X86 1
#endif

#define WEFT_ALWAYS_INLINE inline __attribute__((always_inline))
// The next loop has no loop-carried dependence (dst may equal a source exactly).
#if defined(__clang__)
#define WEFT_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define WEFT_IVDEP _Pragma("GCC ivdep")
#endif

namespace weft {

namespace {

// ---- One element ----

template <class T>
using BitsOf = std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t>;

struct SumOp {
  template <class T>
  static WEFT_ALWAYS_INLINE T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
    } else {
      return a + b;
    }
  }
};

struct ProdOp {
  template <class T>
  static WEFT_ALWAYS_INLINE T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
    } else {
      return a * b;
    }
  }
};

// IEEE 754-2019 maximum: NaN if either is NaN (a when a is); max(-0, +0) = +0: equal operands give
// the AND of their bits.
struct MaxOp {
  template <class T>
  static WEFT_ALWAYS_INLINE T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      return a > b ? a : b;
    } else {
      using U = BitsOf<T>;
      const U ua = std::bit_cast<U>(a), ub = std::bit_cast<U>(b);
      U r = ((a > b) | (a != a)) ? ua : ub;
      r = a == b ? (ua & ub) : r;
      return std::bit_cast<T>(r);
    }
  }
};

// IEEE 754-2019 minimum: NaN if either is NaN (a when a is); min(-0, +0) = -0: equal operands give
// the OR of their bits.
struct MinOp {
  template <class T>
  static WEFT_ALWAYS_INLINE T apply(T a, T b) {
    if constexpr (std::is_integral_v<T>) {
      return a < b ? a : b;
    } else {
      using U = BitsOf<T>;
      const U ua = std::bit_cast<U>(a), ub = std::bit_cast<U>(b);
      U r = ((a < b) | (a != a)) ? ua : ub;
      r = a == b ? (ua | ub) : r;
      return std::bit_cast<T>(r);
    }
  }
};

// ---- Element formats: how a stored element becomes the type it is computed in, and back ----

struct Fp8Table {
  alignas(64) float value[256];
};

template <float (*kDecode)(uint8_t)>
constexpr Fp8Table makeFp8Table() {
  Fp8Table t{};
  for (int i = 0; i < 256; ++i)
    t.value[i] = kDecode(static_cast<uint8_t>(i));
  return t;
}

// Every fp8 value as float, computed at compile time by the conversions themselves.
constexpr Fp8Table kFp8e4m3Values = makeFp8Table<fp8e4m3ToFloat>();
constexpr Fp8Table kFp8e5m2Values = makeFp8Table<fp8e5m2ToFloat>();

template <class T>
struct Native {
  using Storage = T;
  using Compute = T;
  static WEFT_ALWAYS_INLINE T load(T v) { return v; }
  static WEFT_ALWAYS_INLINE T store(T v) { return v; }
};

struct Half {
  using Storage = uint16_t;
  using Compute = float;
  static WEFT_ALWAYS_INLINE float load(uint16_t v) { return halfToFloat(v); }
  static WEFT_ALWAYS_INLINE uint16_t store(float v) { return floatToHalf(v); }
};

struct Bf16 {
  using Storage = uint16_t;
  using Compute = float;
  static WEFT_ALWAYS_INLINE float load(uint16_t v) { return bf16ToFloat(v); }
  static WEFT_ALWAYS_INLINE uint16_t store(float v) { return floatToBf16(v); }
};

struct Fp8e4m3 {
  using Storage = uint8_t;
  using Compute = float;
  static WEFT_ALWAYS_INLINE float load(uint8_t v) { return kFp8e4m3Values.value[v]; }
  static WEFT_ALWAYS_INLINE uint8_t store(float v) { return floatToFp8e4m3(v); }
};

struct Fp8e5m2 {
  using Storage = uint8_t;
  using Compute = float;
  static WEFT_ALWAYS_INLINE float load(uint8_t v) { return kFp8e5m2Values.value[v]; }
  static WEFT_ALWAYS_INLINE uint8_t store(float v) { return floatToFp8e5m2(v); }
};

// Elements per block: 512 bytes (16 AVX2 vectors) of a native type; 256 of the others (widened into
// two arrays on the stack).
template <class Fmt>
constexpr size_t kBlock = std::is_same_v<typename Fmt::Storage, typename Fmt::Compute>
                              ? 512 / sizeof(typename Fmt::Storage)
                              : 256;

// ---- Generic kernels ----

// dst[i] = store(fn(load(a[i]), load(b[i]))), where fn is Op::apply, or division by q when Op is
// void.
template <class Fmt, class Op>
WEFT_ALWAYS_INLINE void elementwise(void* dst, const void* a, const void* b, size_t count,
                                    typename Fmt::Compute q) {
  using S = typename Fmt::Storage;
  using C = typename Fmt::Compute;
  constexpr size_t kB = kBlock<Fmt>;
  auto fn = [q](C x, C y) {
    if constexpr (std::is_void_v<Op>) {
      (void)y;
      return x / q;
    } else {
      (void)q;
      return Op::apply(x, y);
    }
  };
  S* d = static_cast<S*>(dst);
  const S* x = static_cast<const S*>(a);
  const S* y = static_cast<const S*>(b);
  size_t i = 0;
  if constexpr (std::is_same_v<S, C>) {
    for (; i + kB <= count; i += kB) {
      S* bd = d + i;
      const S* bx = x + i;
      const S* by = y + i;
      WEFT_IVDEP
      for (size_t j = 0; j < kB; ++j)
        bd[j] = fn(bx[j], by[j]);
    }
  } else {
    for (; i + kB <= count; i += kB) {
      alignas(32) C fx[kB];
      alignas(32) C fy[std::is_void_v<Op> ? 1 : kB];
      for (size_t j = 0; j < kB; ++j)
        fx[j] = Fmt::load(x[i + j]);
      if constexpr (std::is_void_v<Op>) {  // divide: no second operand
        for (size_t j = 0; j < kB; ++j)
          fx[j] = fn(fx[j], fx[j]);
      } else {
        for (size_t j = 0; j < kB; ++j)
          fy[j] = Fmt::load(y[i + j]);
        for (size_t j = 0; j < kB; ++j)
          fx[j] = fn(fx[j], fy[j]);
      }
      for (size_t j = 0; j < kB; ++j)
        d[i + j] = Fmt::store(fx[j]);
    }
  }
  for (; i < count; ++i)
    d[i] = Fmt::store(fn(Fmt::load(x[i]), Fmt::load(y[i])));
}

template <class Fmt, class Op>
void reduceGeneric(void* dst, const void* a, const void* b, size_t count) {
  elementwise<Fmt, Op>(dst, a, b, count, typename Fmt::Compute{});
}

template <class Fmt>
void divideGeneric(void* dst, const void* src, size_t count, uint64_t divisor) {
  using C = typename Fmt::Compute;
  elementwise<Fmt, void>(dst, src, src, count, static_cast<C>(divisor));
}

#if WEFT_REDUCE_X86
// ---- AVX2 + F16C kernels ----
#define WEFT_AVX2 __attribute__((target("avx2,f16c")))
#define WEFT_AVX2_INLINE __attribute__((target("avx2,f16c"), always_inline)) inline

template <class Fmt, class Op>
WEFT_AVX2 void reduceAvx2Native(void* dst, const void* a, const void* b, size_t count) {
  elementwise<Fmt, Op>(dst, a, b, count, typename Fmt::Compute{});
}

template <class Fmt>
WEFT_AVX2 void divideAvx2(void* dst, const void* src, size_t count, uint64_t divisor) {
  using C = typename Fmt::Compute;
  elementwise<Fmt, void>(dst, src, src, count, static_cast<C>(divisor));
}

// The ops on eight floats, bit for bit as the scalar ones.
template <class Op>
WEFT_AVX2_INLINE __m256 apply8(__m256 a, __m256 b) {
  if constexpr (std::is_same_v<Op, SumOp>) {
    return _mm256_add_ps(a, b);
  } else if constexpr (std::is_same_v<Op, ProdOp>) {
    return _mm256_mul_ps(a, b);
  } else {
    constexpr bool kMax = std::is_same_v<Op, MaxOp>;
    const __m256 aIsNaN = _mm256_cmp_ps(a, a, _CMP_UNORD_Q);
    const __m256 pickA = _mm256_or_ps(_mm256_cmp_ps(a, b, kMax ? _CMP_GT_OQ : _CMP_LT_OQ), aIsNaN);
    const __m256 equal = kMax ? _mm256_and_ps(a, b) : _mm256_or_ps(a, b);  // the +-0 rule
    return _mm256_blendv_ps(_mm256_blendv_ps(b, a, pickA), equal, _mm256_cmp_ps(a, b, _CMP_EQ_OQ));
  }
}

// Eight stored elements to eight floats and back (round to nearest even).
struct HalfX8 {
  using Fmt = Half;
  static constexpr size_t kLanes = 8;
  static WEFT_AVX2_INLINE void load(__m256 v[1], const uint16_t* p) {
    v[0] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static WEFT_AVX2_INLINE void store(uint16_t* p, const __m256 v[1]) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                     _mm256_cvtps_ph(v[0], _MM_FROUND_TO_NEAREST_INT));
  }
};

struct Bf16X8 {
  using Fmt = Bf16;
  static constexpr size_t kLanes = 8;
  static WEFT_AVX2_INLINE void load(__m256 v[1], const uint16_t* p) {
    const __m256i x = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    v[0] = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
  }
  static WEFT_AVX2_INLINE void store(uint16_t* p, const __m256 v[1]) {  // as floatToBf16
    const __m256i x = _mm256_castps_si256(v[0]);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(x, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i ax = _mm256_and_si256(x, _mm256_set1_epi32(0x7fffffff));
    const __m256i isNaN = _mm256_cmpgt_epi32(ax, _mm256_set1_epi32(0x7f800000));
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, nan, isNaN);
    const __m128i packed =
        _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
  }
};

// The fp8 types: sixteen at a time, so that their 16-bit work fills whole AVX2 registers.
WEFT_AVX2_INLINE __m256i halvesOf(const __m256 v[2]) {
  const __m128i lo = _mm256_cvtps_ph(v[0], _MM_FROUND_TO_NEAREST_INT);
  return _mm256_inserti128_si256(_mm256_castsi128_si256(lo),
                                 _mm256_cvtps_ph(v[1], _MM_FROUND_TO_NEAREST_INT), 1);
}

WEFT_AVX2_INLINE void storeBytes(uint8_t* p, __m256i r) {  // sixteen 16-bit lanes, each < 256
  const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), bytes);
}

struct Fp8e5m2X16 {
  using Fmt = Fp8e5m2;
  static constexpr size_t kLanes = 16;
  static WEFT_AVX2_INLINE void load(__m256 v[2], const uint8_t* p) {
    // e5m2 is the top byte of a half.
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    v[0] = _mm256_cvtph_ps(_mm_unpacklo_epi8(_mm_setzero_si128(), bytes));
    v[1] = _mm256_cvtph_ps(_mm_unpackhi_epi8(_mm_setzero_si128(), bytes));
  }
  static WEFT_AVX2_INLINE void store(uint8_t* p, const __m256 v[2]) {
    // To half, then round away the low byte to nearest even: subnormals, overflow to inf (0x7c) and
    // NaNs come out as floatToFp8e5m2 gives them. (A NaN here is a quieted input, 0x7e00 or 0x7f00
    // as a half, or the default NaN 0xfe00; none carries into the sign.)
    const __m256i h = halvesOf(v);
    const __m256i mag = _mm256_and_si256(h, _mm256_set1_epi16(0x7fff));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi16(mag, 8), _mm256_set1_epi16(1));
    __m256i r =
        _mm256_srli_epi16(_mm256_add_epi16(_mm256_add_epi16(mag, _mm256_set1_epi16(0x7f)), lsb), 8);
    r = _mm256_or_si256(r, _mm256_and_si256(_mm256_srli_epi16(h, 8), _mm256_set1_epi16(0x80)));
    storeBytes(p, r);
  }
};

struct Fp8e4m3X16 {
  using Fmt = Fp8e4m3;
  static constexpr size_t kLanes = 16;
  static WEFT_AVX2_INLINE void load(__m256 v[2], const uint8_t* p) {
    // S.EEEE.MMM placed as the half S.0EEEE.MMM0000000 is the value / 2^8, subnormals included;
    // F16C widens it exactly and the product rescales exactly. S.1111.111 becomes a half NaN.
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m256i h = _mm256_srai_epi16(_mm256_slli_epi16(_mm256_cvtepu8_epi16(bytes), 8), 1);
    h = _mm256_and_si256(h, _mm256_set1_epi16(static_cast<int16_t>(0xbf80)));
    const __m256i em = _mm256_and_si256(h, _mm256_set1_epi16(0x7fff));
    const __m256i nan = _mm256_cmpeq_epi16(em, _mm256_set1_epi16(0x3f80));
    h = _mm256_or_si256(h, _mm256_and_si256(nan, _mm256_set1_epi16(0x7e00)));
    v[0] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), _mm256_set1_ps(256.0f));
    v[1] = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), _mm256_set1_ps(256.0f));
  }
  static WEFT_AVX2_INLINE void store(uint8_t* p, const __m256 v[2]) {
    // Normal results (2^-6 and up): to half, rebias by 15 - 7 and round away 7 bits to nearest
    // even; 480 and above, inf and NaN give 0x7f (NaN).
    const __m256i h = halvesOf(v);
    const __m256i mag = _mm256_and_si256(h, _mm256_set1_epi16(0x7fff));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi16(mag, 7), _mm256_set1_epi16(1));
    __m256i normal = _mm256_add_epi16(mag, _mm256_set1_epi16(0x3f - 0x2000));
    normal = _mm256_srli_epi16(_mm256_add_epi16(normal, lsb), 7);
    normal = _mm256_min_epu16(normal, _mm256_set1_epi16(0x7f));
    // Subnormal results, from the float as floatToFp8e4m3 does: the last place of 2^14 + |v| is
    // 2^-9.
    __m256i sub32[2];
    for (int k = 0; k < 2; ++k) {
      const __m256 av = _mm256_and_ps(v[k], _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
      sub32[k] = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(av, _mm256_set1_ps(0x1p14f))),
                                  _mm256_set1_epi32(0x46800000));
    }
    const __m256i sub = _mm256_permute4x64_epi64(_mm256_packus_epi32(sub32[0], sub32[1]), 0xd8);
    __m256i r = _mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi16(_mm256_set1_epi16(0x2400), mag));
    r = _mm256_or_si256(r, _mm256_and_si256(_mm256_srli_epi16(h, 8), _mm256_set1_epi16(0x80)));
    storeBytes(p, r);
  }
};

template <class X, class Op>
WEFT_AVX2 void reduceAvx2Small(void* dst, const void* a, const void* b, size_t count) {
  using Fmt = typename X::Fmt;
  using S = typename Fmt::Storage;
  constexpr size_t kN = X::kLanes;
  S* d = static_cast<S*>(dst);
  const S* x = static_cast<const S*>(a);
  const S* y = static_cast<const S*>(b);
  size_t i = 0;
  for (; i + kN <= count; i += kN) {
    __m256 va[kN / 8], vb[kN / 8];
    X::load(va, x + i);
    X::load(vb, y + i);
    for (size_t k = 0; k < kN / 8; ++k)
      va[k] = apply8<Op>(va[k], vb[k]);
    X::store(d + i, va);
  }
  for (; i < count; ++i)
    d[i] = Fmt::store(Op::apply(Fmt::load(x[i]), Fmt::load(y[i])));
}

template <class X8>
WEFT_AVX2 void divideAvx2Small(void* dst, const void* src, size_t count, uint64_t divisor) {
  using Fmt = typename X8::Fmt;
  using S = typename Fmt::Storage;
  const float q = static_cast<float>(divisor);
  const __m256 q8 = _mm256_set1_ps(q);
  S* d = static_cast<S*>(dst);
  const S* x = static_cast<const S*>(src);
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    __m256 v[1];
    X8::load(v, x + i);
    v[0] = _mm256_div_ps(v[0], q8);
    X8::store(d + i, v);
  }
  for (; i < count; ++i)
    d[i] = Fmt::store(Fmt::load(x[i]) / q);
}

// The fused kernel's format for each small float type.
template <class Fmt>
struct Avx2Format {
  using type = void;  // the native types: the generic kernel compiled for AVX2
};
template <>
struct Avx2Format<Half> {
  using type = HalfX8;
};
template <>
struct Avx2Format<Bf16> {
  using type = Bf16X8;
};
template <>
struct Avx2Format<Fp8e4m3> {
  using type = Fp8e4m3X16;
};
template <>
struct Avx2Format<Fp8e5m2> {
  using type = Fp8e5m2X16;
};
#endif  // WEFT_REDUCE_X86

// ---- Dispatch ----

template <class T>
struct Tag {
  using type = T;
};

// f(Tag<Fmt>()) for the element format of dtype; null for an invalid dtype.
template <class F>
auto withFormat(weftDataType_t dtype, F f) -> decltype(f(Tag<Half>())) {
  switch (dtype) {
    case weftInt8:
      return f(Tag<Native<int8_t>>());
    case weftUint8:
      return f(Tag<Native<uint8_t>>());
    case weftInt32:
      return f(Tag<Native<int32_t>>());
    case weftUint32:
      return f(Tag<Native<uint32_t>>());
    case weftInt64:
      return f(Tag<Native<int64_t>>());
    case weftUint64:
      return f(Tag<Native<uint64_t>>());
    case weftFloat16:
      return f(Tag<Half>());
    case weftFloat32:
      return f(Tag<Native<float>>());
    case weftFloat64:
      return f(Tag<Native<double>>());
    case weftBfloat16:
      return f(Tag<Bf16>());
    case weftFloat8e4m3:
      return f(Tag<Fp8e4m3>());
    case weftFloat8e5m2:
      return f(Tag<Fp8e5m2>());
    default:
      return nullptr;
  }
}

template <class Fmt, class Op>
ReduceFn kernelFor(KernelIsa isa) {
#if WEFT_REDUCE_X86
  if (isa == KernelIsa::kAvx2) {
    using X = typename Avx2Format<Fmt>::type;
    if constexpr (std::is_void_v<X>) {
      return &reduceAvx2Native<Fmt, Op>;
    } else {
      return &reduceAvx2Small<X, Op>;
    }
  }
#endif
  (void)isa;
  return &reduceGeneric<Fmt, Op>;
}

ReduceFn kernelFor(KernelIsa isa, weftDataType_t dtype, weftRedOp_t op) {
  return withFormat(dtype, [&](auto tag) -> ReduceFn {
    using Fmt = typename decltype(tag)::type;
    switch (op) {
      case weftSum:
      case weftAvg:
        return kernelFor<Fmt, SumOp>(isa);
      case weftProd:
        return kernelFor<Fmt, ProdOp>(isa);
      case weftMax:
        return kernelFor<Fmt, MaxOp>(isa);
      case weftMin:
        return kernelFor<Fmt, MinOp>(isa);
      default:
        return nullptr;
    }
  });
}

struct KernelTable {
  ReduceFn fn[weftNumTypes][weftNumOps];
};

const KernelTable& activeTable() {
  static const KernelTable table = [] {
    KernelTable t{};
    const KernelIsa isa = activeKernelIsa();
    for (int dt = 0; dt < weftNumTypes; ++dt) {
      for (int op = 0; op < weftNumOps; ++op) {
        t.fn[dt][op] =
            kernelFor(isa, static_cast<weftDataType_t>(dt), static_cast<weftRedOp_t>(op));
      }
    }
    return t;
  }();
  return table;
}

// ---- divide ----

using DivideFn = void (*)(void* dst, const void* src, size_t count, uint64_t divisor);

// Integers of up to 32 bits divide in double: exact, since |x| < 2^32 puts x/d at least 2^-32
// (relative) below the next integer when it is not one, far more than double's rounding error, so
// truncating the rounded quotient truncates the exact one. (A divisor above 2^53 rounds, but |x/d|
// < 1 either way.) The quotient fits an int32_t except for uint32_t.
template <class T>
struct IntViaDouble {
  using Storage = T;
  using Compute = double;
  using Quotient = std::conditional_t<std::is_same_v<T, uint32_t>, int64_t, int32_t>;
  static WEFT_ALWAYS_INLINE double load(T v) { return static_cast<double>(v); }
  static WEFT_ALWAYS_INLINE T store(double v) { return static_cast<T>(static_cast<Quotient>(v)); }
};

// 64-bit integers: the magnitude divided (exact for the most negative value too), the sign put
// back.
template <class T>
void divideInt64(void* dst, const void* src, size_t count, uint64_t divisor) {
  T* d = static_cast<T*>(dst);
  const T* x = static_cast<const T*>(src);
  for (size_t i = 0; i < count; ++i) {
    const bool negative = std::is_signed_v<T> && x[i] < T{0};
    const uint64_t magnitude =
        negative ? 0 - static_cast<uint64_t>(x[i]) : static_cast<uint64_t>(x[i]);
    const uint64_t q = magnitude / divisor;
    d[i] = static_cast<T>(negative ? 0 - q : q);
  }
}

template <class Fmt>
DivideFn divideFor(KernelIsa isa) {
  using S = typename Fmt::Storage;
  if constexpr (std::is_integral_v<typename Fmt::Compute> && sizeof(S) == 8) {
    return &divideInt64<S>;
  } else if constexpr (std::is_integral_v<typename Fmt::Compute>) {
    return divideFor<IntViaDouble<S>>(isa);
  } else {
#if WEFT_REDUCE_X86
    if (isa == KernelIsa::kAvx2) {
      // half and bfloat16 narrow in one rounding; fp8 narrows through half, which is exact only for
      // the results of one operation on fp8 values, so it takes the generic code.
      if constexpr (std::is_same_v<Fmt, Half> || std::is_same_v<Fmt, Bf16>) {
        return &divideAvx2Small<typename Avx2Format<Fmt>::type>;
      } else {
        return &divideAvx2<Fmt>;
      }
    }
#endif
    (void)isa;
    return &divideGeneric<Fmt>;
  }
}

}  // namespace

bool kernelIsaSupported(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kGeneric:
      return true;
    case KernelIsa::kAvx2: {
#if WEFT_REDUCE_X86
      static const bool supported = [] {
        __builtin_cpu_init();  // avx2 also checks that the OS saves the AVX state
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
        return __builtin_cpu_supports("avx2") && f16c;
      }();
      return supported;
#else
      return false;
#endif
    }
  }
  return false;
}

KernelIsa activeKernelIsa() {
  return kernelIsaSupported(KernelIsa::kAvx2) ? KernelIsa::kAvx2 : KernelIsa::kGeneric;
}

const char* kernelIsaName(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kGeneric:
      return "generic";
    case KernelIsa::kAvx2:
      return "avx2";
  }
  return "invalid";
}

ReduceFn reduceFnFor(KernelIsa isa, weftDataType_t dtype, weftRedOp_t op) {
  if (!kernelIsaSupported(isa) || !validDtype(dtype) || !validOp(op)) return nullptr;
  return kernelFor(isa, dtype, op);
}

ReduceFn reduceFn(weftDataType_t dtype, weftRedOp_t op) {
  if (!validDtype(dtype) || !validOp(op)) return nullptr;
  return activeTable().fn[dtype][op];
}

void reduce(void* dst, const void* a, const void* b, size_t count, weftDataType_t dtype,
            weftRedOp_t op) {
  if (count == 0) return;
  if (ReduceFn fn = reduceFn(dtype, op)) fn(dst, a, b, count);
}

void divide(void* dst, const void* src, size_t count, weftDataType_t dtype, uint64_t divisor) {
  if (count == 0 || !validDtype(dtype)) return;
  if (divisor == 0) {
    if (dst != src) std::memmove(dst, src, count * dtypeSize(dtype));
    return;
  }
  const KernelIsa isa = activeKernelIsa();
  const DivideFn fn = withFormat(
      dtype, [isa](auto tag) -> DivideFn { return divideFor<typename decltype(tag)::type>(isa); });
  fn(dst, src, count, divisor);
}

void copyBytes(void* dst, const void* src, size_t bytes) {
  if (bytes >= kNonTemporalCopyBytes) {
    copyBytesStreaming(dst, src, bytes);
    return;
  }
  if (bytes != 0) std::memcpy(dst, src, bytes);
}

void copyBytesStreaming(void* dst, const void* src, size_t bytes) {
#if WEFT_REDUCE_X86
  if (bytes >= 64) {
    char* d = static_cast<char*>(dst);
    const char* s = static_cast<const char*>(src);
    const size_t head = (16 - (reinterpret_cast<uintptr_t>(d) & 15)) & 15;
    std::memcpy(d, s, head);
    d += head;
    s += head;
    bytes -= head;
    const size_t body = bytes & ~size_t{63};
    for (size_t i = 0; i < body; i += 64) {
      const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
      const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 16));
      const __m128i v2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 32));
      const __m128i v3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i), v0);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 16), v1);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 32), v2);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + i + 48), v3);
    }
    std::memcpy(d + body, s + body, bytes - body);
    _mm_sfence();  // order the streaming stores before any later store (a flag a peer polls, say)
    return;
  }
#endif
  if (bytes != 0) std::memcpy(dst, src, bytes);
}

}  // namespace weft
