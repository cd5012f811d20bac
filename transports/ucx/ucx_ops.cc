// UCX plugin: the request pool, tagged messages, test, and RMA (remote keys, put, get, flush).
#include <string.h>

#include "ucx_internal.h"

namespace weft_ucx {
namespace {

constexpr int kChunkRequests = 64;

const char* KindName(ReqKind kind) {
  switch (kind) {
    case ReqKind::kSend:
      return "send";
    case ReqKind::kRecv:
      return "receive";
    case ReqKind::kPut:
      return "put";
    case ReqKind::kGet:
      return "get";
    case ReqKind::kFlush:
      return "flush";
  }
  return "request";
}

// UCX is done with r's request. r may have been failed already (a guard endpoint saw its peer
// die): then its status stands, and if test() has reported it too, r goes back to the pool.
// Returns whether r is still waiting for this completion.
bool Released(Request* r) {
  r->ucx = nullptr;
  if (r->state == ReqState::kAbandoned) FreeRequest(r);
  return r->state == ReqState::kPending;
}

void SendCb(void* ucx_req, ucs_status_t st, void* user) {
  auto* r = static_cast<Request*>(user);
  if (Released(r)) CompleteRequest(r, st);
  ucp_request_free(ucx_req);
}

void RecvCb(void* ucx_req, ucs_status_t st, const ucp_tag_recv_info_t* info, void* user) {
  auto* r = static_cast<Request*>(user);
  if (Released(r)) {
    r->bytes = (st == UCS_OK && info != nullptr) ? info->length : 0;
    CompleteRequest(r, st);
  }
  ucp_request_free(ucx_req);
}

// Operations on an endpoint whose peer has failed fail at once.
int EndpointFailed(Context* c, Endpoint* e, const char* what) {
  SetError(c, "ucx: rank %d: %s: endpoint failed: %s", e->peer, what,
           ucs_status_string(e->fail_status));
  return WEFT_TP_ERR_PEER;
}

int BadTag(Context* c, uint64_t tag, const char* what) {
  SetError(c, "ucx: %s: tag %#llx uses bits above the low %d", what,
           static_cast<unsigned long long>(tag), WEFT_TP_TAG_BITS);
  return WEFT_TP_ERR_INVALID;
}

ucp_request_param_t SendParam(Request* r, MemReg* m) {
  ucp_request_param_t p{};
  p.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  p.cb.send = SendCb;
  p.user_data = r;
  if (m != nullptr) {  // registered memory is host memory: spare UCX the memory-type lookup
    p.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMORY_TYPE;
    p.memory_type = UCS_MEMORY_TYPE_HOST;
  }
  return p;
}

// After a UCX nbx call: immediate completion (NULL), an immediate error, or a UCX request whose
// callback will complete r. A receive that is truncated at once is reported by test(), like one
// truncated later.
int Track(Context* c, Request* r, ucs_status_ptr_t sp, void** out) {
  if (sp == nullptr) {
    if (r->kind == ReqKind::kRecv) r->bytes = r->info.length;
    CompleteRequest(r, UCS_OK);
  } else if (UCS_PTR_IS_ERR(sp)) {
    ucs_status_t st = UCS_PTR_STATUS(sp);
    if (r->kind == ReqKind::kRecv && st == UCS_ERR_MESSAGE_TRUNCATED) {
      r->bytes = 0;
      CompleteRequest(r, st);
    } else {
      Endpoint* e = r->ep;
      const char* what = KindName(r->kind);
      FreeRequest(r);
      return Fail(c, e, st, what);
    }
  } else if (r->state == ReqState::kPending) {
    r->ucx = sp;  // (had UCX run the callback already, it would have released sp)
  }
  *out = r;
  return WEFT_TP_SUCCESS;
}

}  // namespace

Request* AllocRequest(Context* c, ReqKind kind, Endpoint* ep, size_t bytes) {
  if (c->free_reqs == nullptr) {
    c->chunks.reserve(c->chunks.size() + 1);
    Request* chunk = new Request[kChunkRequests];
    c->chunks.push_back(chunk);
    for (int i = 0; i < kChunkRequests; ++i) {
      chunk[i].next = c->free_reqs;
      c->free_reqs = &chunk[i];
    }
  }
  Request* r = c->free_reqs;
  c->free_reqs = r->next;
  r->magic = kReqMagic;
  r->kind = kind;
  r->state = ReqState::kPending;
  r->ctx = c;
  r->ep = ep;
  r->ucx = nullptr;
  r->status = UCS_OK;
  r->bytes = bytes;
  r->info = ucp_tag_recv_info_t{};
  ep->pending.Push(r);
  r->linked = true;
  return r;
}

void CompleteRequest(Request* r, ucs_status_t st) {
  r->status = st;
  r->state = ReqState::kDone;
  if (r->linked) {
    r->ep->pending.Remove(r);
    r->linked = false;
  }
}

void FreeRequest(Request* r) {
  Context* c = r->ctx;
  if (r->linked) {
    r->ep->pending.Remove(r);
    r->linked = false;
  }
  r->magic = 0;
  r->state = ReqState::kFree;
  r->ucx = nullptr;
  r->prev = nullptr;
  r->next = c->free_reqs;
  c->free_reqs = r;
}

void FreeAllRequests(Context* c) {
  for (Request* chunk : c->chunks)
    delete[] chunk;
  c->chunks.clear();
  c->free_reqs = nullptr;
}

int Isend(Context* c, Endpoint* e, const void* buf, size_t len, MemReg* m, uint64_t tag,
          void** req) {
  if (req == nullptr || (buf == nullptr && len != 0)) {
    SetError(c, "ucx: isend: bad arguments");
    return WEFT_TP_ERR_INVALID;
  }
  *req = nullptr;
  if ((tag & ~kTagMask) != 0) return BadTag(c, tag, "isend");
  if (e->failed) return EndpointFailed(c, e, "send");
  Request* r = AllocRequest(c, ReqKind::kSend, e, len);
  e->dirty = true;
  ucp_request_param_t p = SendParam(r, m);
  uint64_t wire_tag = (static_cast<uint64_t>(c->rank) << kTagShift) | tag;
  return Track(c, r, ucp_tag_send_nbx(e->ep, buf, len, wire_tag, &p), req);
}

int Irecv(Context* c, Endpoint* e, void* buf, size_t len, MemReg* m, uint64_t tag, void** req) {
  if (req == nullptr || (buf == nullptr && len != 0)) {
    SetError(c, "ucx: irecv: bad arguments");
    return WEFT_TP_ERR_INVALID;
  }
  *req = nullptr;
  if ((tag & ~kTagMask) != 0) return BadTag(c, tag, "irecv");
  Request* r = AllocRequest(c, ReqKind::kRecv, e, 0);
  ucp_request_param_t p{};
  p.op_attr_mask =
      UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA | UCP_OP_ATTR_FIELD_RECV_INFO;
  p.cb.recv = RecvCb;
  p.user_data = r;
  p.recv_info.tag_info = &r->info;
  if (m != nullptr) {
    p.op_attr_mask |= UCP_OP_ATTR_FIELD_MEMORY_TYPE;
    p.memory_type = UCS_MEMORY_TYPE_HOST;
  }
  uint64_t wire_tag = (static_cast<uint64_t>(e->peer) << kTagShift) | tag;
  // UCX 1.13 leaves recv_info unfilled when a receive completes at once from the unexpected queue,
  // so learn the length of a message that has already arrived from a probe (which leaves it there).
  ucp_tag_recv_info_t probed{};
  bool arrived = ucp_tag_probe_nb(c->worker, wire_tag, ~uint64_t{0}, 0, &probed) != nullptr;
  r->info.length = arrived ? probed.length : len;
  // Posted even when the peer has failed: a message that arrived before it failed still matches.
  int rc = Track(c, r, ucp_tag_recv_nbx(c->worker, buf, len, wire_tag, ~uint64_t{0}, &p), req);
  if (rc == WEFT_TP_SUCCESS && e->failed && r->state == ReqState::kPending) {
    ucp_request_cancel(c->worker, r->ucx);
    if (r->state == ReqState::kDone && r->status == UCS_ERR_CANCELED) {
      FreeRequest(r);
      *req = nullptr;
      return EndpointFailed(c, e, "receive");
    }
  }
  return rc;
}

int Test(Context* c, Request* r, int* done, size_t* bytes) {
  if (done == nullptr) {
    SetError(c, "ucx: test: NULL done");
    return WEFT_TP_ERR_INVALID;
  }
  if (r->state == ReqState::kPending) {
    ucp_worker_progress(c->worker);
    HandleFailures(c);
  }
  if (r->state == ReqState::kPending) {
    *done = 0;
    if (bytes != nullptr) *bytes = 0;
    return WEFT_TP_SUCCESS;
  }
  *done = 1;
  ucs_status_t st = r->status;
  size_t n = r->bytes;
  Endpoint* e = r->ep;
  ReqKind kind = r->kind;
  if (r->ucx != nullptr) {
    r->magic = 0;  // failed while UCX still holds its request: its callback recycles r
    r->state = ReqState::kAbandoned;
  } else {
    FreeRequest(r);
  }
  if (bytes != nullptr) *bytes = st == UCS_OK ? n : 0;
  return st == UCS_OK ? WEFT_TP_SUCCESS : Fail(c, e, st, KindName(kind));
}

int PackRkey(Context* c, MemReg* m, void* buf, size_t* len) {
  if (len == nullptr) {
    SetError(c, "ucx: pack_rkey: NULL length");
    return WEFT_TP_ERR_INVALID;
  }
  void* packed = nullptr;
  size_t size = 0;
  ucs_status_t st = ucp_rkey_pack(c->ucp, m->memh, &packed, &size);
  if (st != UCS_OK) return Fail(c, nullptr, st, "pack_rkey (ucp_rkey_pack)");
  if (buf == nullptr || *len < size) {
    ucp_rkey_buffer_release(packed);
    SetError(c, "ucx: pack_rkey: buffer of %zu bytes, the key needs %zu", *len, size);
    *len = size;
    return WEFT_TP_ERR_INVALID;
  }
  memcpy(buf, packed, size);
  ucp_rkey_buffer_release(packed);
  *len = size;
  return WEFT_TP_SUCCESS;
}

int UnpackRkey(Context* c, Endpoint* e, const void* buf, size_t len, void** rkey) {
  if (rkey == nullptr || buf == nullptr || len == 0) {
    SetError(c, "ucx: unpack_rkey: bad arguments");
    return WEFT_TP_ERR_INVALID;
  }
  *rkey = nullptr;
  if (e->failed) return EndpointFailed(c, e, "unpack_rkey");
  auto* k = new RemoteKey();
  ucs_status_t st = ucp_ep_rkey_unpack(e->ep, buf, &k->rkey);
  if (st != UCS_OK) {
    delete k;
    return Fail(c, e, st, "unpack_rkey (ucp_ep_rkey_unpack)");
  }
  k->ep = e;
  c->rkeys.Push(k);
  *rkey = k;
  return WEFT_TP_SUCCESS;
}

int ReleaseRkey(Context* c, RemoteKey* k) {
  c->rkeys.Remove(k);
  ucp_rkey_destroy(k->rkey);
  k->magic = 0;
  delete k;
  return WEFT_TP_SUCCESS;
}

int Put(Context* c, Endpoint* e, const void* local, size_t len, MemReg* m, uint64_t remote_addr,
        RemoteKey* k, void** req) {
  if (req == nullptr || (local == nullptr && len != 0) || k->ep != e) {
    SetError(c, "ucx: put: bad arguments%s", k->ep != e ? " (remote key of another endpoint)" : "");
    return WEFT_TP_ERR_INVALID;
  }
  *req = nullptr;
  if (e->failed) return EndpointFailed(c, e, "put");
  Request* r = AllocRequest(c, ReqKind::kPut, e, len);
  e->dirty = true;
  ucp_request_param_t p = SendParam(r, m);
  return Track(c, r, ucp_put_nbx(e->ep, local, len, remote_addr, k->rkey, &p), req);
}

int Get(Context* c, Endpoint* e, void* local, size_t len, MemReg* m, uint64_t remote_addr,
        RemoteKey* k, void** req) {
  if (req == nullptr || (local == nullptr && len != 0) || k->ep != e) {
    SetError(c, "ucx: get: bad arguments%s", k->ep != e ? " (remote key of another endpoint)" : "");
    return WEFT_TP_ERR_INVALID;
  }
  *req = nullptr;
  if (e->failed) return EndpointFailed(c, e, "get");
  Request* r = AllocRequest(c, ReqKind::kGet, e, len);
  ucp_request_param_t p = SendParam(r, m);
  return Track(c, r, ucp_get_nbx(e->ep, local, len, remote_addr, k->rkey, &p), req);
}

int Flush(Context* c, Endpoint* e, void** req) {
  if (req == nullptr) {
    SetError(c, "ucx: flush: NULL request");
    return WEFT_TP_ERR_INVALID;
  }
  *req = nullptr;
  if (e->failed) return EndpointFailed(c, e, "flush");
  Request* r = AllocRequest(c, ReqKind::kFlush, e, 0);
  ucp_request_param_t p = SendParam(r, nullptr);
  return Track(c, r, ucp_ep_flush_nbx(e->ep, &p), req);
}

}  // namespace weft_ucx
