// weft transport plugin over libfabric (OFI): the C ABI table. Every entry point catches
// everything, so no exception crosses into weft. See ofi_internal.h for the design.
//
// Provider: WEFT_OFI_PROVIDER (get_param) names it ("tcp;ofi_rxm", "shm", "verbs;ofi_rxm", "efa";
// "tcp" gives tcp;ofi_rxm with libfabric 1.17, whose native tcp RDM endpoint is called "net");
// otherwise libfabric's own FI_PROVIDER filter applies; otherwise the first FI_EP_RDM + FI_TAGGED
// provider that is not sockets or udp. WEFT_OFI_DOMAIN (get_param, optional) picks a domain, e.g.
// "lo" or "eth0"; libfabric's FI_TCP_IFACE / FI_NET_IFACE do the same for tcp / net.
//
// Semantics worth knowing:
//  - caps never declare WEFT_TP_CAP_MR_LOCAL: under FI_MR_LOCAL an unregistered buffer is
//    registered for the duration of the request;
//  - RMA: remote_addr is the target's virtual address (as UCX takes it); without FI_MR_VIRT_ADDR
//    the plugin turns it into an offset with the base packed in the rkey. Puts use
//    FI_DELIVERY_COMPLETE, so a completed put is visible at the target, and flush completes once
//    every put posted before it on that endpoint has completed (it sends nothing);
//  - a dead peer: provider errors (connection reset/refused, ...) mark it dead; libfabric 1.17's
//    tcp providers and shm report nothing, so the plugin checks quiet peers it waits on itself
//    (ofi_liveness.cc): detection takes about 1.2 s. A peer that finalizes says goodbye (tcp
//    providers), after which sends to it fail and receives from it stay pending; a host that
//    vanishes silently is left to weft's WEFT_TIMEOUT.
#include <cstdio>
#include <new>

#include "ofi_internal.h"

