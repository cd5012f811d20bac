// One-sided reduce-scatter: rank r reduces block r of every peer's input straight from the peers'
// send buffers into its output (GetReduce, chunk by chunk through the peers while each chunk is in
// cache). Nobody writes what others read, so the window exchange is the only synchronisation.
//
// Cost: 2 sync + (p-1) n (peer copy + gamma), one call per chunk and peer.
#include "algorithms/registry.h"

namespace weft::algo {

Status reduceScatterOneSided(const CollDesc& d, Schedule* s) {
  const int p = d.nranks, r = d.rank;
  if (p == 1) return selfCopy(d, s);
  const uint64_t n = d.bytes(), off = static_cast<uint64_t>(r) * n;
  StepId last = kNoStep;
  Region cur = sendRegion(off, n);
  for (int k = 1; k < p; ++k) {
    const int q = (r + k) % p;
    last = s->getReduce(q, recvRegion(0, n), cur, sendRegion(off, n), {last});
    cur = recvRegion(0, n);
    s->exposeTo.push_back(q);
  }
  s->steps[last].finalize = true;
  return Status::Ok();
}

double reduceScatterOneSidedCost(const CollDesc& d, const LevelCost& c) {
  const double p = d.nranks, n = static_cast<double>(d.bytes());
  return 2 * c.syncUs + peerCopyUs(d, c, (p - 1) * n, (p - 1) * chunkMoves(n, c)) +
         (p - 1) * n * c.gammaUsPerByte;
}

}  // namespace weft::algo
