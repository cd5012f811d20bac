// Internals of the UCX transport plugin (libweft-transport-ucx.so). Everything here has hidden
// visibility; the only exported symbol is weft_transport_v1 in ucx_plugin.cc. This plugin sees weft
// only through include/weft/transport.h.
#ifndef WEFT_TRANSPORTS_UCX_UCX_INTERNAL_H_
#define WEFT_TRANSPORTS_UCX_UCX_INTERNAL_H_

#include <ucp/api/ucp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/transport.h"

namespace weft_ucx {

// Object tags: every handle weft hands back is checked against these (catches stale or foreign
// pointers in tests; not a security boundary).
constexpr uint32_t kCtxMagic = 0x55435843u;   // "UCXC"
constexpr uint32_t kEpMagic = 0x55435845u;    // "UCXE"
constexpr uint32_t kReqMagic = 0x55435852u;   // "UCXR"
constexpr uint32_t kMrMagic = 0x5543584du;    // "UCXM"
constexpr uint32_t kRkeyMagic = 0x5543584bu;  // "UCXK"

// The sender's rank lives above weft's tag bits: a receive on endpoint E matches only E's peer.
constexpr int kTagShift = WEFT_TP_TAG_BITS;
constexpr uint64_t kTagMask = (uint64_t{1} << WEFT_TP_TAG_BITS) - 1;
constexpr int kMaxRanks = 1 << (64 - WEFT_TP_TAG_BITS);

// Bounds: progress() spins ucp_worker_progress at most this often per call; finalize waits at
// most this long for flushes and for endpoint closes.
constexpr int kProgressSpins = 64;
constexpr double kFinalizeWaitSec = 2.0;
// finalize stops waiting for flushes once the worker has seen no event for this long.
constexpr double kFinalizeIdleSec = 0.1;

// Intrusive doubly linked list over T::prev / T::next.
template <class T>
struct IList {
  T* head = nullptr;
  void Push(T* x) {
    x->prev = nullptr;
    x->next = head;
    if (head != nullptr) head->prev = x;
    head = x;
  }
  void Remove(T* x) {
    if (x->prev != nullptr) {
      x->prev->next = x->next;
    } else {
      head = x->next;
    }
    if (x->next != nullptr) x->next->prev = x->prev;
    x->prev = x->next = nullptr;
  }
};

struct Context;
struct Endpoint;

enum class ReqKind : uint8_t { kSend, kRecv, kPut, kGet, kFlush };
// kAbandoned: test() has reported the request (failed by a guard endpoint, see FailureMode) while
// UCX still holds its request; the UCX callback recycles it, or finalize frees it.
enum class ReqState : uint8_t { kFree, kPending, kDone, kAbandoned };

// How a dead peer is noticed (WEFT_UCX_ERROR_MODE; chosen in ucx_describe.cc).
//   kNone:  no network transport, so no detection in UCX; weft's own timeout applies.
//   kPeer:  data endpoints use UCP_ERR_HANDLING_MODE_PEER: UCX fails their requests itself. Over
//           tcp this costs UCX 1.13 about 30% of its bandwidth at 4 MiB (ucx_perftest -e).
//   kGuard: data endpoints go without error handling, and a second endpoint per peer, with it,
//           only watches: when it fails, the plugin fails the data endpoint's requests itself.
enum class FailureMode : uint8_t { kNone, kPeer, kGuard };

// A weft request. Pooled per context (allocated in chunks, recycled after test() reports it done,
// freed at finalize). While pending it sits on its endpoint's list so a failed endpoint can fail
// it.
struct Request {
  uint32_t magic = 0;
  ReqKind kind = ReqKind::kSend;
  ReqState state = ReqState::kFree;
  bool linked = false;  // on ep->pending
  Context* ctx = nullptr;
  Endpoint* ep = nullptr;
  void* ucx = nullptr;  // outstanding UCX request, if any
  ucs_status_t status = UCS_OK;
  size_t bytes = 0;  // sends/put/get: length; receives: filled at completion
  ucp_tag_recv_info_t info{};
  Request* prev = nullptr;
  Request* next = nullptr;  // also the free-list link
};

struct Endpoint {
  uint32_t magic = kEpMagic;
  Context* ctx = nullptr;
  ucp_ep_h ep = nullptr;     // carries the data
  ucp_ep_h guard = nullptr;  // FailureMode::kGuard: watches the peer, carries nothing
  int peer = -1;
  bool failed = false;
  bool fail_handled = false;  // pending receives already cancelled
  bool dirty = false;         // sends or puts posted: finalize flushes before closing
  ucs_status_t fail_status = UCS_OK;
  IList<Request> pending;
  std::string desc;  // last describe_ep answer (a failed endpoint has no lanes left to print)
};

struct MemReg {
  uint32_t magic = kMrMagic;
  ucp_mem_h memh = nullptr;
  void* addr = nullptr;
  size_t len = 0;
  MemReg* prev = nullptr;
  MemReg* next = nullptr;
};

struct RemoteKey {
  uint32_t magic = kRkeyMagic;
  ucp_rkey_h rkey = nullptr;
  Endpoint* ep = nullptr;
  RemoteKey* prev = nullptr;
  RemoteKey* next = nullptr;
};

struct Context {
  uint32_t magic = kCtxMagic;
  int rank = 0;
  int nranks = 0;
  void (*log)(void*, int, const char*) = nullptr;
  void* log_ctx = nullptr;

