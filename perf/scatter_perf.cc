// weft_scatter_perf: rank q ends with block q of the root's buffer.
#include "common.h"

namespace {
using weftperf::CallArgs;
using weftperf::Segment;
using weftperf::Shape;

// The size is the root's input: nranks blocks of count elements (nccl-tests' convention).
Shape MakeShape(size_t bytes, size_t elt, int nranks) {
  const size_t count = weftperf::BlockCount(bytes, elt, nranks);
  const size_t total = count * static_cast<size_t>(nranks);
  return {total, count, count, total * elt};
}

double BusFactor(int nranks) {
  return static_cast<double>(nranks - 1) / nranks;
}

weftResult_t Call(const CallArgs& a, weftRequest_t* request) {
  if (request) {
    return weftIScatter(a.send, a.recv, a.shape.paramcount, a.type, a.root, a.comm, nullptr,
                        request);
  }
  return weftScatter(a.send, a.recv, a.shape.paramcount, a.type, a.root, a.comm, nullptr);
}

// In place (on the root): the output is the rank's own block of the input.
void InPlace(char* buf, const Shape& s, size_t elt, int rank, const void** send, void** recv) {
  *send = buf;
  *recv = buf + static_cast<size_t>(rank) * s.recvcount * elt;
}

// Block `rank` of the root's input.
std::vector<Segment> Outputs(const Shape& s, int rank, int, int root) {
  return {{0, s.recvcount, root, static_cast<size_t>(rank) * s.recvcount}};
}

}  // namespace

int main(int argc, char** argv) {
  const weftperf::CollDesc desc{.name = "scatter",
                                .reduces = false,
                                .rooted = true,
                                .shape = MakeShape,
                                .bus_factor = BusFactor,
                                .call = Call,
                                .in_place = InPlace,
                                .outputs = Outputs};
  return weftperf::RunPerf(argc, argv, desc);
}
