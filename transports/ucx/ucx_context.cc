// UCX plugin: context life (init, finalize), progress and endpoint failure, wire-up, capabilities
// and memory registration.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <ucs/debug/log_def.h>

#include "ucx_internal.h"

namespace weft_ucx {
namespace {

using Clock = std::chrono::steady_clock;

void WriteInitError(char* err, size_t err_len, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
void WriteInitError(char* err, size_t err_len, const char* fmt, ...) {
  if (err == nullptr || err_len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, err_len, fmt, ap);
  va_end(ap);
}

// True when the caller's init args (struct_size as weft was built) include field f.
#define WEFT_UCX_HAS_FIELD(a, f) \
  ((a)->struct_size >= offsetof(weft_transport_init_args_t, f) + sizeof((a)->f))

bool IsPeerStatus(ucs_status_t st) {
  switch (st) {
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_ENDPOINT_TIMEOUT:
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_REJECTED:
    case UCS_ERR_NOT_CONNECTED:
    case UCS_ERR_TIMED_OUT:
    case UCS_ERR_SOME_CONNECTS_FAILED:
      return true;
    default:
      return false;
  }
}

// The packed size of a remote key for one host page, or 0 when packing fails.
size_t ProbeRkeySize(Context* c) {
  const size_t kPage = 4096;
  void* page = aligned_alloc(kPage, kPage);
  if (page == nullptr) return 0;
  size_t size = 0;
  ucp_mem_map_params_t mp{};
  mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH;
  mp.address = page;
  mp.length = kPage;
  ucp_mem_h memh = nullptr;
  if (ucp_mem_map(c->ucp, &mp, &memh) == UCS_OK) {
    void* rbuf = nullptr;
    if (ucp_rkey_pack(c->ucp, memh, &rbuf, &size) == UCS_OK) {
      ucp_rkey_buffer_release(rbuf);
    } else {
      size = 0;
    }
    ucp_mem_unmap(c->ucp, memh);
  }
  free(page);
  return size;
}

void ReleaseUcx(Context* c) {
  if (c->addr != nullptr) ucp_worker_release_address(c->worker, c->addr);
  c->addr = nullptr;
  if (c->worker != nullptr) ucp_worker_destroy(c->worker);
  c->worker = nullptr;
  if (c->ucp != nullptr) ucp_cleanup(c->ucp);
  c->ucp = nullptr;
}

// While a context finalizes: UCX logs, as errors, the flushes of endpoints without error handling
// (data endpoints beside guards) that fail because the peer has finished and gone first. That is
// how a communicator ends, not an error; such lines are dropped (a failure that matters has been
// reported by then through the guard). Everything else goes on to UCX's own handler.
ucs_log_func_rc_t QuietFinalize(const char* /*file*/, unsigned /*line*/, const char* /*function*/,
                                ucs_log_level_t level,
                                const ucs_log_component_config_t* /*comp_conf*/,
                                const char* message, va_list /*ap*/) {
  if (level == UCS_LOG_LEVEL_ERROR && message != nullptr &&
      strstr(message, "error during flush") != nullptr)
    return UCS_LOG_FUNC_RC_STOP;
  return UCS_LOG_FUNC_RC_CONTINUE;
}

void EpErrorCb(void* arg, ucp_ep_h /*ep*/, ucs_status_t st) {
  auto* e = static_cast<Endpoint*>(arg);
  if (e->failed) return;
  e->failed = true;
  e->fail_status = st;
  e->ctx->failures_pending = true;
  // A peer that finalizes closes its endpoints, which fails ours too, often with receives posted
  // ahead that will never be needed: information only. A request that was needed fails and weft
  // reports it, naming the rank.
  Log(e->ctx, WEFT_TP_LOG_INFO, "ucx: rank %d: endpoint failed: %s%s", e->peer,
      ucs_status_string(st), e->pending.head != nullptr ? " (requests pending)" : "");
}

bool AnyPending(Context* c, ReqKind kind) {
  for (Endpoint* e : c->eps) {
    for (Request* r = e->pending.head; r != nullptr; r = r->next) {
      if (r->kind == kind) return true;
    }
  }
  return false;
}

// Progresses the worker until done() holds, for at most kFinalizeWaitSec and no longer than
// kFinalizeIdleSec without a worker event. Flushes and graceful closes need the peer to answer:
// peers finalizing at the same time do; one that is busy, dead, or driven by this same thread does
// not, and finalize must not hang on it. Returns done().
template <class Pred>
bool WaitBounded(Context* c, Pred done) {
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(kFinalizeWaitSec);
  auto idle_limit = std::chrono::duration<double>(kFinalizeIdleSec);
  auto last_event = start;
  while (!done()) {
    auto now = Clock::now();
    if (now >= deadline || now - last_event >= idle_limit) return false;
    if (ucp_worker_progress(c->worker) != 0) last_event = Clock::now();
    HandleFailures(c);
  }
  return true;
}

// The graceful part of finalize: cancel receives, drop remote keys, flush endpoints that carried
// sends or puts (so sends that completed locally reach their peers), then close every endpoint;
// each wait is bounded.
void Drain(Context* c) {
  for (Endpoint* e : c->eps) {
    Request* next = nullptr;
    for (Request* r = e->pending.head; r != nullptr; r = next) {
      next = r->next;
      if (r->kind == ReqKind::kRecv && r->ucx != nullptr) ucp_request_cancel(c->worker, r->ucx);
    }
  }
  while (RemoteKey* k = c->rkeys.head) {
    c->rkeys.Remove(k);
    ucp_rkey_destroy(k->rkey);
    delete k;
  }

  for (Endpoint* e : c->eps) {
    if (e->ep == nullptr || e->failed || !e->dirty) continue;
    void* req = nullptr;
    Flush(c, e, &req);  // a request that fails at once is freed; one that starts stays in the pool
  }
  WaitBounded(c, [c] { return !AnyPending(c, ReqKind::kFlush); });

  // With peer error handling a forced close is safe (the peer sees an endpoint error); without it
  // (data endpoints beside guards, or shared memory only, see Connect) close gracefully. Guards
  // close last, so that a peer's guard fails only once the data has gone.
  std::vector<void*> closing;
  closing.reserve(2 * c->eps.size());
  auto close = [&closing](ucp_ep_h* ep, bool force) {
    if (*ep == nullptr) return;
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    p.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
    ucs_status_ptr_t sp = ucp_ep_close_nbx(*ep, &p);
    *ep = nullptr;
    if (UCS_PTR_IS_PTR(sp)) closing.push_back(sp);
  };
  for (Endpoint* e : c->eps)
    close(&e->ep, c->failure_mode == FailureMode::kPeer);
  for (Endpoint* e : c->eps)
    close(&e->guard, true);
  auto closed = [&closing] {
    for (size_t i = 0; i < closing.size();) {
      if (ucp_request_check_status(closing[i]) != UCS_INPROGRESS) {
        ucp_request_free(closing[i]);
        closing[i] = closing.back();
        closing.pop_back();
      } else {
        ++i;
      }
    }
    return closing.empty();
  };
  if (!WaitBounded(c, closed)) {
    Log(c, WEFT_TP_LOG_DEBUG, "ucx: finalize: %zu endpoint close(s) abandoned", closing.size());
    for (void* r : closing)
      ucp_request_free(r);  // the worker's destruction finishes them
  }
}

}  // namespace

void SetError(Context* c, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof(c->err), fmt, ap);
  va_end(ap);
}

void Log(Context* c, int level, const char* fmt, ...) {
  if (c->log == nullptr) return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  c->log(c->log_ctx, level, msg);
}

int Fail(Context* c, Endpoint* ep, ucs_status_t st, const char* what) {
  int code = WEFT_TP_ERR_INTERNAL;
  if (st == UCS_ERR_MESSAGE_TRUNCATED) {
    code = WEFT_TP_ERR_TRUNCATED;
  } else if (ep != nullptr && ep->failed) {
    code = WEFT_TP_ERR_PEER;
  } else if (IsPeerStatus(st)) {
    code = WEFT_TP_ERR_PEER;
  } else if (st == UCS_ERR_NO_MEMORY) {
    code = WEFT_TP_ERR_NO_MEMORY;
  } else if (st == UCS_ERR_INVALID_PARAM) {
    code = WEFT_TP_ERR_INVALID;
  } else if (st == UCS_ERR_UNSUPPORTED) {
    code = WEFT_TP_ERR_UNSUPPORTED;
  }
  if (ep == nullptr) {
    SetError(c, "ucx: %s: %s", what, ucs_status_string(st));
  } else if (code == WEFT_TP_ERR_PEER && ep->failed) {
    SetError(c, "ucx: rank %d: %s: endpoint failed: %s", ep->peer, what,
             ucs_status_string(ep->fail_status));
  } else if (code == WEFT_TP_ERR_TRUNCATED) {
    SetError(c, "ucx: rank %d: %s: message longer than the receive buffer (%s)", ep->peer, what,
             ucs_status_string(st));
  } else {
    SetError(c, "ucx: rank %d: %s: %s", ep->peer, what, ucs_status_string(st));
  }
  return code;
}

void HandleFailures(Context* c) {
  if (!c->failures_pending) return;
  c->failures_pending = false;
  for (Endpoint* e : c->eps) {
    if (!e->failed || e->fail_handled) continue;
    e->fail_handled = true;
    // With peer error handling UCX fails the endpoint's sends, RMA and flushes itself, but a tag
    // receive belongs to the worker: cancel it (its callback completes it with UCS_ERR_CANCELED,
    // reported as a peer failure). A receive already matched to a rendezvous is left to UCX, which
    // fails it.
    Request* next = nullptr;
    for (Request* r = e->pending.head; r != nullptr; r = next) {
      next = r->next;
      if (r->kind == ReqKind::kRecv && r->ucx != nullptr) ucp_request_cancel(c->worker, r->ucx);
    }
    // Behind a guard the data endpoint knows nothing of the failure: whatever is still pending
    // (sends, RMA, flushes, receives matched to a rendezvous) fails here. UCX keeps its own request
    // until it completes or the worker goes; test() then abandons ours (see ReqState::kAbandoned).
    if (c->failure_mode != FailureMode::kGuard) continue;
    while (Request* r = e->pending.head)
      CompleteRequest(r, e->fail_status);
  }
}

void Progress(Context* c) {
  for (int i = 0; i < kProgressSpins && ucp_worker_progress(c->worker) != 0; ++i) {
  }
  HandleFailures(c);
}

int Init(const weft_transport_init_args_t* args, void** out, char* err, size_t err_len) {
  if (out != nullptr) *out = nullptr;
  if (args == nullptr || out == nullptr) {
    WriteInitError(err, err_len, "ucx: init: NULL argument");
    return WEFT_TP_ERR_INVALID;
  }
  if (args->abi_version != WEFT_TRANSPORT_ABI_VERSION || !WEFT_UCX_HAS_FIELD(args, nranks)) {
    WriteInitError(err, err_len, "ucx: init: unsupported arguments (abi %u, struct size %u)",
                   args->abi_version, args->struct_size);
    return WEFT_TP_ERR_INVALID;
  }
  if (args->nranks < 1 || args->nranks > kMaxRanks || args->rank < 0 ||
      args->rank >= args->nranks) {
    WriteInitError(err, err_len, "ucx: init: bad rank %d of %d (at most %d ranks)", args->rank,
                   args->nranks, kMaxRanks);
    return WEFT_TP_ERR_INVALID;
  }
  auto c = std::make_unique<Context>();
  c->rank = args->rank;
  c->nranks = args->nranks;
  if (WEFT_UCX_HAS_FIELD(args, log_ctx)) {
    c->log = args->log;
    c->log_ctx = args->log_ctx;
  }
  const char* mode = nullptr;
  if (WEFT_UCX_HAS_FIELD(args, param_ctx) && args->get_param != nullptr) {
    mode = args->get_param(args->param_ctx, "WEFT_UCX_ERROR_MODE");
    if (mode != nullptr && mode[0] == '\0') mode = nullptr;
  }

  // UCX_* variables are UCX's own: ucp_config_read(NULL, NULL) applies them.
  ucp_config_t* config = nullptr;
  ucs_status_t st = ucp_config_read(nullptr, nullptr, &config);
  if (st != UCS_OK) {
    WriteInitError(err, err_len, "ucx: ucp_config_read: %s (check UCX_* variables)",
                   ucs_status_string(st));
    return WEFT_TP_ERR_UNAVAILABLE;
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED |
                      UCP_PARAM_FIELD_ESTIMATED_NUM_EPS | UCP_PARAM_FIELD_NAME;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_RMA;
  params.mt_workers_shared = 0;
  params.estimated_num_eps = static_cast<size_t>(args->nranks);
  params.name = "weft";
  st = ucp_init(&params, config, &c->ucp);
  ucs_status_t rma_status = st;
  if (st != UCS_OK && st != UCS_ERR_NO_DEVICE) {  // no device at all: RMA is not the problem
    params.features = UCP_FEATURE_TAG;
    st = ucp_init(&params, config, &c->ucp);
  }
  ucp_config_release(config);
  if (st != UCS_OK) {
    c->ucp = nullptr;
    WriteInitError(err, err_len, "ucx: ucp_init: %s", ucs_status_string(st));
    return WEFT_TP_ERR_UNAVAILABLE;
  }
  c->rma = rma_status == UCS_OK;

  ucp_worker_params_t wp{};
  wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  wp.thread_mode = UCS_THREAD_MODE_SINGLE;
  st = ucp_worker_create(c->ucp, &wp, &c->worker);
  if (st == UCS_OK) st = ucp_worker_get_address(c->worker, &c->addr, &c->addr_len);
  if (st != UCS_OK) {
    WriteInitError(err, err_len, "ucx: %s: %s",
                   c->worker == nullptr ? "ucp_worker_create" : "ucp_worker_get_address",
                   ucs_status_string(st));
    if (c->worker == nullptr) c->addr = nullptr;
    ReleaseUcx(c.get());
    return WEFT_TP_ERR_UNAVAILABLE;
  }

  try {
    if (c->rma) {
      size_t probe = ProbeRkeySize(c.get());
      if (probe == 0) {
        c->rma = false;
        Log(c.get(), WEFT_TP_LOG_WARN, "ucx: cannot pack a remote key; RMA disabled");
      }
      c->max_rkey = std::max<size_t>(512, 2 * probe);
    } else {
      Log(c.get(), WEFT_TP_LOG_WARN, "ucx: RMA unavailable (%s); tagged messages only",
          ucs_status_string(rma_status));
    }
    if (!DescribeResources(c.get(), mode)) {
      WriteInitError(err, err_len, "%s", c->err);
      ReleaseUcx(c.get());
      return WEFT_TP_ERR_INVALID;
    }
  } catch (...) {
    ReleaseUcx(c.get());
    throw;
  }
  Log(c.get(), WEFT_TP_LOG_INFO,
      "ucx: UCX %s, rank %d of %d, resources %s, address %zu bytes, rma %s, max rkey %zu",
      ucp_get_version_string(), c->rank, c->nranks, c->device.c_str(), c->addr_len,
      c->rma ? "yes" : "no", c->max_rkey);
  if (c->failure_mode == FailureMode::kNone) {
    Log(c.get(), WEFT_TP_LOG_WARN,
        "ucx: no network transport (UCX_TLS?): endpoints use shared memory without peer failure "
        "detection; a dead peer is noticed only by weft's timeout");
  }
  *out = c.release();
  return WEFT_TP_SUCCESS;
}

int Finalize(Context* c) {
  int rc = WEFT_TP_SUCCESS;
  const bool quiet = c->failure_mode == FailureMode::kGuard;
  if (quiet) ucs_log_push_handler(QuietFinalize);
  try {
    Drain(c);
  } catch (...) {
    rc = WEFT_TP_ERR_INTERNAL;
  }
  // Whatever happened above, release everything. Memory is unmapped only now that no endpoint can
  // still be moving bytes to or from it.
  while (RemoteKey* k = c->rkeys.head) {
    c->rkeys.Remove(k);
    ucp_rkey_destroy(k->rkey);
    delete k;
  }
  while (MemReg* m = c->mrs.head) {
    c->mrs.Remove(m);
    ucp_mem_unmap(c->ucp, m->memh);
    delete m;
  }
  ReleaseUcx(c);  // also destroys endpoints a failed close left behind
  if (quiet) ucs_log_pop_handler();
  for (Endpoint* e : c->eps) {
    e->magic = 0;
    delete e;
  }
  c->eps.clear();
  FreeAllRequests(c);
  c->magic = 0;
  delete c;
  return rc;
}

int GetCaps(Context* c, weft_transport_caps_t* caps) {
  if (caps == nullptr) {
    SetError(c, "ucx: get_caps: NULL caps");
    return WEFT_TP_ERR_INVALID;
  }
  *caps = weft_transport_caps_t{};
  // Every ucp_ep_create makes an endpoint of its own, with its own transport connections (its own
  // TCP sockets over tcp), so weft's channels can each have one.
  caps->flags = WEFT_TP_CAP_TAGGED | WEFT_TP_CAP_MULTI_EP | (c->rma ? WEFT_TP_CAP_RMA : 0u);
  caps->mem_kinds = WEFT_TP_MEM_HOST;
  caps->max_message_bytes = uint64_t{1} << 40;
  // Peers' addresses differ from ours only by their devices; leave generous room.
  caps->max_address_bytes = 2 * c->addr_len + 256;
  caps->max_rkey_bytes = c->rma ? c->max_rkey : 0;
  caps->latency_us = c->latency_us;
  caps->bandwidth_gbps = c->bandwidth_gbps;
  snprintf(caps->device, sizeof(caps->device), "%s", c->device.c_str());
  return WEFT_TP_SUCCESS;
}

int GetAddress(Context* c, void* buf, size_t* len) {
  if (len == nullptr) {
    SetError(c, "ucx: get_address: NULL length");
    return WEFT_TP_ERR_INVALID;
  }
  if (buf == nullptr || *len < c->addr_len) {
    SetError(c, "ucx: get_address: buffer of %zu bytes, the address needs %zu", *len, c->addr_len);
    *len = c->addr_len;
    return WEFT_TP_ERR_INVALID;
  }
  memcpy(buf, c->addr, c->addr_len);
  *len = c->addr_len;
  return WEFT_TP_SUCCESS;
}

int Connect(Context* c, int peer, const void* addr, size_t len, void** out) {
  if (out == nullptr || addr == nullptr || len == 0 || peer < 0 || peer >= c->nranks ||
      peer == c->rank) {
    SetError(c, "ucx: connect: bad arguments (peer %d of %d, own rank %d, address %zu bytes)", peer,
             c->nranks, c->rank, len);
    return WEFT_TP_ERR_INVALID;
  }
  *out = nullptr;
  auto e = std::make_unique<Endpoint>();
  e->ctx = c;
  e->peer = peer;
  c->eps.reserve(c->eps.size() + 1);  // the push_back below cannot throw then
  // Peer error handling lets a dead peer fail an endpoint's requests (WEFT_TP_ERR_PEER). In UCX
  // 1.13 it also rules out the shared-memory transports (they have no peer failure detection), so
  // with it peers on this node are reached over tcp (or RDMA). See FailureMode for where it goes.
  auto create = [c, addr, &e](bool peer_errors, ucp_ep_h* ep) {
    ucp_ep_params_t p{};
    p.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
    p.address = static_cast<const ucp_address_t*>(addr);
    p.err_mode = UCP_ERR_HANDLING_MODE_NONE;
    if (peer_errors) {
      p.field_mask |= UCP_EP_PARAM_FIELD_ERR_HANDLER;
      p.err_mode = UCP_ERR_HANDLING_MODE_PEER;
      p.err_handler.cb = EpErrorCb;
      p.err_handler.arg = e.get();
    }
    ucs_status_t st = ucp_ep_create(c->worker, &p, ep);
    if (st != UCS_OK) *ep = nullptr;
    return st;
  };
  ucs_status_t st = create(c->failure_mode == FailureMode::kPeer, &e->ep);
  if (st != UCS_OK) return Fail(c, e.get(), st, "connect (ucp_ep_create)");
  if (c->failure_mode == FailureMode::kGuard) {
    st = create(true, &e->guard);
    if (st != UCS_OK) {
      int rc = Fail(c, e.get(), st, "connect (ucp_ep_create, guard endpoint)");
      ucp_request_param_t p{};  // nothing was sent on it: a close that needs no answer
      ucs_status_ptr_t sp = ucp_ep_close_nbx(e->ep, &p);
      if (UCS_PTR_IS_PTR(sp)) ucp_request_free(sp);  // the worker's destruction finishes it
      return rc;
    }
  }
  c->eps.push_back(e.get());
  Log(c, WEFT_TP_LOG_DEBUG, "ucx: rank %d: endpoint to rank %d created", c->rank, peer);
  *out = e.release();
  return WEFT_TP_SUCCESS;
}

int RegMem(Context* c, void* addr, size_t len, uint32_t mem_kind, void** out) {
  if (out == nullptr || addr == nullptr || len == 0) {
    SetError(c, "ucx: reg_mem: bad arguments (%p, %zu bytes)", addr, len);
    return WEFT_TP_ERR_INVALID;
  }
  *out = nullptr;
  if (mem_kind != WEFT_TP_MEM_HOST) {
    SetError(c, "ucx: reg_mem: memory kind %#x is not supported (host memory only)", mem_kind);
    return WEFT_TP_ERR_UNSUPPORTED;
  }
  auto m = std::make_unique<MemReg>();
  ucp_mem_map_params_t mp{};
  mp.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH |
                  UCP_MEM_MAP_PARAM_FIELD_MEMORY_TYPE;
  mp.address = addr;
  mp.length = len;
  mp.memory_type = UCS_MEMORY_TYPE_HOST;
  ucs_status_t st = ucp_mem_map(c->ucp, &mp, &m->memh);
  if (st != UCS_OK) {
    int code = Fail(c, nullptr, st, "reg_mem (ucp_mem_map)");
    return code == WEFT_TP_ERR_NO_MEMORY || code == WEFT_TP_ERR_INVALID ? code
                                                                        : WEFT_TP_ERR_INTERNAL;
  }
  m->addr = addr;
  m->len = len;
  c->mrs.Push(m.get());
  *out = m.release();
  return WEFT_TP_SUCCESS;
}

int DeregMem(Context* c, MemReg* m) {
  c->mrs.Remove(m);
  ucs_status_t st = ucp_mem_unmap(c->ucp, m->memh);
  m->magic = 0;
  delete m;
  return st == UCS_OK ? WEFT_TP_SUCCESS : Fail(c, nullptr, st, "dereg_mem (ucp_mem_unmap)");
}

}  // namespace weft_ucx
