// weft_all_to_all_perf: rank r's block j goes to rank j, which keeps it as its block r.
#include "common.h"

namespace {
using weftperf::CallArgs;
using weftperf::Segment;
using weftperf::Shape;

// The size is one rank's send buffer: nranks blocks of count elements (nccl-tests' convention).
Shape MakeShape(size_t bytes, size_t elt, int nranks) {
  const size_t count = weftperf::BlockCount(bytes, elt, nranks);
  const size_t total = count * static_cast<size_t>(nranks);
  return {total, total, count, total * elt};
}

double BusFactor(int nranks) {
  return static_cast<double>(nranks - 1) / nranks;
}

weftResult_t Call(const CallArgs& a, weftRequest_t* request) {
  if (request) {
    return weftIAllToAll(a.send, a.recv, a.shape.paramcount, a.type, a.comm, nullptr, request);
  }
  return weftAllToAll(a.send, a.recv, a.shape.paramcount, a.type, a.comm, nullptr);
}

void InPlace(char* buf, const Shape&, size_t, int, const void** send, void** recv) {
  *send = buf;
  *recv = buf;
}

// Block q of the output is block `rank` of rank q's input.
std::vector<Segment> Outputs(const Shape& s, int rank, int nranks, int) {
  const size_t count = s.paramcount;
  std::vector<Segment> segs;
  for (int q = 0; q < nranks; ++q)
    segs.push_back({q * count, count, q, static_cast<size_t>(rank) * count});
  return segs;
}

}  // namespace

int main(int argc, char** argv) {
  const weftperf::CollDesc desc{.name = "all_to_all",
                                .reduces = false,
                                .rooted = false,
                                .shape = MakeShape,
                                .bus_factor = BusFactor,
                                .call = Call,
                                .in_place = InPlace,
                                .outputs = Outputs};
  return weftperf::RunPerf(argc, argv, desc);
}
