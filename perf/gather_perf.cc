// weft_gather_perf: the root ends with every rank's buffer, in rank order.
#include "common.h"

namespace {
using weftperf::CallArgs;
using weftperf::Segment;
using weftperf::Shape;

// The size is the root's output: nranks blocks of count elements (nccl-tests' convention).
Shape MakeShape(size_t bytes, size_t elt, int nranks) {
  const size_t count = weftperf::BlockCount(bytes, elt, nranks);
  const size_t total = count * static_cast<size_t>(nranks);
  return {count, total, count, total * elt};
}

double BusFactor(int nranks) {
  return static_cast<double>(nranks - 1) / nranks;
}

weftResult_t Call(const CallArgs& a, weftRequest_t* request) {
  if (request) {
    return weftIGather(a.send, a.recv, a.shape.paramcount, a.type, a.root, a.comm, nullptr,
                       request);
  }
  return weftGather(a.send, a.recv, a.shape.paramcount, a.type, a.root, a.comm, nullptr);
}

// In place (on the root): the input is the rank's own block of the output.
void InPlace(char* buf, const Shape& s, size_t elt, int rank, const void** send, void** recv) {
  *send = buf + static_cast<size_t>(rank) * s.sendcount * elt;
  *recv = buf;
}

// Only the root's output is defined: block q is rank q's input.
std::vector<Segment> Outputs(const Shape& s, int rank, int nranks, int root) {
  std::vector<Segment> segs;
  if (rank != root) return segs;
  for (int q = 0; q < nranks; ++q)
    segs.push_back({q * s.sendcount, s.sendcount, q, 0});
  return segs;
}

}  // namespace

int main(int argc, char** argv) {
  const weftperf::CollDesc desc{.name = "gather",
                                .reduces = false,
                                .rooted = true,
                                .shape = MakeShape,
                                .bus_factor = BusFactor,
                                .call = Call,
                                .in_place = InPlace,
                                .outputs = Outputs};
  return weftperf::RunPerf(argc, argv, desc);
}
