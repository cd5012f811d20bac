// weft_reduce_scatter_perf: rank r ends with block r of the reduction of all ranks' buffers.
#include "common.h"

namespace {
using weftperf::CallArgs;
using weftperf::Segment;
using weftperf::Shape;

// The size is the whole input buffer: nranks blocks of recvcount elements.
Shape MakeShape(size_t bytes, size_t elt, int nranks) {
  const size_t recvcount = weftperf::BlockCount(bytes, elt, nranks);
  const size_t sendcount = recvcount * static_cast<size_t>(nranks);
  return {sendcount, recvcount, recvcount, sendcount * elt};
}

double BusFactor(int nranks) {
  return static_cast<double>(nranks - 1) / nranks;
}

weftResult_t Call(const CallArgs& a, weftRequest_t* request) {
  if (request) {
    return weftIReduceScatter(a.send, a.recv, a.shape.paramcount, a.type, a.op, a.comm, nullptr,
                              request);
  }
  return weftReduceScatter(a.send, a.recv, a.shape.paramcount, a.type, a.op, a.comm, nullptr);
}

// In place: the output is this rank's block of the input buffer.
void InPlace(char* buf, const Shape& s, size_t elt, int rank, const void** send, void** recv) {
  *send = buf;
  *recv = buf + static_cast<size_t>(rank) * s.recvcount * elt;
}

// Element j is the reduction of element rank*recvcount + j of every rank.
std::vector<Segment> Outputs(const Shape& s, int rank, int, int) {
  return {{0, s.recvcount, weftperf::kReduced, static_cast<size_t>(rank) * s.recvcount}};
}

}  // namespace

int main(int argc, char** argv) {
  const weftperf::CollDesc desc{.name = "reduce_scatter",
                                .reduces = true,
                                .rooted = false,
                                .shape = MakeShape,
                                .bus_factor = BusFactor,
                                .call = Call,
                                .in_place = InPlace,
                                .outputs = Outputs};
  return weftperf::RunPerf(argc, argv, desc);
}
