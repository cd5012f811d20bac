// Exact-result helpers for collective tests (nccl-tests style): inputs are small integers chosen so
// that the reduction is exact in any order for the data type, expected values are computed in
// double on the host and stored in the data type, and outputs are compared bit for bit.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace weft::test {

inline void storeValue(weftDataType_t t, double v, void* p) {
  switch (t) {
    case weftInt8:
      *static_cast<int8_t*>(p) = static_cast<int8_t>(static_cast<int64_t>(v));
      break;
    case weftUint8:
      *static_cast<uint8_t*>(p) = static_cast<uint8_t>(static_cast<int64_t>(v));
      break;
    case weftInt32:
      *static_cast<int32_t*>(p) = static_cast<int32_t>(v);
      break;
    case weftUint32:
      *static_cast<uint32_t*>(p) = static_cast<uint32_t>(static_cast<int64_t>(v));
      break;
    case weftInt64:
      *static_cast<int64_t*>(p) = static_cast<int64_t>(v);
      break;
    case weftUint64:
      *static_cast<uint64_t*>(p) = static_cast<uint64_t>(static_cast<int64_t>(v));
      break;
    case weftFloat16:
      *static_cast<uint16_t*>(p) = floatToHalf(static_cast<float>(v));
      break;
    case weftFloat32:
      *static_cast<float*>(p) = static_cast<float>(v);
      break;
    case weftFloat64:
      *static_cast<double*>(p) = v;
      break;
    case weftBfloat16:
      *static_cast<uint16_t*>(p) = floatToBf16(static_cast<float>(v));
      break;
    case weftFloat8e4m3:
      *static_cast<uint8_t*>(p) = floatToFp8e4m3(static_cast<float>(v));
      break;
    case weftFloat8e5m2:
      *static_cast<uint8_t*>(p) = floatToFp8e5m2(static_cast<float>(v));
      break;
    default:
      break;
  }
}

// The largest integer sum that stays exact in the type (integers wrap, which is exact too).
inline double exactLimit(weftDataType_t t) {
  switch (t) {
    case weftFloat16:
      return 2048;
    case weftBfloat16:
      return 256;
    case weftFloat8e4m3:
      return 16;
    case weftFloat8e5m2:
      return 8;
    case weftInt8:
      return 127;
    default:
      return 1e9;
  }
}

// Input element i of rank r for an operation: sum/avg use 0..k, prod uses 1 or 2 (one 2 per
// element), max/min use 0..k. k keeps nranks*k within the type's exact range.
inline double inputValue(weftRedOp_t op, weftDataType_t t, int nranks, int r, uint64_t i) {
  if (op == weftProd)
    return (static_cast<uint64_t>(r) == i % static_cast<uint64_t>(nranks)) ? 2 : 1;
  const double limit = exactLimit(t);
  int k = static_cast<int>(limit / nranks);
  if (k > 7) k = 7;
  if (k < 1) k = 1;
  return static_cast<double>((static_cast<uint64_t>(r) * 3 + i * 5) % static_cast<uint64_t>(k + 1));
}

inline double reduceRef(weftRedOp_t op, weftDataType_t t, int nranks, uint64_t i) {
  double acc = inputValue(op, t, nranks, 0, i);
  for (int r = 1; r < nranks; ++r) {
    const double v = inputValue(op, t, nranks, r, i);
    switch (op) {
      case weftSum:
      case weftAvg:
        acc += v;
        break;
      case weftProd:
        acc *= v;
        break;
      case weftMax:
        acc = std::max(acc, v);
        break;
      case weftMin:
        acc = std::min(acc, v);
        break;
      default:
        break;
    }
  }
  if (op == weftAvg) {
    const bool integer = t == weftInt8 || t == weftUint8 || t == weftInt32 || t == weftUint32 ||
                         t == weftInt64 || t == weftUint64;
    acc = integer ? std::floor(acc / nranks) : acc / nranks;
  }
  return acc;
}

inline std::vector<char> fillInput(weftRedOp_t op, weftDataType_t t, int nranks, int r,
                                   uint64_t count) {
  const size_t es = dtypeSize(t);
  std::vector<char> v(count * es + 1);
  for (uint64_t i = 0; i < count; ++i)
    storeValue(t, inputValue(op, t, nranks, r, i), v.data() + i * es);
  return v;
}

// Compares count elements bit for bit; returns "" or a description of the first mismatches.
inline std::string compareElems(weftDataType_t t, const void* got, const void* want,
                                uint64_t count) {
  const size_t es = dtypeSize(t);
  std::string out;
  int shown = 0;
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < count; ++i) {
    const char* g = static_cast<const char*>(got) + i * es;
    const char* w = static_cast<const char*>(want) + i * es;
    if (std::memcmp(g, w, es) != 0) {
      ++wrong;
      if (shown++ < 4) {
        uint64_t gv = 0, wv = 0;
        std::memcpy(&gv, g, es);
        std::memcpy(&wv, w, es);
        out += "element " + std::to_string(i) + ": got 0x" + std::to_string(gv) + " want 0x" +
               std::to_string(wv) + "; ";
      }
    }
  }
  if (wrong > 0) out = std::to_string(wrong) + " wrong elements: " + out;
  return out;
}

}  // namespace weft::test
