// Reduction kernels: dst[i] = a[i] op b[i] for every weft type and op, the final division of avg,
// and a bulk copy. These run on the hot path of every reducing collective, at memory bandwidth when
// they can.
//
// Semantics, for every kernel:
// - dst may be the same pointer as a or b (in place); no other overlap. Pointers need only the
//   element's natural alignment. A count of 0 touches nothing (null pointers are then fine).
// - Integers: sum and prod wrap modulo 2^bits (computed in the unsigned type); max and min compare
//   as the type's signedness says. avg reduces as sum; divide() is applied once at the end.
// - float and double compute in their own type. half, bfloat16, f8e4m3 and f8e5m2 are widened to
//   float exactly, reduced in float and rounded to nearest even once per element per call. float
//   carries at least 2p+2 bits of each small type's p bits, so for sum and prod that rounding of a
//   rounded float gives the correctly rounded result, as if computed exactly.
// - Floating max and min are IEEE 754-2019 maximum and minimum: a NaN operand gives NaN (a's when
//   both are NaN), max(-0, +0) = +0 and min(-0, +0) = -0 in either order. So they are commutative,
//   bit for bit but for NaN payloads, and ranks that reduce in different orders agree.
// - The instruction set picked at run time does not change results: the AVX2/F16C kernels and the
//   generic ones agree bit for bit (the unit tests check it), except for which NaN's payload a sum
//   or product of two NaNs keeps. The kernels assume the default floating-point environment: round
//   to nearest, FTZ and DAZ off.
#pragma once

#include <cstddef>
#include <cstdint>

#include "weft/weft.h"

namespace weft {

using ReduceFn = void (*)(void* dst, const void* a, const void* b, size_t count);

// The kernel for a type and op (avg gives the sum kernel), for the best instruction set this CPU
// has. Never null for valid inputs; null when dtype or op is invalid.
ReduceFn reduceFn(weftDataType_t dtype, weftRedOp_t op);

// reduceFn(dtype, op)(dst, a, b, count). Does nothing for an invalid dtype or op (callers
// validate).
void reduce(void* dst, const void* a, const void* b, size_t count, weftDataType_t dtype,
            weftRedOp_t op);

// avg's final step: dst[i] = src[i] / divisor. half, bfloat16, fp8 and float divide in float,
// double in double, each rounded to nearest even into the type. Integers divide with truncation
// toward zero (signed types as signed). dst may be src. divisor 0 is a caller error: dst gets a
// copy of src.
void divide(void* dst, const void* src, size_t count, weftDataType_t dtype, uint64_t divisor);

// memcpy with non-temporal stores whatever the size (from 64 bytes on, on x86-64): for output that
// is not read back soon, such as the final chunks of a collective larger than the caches.
void copyBytesStreaming(void* dst, const void* src, size_t bytes);

// From this size on copyBytes uses non-temporal stores (the destination is not read back soon, and
// the stores skip the read-for-ownership of each line).
inline constexpr size_t kNonTemporalCopyBytes = size_t{1} << 20;

// memcpy (no overlap). On x86-64, copies of kNonTemporalCopyBytes and more use SSE2 non-temporal
// stores (the first bytes are copied plainly up to dst's next 16-byte boundary) and end with a
// store fence, so that the data is visible before any later store (a flag a peer polls, say); plain
// memcpy elsewhere and for smaller copies.
void copyBytes(void* dst, const void* src, size_t bytes);

// ---- For tests and benchmarks ----
enum class KernelIsa { kGeneric, kAvx2 };  // kAvx2: AVX2 + F16C, x86-64 only
bool kernelIsaSupported(KernelIsa isa);
// The one reduceFn uses.
KernelIsa activeKernelIsa();
const char* kernelIsaName(KernelIsa isa);
// The kernel of one instruction set; null when the ISA is not supported here or the inputs are
// invalid.
ReduceFn reduceFnFor(KernelIsa isa, weftDataType_t dtype, weftRedOp_t op);

}  // namespace weft
