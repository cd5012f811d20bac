// The C ABI: argument checks, group calls, requests and error reporting around the engine. Every
// entry point returns a weftResult_t and leaves a message for weftGetLastError; no exception
// escapes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>

#include "api/comm.h"
#include "core/config.h"
#include "core/dtype.h"
#include "core/log.h"
#include "memory/memory_kind.h"

using weft::CollDesc;
using weft::CollType;
using weft::errorStatus;
using weft::OpCall;
using weft::Status;

namespace {

// ---- Groups ----
struct GroupState {
  int depth = 0;
  std::vector<std::pair<weftComm*, OpCall>> calls;
  Status firstError;
};
// initial-exec: a plain offset from the thread pointer instead of a __tls_get_addr call per access.
__attribute__((tls_model("initial-exec"))) thread_local GroupState tGroup;
constexpr weftRedOp_t kNoOp = weftSum;  // for collectives that do not reduce

Status checkComm(const weftComm* comm) {
  if (comm == nullptr) return Status(weftInvalidArgument, "comm is NULL");
  return Status::Ok();
}

Status checkBuffer(const void* buf, uint64_t bytes, const char* name, const CollDesc& d) {
  if (buf == nullptr && bytes > 0)
    return errorStatus(weftInvalidArgument, "%s is NULL with %llu bytes to move in %s", name,
                       static_cast<unsigned long long>(bytes), weft::collDisplayName(d.type));
  const weft::MemKind kind = weft::detectMemKind(buf);
  if (kind != weft::MemKind::kHost)
    return errorStatus(
        weftInvalidUsage,
        "%s is %s device memory: this build of weft moves host memory only (device paths are not "
        "built yet)",
        name, weft::memKindName(kind));
  return Status::Ok();
}

// Validates a call and fills its description. Counts are per rank as the API defines them.
Status describe(weftComm* comm, CollType type, const void* send, void* recv, size_t count,
                int rawDtype, int rawOp, int root, int peer, weftStream_t stream, CollDesc* d) {
  WEFT_TRY(checkComm(comm));
  const char* name = weft::collDisplayName(type);
  if (!weft::validDtype(rawDtype))
    return errorStatus(weftInvalidArgument, "datatype %d is not a weft data type (0..%d) in %s",
                       rawDtype, weftNumTypes - 1, name);
  const bool reduces =
      type == CollType::kAllReduce || type == CollType::kReduceScatter || type == CollType::kReduce;
  if (reduces && !weft::validOp(rawOp))
    return errorStatus(weftInvalidArgument, "op %d is not a weft reduction (0..%d) in %s", rawOp,
                       weftNumOps - 1, name);
  if ((type == CollType::kBroadcast || type == CollType::kReduce) &&
      (root < 0 || root >= comm->nranks))
    return errorStatus(weftInvalidArgument, "root %d is out of range for %s on %d ranks", root,
                       name, comm->nranks);
  if ((type == CollType::kSend || type == CollType::kRecv) && (peer < 0 || peer >= comm->nranks))
    return errorStatus(weftInvalidArgument, "peer %d is out of range for %s on %d ranks", peer,
                       name, comm->nranks);
  if (stream != nullptr)
    return errorStatus(weftInvalidUsage,
                       "stream is not NULL in %s: device streams are not supported by this build "
                       "of weft yet; pass "
                       "NULL for host buffers",
                       name);
  d->type = type;
  d->count = count;
  const auto dtype = static_cast<weftDataType_t>(rawDtype);
  d->dtype = dtype;
  d->op = reduces ? static_cast<weftRedOp_t>(rawOp) : weftSum;
  d->root = root;
  d->peer = peer;
  d->rank = comm->rank;
  d->nranks = comm->nranks;
  d->elemSize = weft::dtypeSize(dtype);
  const uint64_t factor = (type == CollType::kAllGather || type == CollType::kReduceScatter)
                              ? static_cast<uint64_t>(comm->nranks)
                              : 1;
  if (count > std::numeric_limits<uint64_t>::max() / 2 / d->elemSize / factor)
    return errorStatus(weftInvalidArgument,
                       "count %zu of %s elements overflows the byte size in %s", count,
                       weft::dtypeName(dtype), name);
  const uint64_t sendBytes = d->sendBufBytes(), recvBytes = d->recvBufBytes();
  // In place, by the conventions in weft.h.
  const char* s = static_cast<const char*>(send);
  const char* r = static_cast<const char*>(recv);
  switch (type) {
    case CollType::kAllGather:
      d->inPlace = send != nullptr && s == r + comm->rank * d->bytes();
      break;
    case CollType::kReduceScatter:
      d->inPlace = recv != nullptr && r == s + comm->rank * d->bytes();
      break;
    default:
      d->inPlace = send != nullptr && send == recv;
      break;
  }
  const bool sendUsed =
      type != CollType::kRecv && !(type == CollType::kBroadcast && comm->rank != root);
  const bool recvUsed =
      type != CollType::kSend && !(type == CollType::kReduce && comm->rank != root);
  if (sendUsed) WEFT_TRY(checkBuffer(send, sendBytes, "sendbuff", *d));
  if (recvUsed) WEFT_TRY(checkBuffer(recv, recvBytes, "recvbuff", *d));
  return Status::Ok();
}

Status submit(weftComm* comm, const CollDesc& d, const void* send, void* recv,
              weftRequest_t* request) {
  OpCall call;
  call.desc = d;
  call.send = send;
  call.recv = recv;
  if (comm->lastAlgo != nullptr && d == comm->lastDesc) {
    call.algo = comm->lastAlgo;
  } else {
    WEFT_ASSIGN_OR_RETURN(call.algo, comm->tuner.choose(d));
    comm->lastDesc = d;
    comm->lastAlgo = call.algo;
  }
  if (tGroup.depth > 0) {
    if (request != nullptr)
      return Status(weftInvalidUsage,
                    "non-blocking calls cannot be made inside weftGroupStart/weftGroupEnd");
    tGroup.calls.emplace_back(comm, call);
    return Status::Ok();
  }
  if (d.count == 0 && d.type != CollType::kSend && d.type != CollType::kRecv && request == nullptr)
    return Status::Ok();  // nothing to move; every rank sees count 0 alike
  if (request != nullptr) {
    auto* req = new weftRequest();
    req->comm = comm;
    req->calls.push_back(call);
    *request = req;
    return weft::commPost(comm, req);
  }
  return weft::commExecute(comm, std::span<const OpCall>(&call, 1));
}

weftResult_t collective(weftComm* comm, CollType type, const void* send, void* recv, size_t count,
                        const weftDataType_t* dtype, const weftRedOp_t* op, int root, int peer,
                        weftStream_t stream, weftRequest_t* request) {
  if (request != nullptr) *request = nullptr;
  return weft::guarded(comm, [&]() -> Status {
    CollDesc d;
    // A C caller may pass any integer in an enum argument: read the bits, not the enum, so that a
    // bad value is reported rather than being undefined behaviour.
    int rawDtype = 0, rawOp = 0;
    std::memcpy(&rawDtype, dtype, sizeof rawDtype);
    std::memcpy(&rawOp, op, sizeof rawOp);
    Status s = describe(comm, type, send, recv, count, rawDtype, rawOp, root, peer, stream, &d);
    if (!s.ok()) {
      if (tGroup.depth > 0 && tGroup.firstError.ok()) tGroup.firstError = s;
      return s;
    }
    return submit(comm, d, send, recv, request);
  });
}

}  // namespace

