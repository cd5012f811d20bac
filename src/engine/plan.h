// A Plan is a Schedule compiled for execution: every step split into slices, one per channel
// (WEFT_NCHANNELS), each slice cut into chunks no larger than a transport slot, dependencies
// resolved chunk by chunk, and the sends and receives queued per peer and channel in message order.
// Plans hold no pointers to user buffers, so one plan serves every call with the same signature
// (the plan cache).
#pragma once

#include <cstdint>
#include <vector>

#include "core/schedule.h"
#include "core/status.h"

namespace weft {

struct PlanOp {
  StepKind kind;
  bool finalize;
  uint16_t part;
  int32_t sendPeer;  // index into Plan::peers, -1 if none
  int32_t recvPeer;
  int32_t windowPeer;  // one-sided ops: the rank whose window `remote` is in, else -1
  Region dst;          // this chunk's regions
  Region src;
  Region remote;
  uint64_t bytes;
  uint64_t msgBytes;   // the slice's bytes, of which this op is one chunk
  uint32_t succBegin;  // into Plan::succ
  uint32_t succCount;
  uint32_t sendIndex;  // message number to/from that peer within the operation
  uint32_t recvIndex;
  uint32_t step;   // the schedule step this chunk belongs to (for messages)
  uint32_t slice;  // the step's slice (unique in the plan) this chunk belongs to
  uint16_t channel;
  uint32_t chunk;   // within the slice
  uint32_t chunks;  // the slice's chunk count (its ops are consecutive: id - chunk is the first)
};

// One channel to one peer: its own connection (Transport::endpoint(rank, channel)) with its own
// message order.
struct PeerQueues {
  int rank;
  int channel;
  std::vector<uint32_t> sends;  // ops that send to this peer, in message order
  std::vector<uint32_t> recvs;  // ops that receive from it
};

struct Plan {
  std::vector<PlanOp> ops;
  std::vector<uint32_t> succ;
  std::vector<uint32_t> initialDeps;  // per op
  std::vector<PeerQueues> peers;
  std::vector<uint32_t> localOps;      // copy/reduce ops, any order
  std::vector<uint8_t> isLocal;        // per op: 1 for copy/reduce
  std::vector<uint32_t> initialReady;  // local ops with no dependencies
  uint64_t scratchBytes = 0;
  uint64_t chunkBytes = 0;
  uint32_t nsteps = 0;
  uint32_t nslices = 0;
  int channels = 1;
};

// Splits each step into at most `channels` contiguous slices (each at least two chunks long and
// 64-byte aligned where the element size allows), slice k going over channel k, and cuts each slice
// into chunks of at most chunkBytes (a multiple of elemSize). The split depends only on the step's
// size, so both ends of a message split it alike. A step that depends on a step of the same byte
// count depends on it slice by slice and chunk by chunk; otherwise on all of it. Zero-byte steps
// become one empty chunk on channel 0, so that both ends of a message still agree on message
// numbers.
Result<Plan> compilePlan(const Schedule& schedule, uint64_t chunkBytes, int channels = 1);

// How compilePlan splits a step of `bytes`: into sliceCount() slices, slice k of n beginning at
// sliceOffset(..., n, k) (k = n gives `bytes`).
uint32_t sliceCount(uint64_t bytes, uint64_t chunkBytes, uint64_t elemSize, int channels);
uint64_t sliceOffset(uint64_t bytes, uint64_t elemSize, uint32_t n, uint32_t k);

}  // namespace weft
