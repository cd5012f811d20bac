// What one call asks for, independent of buffers: the input to the tuner and to the algorithms.
#pragma once

#include <cstdint>
#include <string>

#include "weft/weft.h"

namespace weft {

enum class CollType : uint8_t {
  kAllReduce = 0,
  kAllGather,
  kReduceScatter,
  kBroadcast,
  kReduce,
  kSend,
  kRecv,
  kCount
};

// "allreduce", "allgather", "reducescatter", "broadcast", "reduce", "send", "recv": WEFT_ALGO's
// names.
const char* collName(CollType type);
// Names as in the API's functions and messages: "all_reduce", ...
const char* collDisplayName(CollType type);
bool parseCollName(const std::string& name, CollType* out);

struct CollDesc {
  CollType type = CollType::kAllReduce;
  // Elements per rank as the API counts them: all-reduce/broadcast/reduce/send/recv: count;
  // all-gather: sendcount; reduce-scatter: recvcount.
  uint64_t count = 0;
  weftDataType_t dtype = weftFloat32;
  weftRedOp_t op = weftSum;
  int root = -1;  // broadcast, reduce
  int peer = -1;  // send, recv
  bool inPlace = false;
  int rank = 0;
  int nranks = 1;
  uint64_t elemSize = 4;

  uint64_t bytes() const { return count * elemSize; }
  // Bytes in the send and receive buffers on this rank.
  uint64_t sendBufBytes() const;
  uint64_t recvBufBytes() const;
  // A 32-bit fingerprint of what every rank must agree on (type, count, dtype, op, root); carried
  // in every message so that mismatched calls are detected instead of mixing data.
  uint32_t signature() const;
  std::string describe() const;  // "all_reduce count=100 float32 sum"
  bool operator==(const CollDesc&) const = default;
};

}  // namespace weft