extern "C" {

weftResult_t weftGetVersion(int* version) {
  if (version == nullptr)
    return weft::reportError(nullptr, Status(weftInvalidArgument, "version is NULL"));
  *version = WEFT_VERSION_CODE;
  return weftSuccess;
}

const char* weftGetErrorString(weftResult_t result) {
  int raw = 0;  // any integer may arrive through the C ABI: read the bits, not the enum
  std::memcpy(&raw, &result, sizeof raw);
  switch (raw) {
    case weftSuccess:
      return "no error";
    case weftUnhandledDeviceError:
      return "unhandled device error";
    case weftSystemError:
      return "unhandled system error (a system call, memory or a file failed)";
    case weftInternalError:
      return "internal error (a bug in weft)";
    case weftInvalidArgument:
      return "invalid argument";
    case weftInvalidUsage:
      return "invalid usage (the ranks disagree, or the call is not allowed here)";
    case weftRemoteError:
      return "remote process exited or there was a network error";
    case weftInProgress:
      return "operation in progress";
    case weftTimeout:
      return "timed out";
    default:
      return "unknown result code";
  }
}

const char* weftGetLastError(weftComm_t comm) {
  return weft::lastErrorFor(comm);
}

weftResult_t weftCommGetAsyncError(weftComm_t comm, weftResult_t* asyncError) {
  return weft::guarded(comm, [&]() -> Status {
    WEFT_TRY(checkComm(comm));
    if (asyncError == nullptr) return Status(weftInvalidArgument, "asyncError is NULL");
    *asyncError = static_cast<weftResult_t>(comm->asyncError.load());
    return Status::Ok();
  });
}

weftResult_t weftCommCount(const weftComm_t comm, int* count) {
  return weft::guarded(nullptr, [&]() -> Status {
    WEFT_TRY(checkComm(comm));
    if (count == nullptr) return Status(weftInvalidArgument, "count is NULL");
    *count = comm->nranks;
    return Status::Ok();
  });
}

weftResult_t weftCommUserRank(const weftComm_t comm, int* rank) {
  return weft::guarded(nullptr, [&]() -> Status {
    WEFT_TRY(checkComm(comm));
    if (rank == nullptr) return Status(weftInvalidArgument, "rank is NULL");
    *rank = comm->rank;
    return Status::Ok();
  });
}

weftResult_t weftAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                           weftStream_t stream) {
  return collective(comm, CollType::kAllReduce, sendbuff, recvbuff, count, &datatype, &op, -1, -1,
                    stream, nullptr);
}
weftResult_t weftAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           weftDataType_t datatype, weftComm_t comm, weftStream_t stream) {
  return collective(comm, CollType::kAllGather, sendbuff, recvbuff, sendcount, &datatype, &kNoOp,
                    -1, -1, stream, nullptr);
}
weftResult_t weftReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                               weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                               weftStream_t stream) {
  return collective(comm, CollType::kReduceScatter, sendbuff, recvbuff, recvcount, &datatype, &op,
                    -1, -1, stream, nullptr);
}
weftResult_t weftBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                           weftDataType_t datatype, int root, weftComm_t comm,
                           weftStream_t stream) {
  return collective(comm, CollType::kBroadcast, sendbuff, recvbuff, count, &datatype, &kNoOp, root,
                    -1, stream, nullptr);
}
weftResult_t weftReduce(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype,
                        weftRedOp_t op, int root, weftComm_t comm, weftStream_t stream) {
  return collective(comm, CollType::kReduce, sendbuff, recvbuff, count, &datatype, &op, root, -1,
                    stream, nullptr);
}
weftResult_t weftSend(const void* sendbuff, size_t count, weftDataType_t datatype, int peer,
                      weftComm_t comm, weftStream_t stream) {
  return collective(comm, CollType::kSend, sendbuff, nullptr, count, &datatype, &kNoOp, -1, peer,
                    stream, nullptr);
}
weftResult_t weftRecv(void* recvbuff, size_t count, weftDataType_t datatype, int peer,
                      weftComm_t comm, weftStream_t stream) {
  return collective(comm, CollType::kRecv, nullptr, recvbuff, count, &datatype, &kNoOp, -1, peer,
                    stream, nullptr);
}

