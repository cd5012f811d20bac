// Point-to-point: one message. Inside a group, sends and receives to the same peer are matched in
// the order they were posted.
#include "algorithms/registry.h"

namespace weft::algo {

Status sendDirect(const CollDesc& d, Schedule* s) {
  s->send(d.peer, sendRegion(0, d.bytes()));
  return Status::Ok();
}

Status recvDirect(const CollDesc& d, Schedule* s) {
  s->recv(d.peer, recvRegion(0, d.bytes()));
  return Status::Ok();
}

double p2pDirectCost(const CollDesc& d, const LevelCost& c) {
  return c.alphaUs + static_cast<double>(d.bytes()) * c.betaUsPerByte;
}

}  // namespace weft::algo
