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
  std::vector<std::pair<weftComm*, OpCall>> calls;
  // Copies of the queued all-to-all-v calls' arrays: the caller may reuse its own before the group
  // runs. (An inner vector's storage stays put when the outer one grows.)
  std::vector<std::vector<size_t>> layouts;
  Status firstError;
};
// initial-exec: a plain offset from the thread pointer instead of a __tls_get_addr call per access.
__attribute__((tls_model("initial-exec"))) thread_local GroupState tGroup;
// The nesting depth of weftGroupStart, apart from the state: a plain integer costs every call one
// load, where the state (which has constructors) costs a call to the TLS wrapper.
__attribute__((tls_model("initial-exec"))) thread_local int tGroupDepth = 0;
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

// All-to-all-v's arrays: each present, every range's byte size representable, the block to self
// the same size on both sides, receive ranges disjoint (send ranges may overlap: the same data may
// go to several ranks, as in MPI). Fills the desc's count (elements this rank sends), spans and
// layout hash. O(nranks) per call when the receive ranges ascend with the rank, as they usually do;
// otherwise they are sorted first.
Status describeLayout(const weft::PeerLayout& v, int rank, int nranks, CollDesc* d) {
  const char* name = weft::collDisplayName(CollType::kAllToAllv);
  const size_t* arrays[4] = {v.sendCounts, v.sendDispls, v.recvCounts, v.recvDispls};
  static const char* const kArrayNames[4] = {"sendcounts", "sdispls", "recvcounts", "rdispls"};
  for (int a = 0; a < 4; ++a)
    if (arrays[a] == nullptr)
      return errorStatus(weftInvalidArgument, "%s is NULL in %s", kArrayNames[a], name);
  // Elements of the largest byte range weft accepts, as the other collectives' count check.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() / 2 / d->elemSize;
  uint64_t sendTotal = 0, sendSpan = 0, recvSpan = 0;
  for (int j = 0; j < nranks; ++j) {
    for (int side = 0; side < 2; ++side) {
      const uint64_t count = arrays[2 * side][j], displ = arrays[2 * side + 1][j];
      if (count > limit || displ > limit - count)
        return errorStatus(weftInvalidArgument,
                           "%s[%d] = %zu + %s[%d] = %zu overflows the byte size of %s elements "
                           "in %s",
                           kArrayNames[2 * side + 1], j, static_cast<size_t>(displ),
                           kArrayNames[2 * side], j, static_cast<size_t>(count),
                           weft::dtypeName(d->dtype), name);
      if (count > 0) {
        uint64_t& span = side == 0 ? sendSpan : recvSpan;
        span = std::max(span, displ + count);
      }
    }
    sendTotal += v.sendCounts[j];
    if (sendTotal > limit)
      return errorStatus(weftInvalidArgument,
                         "the sum of sendcounts overflows the byte size of %s elements in %s",
                         weft::dtypeName(d->dtype), name);
  }
  if (v.sendCounts[rank] != v.recvCounts[rank])
    return errorStatus(weftInvalidArgument,
                       "sendcounts[%d] = %zu differs from recvcounts[%d] = %zu in %s: rank %d's "
                       "block to itself must have the same count on both sides",
                       rank, v.sendCounts[rank], rank, v.recvCounts[rank], name, rank);
  // Receive ranges must be disjoint: in rank order when they ascend, else in displacement order.
  auto overlap = [&](int i, int j) {
    return errorStatus(weftInvalidArgument,
                       "recvcounts/rdispls: the receive ranges of rank %d [%zu, %zu) and rank %d "
                       "[%zu, %zu) overlap in %s (elements)",
                       i, v.recvDispls[i], v.recvDispls[i] + v.recvCounts[i], j, v.recvDispls[j],
                       v.recvDispls[j] + v.recvCounts[j], name);
  };
  bool ascending = true;
  int prev = -1;
  for (int j = 0; j < nranks && ascending; ++j) {
    if (v.recvCounts[j] == 0) continue;
    if (prev >= 0 && v.recvDispls[j] < v.recvDispls[prev] + v.recvCounts[prev]) {
      if (v.recvDispls[j] + v.recvCounts[j] > v.recvDispls[prev]) return overlap(prev, j);
      ascending = false;
    }
    prev = j;
  }
  if (!ascending) {
    thread_local std::vector<int> order;
    order.clear();
    for (int j = 0; j < nranks; ++j)
      if (v.recvCounts[j] > 0) order.push_back(j);
    std::sort(order.begin(), order.end(),
              [&](int a, int b) { return v.recvDispls[a] < v.recvDispls[b]; });
    for (size_t k = 1; k < order.size(); ++k)
      if (v.recvDispls[order[k]] < v.recvDispls[order[k - 1]] + v.recvCounts[order[k - 1]])
        return overlap(order[k - 1], order[k]);
  }
  // CollDesc::layoutHash, the arrays' identity when descs are compared: every entry, mixed.
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(nranks);
  for (const size_t* a : arrays) {
    for (int j = 0; j < nranks; ++j) {
      h ^= static_cast<uint64_t>(a[j]);
      h *= 0xbf58476d1ce4e5b9ULL;
      h ^= h >> 31;
    }
    h = (h ^ (h >> 29)) * 0x94d049bb133111ebULL;
  }
  d->count = sendTotal;
  d->sendSpan = sendSpan;
  d->recvSpan = recvSpan;
  d->layout = v;
  d->layoutHash = h | 1;  // never 0, which stands for "no arrays"
  return Status::Ok();
}