namespace weft_ofi {
namespace {

Context* Ctx(void* c) {
  return static_cast<Context*>(c);
}

template <typename F>
int Guard(void* ctx, F&& f) noexcept {
  Context* c = Ctx(ctx);
  if (c == nullptr) return WEFT_TP_ERR_INVALID;
  try {
    return f(c);
  } catch (const std::bad_alloc&) {
    SetError(c, "ofi: out of memory");
    return WEFT_TP_ERR_NO_MEMORY;
  } catch (...) {
    SetError(c, "ofi: internal error (exception)");
    return WEFT_TP_ERR_INTERNAL;
  }
}

int PInit(const weft_transport_init_args_t* args, void** ctx, char* err, size_t err_len) {
  try {
    Context* c = nullptr;
    int rc = Init(args, &c, err, err_len);
    if (rc == WEFT_TP_SUCCESS) *ctx = c;
    return rc;
  } catch (const std::bad_alloc&) {
    if (err != nullptr && err_len > 0) snprintf(err, err_len, "ofi: init: out of memory");
    return WEFT_TP_ERR_NO_MEMORY;
  } catch (...) {
    if (err != nullptr && err_len > 0) snprintf(err, err_len, "ofi: init: internal error");
    return WEFT_TP_ERR_INTERNAL;
  }
}

int PFinalize(void* ctx) {
  Context* c = Ctx(ctx);
  if (c == nullptr) return WEFT_TP_SUCCESS;
  try {
    Finalize(c);
  } catch (...) {
  }
  delete c;
  return WEFT_TP_SUCCESS;
}

const char* PLastError(void* ctx) {
  Context* c = Ctx(ctx);
  return c == nullptr ? "ofi: no context" : c->err;
}

int PGetCaps(void* ctx, weft_transport_caps_t* caps) {
  return Guard(ctx, [&](Context* c) { return GetCaps(c, caps); });
}

int PGetAddress(void* ctx, void* buf, size_t* len) {
  return Guard(ctx, [&](Context* c) { return GetAddress(c, buf, len); });
}

int PConnect(void* ctx, int peer, const void* addr, size_t len, void** ep) {
  return Guard(ctx, [&](Context* c) { return Connect(c, peer, addr, len, ep); });
}

int PDescribeEp(void* ctx, void* ep, char* buf, size_t len) {
  return Guard(ctx, [&](Context* c) { return DescribeEp(c, static_cast<Peer*>(ep), buf, len); });
}

int PRegMem(void* ctx, void* addr, size_t len, uint32_t kind, void** mr) {
  return Guard(ctx, [&](Context* c) { return RegMem(c, addr, len, kind, mr); });
}

int PDeregMem(void* ctx, void* mr) {
  return Guard(ctx, [&](Context* c) { return DeregMem(c, static_cast<Mr*>(mr)); });
}

int PIsend(void* ctx, void* ep, const void* buf, size_t len, void* mr, uint64_t tag, void** req) {
  return Guard(ctx, [&](Context* c) {
    return Isend(c, static_cast<Peer*>(ep), buf, len, static_cast<Mr*>(mr), tag, req);
  });
}

int PIrecv(void* ctx, void* ep, void* buf, size_t len, void* mr, uint64_t tag, void** req) {
  return Guard(ctx, [&](Context* c) {
    return Irecv(c, static_cast<Peer*>(ep), buf, len, static_cast<Mr*>(mr), tag, req);
  });
}

int PTest(void* ctx, void* req, int* done, size_t* bytes) {
  return Guard(ctx, [&](Context* c) { return Test(c, static_cast<Req*>(req), done, bytes); });
}

int PProgress(void* ctx) {
  return Guard(ctx, [&](Context* c) { return Progress(c); });
}

int PPackRkey(void* ctx, void* mr, void* buf, size_t* len) {
  return Guard(ctx, [&](Context* c) { return PackRkey(c, static_cast<Mr*>(mr), buf, len); });
}

int PUnpackRkey(void* ctx, void* ep, const void* buf, size_t len, void** rkey) {
  return Guard(ctx,
               [&](Context* c) { return UnpackRkey(c, static_cast<Peer*>(ep), buf, len, rkey); });
}

int PReleaseRkey(void* ctx, void* rkey) {
  return Guard(ctx, [&](Context* c) { return ReleaseRkey(c, static_cast<Rkey*>(rkey)); });
}

int PPut(void* ctx, void* ep, const void* local, size_t len, void* mr, uint64_t raddr, void* rkey,
         void** req) {
  return Guard(ctx, [&](Context* c) {
    return Put(c, static_cast<Peer*>(ep), local, len, static_cast<Mr*>(mr), raddr,
               static_cast<Rkey*>(rkey), req);
  });
}

int PGet(void* ctx, void* ep, void* local, size_t len, void* mr, uint64_t raddr, void* rkey,
         void** req) {
  return Guard(ctx, [&](Context* c) {
    return Get(c, static_cast<Peer*>(ep), local, len, static_cast<Mr*>(mr), raddr,
               static_cast<Rkey*>(rkey), req);
  });
}

int PFlush(void* ctx, void* ep, void** req) {
  return Guard(ctx, [&](Context* c) { return Flush(c, static_cast<Peer*>(ep), req); });
}

}  // namespace
}  // namespace weft_ofi

// The RMA entries are always present; on a provider without RMA, caps lack WEFT_TP_CAP_RMA and
// the entries answer WEFT_TP_ERR_UNSUPPORTED (the table is one static object for every context).
extern "C" __attribute__((visibility("default"))) const weft_transport_v1_t weft_transport_v1 = {
    WEFT_TRANSPORT_ABI_VERSION,
    sizeof(weft_transport_v1_t),
    "ofi",
    weft_ofi::PInit,
    weft_ofi::PFinalize,
    weft_ofi::PLastError,
    weft_ofi::PGetCaps,
    weft_ofi::PGetAddress,
    weft_ofi::PConnect,
    weft_ofi::PDescribeEp,
    weft_ofi::PRegMem,
    weft_ofi::PDeregMem,
    weft_ofi::PIsend,
    weft_ofi::PIrecv,
    weft_ofi::PTest,
    weft_ofi::PProgress,
    weft_ofi::PPackRkey,
    weft_ofi::PUnpackRkey,
    weft_ofi::PReleaseRkey,
    weft_ofi::PPut,
    weft_ofi::PGet,
    weft_ofi::PFlush,
};
