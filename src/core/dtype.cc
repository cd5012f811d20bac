#include "core/dtype.h"

namespace weft {

namespace {

struct DtypeInfo {
  const char* name;
  size_t size;
};

// Indexed by weftDataType_t.
constexpr DtypeInfo kDtypes[weftNumTypes] = {
    {"int8", 1}, {"uint8", 1}, {"int32", 4},  {"uint32", 4},   {"int64", 8},  {"uint64", 8},
    {"half", 2}, {"float", 4}, {"double", 8}, {"bfloat16", 2}, {"f8e4m3", 1}, {"f8e5m2", 1},
};

// Indexed by weftRedOp_t.
constexpr const char* kOps[weftNumOps] = {"sum", "prod", "max", "min", "avg"};

struct Alias {
  const char* name;
  weftDataType_t dtype;
};

constexpr Alias kDtypeAliases[] = {
    {"char", weftChar},          {"int", weftInt},
    {"float16", weftFloat16},    {"fp16", weftFloat16},
    {"float32", weftFloat32},    {"fp32", weftFloat32},
    {"float64", weftFloat64},    {"fp64", weftFloat64},
    {"bf16", weftBfloat16},      {"fp8e4m3", weftFloat8e4m3},
    {"fp8e5m2", weftFloat8e5m2},
};

// ASCII only, so that the locale cannot change what parses.
bool equalsIgnoreCase(const char* a, const char* b) {
  for (;; ++a, ++b) {
    char ca = *a, cb = *b;
    if (ca >= 'A' && ca <= 'Z') ca = static_cast<char>(ca - 'A' + 'a');
    if (cb >= 'A' && cb <= 'Z') cb = static_cast<char>(cb - 'A' + 'a');
    if (ca != cb) return false;
    if (ca == '\0') return true;
  }
}

}  // namespace

bool validDtype(int dtype) {
  return dtype >= 0 && dtype < weftNumTypes;
}

bool validOp(int op) {
  return op >= 0 && op < weftNumOps;
}

size_t dtypeSize(weftDataType_t dtype) {
  return validDtype(dtype) ? kDtypes[dtype].size : 0;
}

const char* dtypeName(weftDataType_t dtype) {
  return validDtype(dtype) ? kDtypes[dtype].name : "invalid";
}

const char* opName(weftRedOp_t op) {
  return validOp(op) ? kOps[op] : "invalid";
}

bool parseDtype(const char* name, weftDataType_t* dtype) {
  if (name == nullptr) return false;
  for (int i = 0; i < weftNumTypes; ++i) {
    if (equalsIgnoreCase(name, kDtypes[i].name)) {
      *dtype = static_cast<weftDataType_t>(i);
      return true;
    }
  }
  for (const Alias& alias : kDtypeAliases) {
    if (equalsIgnoreCase(name, alias.name)) {
      *dtype = alias.dtype;
      return true;
    }
  }
  return false;
}

bool parseOp(const char* name, weftRedOp_t* op) {
  if (name == nullptr) return false;
  for (int i = 0; i < weftNumOps; ++i) {
    if (equalsIgnoreCase(name, kOps[i])) {
      *op = static_cast<weftRedOp_t>(i);
      return true;
    }
  }
  return false;
}

}  // namespace weft
