// Queries about a communicator that move no data: which algorithm the tuner would run for a call.
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "api/comm.h"
#include "core/dtype.h"

using weft::CollDesc;
using weft::CollType;
using weft::errorStatus;
using weft::Status;

namespace {

bool reduces(CollType t) {
  return t == CollType::kAllReduce || t == CollType::kReduceScatter || t == CollType::kReduce;
}

// Collectives whose description carries a root (broadcast, reduce, and the rooted ones others add:
// gather, scatter), by name so that new collectives need no change here.
bool rooted(CollType t) {
  const std::string n = weft::collName(t);
  return n == "broadcast" || n == "reduce" || n == "gather" || n == "scatter";
}

std::string acceptedCollectives() {
  std::string out;
  for (int c = 0; c < static_cast<int>(CollType::kCount); ++c)
    out += (out.empty() ? "" : ", ") + std::string(weft::collName(static_cast<CollType>(c)));
  return out;
}

// weftCommGetAlgorithm and, with buffers (withBuffers), weftCommGetAlgorithmFor; `fn` names the
// entry point in messages.
Status algorithmFor(weftComm_t comm, const char* fn, const char* collective, bool withBuffers,
                    const void* send, const void* recv, size_t count, weftDataType_t datatype,
                    weftRedOp_t op, const char** name) {
  if (comm == nullptr) return Status(weftInvalidArgument, "comm is NULL");
  if (name == nullptr) return Status(weftInvalidArgument, "name is NULL");
  *name = nullptr;
  if (collective == nullptr) return Status(weftInvalidArgument, "collective is NULL");
  CollType type;
  if (!weft::parseCollName(collective, &type))
    return errorStatus(weftInvalidArgument,
                       "collective \"%s\" is not a weft collective (accepted: %s)", collective,
                       acceptedCollectives().c_str());
  if (std::string(weft::collName(type)) == "alltoallv")
    return errorStatus(weftInvalidArgument,
                       "collective \"alltoallv\" cannot be described by a count in %s: its "
                       "counts are per-peer arrays (ask for alltoall with the count per peer "
                       "instead)",
                       fn);
  int rawDtype = 0, rawOp = 0;  // any integer may arrive through the C ABI: read the bits
  std::memcpy(&rawDtype, &datatype, sizeof rawDtype);
  std::memcpy(&rawOp, &op, sizeof rawOp);
  if (!weft::validDtype(rawDtype))
    return errorStatus(weftInvalidArgument, "datatype %d is not a weft data type (0..%d) in %s",
                       rawDtype, weftNumTypes - 1, fn);
  if (reduces(type) && !weft::validOp(rawOp))
    return errorStatus(weftInvalidArgument, "op %d is not a weft reduction (0..%d) in %s for %s",
                       rawOp, weftNumOps - 1, fn, weft::collName(type));
  CollDesc d;
  d.type = type;
  d.count = count;
  d.dtype = datatype;
  d.op = reduces(type) ? op : weftSum;
  d.elemSize = weft::dtypeSize(datatype);
  comm->describeFor(type, &d);  // as the API's calls describe it
  d.root = rooted(type) ? 0 : -1;
  if (type == CollType::kSend || type == CollType::kRecv) d.peer = (comm->rank + 1) % comm->nranks;
  if (count >
      std::numeric_limits<uint64_t>::max() / 2 / d.elemSize / static_cast<uint64_t>(comm->nranks))
    return errorStatus(weftInvalidArgument,
                       "count %zu of %s elements overflows the byte size in %s", count,
                       weft::dtypeName(datatype), fn);
  if (withBuffers && type != CollType::kSend && type != CollType::kRecv)
    d.mapped = comm->buffersMapped(
        weft::sendBufferUsed(type, comm->rank, d.root) ? send : nullptr, d.sendBufBytes(),
        weft::recvBufferUsed(type, comm->rank, d.root) ? recv : nullptr, d.recvBufBytes());
  WEFT_ASSIGN_OR_RETURN(const weft::AlgorithmInfo* algo, comm->tuner.choose(d));
  *name = algo->name;
  return Status::Ok();
}

}  // namespace

extern "C" {

weftResult_t weftCommGetAlgorithm(weftComm_t comm, const char* collective, size_t count,
                                  weftDataType_t datatype, weftRedOp_t op, const char** name) {
  return weft::guarded(comm, [&] {
    return algorithmFor(comm, "weftCommGetAlgorithm", collective, false, nullptr, nullptr, count,
                        datatype, op, name);
  });
}

weftResult_t weftCommGetAlgorithmFor(weftComm_t comm, const char* collective, const void* sendbuff,
                                     const void* recvbuff, size_t count, weftDataType_t datatype,
                                     weftRedOp_t op, const char** name) {
  return weft::guarded(comm, [&] {
    return algorithmFor(comm, "weftCommGetAlgorithmFor", collective, true, sendbuff, recvbuff,
                        count, datatype, op, name);
  });
}

weftResult_t weftCommTransportStats(weftComm_t comm, weftTransportStats_t* stats, int* count) {
  return weft::guarded(comm, [&]() -> Status {
    if (comm == nullptr) return Status(weftInvalidArgument, "comm is NULL");
    if (count == nullptr) return Status(weftInvalidArgument, "count is NULL");
    if (*count < 0) return errorStatus(weftInvalidArgument, "*count %d is negative", *count);
    if (*count > 0 && stats == nullptr)
      return errorStatus(weftInvalidArgument, "stats is NULL but *count is %d", *count);
    std::vector<weft::TransportStats> all;
    {
      std::lock_guard<weft::ExecLock> lock(comm->execMu);
      comm->transport->stats(&all);
    }
    for (size_t i = 0; i < all.size() && static_cast<int>(i) < *count; ++i) {
      weftTransportStats_t& out = stats[i];
      std::memset(&out, 0, sizeof out);
      std::snprintf(out.name, sizeof out.name, "%s", all[i].name.c_str());
      std::snprintf(out.device, sizeof out.device, "%s", all[i].device.c_str());
      out.peers = all[i].peers;
      out.bytesSent = all[i].bytesSent;
      out.bytesReceived = all[i].bytesReceived;
      out.messagesSent = all[i].messagesSent;
      out.messagesReceived = all[i].messagesReceived;
      out.bytesPut = all[i].bytesPut;
      out.bytesGot = all[i].bytesGot;
    }
    *count = static_cast<int>(all.size());
    return Status::Ok();
  });
}

}  // extern "C"
