// Shared driver of the nccl-tests style perf binaries (weft_<coll>_perf).
//
// A binary describes its collective with a CollDesc (how to call it, how many elements a size
// means, the busbw factor, the in-place pointers and where each output element comes from) and
// hands it to RunPerf, which does everything else: flags, buffers, warm-up, timing, combining times
// across ranks, result checks, the table on rank 0 and the JSON file. Only the public C API
// (weft/weft.h) is used.
//
// Inputs: element i of rank r's send buffer holds Value(r, i), a small integer stored in the data
// type, taken from a per-rank table of kPeriod entries (a prime, so that misplaced chunks show up).
// Each output element is either the reduction over all ranks of Value(q, k) for one index k, or a
// copy of Value(q, k) from one rank q.
#ifndef WEFT_PERF_COMMON_H_
#define WEFT_PERF_COMMON_H_

#include <cstddef>
#include <vector>

#include "weft/weft.h"

namespace weftperf {

// Element counts of one row of the table.
struct Shape {
  size_t sendcount = 0;   // elements in the send buffer of each rank
  size_t recvcount = 0;   // elements in the receive buffer of each rank
  size_t paramcount = 0;  // the count argument of the call (also the "count" column)
  size_t bytes = 0;       // the "size" column; algbw = bytes / time
};

// Everything a collective call needs.
struct CallArgs {
  const void* send;
  void* recv;
  Shape shape;
  weftDataType_t type;
  weftRedOp_t op;  // meaningless for collectives that do not reduce
  int root;        // -1 for collectives without a root
  weftComm_t comm;
};

// A run of output elements [offset, offset+length) of the receive buffer whose expected values are
// those of input index src_index, src_index+1, ...: reduced over all ranks (src_rank == kReduced)
// or copied from rank src_rank.
struct Segment {
  size_t offset;
  size_t length;
  int src_rank;
  size_t src_index;
};
inline constexpr int kReduced = -1;

struct CollDesc {
  const char*
      name;      // "all_reduce": the binary is weft_<name>_perf, the JSON "coll" field is <name>
  bool reduces;  // takes a reduction op (-o); otherwise the redop column says "none"
  bool rooted;   // takes a root (-r); otherwise the root column says -1
  // Element counts for a requested size in bytes (count is never below one element per rank).
  Shape (*shape)(size_t bytes, size_t elt_size, int nranks);
  // busbw = algbw * factor
  double (*bus_factor)(int nranks);
  // Calls the collective: blocking when request is null, otherwise the non-blocking form.
  weftResult_t (*call)(const CallArgs& args, weftRequest_t* request);
  // In-place send and receive pointers inside buf (which holds max(sendcount, recvcount) elements).
  void (*in_place)(char* buf, const Shape& shape, size_t elt_size, int rank, const void** send,
                   void** recv);
  // Where each element of the receive buffer of `rank` comes from.
  std::vector<Segment> (*outputs)(const Shape& shape, int rank, int nranks, int root);
};

// Parses the flags, runs the sweep and returns the process exit status: 0 when every call succeeded
// and every checked element was right on every rank, 1 otherwise, 2 for bad flags.
int RunPerf(int argc, char** argv, const CollDesc& desc);

// Per-rank element count for collectives whose size is the whole n-rank buffer (all-gather,
// reduce-scatter).
inline size_t BlockCount(size_t bytes, size_t elt_size, int nranks) {
  size_t c = bytes / elt_size / static_cast<size_t>(nranks);
  return c ? c : 1;
}
// Element count for collectives whose size is one rank's buffer (all-reduce, broadcast).
inline size_t WholeCount(size_t bytes, size_t elt_size) {
  size_t c = bytes / elt_size;
  return c ? c : 1;
}

}  // namespace weftperf

#endif  // WEFT_PERF_COMMON_H_
