// weft_broadcast_perf: every rank ends with the root's buffer.
#include "common.h"

namespace {
using weftperf::CallArgs;
using weftperf::Segment;
using weftperf::Shape;

Shape MakeShape(size_t bytes, size_t elt, int /*nranks*/) {
  const size_t count = weftperf::WholeCount(bytes, elt);
  return {count, count, count, count * elt};
}

double BusFactor(int) {
  return 1.0;
}

weftResult_t Call(const CallArgs& a, weftRequest_t* request) {
  if (request) {
    return weftIBroadcast(a.send, a.recv, a.shape.paramcount, a.type, a.root, a.comm, nullptr,
                          request);
  }
  return weftBroadcast(a.send, a.recv, a.shape.paramcount, a.type, a.root, a.comm, nullptr);
}

void InPlace(char* buf, const Shape&, size_t, int, const void** send, void** recv) {
  *send = buf;
  *recv = buf;
}

// Every element comes from the root.
std::vector<Segment> Outputs(const Shape& s, int, int, int root) {
  return {{0, s.recvcount, root, 0}};
}

}  // namespace

int main(int argc, char** argv) {
  const weftperf::CollDesc desc{.name = "broadcast",
                                .reduces = false,
                                .rooted = true,
                                .shape = MakeShape,
                                .bus_factor = BusFactor,
                                .call = Call,
                                .in_place = InPlace,
                                .outputs = Outputs};
  return weftperf::RunPerf(argc, argv, desc);
}
