// weft_all_reduce_perf: every rank ends with the reduction of all ranks' buffers.
#include "common.h"

namespace {
using weftperf::CallArgs;
using weftperf::Segment;
using weftperf::Shape;

Shape MakeShape(size_t bytes, size_t elt, int /*nranks*/) {
  const size_t count = weftperf::WholeCount(bytes, elt);
  return {count, count, count, count * elt};
}

double BusFactor(int nranks) {
  return 2.0 * (nranks - 1) / nranks;
}

weftResult_t Call(const CallArgs& a, weftRequest_t* request) {
  if (request) {
    return weftIAllReduce(a.send, a.recv, a.shape.paramcount, a.type, a.op, a.comm, nullptr,
                          request);
  }
  return weftAllReduce(a.send, a.recv, a.shape.paramcount, a.type, a.op, a.comm, nullptr);
}

void InPlace(char* buf, const Shape&, size_t, int, const void** send, void** recv) {
  *send = buf;
  *recv = buf;
}

// Element j is the reduction of element j of every rank.
std::vector<Segment> Outputs(const Shape& s, int, int, int) {
  return {{0, s.recvcount, weftperf::kReduced, 0}};
}

}  // namespace

int main(int argc, char** argv) {
  const weftperf::CollDesc desc{.name = "all_reduce",
                                .reduces = true,
                                .rooted = false,
                                .shape = MakeShape,
                                .bus_factor = BusFactor,
                                .call = Call,
                                .in_place = InPlace,
                                .outputs = Outputs};
  return weftperf::RunPerf(argc, argv, desc);
}
