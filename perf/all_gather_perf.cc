// weft_all_gather_perf: every rank ends with all ranks' buffers, in rank order.
#include "common.h"

namespace {
using weftperf::CallArgs;
using weftperf::Segment;
using weftperf::Shape;

// The size is the whole output buffer: nranks blocks of sendcount elements.
Shape MakeShape(size_t bytes, size_t elt, int nranks) {
  const size_t sendcount = weftperf::BlockCount(bytes, elt, nranks);
  const size_t recvcount = sendcount * static_cast<size_t>(nranks);
  return {sendcount, recvcount, sendcount, recvcount * elt};
}

double BusFactor(int nranks) {
  return static_cast<double>(nranks - 1) / nranks;
}

weftResult_t Call(const CallArgs& a, weftRequest_t* request) {
  if (request) {
    return weftIAllGather(a.send, a.recv, a.shape.paramcount, a.type, a.comm, nullptr, request);
  }
  return weftAllGather(a.send, a.recv, a.shape.paramcount, a.type, a.comm, nullptr);
}

// In place: the input is this rank's block of the output buffer.
void InPlace(char* buf, const Shape& s, size_t elt, int rank, const void** send, void** recv) {
  *send = buf + static_cast<size_t>(rank) * s.sendcount * elt;
  *recv = buf;
}

// Block q is rank q's input.
std::vector<Segment> Outputs(const Shape& s, int, int nranks, int) {
  std::vector<Segment> segs;
  for (int q = 0; q < nranks; ++q)
    segs.push_back({q * s.sendcount, s.sendcount, q, 0});
  return segs;
}

}  // namespace

int main(int argc, char** argv) {
  const weftperf::CollDesc desc{.name = "all_gather",
                                .reduces = false,
                                .rooted = false,
                                .shape = MakeShape,
                                .bus_factor = BusFactor,
                                .call = Call,
                                .in_place = InPlace,
                                .outputs = Outputs};
  return weftperf::RunPerf(argc, argv, desc);
}