weftResult_t weftIAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                            weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                            weftStream_t stream, weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kAllReduce, sendbuff, recvbuff, count, &datatype, &op, -1, -1,
                    stream, request);
}
weftResult_t weftIAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                            weftDataType_t datatype, weftComm_t comm, weftStream_t stream,
                            weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kAllGather, sendbuff, recvbuff, sendcount, &datatype, &kNoOp,
                    -1, -1, stream, request);
}
weftResult_t weftIReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                                weftStream_t stream, weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kReduceScatter, sendbuff, recvbuff, recvcount, &datatype, &op,
                    -1, -1, stream, request);
}
weftResult_t weftIBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                            weftDataType_t datatype, int root, weftComm_t comm, weftStream_t stream,
                            weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kBroadcast, sendbuff, recvbuff, count, &datatype, &kNoOp, root,
                    -1, stream, request);
}
weftResult_t weftIReduce(const void* sendbuff, void* recvbuff, size_t count,
                         weftDataType_t datatype, weftRedOp_t op, int root, weftComm_t comm,
                         weftStream_t stream, weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kReduce, sendbuff, recvbuff, count, &datatype, &op, root, -1,
                    stream, request);
}
weftResult_t weftISend(const void* sendbuff, size_t count, weftDataType_t datatype, int peer,
                       weftComm_t comm, weftStream_t stream, weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kSend, sendbuff, nullptr, count, &datatype, &kNoOp, -1, peer,
                    stream, request);
}
weftResult_t weftIRecv(void* recvbuff, size_t count, weftDataType_t datatype, int peer,
                       weftComm_t comm, weftStream_t stream, weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kRecv, nullptr, recvbuff, count, &datatype, &kNoOp, -1, peer,
                    stream, request);
}