  ucp_context_h ucp = nullptr;
  ucp_worker_h worker = nullptr;
  ucp_address_t* addr = nullptr;
  size_t addr_len = 0;
  bool rma = false;
  size_t max_rkey = 0;
  FailureMode failure_mode = FailureMode::kPeer;

  std::string device;  // caps.device: resources UCX opened, e.g. "sysv,posix,cma,tcp/eth0"
  double latency_us = 0;
  double bandwidth_gbps = 0;

  std::vector<Endpoint*> eps;
  IList<MemReg> mrs;
  IList<RemoteKey> rkeys;
  std::vector<Request*> chunks;
  Request* free_reqs = nullptr;
  bool failures_pending = false;

  char err[512] = {0};
};

// --- helpers (ucx_context.cc) ---
void SetError(Context* c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Log(Context* c, int level, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
// Maps a failed UCX status to a weft code and sets last_error ("rank P: what: reason").
int Fail(Context* c, Endpoint* ep, ucs_status_t st, const char* what);
// Fills c->device, the latency and bandwidth hints and c->failure_mode from the resources UCX
// opened and WEFT_UCX_ERROR_MODE (mode: its value or nullptr). False, with c->err set, for a bad
// value (ucx_describe.cc).
bool DescribeResources(Context* c, const char* mode);
// ucp_worker_progress (bounded) and then cancellation of receives on newly failed endpoints.
void Progress(Context* c);
void HandleFailures(Context* c);

// --- request pool (ucx_ops.cc) ---
Request* AllocRequest(Context* c, ReqKind kind, Endpoint* ep, size_t bytes);
void FreeRequest(Request* r);
void FreeAllRequests(Context* c);
void CompleteRequest(Request* r, ucs_status_t st);

// --- entry points ---
int Init(const weft_transport_init_args_t* args, void** ctx, char* err, size_t err_len);
int Finalize(Context* c);
int GetCaps(Context* c, weft_transport_caps_t* caps);
int GetAddress(Context* c, void* buf, size_t* len);
int Connect(Context* c, int peer, const void* addr, size_t len, void** ep);
int DescribeEp(Context* c, Endpoint* e, char* buf, size_t len);
int RegMem(Context* c, void* addr, size_t len, uint32_t mem_kind, void** mr);
int DeregMem(Context* c, MemReg* m);
int Isend(Context* c, Endpoint* e, const void* buf, size_t len, MemReg* m, uint64_t tag,
          void** req);
int Irecv(Context* c, Endpoint* e, void* buf, size_t len, MemReg* m, uint64_t tag, void** req);
int Test(Context* c, Request* r, int* done, size_t* bytes);
int PackRkey(Context* c, MemReg* m, void* buf, size_t* len);
int UnpackRkey(Context* c, Endpoint* e, const void* buf, size_t len, void** rkey);
int ReleaseRkey(Context* c, RemoteKey* k);
int Put(Context* c, Endpoint* e, const void* local, size_t len, MemReg* m, uint64_t remote_addr,
        RemoteKey* k, void** req);
int Get(Context* c, Endpoint* e, void* local, size_t len, MemReg* m, uint64_t remote_addr,
        RemoteKey* k, void** req);
int Flush(Context* c, Endpoint* e, void** req);

}  // namespace weft_ucx

#endif  // WEFT_TRANSPORTS_UCX_UCX_INTERNAL_H_
