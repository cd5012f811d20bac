// What one call asks for, independent of buffers: the input to the tuner and to the algorithms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/layout.h"
#include "weft/weft.h"

namespace weft {

class LevelChooser;  // algorithms/registry.h

enum class CollType : uint8_t {
  kAllReduce = 0,
  kAllGather,
  kReduceScatter,
  kBroadcast,
  kReduce,
  kSend,
  kRecv,
  kAllToAll,
  kAllToAllv,
  kGather,
  kScatter,
  kCount
};

// "allreduce", "allgather", "reducescatter", "broadcast", "reduce", "send", "recv", "alltoall",
// "alltoallv", "gather", "scatter": WEFT_ALGO's names.
const char* collName(CollType type);
// Names as in the API's functions and messages: "all_reduce", ...
const char* collDisplayName(CollType type);
bool parseCollName(const std::string& name, CollType* out);

// The per-peer arrays of an all-to-all-v (MPI_Alltoallv's): nranks entries each, in elements. They
// point at the caller's arrays, or at the copy the API keeps for a call that runs later (inside a
// group, or a non-blocking request), so they may be read only while the call is described, tuned,
// planned and run. In a desc's comparison their identity is CollDesc::layoutHash, and the pointers
// are never read (the tuner remembers its last desc past the call, when the arrays may be gone):
// hence this operator, always true. A hash collision there could only reuse the tuner's choice of
// algorithm; the plan cache does not rely on the hash but keys on the arrays' contents
// (src/engine/engine.cc), so two layouts never share a plan.
struct PeerLayout {
  const size_t* sendCounts = nullptr;
  const size_t* sendDispls = nullptr;
  const size_t* recvCounts = nullptr;
  const size_t* recvDispls = nullptr;
  bool operator==(const PeerLayout&) const { return true; }
};

struct CollDesc {
  CollType type = CollType::kAllReduce;
  // Elements per rank as the API counts them: all-reduce/broadcast/reduce/send/recv: count;
  // all-gather: sendcount; reduce-scatter: recvcount; all-to-all: count per peer; gather, scatter:
  // count per rank; all-to-all-v: the elements this rank sends in all (it differs between ranks,
  // so the signature leaves it out).
  uint64_t count = 0;
  weftDataType_t dtype = weftFloat32;
  weftRedOp_t op = weftSum;
  int root = -1;  // broadcast, reduce, gather, scatter
  int peer = -1;  // send, recv
  bool inPlace = false;
  int rank = 0;
  int nranks = 1;
  uint64_t elemSize = 4;
  // Whether one-sided steps can run: every rank can reach every other's memory (the same on all
  // ranks of a communicator).
  bool peerAccess = false;
  // Whether some of that reach goes over a network (RMA through a plugin, PeerMemory::
  // overNetwork): one-sided algorithms are built for memory of one host, so the tuner runs them
  // there only where WEFT_ALGO names them.
  bool peerAccessNet = false;
  // Whether peers map this rank's scratch (the engine allocates it where they can,
  // PeerMemory::mapsShared), so that a one-sided step loads a peer's scratch without a copy
  // through the kernel. The same on every rank of a communicator.
  bool scratchShared = false;
  // Whether every buffer the call uses on this rank is registered (weftCommRegister) and lies in
  // weftMemAlloc memory, so that peers map it and one-sided steps load and store straight in it.
  // As with NCCL's registered buffers, a call must be registered on every rank or on none; the
  // flag is part of the signature, so a mix is reported as a mismatch instead of running
  // different algorithms. Never set for all-to-all-v, send and receive.
  bool mapped = false;
  // Where the ranks are (nodes, local ranks, rails): the communicator's layout, or nullptr where
  // none is known (every rank then counts as on one node). Hierarchical algorithms need it.
  const CommLayout* topo = nullptr;
  // How a hierarchical algorithm picks the flat algorithm of each level (the communicator's tuner),
  // or nullptr for the algorithms' own defaults.
  const LevelChooser* chooser = nullptr;
  // all-to-all-v: the arrays, a 64-bit hash of their contents (0 for other collectives), and the
  // elements the send and receive buffers span (the largest displacement + count).
  PeerLayout layout;
  uint64_t layoutHash = 0;
  uint64_t sendSpan = 0;
  uint64_t recvSpan = 0;

  uint64_t bytes() const { return count * elemSize; }
  // Bytes in the send and receive buffers on this rank.
  uint64_t sendBufBytes() const;
  uint64_t recvBufBytes() const;
  // The send and receive buffers of every rank together, plus `perRankExtra` each (staging): what
  // a call on one node keeps in the caches at once. The tuner's kernel-copy price and the engine's
  // choice of streaming stores both turn on it.
  uint64_t footprintBytes(uint64_t perRankExtra = 0) const {
    return static_cast<uint64_t>(nranks) * (sendBufBytes() + recvBufBytes() + perRankExtra);
  }
  // A 32-bit fingerprint of what every rank must agree on (type, count, dtype, op, root, mapped);
  // carried in every message so that mismatched calls are detected instead of mixing data.
  uint32_t signature() const;
  std::string describe() const;  // "all_reduce count=100 float32 sum"
  bool operator==(const CollDesc&) const = default;
};

// Whether two calls of one communicator have the same shape: the fields that vary from call to
// call and that the tuner and the schedules read (the rest, rank, size and layout, belong to the
// communicator). All-to-all-v calls never match: their arrays are compared elsewhere.
inline bool sameShape(const CollDesc& a, const CollDesc& b) {
  return a.type == b.type && a.count == b.count && a.dtype == b.dtype && a.op == b.op &&
         a.inPlace == b.inPlace && a.root == b.root && a.peer == b.peer && a.mapped == b.mapped &&
         a.type != CollType::kAllToAllv;
}

}  // namespace weft