// Validates a call and fills its description. Counts are per rank as the API defines them;
// all-to-all-v passes its arrays in `layout` instead of a count.
Status describe(weftComm* comm, CollType type, const void* send, void* recv, size_t count,
                int rawDtype, int rawOp, int root, int peer, weftStream_t stream, CollDesc* d,
                const weft::PeerLayout* layout = nullptr) {
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
  const bool rooted = type == CollType::kBroadcast || type == CollType::kReduce ||
                      type == CollType::kGather || type == CollType::kScatter;
  if (rooted && (root < 0 || root >= comm->nranks))
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
  comm->describeFor(type, d);
  d->elemSize = weft::dtypeSize(dtype);
  const uint64_t factor =
      (type == CollType::kAllGather || type == CollType::kReduceScatter ||
       type == CollType::kAllToAll || type == CollType::kGather || type == CollType::kScatter)
          ? static_cast<uint64_t>(comm->nranks)
          : 1;
  if (type == CollType::kAllToAllv) {
    WEFT_TRY(describeLayout(*layout, comm->rank, comm->nranks, d));
  } else if (count > std::numeric_limits<uint64_t>::max() / 2 / d->elemSize / factor)
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
    case CollType::kGather:
      d->inPlace = comm->rank == root && send != nullptr && s == r + root * d->bytes();
      break;
    case CollType::kScatter:
      d->inPlace = comm->rank == root && recv != nullptr && r == s + root * d->bytes();
      break;
    case CollType::kAllToAllv: {
      // Not in place: the receive ranges could overwrite data still to be sent.
      const auto sb = reinterpret_cast<uintptr_t>(s), rb = reinterpret_cast<uintptr_t>(r);
      if (sendBytes > 0 && recvBytes > 0 && sb < rb + recvBytes && rb < sb + sendBytes)
        return errorStatus(weftInvalidArgument,
                           "sendbuff and recvbuff overlap in %s, which does not run in place: "
                           "pass separate buffers",
                           name);
      d->inPlace = false;
      break;
    }
    default:
      d->inPlace = send != nullptr && send == recv;
      break;
  }
  const bool sendUsed = weft::sendBufferUsed(type, comm->rank, root);
  const bool recvUsed = weft::recvBufferUsed(type, comm->rank, root);
  if (sendUsed) WEFT_TRY(checkBuffer(send, sendBytes, "sendbuff", *d));
  if (recvUsed) WEFT_TRY(checkBuffer(recv, recvBytes, "recvbuff", *d));
  if (type != CollType::kAllToAllv && type != CollType::kSend && type != CollType::kRecv)
    d->mapped = comm->buffersMapped(sendUsed ? send : nullptr, sendBytes, recvUsed ? recv : nullptr,
                                    recvBytes);
  return Status::Ok();
}