weftResult_t weftTest(weftRequest_t request, int* done) {
  if (request == nullptr)
    return weft::reportError(nullptr, Status(weftInvalidArgument, "request is NULL"));
  if (done == nullptr)
    return weft::reportError(nullptr, Status(weftInvalidArgument, "done is NULL"));
  weftComm* comm = request->comm;
  Status result;
  {
    std::lock_guard<std::mutex> lock(request->mu);
    if (!request->done) {
      *done = 0;
      return weftSuccess;
    }
    result = request->result;
  }
  *done = 1;
  delete request;
  return weft::reportError(comm, result);
}

weftResult_t weftWait(weftRequest_t request) {
  if (request == nullptr)
    return weft::reportError(nullptr, Status(weftInvalidArgument, "request is NULL"));
  weftComm* comm = request->comm;
  Status result;
  {
    std::unique_lock<std::mutex> lock(request->mu);
    request->cv.wait(lock, [&] { return request->done; });
    result = request->result;
  }
  delete request;
  return weft::reportError(comm, result);
}

weftResult_t weftGroupStart(void) {
  ++tGroup.depth;
  return weftSuccess;
}

weftResult_t weftGroupEnd(void) {
  if (tGroup.depth == 0)
    return weft::reportError(
        nullptr, Status(weftInvalidUsage, "weftGroupEnd without a matching weftGroupStart"));
  if (--tGroup.depth > 0) return weftSuccess;
  std::vector<std::pair<weftComm*, OpCall>> calls = std::move(tGroup.calls);
  Status first = tGroup.firstError;
  tGroup = GroupState();
  if (!first.ok())
    return weft::reportError(nullptr,
                             first.withContext("a call in the group was invalid, so none ran"));
  weftComm* lastComm = nullptr;
  return weft::guarded(nullptr, [&]() -> Status {
    // One merged execution per communicator, in the order communicators first appeared.
    std::vector<weftComm*> comms;
    for (auto& [c, call] : calls)
      if (std::find(comms.begin(), comms.end(), c) == comms.end()) comms.push_back(c);
    for (weftComm* c : comms) {
      std::vector<OpCall> mine;
      for (auto& [cc, call] : calls)
        if (cc == c) mine.push_back(call);
      lastComm = c;
      Status s = weft::commExecute(c, mine);
      if (!s.ok()) {
        weft::reportError(c, s);
        return s;
      }
    }
    (void)lastComm;
    return Status::Ok();
  });
}

}  // extern "C"
