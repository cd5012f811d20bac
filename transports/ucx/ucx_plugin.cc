// weft transport plugin over UCX (UCP tag matching and RMA): libweft-transport-ucx.so.
//
// This file holds the C ABI (include/weft/transport.h): it checks handles, keeps exceptions from
// crossing into weft, and exports weft_transport_v1, the plugin's only visible symbol. The work is
// in ucx_context.cc (life cycle, wire-up, failures, registration) and ucx_ops.cc (requests).
//
// Mapping onto UCX:
//   - one ucp_context (UCP_FEATURE_TAG | UCP_FEATURE_RMA, TAG alone if RMA cannot be had) and one
//     single-threaded worker per weft context; UCX_* variables are read by UCX (ucp_config_read);
//   - endpoints from worker addresses. A dead peer is noticed through UCP_ERR_HANDLING_MODE_PEER,
//     which UCX 1.13 offers on network transports only and which costs it ~30% of its tcp
//     bandwidth. So over tcp (FailureMode::kGuard, the default there) the data endpoint goes
//     without it and a second endpoint per peer, with it, only watches; over RDMA (kPeer) the data
//     endpoints have it. Either way the error callback marks the endpoint failed, and its pending
//     requests are reported as WEFT_TP_ERR_PEER: UCX fails those of a kPeer endpoint except
//     receives (cancelled here), the plugin fails all those of a guarded one. With no network
//     transport (UCX_TLS=sm, kNone) a dead peer is left to weft's timeout;
//   - the UCX tag is (sender rank << 40) | weft tag; a receive on the endpoint to peer p matches
//     (p << 40) | tag with a full mask, so it only ever matches p's messages;
//   - requests are plugin objects from a per-context pool; UCX's own requests are released in
//     their completion callbacks;
//   - finalize cancels receives, flushes endpoints that sent (bounded: 2 s, or 0.1 s without a
//     worker event, since a flush needs the peer to progress), closes data endpoints (forced
//     where they have error handling, gracefully and bounded otherwise) and then guards, unmaps
//     memory and destroys the worker and context.
#include <stdio.h>

#include <new>

#include "ucx_internal.h"

namespace {

using weft_ucx::Context;
using weft_ucx::Endpoint;
using weft_ucx::MemReg;
using weft_ucx::RemoteKey;
using weft_ucx::Request;

// No exception may reach weft.
template <class F>
int Guard(Context* c, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    weft_ucx::SetError(c, "ucx: out of memory");
    return WEFT_TP_ERR_NO_MEMORY;
  } catch (...) {
    weft_ucx::SetError(c, "ucx: internal error (unexpected exception)");
    return WEFT_TP_ERR_INTERNAL;
  }
}

Context* AsCtx(void* p) {
  auto* c = static_cast<Context*>(p);
  return (c != nullptr && c->magic == weft_ucx::kCtxMagic) ? c : nullptr;
}
Endpoint* AsEp(Context* c, void* p) {
  auto* e = static_cast<Endpoint*>(p);
  return (e != nullptr && e->magic == weft_ucx::kEpMagic && e->ctx == c) ? e : nullptr;
}
Request* AsReq(Context* c, void* p) {
  auto* r = static_cast<Request*>(p);
  return (r != nullptr && r->magic == weft_ucx::kReqMagic && r->ctx == c &&
          r->state != weft_ucx::ReqState::kFree)
             ? r
             : nullptr;
}
MemReg* AsMr(void* p) {
  auto* m = static_cast<MemReg*>(p);
  return (m != nullptr && m->magic == weft_ucx::kMrMagic) ? m : nullptr;
}
RemoteKey* AsRkey(Context* c, void* p) {
  auto* k = static_cast<RemoteKey*>(p);
  return (k != nullptr && k->magic == weft_ucx::kRkeyMagic && k->ep != nullptr && k->ep->ctx == c)
             ? k
             : nullptr;
}

int Invalid(Context* c, const char* what) {
  weft_ucx::SetError(c, "ucx: %s", what);
  return WEFT_TP_ERR_INVALID;
}

// An optional registration: NULL is fine, anything else must be one of ours.
bool OptionalMr(void* p, MemReg** m) {
  *m = AsMr(p);
  return p == nullptr || *m != nullptr;
}

int TpInit(const weft_transport_init_args_t* args, void** ctx, char* err, size_t err_len) {
  try {
    return weft_ucx::Init(args, ctx, err, err_len);
  } catch (const std::bad_alloc&) {
    if (err != nullptr && err_len > 0) snprintf(err, err_len, "ucx: init: out of memory");
    return WEFT_TP_ERR_NO_MEMORY;
  } catch (...) {
    if (err != nullptr && err_len > 0) snprintf(err, err_len, "ucx: init: internal error");
    return WEFT_TP_ERR_INTERNAL;
  }
}

int TpFinalize(void* ctx) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  return weft_ucx::Finalize(c);  // catches internally and releases everything on every path
}

const char* TpLastError(void* ctx) {
  Context* c = AsCtx(ctx);
  return c != nullptr ? c->err : "ucx: invalid context";
}

int TpGetCaps(void* ctx, weft_transport_caps_t* caps) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  return Guard(c, [&] { return weft_ucx::GetCaps(c, caps); });
}

int TpGetAddress(void* ctx, void* buf, size_t* len) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  return Guard(c, [&] { return weft_ucx::GetAddress(c, buf, len); });
}

int TpConnect(void* ctx, int peer, const void* addr, size_t len, void** ep) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  return Guard(c, [&] { return weft_ucx::Connect(c, peer, addr, len, ep); });
}