// A copy of all-to-all-v's arrays in `store`, for a call that runs after its caller returns.
weft::PeerLayout keepLayout(const weft::PeerLayout& v, int nranks, std::vector<size_t>* store) {
  const auto n = static_cast<size_t>(nranks);
  store->resize(4 * n);
  size_t* p = store->data();
  std::copy(v.sendCounts, v.sendCounts + n, p);
  std::copy(v.sendDispls, v.sendDispls + n, p + n);
  std::copy(v.recvCounts, v.recvCounts + n, p + 2 * n);
  std::copy(v.recvDispls, v.recvDispls + n, p + 3 * n);
  return weft::PeerLayout{p, p + n, p + 2 * n, p + 3 * n};
}

Status submit(weftComm* comm, OpCall& call, weftRequest_t* request) {
  const CollDesc& d = call.desc;
  const bool repeated =
      d.type == CollType::kAllToAllv ? d == comm->lastDesc : weft::sameShape(d, comm->lastDesc);
  if (comm->lastAlgo != nullptr && repeated) {
    call.algo = comm->lastAlgo;
  } else {
    WEFT_ASSIGN_OR_RETURN(call.algo, comm->tuner.choose(d));
    comm->lastDesc = d;
    comm->lastAlgo = call.algo;
  }
  if (tGroupDepth > 0) {
    if (request != nullptr)
      return Status(weftInvalidUsage,
                    "non-blocking calls cannot be made inside weftGroupStart/weftGroupEnd");
    if (d.type == CollType::kAllToAllv) {
      tGroup.layouts.emplace_back();
      call.desc.layout = keepLayout(d.layout, d.nranks, &tGroup.layouts.back());
    }
    tGroup.calls.emplace_back(comm, call);
    return Status::Ok();
  }
  // Nothing to move; every rank sees count 0 alike. (Not so in all-to-all-v, where the count is
  // this rank's own total: its zero-byte messages keep the peers in step.)
  if (d.count == 0 && d.type != CollType::kSend && d.type != CollType::kRecv &&
      d.type != CollType::kAllToAllv && request == nullptr)
    return Status::Ok();
  if (request != nullptr) {
    auto* req = new weftRequest();
    req->comm = comm;
    if (d.type == CollType::kAllToAllv)
      call.desc.layout = keepLayout(d.layout, d.nranks, &req->layoutCopy);
    req->calls.push_back(call);
    *request = req;
    return weft::commPost(comm, req);
  }
  return weft::commExecute(comm, std::span<const OpCall>(&call, 1));
}

// Out of line, once: the entry points only pass their arguments on.
__attribute__((noinline)) weftResult_t collective(weftComm* comm, CollType type, const void* send,
                                                  void* recv, size_t count,
                                                  const weftDataType_t* dtype,
                                                  const weftRedOp_t* op, int root, int peer,
                                                  weftStream_t stream, weftRequest_t* request,
                                                  const weft::PeerLayout* layout = nullptr) {
  if (request != nullptr) *request = nullptr;
  return weft::guarded(comm, [&]() -> Status {
    OpCall call;
    // A C caller may pass any integer in an enum argument: read the bits, not the enum, so that a
    // bad value is reported rather than being undefined behaviour.
    int rawDtype = 0, rawOp = 0;
    std::memcpy(&rawDtype, dtype, sizeof rawDtype);
    std::memcpy(&rawOp, op, sizeof rawOp);
    Status s = describe(comm, type, send, recv, count, rawDtype, rawOp, root, peer, stream,
                        &call.desc, layout);
    if (!s.ok()) {
      if (tGroupDepth > 0 && tGroup.firstError.ok()) tGroup.firstError = s;
      return s;
    }
    call.send = send;
    call.recv = recv;
    return submit(comm, call, request);
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
weftResult_t weftAllToAll(const void* sendbuff, void* recvbuff, size_t count,
                          weftDataType_t datatype, weftComm_t comm, weftStream_t stream) {
  return collective(comm, CollType::kAllToAll, sendbuff, recvbuff, count, &datatype, &kNoOp, -1, -1,
                    stream, nullptr);
}
weftResult_t weftAllToAllv(const void* sendbuff, const size_t sendcounts[], const size_t sdispls[],
                           void* recvbuff, const size_t recvcounts[], const size_t rdispls[],
                           weftDataType_t datatype, weftComm_t comm, weftStream_t stream) {
  const weft::PeerLayout layout{sendcounts, sdispls, recvcounts, rdispls};
  return collective(comm, CollType::kAllToAllv, sendbuff, recvbuff, 0, &datatype, &kNoOp, -1, -1,
                    stream, nullptr, &layout);
}
weftResult_t weftGather(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype,
                        int root, weftComm_t comm, weftStream_t stream) {
  return collective(comm, CollType::kGather, sendbuff, recvbuff, count, &datatype, &kNoOp, root, -1,
                    stream, nullptr);
}
weftResult_t weftScatter(const void* sendbuff, void* recvbuff, size_t count,
                         weftDataType_t datatype, int root, weftComm_t comm, weftStream_t stream) {
  return collective(comm, CollType::kScatter, sendbuff, recvbuff, count, &datatype, &kNoOp, root,
                    -1, stream, nullptr);
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
weftResult_t weftIAllToAll(const void* sendbuff, void* recvbuff, size_t count,
                           weftDataType_t datatype, weftComm_t comm, weftStream_t stream,
                           weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kAllToAll, sendbuff, recvbuff, count, &datatype, &kNoOp, -1, -1,
                    stream, request);
}
weftResult_t weftIAllToAllv(const void* sendbuff, const size_t sendcounts[], const size_t sdispls[],
                            void* recvbuff, const size_t recvcounts[], const size_t rdispls[],
                            weftDataType_t datatype, weftComm_t comm, weftStream_t stream,
                            weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  const weft::PeerLayout layout{sendcounts, sdispls, recvcounts, rdispls};
  return collective(comm, CollType::kAllToAllv, sendbuff, recvbuff, 0, &datatype, &kNoOp, -1, -1,
                    stream, request, &layout);
}
weftResult_t weftIGather(const void* sendbuff, void* recvbuff, size_t count,
                         weftDataType_t datatype, int root, weftComm_t comm, weftStream_t stream,
                         weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kGather, sendbuff, recvbuff, count, &datatype, &kNoOp, root, -1,
                    stream, request);
}
weftResult_t weftIScatter(const void* sendbuff, void* recvbuff, size_t count,
                          weftDataType_t datatype, int root, weftComm_t comm, weftStream_t stream,
                          weftRequest_t* request) {
  if (request == nullptr)
    return weft::reportError(comm, Status(weftInvalidArgument, "request is NULL"));
  return collective(comm, CollType::kScatter, sendbuff, recvbuff, count, &datatype, &kNoOp, root,
                    -1, stream, request);
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
  ++tGroupDepth;
  return weftSuccess;
}

weftResult_t weftGroupEnd(void) {
  if (tGroupDepth == 0)
    return weft::reportError(
        nullptr, Status(weftInvalidUsage, "weftGroupEnd without a matching weftGroupStart"));
  if (--tGroupDepth > 0) return weftSuccess;
  std::vector<std::pair<weftComm*, OpCall>> calls = std::move(tGroup.calls);
  const std::vector<std::vector<size_t>> layouts = std::move(tGroup.layouts);  // calls point here
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