int TpDescribeEp(void* ctx, void* ep, char* buf, size_t len) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  Endpoint* e = AsEp(c, ep);
  if (e == nullptr) return Invalid(c, "describe_ep: not an endpoint of this context");
  return Guard(c, [&] { return weft_ucx::DescribeEp(c, e, buf, len); });
}

int TpRegMem(void* ctx, void* addr, size_t len, uint32_t mem_kind, void** mr) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  return Guard(c, [&] { return weft_ucx::RegMem(c, addr, len, mem_kind, mr); });
}

int TpDeregMem(void* ctx, void* mr) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  MemReg* m = AsMr(mr);
  if (m == nullptr) return Invalid(c, "dereg_mem: not a registration");
  return Guard(c, [&] { return weft_ucx::DeregMem(c, m); });
}

int TpIsend(void* ctx, void* ep, const void* buf, size_t len, void* mr, uint64_t tag, void** req) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  Endpoint* e = AsEp(c, ep);
  MemReg* m = nullptr;
  if (e == nullptr) return Invalid(c, "isend: not an endpoint of this context");
  if (!OptionalMr(mr, &m)) return Invalid(c, "isend: not a registration");
  return Guard(c, [&] { return weft_ucx::Isend(c, e, buf, len, m, tag, req); });
}

int TpIrecv(void* ctx, void* ep, void* buf, size_t len, void* mr, uint64_t tag, void** req) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  Endpoint* e = AsEp(c, ep);
  MemReg* m = nullptr;
  if (e == nullptr) return Invalid(c, "irecv: not an endpoint of this context");
  if (!OptionalMr(mr, &m)) return Invalid(c, "irecv: not a registration");
  return Guard(c, [&] { return weft_ucx::Irecv(c, e, buf, len, m, tag, req); });
}

int TpTest(void* ctx, void* req, int* done, size_t* bytes) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  Request* r = AsReq(c, req);
  if (r == nullptr) return Invalid(c, "test: not a pending request of this context");
  return Guard(c, [&] { return weft_ucx::Test(c, r, done, bytes); });
}

int TpProgress(void* ctx) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  return Guard(c, [&] {
    weft_ucx::Progress(c);
    return static_cast<int>(WEFT_TP_SUCCESS);
  });
}

int NoRma(Context* c, const char* what) {
  weft_ucx::SetError(c, "ucx: %s: RMA is not available in this context", what);
  return WEFT_TP_ERR_UNSUPPORTED;
}

int TpPackRkey(void* ctx, void* mr, void* buf, size_t* len) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  if (!c->rma) return NoRma(c, "pack_rkey");
  MemReg* m = AsMr(mr);
  if (m == nullptr) return Invalid(c, "pack_rkey: not a registration");
  return Guard(c, [&] { return weft_ucx::PackRkey(c, m, buf, len); });
}

int TpUnpackRkey(void* ctx, void* ep, const void* buf, size_t len, void** rkey) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  if (!c->rma) return NoRma(c, "unpack_rkey");
  Endpoint* e = AsEp(c, ep);
  if (e == nullptr) return Invalid(c, "unpack_rkey: not an endpoint of this context");
  return Guard(c, [&] { return weft_ucx::UnpackRkey(c, e, buf, len, rkey); });
}

int TpReleaseRkey(void* ctx, void* rkey) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  RemoteKey* k = AsRkey(c, rkey);
  if (k == nullptr) return Invalid(c, "release_rkey: not a remote key of this context");
  return Guard(c, [&] { return weft_ucx::ReleaseRkey(c, k); });
}

int TpPut(void* ctx, void* ep, const void* local, size_t len, void* mr, uint64_t remote_addr,
          void* rkey, void** req) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  if (!c->rma) return NoRma(c, "put");
  Endpoint* e = AsEp(c, ep);
  RemoteKey* k = AsRkey(c, rkey);
  MemReg* m = nullptr;
  if (e == nullptr || k == nullptr || !OptionalMr(mr, &m)) {
    return Invalid(c, "put: bad endpoint, remote key or registration");
  }
  return Guard(c, [&] { return weft_ucx::Put(c, e, local, len, m, remote_addr, k, req); });
}

int TpGet(void* ctx, void* ep, void* local, size_t len, void* mr, uint64_t remote_addr, void* rkey,
          void** req) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  if (!c->rma) return NoRma(c, "get");
  Endpoint* e = AsEp(c, ep);
  RemoteKey* k = AsRkey(c, rkey);
  MemReg* m = nullptr;
  if (e == nullptr || k == nullptr || !OptionalMr(mr, &m)) {
    return Invalid(c, "get: bad endpoint, remote key or registration");
  }
  return Guard(c, [&] { return weft_ucx::Get(c, e, local, len, m, remote_addr, k, req); });
}

int TpFlush(void* ctx, void* ep, void** req) {
  Context* c = AsCtx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  if (!c->rma) return NoRma(c, "flush");
  Endpoint* e = AsEp(c, ep);
  if (e == nullptr) return Invalid(c, "flush: not an endpoint of this context");
  return Guard(c, [&] { return weft_ucx::Flush(c, e, req); });
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const weft_transport_v1_t weft_transport_v1 = {
    WEFT_TRANSPORT_ABI_VERSION,
    sizeof(weft_transport_v1_t),
    "ucx",
    TpInit,
    TpFinalize,
    TpLastError,
    TpGetCaps,
    TpGetAddress,
    TpConnect,
    TpDescribeEp,
    TpRegMem,
    TpDeregMem,
    TpIsend,
    TpIrecv,
    TpTest,
    TpProgress,
    TpPackRkey,
    TpUnpackRkey,
    TpReleaseRkey,
    TpPut,
    TpGet,
    TpFlush,
};
