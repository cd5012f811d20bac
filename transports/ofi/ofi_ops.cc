// Requests: posting (with -FI_EAGAIN queueing), completions, errors, peer failure, goodbyes.
#include <sys/mman.h>
#include <time.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "ofi_internal.h"

namespace weft_ofi {
namespace {

bool ConnError(int e) {
  switch (e) {
    case FI_ECONNRESET:
    case FI_ECONNREFUSED:
    case FI_ECONNABORTED:
    case FI_ENOTCONN:
    case FI_ESHUTDOWN:
    case FI_EHOSTUNREACH:
    case FI_EHOSTDOWN:
    case FI_ENETUNREACH:
    case FI_ENETDOWN:
    case FI_ETIMEDOUT:
    case FI_EREMOTEIO:
    case EPIPE:
      return true;
    default:
      return false;
  }
}

const char* OpName(Kind k) {
  switch (k) {
    case Kind::kSend:
      return "send to";
    case Kind::kRecv:
      return "receive from";
    case Kind::kPut:
      return "put to";
    case Kind::kGet:
      return "get from";
    case Kind::kFlush:
      return "flush to";
    case Kind::kBye:
      return "goodbye to";
    case Kind::kControlRecv:
      return "control receive";
  }
  return "?";
}

void Finish(Req* r, int code, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void Finish(Req* r, int code, const char* fmt, ...) {
  if (r->finished) return;
  r->finished = true;
  r->result = code;
  if (fmt != nullptr) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
  }
}

Req* Alloc(Context* c, Kind kind, Peer* p) {
  Req* r;
  if (!c->free_reqs.empty()) {
    r = c->free_reqs.back();
    c->free_reqs.pop_back();
  } else {
    c->reqs.push_back(std::make_unique<Req>());
    r = c->reqs.back().get();
  }
  *r = Req{};
  r->kind = kind;
  r->peer = p;
  r->active = true;
  return r;
}

void Recycle(Context* c, Req* r) {
  ReleaseReqResources(c, r);
  r->active = false;
  c->free_reqs.push_back(r);
}

void MaybeRecycle(Context* c, Req* r) {
  if (r->active && r->finished && r->released && !r->in_flight && !r->queued) Recycle(c, r);
}

void Unqueue(Context* c, Req* r) {
  if (!r->queued) return;
  r->queued = false;
  auto it = std::find(c->queue.begin(), c->queue.end(), r);
  if (it != c->queue.end()) c->queue.erase(it);
}

// Fails p's unfinished requests (receives too unless sends_only), cancelling posted ones.
void FailPeerRequests(Context* c, Peer* p, bool sends_only) {
  for (auto& owned : c->reqs) {
    Req* r = owned.get();
    if (!r->active || r->peer != p || r->finished || r->kind == Kind::kBye) continue;
    if (sends_only && r->kind == Kind::kRecv) continue;
    Unqueue(c, r);
    // A receive from a dead peer never completes otherwise; the buffer must be let go.
    if (r->in_flight) fi_cancel(&c->ep->fid, &r->fctx);
    Finish(r, WEFT_TP_ERR_PEER, "%s", p->dead_msg);
    MaybeRecycle(c, r);
  }
}

void MarkPeerClosed(Context* c, Peer* p) {
  if (p == nullptr || p->dead || p->closed) return;
  p->closed = true;
  StopCheck(p);
  snprintf(p->dead_msg, sizeof(p->dead_msg), "ofi: rank %d has closed its endpoint (finalize)",
           p->rank);
  Log(c, WEFT_TP_LOG_DEBUG, "%s", p->dead_msg);
  FailPeerRequests(c, p, /*sends_only=*/true);
}

uint64_t WireTag(Context* c, int sender, uint64_t tag) {
  return (static_cast<uint64_t>(sender) << c->rank_shift) | tag;
}

// A provider out of request slots answers -FI_EAGAIN (shm also -FI_ENOMEM for its receive pool):
// the operation waits in the queue until completions free some.
bool Busy(ssize_t rc) {
  return rc == -FI_EAGAIN || rc == -FI_ENOMEM;
}

// One attempt; 0 or a negative fi_errno.
ssize_t PostOnce(Context* c, Req* r) {
  fi_addr_t dest = r->peer ? r->peer->addr : FI_ADDR_UNSPEC;
  ssize_t rc = -FI_EINVAL;
  switch (r->kind) {
    case Kind::kSend:
    case Kind::kBye:
      rc = fi_tsend(c->ep, r->buf, r->len, r->desc, dest, r->tag, &r->fctx);
      break;
    case Kind::kRecv:
      if (c->scratch != nullptr) {
        iovec iov[2] = {{r->buf, r->len}, {c->scratch, kScratchBytes}};
        void* desc[2] = {r->desc, nullptr};
        rc = fi_trecvv(c->ep, iov, desc, 2, FI_ADDR_UNSPEC, r->tag, 0, &r->fctx);
      } else {
        rc = fi_trecv(c->ep, r->buf, r->len, r->desc, FI_ADDR_UNSPEC, r->tag, 0, &r->fctx);
      }
      break;
    case Kind::kControlRecv:
      // Any control message: the rank and kind bits below the control bit are ignored.
      rc = fi_trecv(c->ep, r->buf, r->len, r->desc, FI_ADDR_UNSPEC, r->tag, c->control_bit - 1,
                    &r->fctx);
      break;
    case Kind::kPut: {
      iovec iov{r->buf, r->len};
      fi_rma_iov riov{r->raddr, r->len, r->rkey};
      fi_msg_rma msg{};
      msg.msg_iov = &iov;
      msg.desc = &r->desc;
      msg.iov_count = 1;
      msg.addr = dest;
      msg.rma_iov = &riov;
      msg.rma_iov_count = 1;
      msg.context = &r->fctx;
      // Delivery complete: once the put completes its data is visible at the target, which is what
      // flush relies on.
      rc = fi_writemsg(c->ep, &msg, FI_COMPLETION | FI_DELIVERY_COMPLETE);
      break;
    }
    case Kind::kGet:
      rc = fi_read(c->ep, r->buf, r->len, r->desc, dest, r->raddr, r->rkey, &r->fctx);
      break;
    case Kind::kFlush:
      return 0;
  }
  if (rc == 0) {
    r->in_flight = true;
    ++c->in_flight;
    if (r->kind == Kind::kBye) {
      ++c->byes_in_flight;
    } else if (r->peer != nullptr) {
      Peer* p = r->peer;
      if (p->recvs_in_flight + p->others_in_flight == 0) p->last_heard_ns = NowNs();
      p->ever_used = true;
      if (r->kind == Kind::kRecv) {
        ++p->recvs_in_flight;
        ++c->recvs_in_flight;
      } else {
        ++p->others_in_flight;
      }
    }
  }
  return rc;
}

// The completion of a posted request arrived (success or error).
void Landed(Context* c, Req* r) {
  r->in_flight = false;
  --c->in_flight;
  Peer* p = r->peer;
  if (r->kind == Kind::kBye) {
    --c->byes_in_flight;
  } else if (p != nullptr) {
    if (r->kind == Kind::kRecv) {
      --p->recvs_in_flight;
      --c->recvs_in_flight;
    } else {
      --p->others_in_flight;
    }
    if (r->kind == Kind::kPut) p->puts_outstanding.erase(r->seq);
  }
  ReleaseReqResources(c, r);
}

int FailPost(Context* c, Req* r, ssize_t rc) {
  int e = static_cast<int>(-rc);
  int peer = r->peer ? r->peer->rank : -1;
  if (ConnError(e) && r->peer != nullptr) {
    char why[256];
    snprintf(why, sizeof(why), "ofi: %s rank %d failed: %s", OpName(r->kind), peer, fi_strerror(e));
    Finish(r, WEFT_TP_ERR_PEER, "%s", why);
    MarkPeerDead(c, r->peer, why);
    return WEFT_TP_ERR_PEER;
  }
  Finish(r, WEFT_TP_ERR_INTERNAL, "ofi: posting %s rank %d failed: %s (%zd)", OpName(r->kind), peer,
         fi_strerror(e), rc);
  return WEFT_TP_ERR_INTERNAL;
}

int PollCq(Context* c);

void DrainQueue(Context* c) {
  while (!c->queue.empty()) {
    Req* r = c->queue.front();
    ssize_t rc = PostOnce(c, r);
    if (Busy(rc)) return;
    c->queue.pop_front();
    r->queued = false;
    if (rc != 0) {
      FailPost(c, r, rc);
      MaybeRecycle(c, r);
    }
  }
}

// Posts r; on error the request is finished (the caller returns its result and recycles it).
int Submit(Context* c, Req* r) {
  if (!c->queue.empty()) {
    r->queued = true;
    c->queue.push_back(r);
    DrainQueue(c);
    return WEFT_TP_SUCCESS;
  }
  for (int i = 0;; ++i) {
    ssize_t rc = PostOnce(c, r);
    if (rc == 0) return WEFT_TP_SUCCESS;
    if (!Busy(rc)) return FailPost(c, r, rc);
    if (i == kPostRetries) break;
    PollCq(c);
    if (r->peer != nullptr && r->peer->dead) {
      Finish(r, WEFT_TP_ERR_PEER, "%s", r->peer->dead_msg);
      return WEFT_TP_ERR_PEER;
    }
  }
  r->queued = true;
  c->queue.push_back(r);
  return WEFT_TP_SUCCESS;
}

void OnControl(Context* c, Req* r, const fi_cq_tagged_entry& e) {
  uint64_t sender = (e.tag & (c->control_bit - 1)) >> c->rank_shift;
  if ((e.tag & kUserTagMask) == 1 && sender < c->by_rank.size()) {
    MarkPeerClosed(c, c->by_rank[sender]);
  }
  if (!c->closing) {
    ssize_t rc = PostOnce(c, r);
    if (rc != 0) {
      Log(c, WEFT_TP_LOG_WARN, "ofi: reposting the control receive failed: %s",
          fi_strerror(static_cast<int>(-rc)));
    }
  }
}

void OnSuccess(Context* c, Req* r, const fi_cq_tagged_entry& e) {
  Landed(c, r);
  if (r->kind == Kind::kControlRecv) return OnControl(c, r, e);
  if (r->peer != nullptr && r->kind != Kind::kBye) r->peer->last_heard_ns = NowNs();
  r->bytes = r->len;
  if (r->kind == Kind::kRecv) {
    r->bytes = e.len;
    if (e.len > r->len) {  // it ran into the scratch iovec
      r->bytes = r->len;
      madvise(c->scratch, std::min(e.len - r->len, kScratchBytes), MADV_DONTNEED);
      Finish(r, WEFT_TP_ERR_TRUNCATED,
             "ofi: a message from rank %d (tag %#llx) of %zu bytes is longer than the %zu-byte "
             "receive buffer",
             r->peer ? r->peer->rank : -1, static_cast<unsigned long long>(r->tag & kUserTagMask),
             e.len, r->len);
    }
  }
  Finish(r, WEFT_TP_SUCCESS, nullptr);
  MaybeRecycle(c, r);
}

void OnError(Context* c, const fi_cq_err_entry& ee) {
  Req* r = static_cast<Req*>(ee.op_context);
  int err = ee.err < 0 ? -ee.err : ee.err;  // some providers (shm) report negative values
  char ptext[160] = {};
  const char* pt = fi_cq_strerror(c->cq, ee.prov_errno, ee.err_data, ptext, sizeof(ptext));
  if (pt != nullptr && pt != ptext) snprintf(ptext, sizeof(ptext), "%s", pt);
  if (r == nullptr) {
    Log(c, WEFT_TP_LOG_WARN, "ofi: completion error without a request: %s (%s)", fi_strerror(err),
        ptext);
    return;
  }
  Landed(c, r);
  int peer = r->peer ? r->peer->rank : -1;
  if (r->kind == Kind::kControlRecv) {
    if (!c->closing && err != FI_ECANCELED) {
      Log(c, WEFT_TP_LOG_WARN, "ofi: control receive failed: %s (%s)", fi_strerror(err), ptext);
      PostOnce(c, r);
    }
    return;
  }
  if (r->finished) {
    // Already failed by the plugin (peer dead or closed); this is its cancellation coming back.
  } else if (err == FI_ETRUNC) {
    char size[48] = "";
    if (ee.olen > 0) snprintf(size, sizeof(size), " of %zu bytes", r->len + ee.olen);
    Finish(r, WEFT_TP_ERR_TRUNCATED,
           "ofi: a message from rank %d (tag %#llx)%s is longer than the %zu-byte receive buffer",
           peer, static_cast<unsigned long long>(r->tag & kUserTagMask), size, r->len);
  } else if (c->closing || r->kind == Kind::kBye) {
    Finish(r, WEFT_TP_ERR_INTERNAL, "ofi: %s rank %d was cancelled", OpName(r->kind), peer);
  } else if (r->peer != nullptr && (ConnError(err) || ((err == FI_EIO || err == FI_ECANCELED) &&
                                                       r->kind != Kind::kRecv))) {
    // The plugin cancels only at finalize or after failing the request itself, so a send that the
    // provider cancels (net does, when the connection drops) lost its peer.
    char why[256];
    snprintf(why, sizeof(why), "ofi: %s rank %d failed: %s (%s); rank %d is taken as dead",
             OpName(r->kind), peer, fi_strerror(err), ptext, peer);
    Finish(r, WEFT_TP_ERR_PEER, "%s", why);
    MarkPeerDead(c, r->peer, why);
  } else {
    Finish(r, WEFT_TP_ERR_INTERNAL, "ofi: %s rank %d failed: %s (%s)", OpName(r->kind), peer,
           fi_strerror(err), ptext);
  }
  MaybeRecycle(c, r);
}

// Reads completions in batches; returns the number handled, or -1 when the CQ itself failed.
int PollCq(Context* c) {
  constexpr int kBatch = 16;
  int handled = 0;
  for (int round = 0; round < 8; ++round) {
    fi_cq_tagged_entry e[kBatch];
    ssize_t n = fi_cq_read(c->cq, e, kBatch);
    if (n > 0) {
      for (ssize_t i = 0; i < n; ++i)
        OnSuccess(c, static_cast<Req*>(e[i].op_context), e[i]);
      handled += static_cast<int>(n);
      if (n < kBatch) break;
    } else if (n == -FI_EAVAIL) {
      fi_cq_err_entry ee{};
      if (fi_cq_readerr(c->cq, &ee, 0) > 0) {
        OnError(c, ee);
        ++handled;
      }
    } else if (n == -FI_EAGAIN) {
      break;
    } else {
      SetError(c, "ofi: fi_cq_read failed: %s (%zd)", fi_strerror(static_cast<int>(-n)), n);
      return -1;
    }
  }
  return handled;
}

// Descriptor for buf: from mr, or an on-the-fly registration when FI_MR_LOCAL needs one.
int Describe(Context* c, Req* r, Mr* mr, uint64_t access) {
  if (mr != nullptr) {
    if (c->mrs.count(mr) == 0) {
      SetError(c, "ofi: unknown memory registration %p", static_cast<void*>(mr));
      return WEFT_TP_ERR_INVALID;
    }
    uintptr_t b = reinterpret_cast<uintptr_t>(r->buf);
    if (r->len > 0 && (b < mr->base || b + r->len > mr->base + mr->len)) {
      SetError(c, "ofi: buffer %p+%zu is outside the registration %#zx+%zu", r->buf, r->len,
               static_cast<size_t>(mr->base), mr->len);
      return WEFT_TP_ERR_INVALID;
    }
    r->desc = mr->desc;
    if (r->desc != nullptr || !c->mr_local) return WEFT_TP_SUCCESS;
  }
  if (!c->mr_local || r->len == 0) return WEFT_TP_SUCCESS;
  int rc = RegisterRegion(c, r->buf, r->len, access, &r->temp_mr);
  if (rc == WEFT_TP_SUCCESS) r->desc = fi_mr_desc(r->temp_mr);
  return rc;
}

int CheckPeer(Context* c, Peer* p, const char* op, bool receive) {
  if (p == nullptr) {
    SetError(c, "ofi: %s: NULL endpoint", op);
    return WEFT_TP_ERR_INVALID;
  }
  if (p->dead || (p->closed && !receive)) {
    SetError(c, "%s", p->dead_msg);
    return WEFT_TP_ERR_PEER;
  }
  return WEFT_TP_SUCCESS;
}

// Shared tail of isend/irecv/put/get: describe, submit, hand out or report.
int Start(Context* c, Req* r, Mr* mr, uint64_t access, void** out) {
  int rc = Describe(c, r, mr, access);
  if (rc == WEFT_TP_SUCCESS) {
    rc = Submit(c, r);
    if (rc != WEFT_TP_SUCCESS) SetError(c, "%s", r->msg);
  }
  if (rc != WEFT_TP_SUCCESS) {
    Recycle(c, r);
    return rc;
  }
  *out = r;
  return WEFT_TP_SUCCESS;
}

int CheckBuf(Context* c, const void* buf, size_t len, void** out, const char* op) {
  if (out == nullptr || (buf == nullptr && len > 0)) {
    SetError(c, "ofi: %s: bad argument", op);
    return WEFT_TP_ERR_INVALID;
  }
  if (len > c->info->ep_attr->max_msg_size) {
    SetError(c, "ofi: %s: %zu bytes exceed the provider's limit of %zu", op, len,
             c->info->ep_attr->max_msg_size);
    return WEFT_TP_ERR_INVALID;
  }
  return WEFT_TP_SUCCESS;
}

int Tagged(Context* c, Kind kind, Peer* p, void* buf, size_t len, Mr* mr, uint64_t tag,
           void** out) {
  const char* op = kind == Kind::kSend ? "isend" : "irecv";
  int rc = CheckPeer(c, p, op, kind == Kind::kRecv);
  if (rc == WEFT_TP_SUCCESS) rc = CheckBuf(c, buf, len, out, op);
  if (rc != WEFT_TP_SUCCESS) return rc;
  if (tag & ~kUserTagMask) {
    SetError(c, "ofi: %s: tag %#llx uses more than %d bits", op,
             static_cast<unsigned long long>(tag), WEFT_TP_TAG_BITS);
    return WEFT_TP_ERR_INVALID;
  }
  Req* r = Alloc(c, kind, p);
  r->buf = buf;
  r->len = len;
  r->tag = WireTag(c, kind == Kind::kSend ? c->rank : p->rank, tag);
  return Start(c, r, mr, kind == Kind::kSend ? FI_SEND : FI_RECV, out);
}

int Rma(Context* c, Kind kind, Peer* p, void* local, size_t len, Mr* mr, uint64_t raddr, Rkey* rk,
        void** out) {
  const char* op = kind == Kind::kPut ? "put" : "get";
  if (!c->has_rma) {
    SetError(c, "ofi: %s: provider %s has no RMA", op, c->prov_name.c_str());
    return WEFT_TP_ERR_UNSUPPORTED;
  }
  int rc = CheckPeer(c, p, op, false);
  if (rc == WEFT_TP_SUCCESS) rc = CheckBuf(c, local, len, out, op);
  if (rc != WEFT_TP_SUCCESS) return rc;
  if (rk == nullptr || c->rkeys.count(rk) == 0 || (!rk->virt_addr && raddr < rk->base)) {
    SetError(c, "ofi: %s: unknown remote key or address below the region", op);
    return WEFT_TP_ERR_INVALID;
  }
  Req* r = Alloc(c, kind, p);
  r->buf = local;
  r->len = len;
  r->raddr = rk->virt_addr ? raddr : raddr - rk->base;
  r->rkey = rk->key;
  uint64_t seq = 0;
  if (kind == Kind::kPut) {
    seq = r->seq = p->put_seq_next++;
    p->puts_outstanding.insert(seq);
  }
  rc = Start(c, r, mr, kind == Kind::kPut ? FI_WRITE : FI_READ, out);
  if (rc != WEFT_TP_SUCCESS && kind == Kind::kPut) p->puts_outstanding.erase(seq);
  return rc;
}

}  // namespace

void MarkPeerDead(Context* c, Peer* p, const char* why) {
  if (p == nullptr || p->dead || p->closed) return;
  p->dead = true;
  StopCheck(p);
  snprintf(p->dead_msg, sizeof(p->dead_msg), "%s", why);
  Log(c, WEFT_TP_LOG_WARN, "%s", why);
  FailPeerRequests(c, p, /*sends_only=*/false);
}

void ReleaseReqResources(Context*, Req* r) {
  if (r->temp_mr != nullptr) fi_close(&r->temp_mr->fid);
  r->temp_mr = nullptr;
}

int PostControlRecv(Context* c) {
  Req* r = Alloc(c, Kind::kControlRecv, nullptr);
  r->released = true;
  r->tag = c->control_bit;
  c->control = r;
  for (int i = 0; i <= kPostRetries; ++i) {
    ssize_t rc = PostOnce(c, r);
    if (rc == 0) return WEFT_TP_SUCCESS;
    if (rc != -FI_EAGAIN) {
      SetError(c, "ofi: posting the control receive failed: %s",
               fi_strerror(static_cast<int>(-rc)));
      return WEFT_TP_ERR_UNAVAILABLE;
    }
    PollCq(c);
  }
  SetError(c, "ofi: posting the control receive kept failing with -FI_EAGAIN");
  return WEFT_TP_ERR_UNAVAILABLE;
}

int Isend(Context* c, Peer* p, const void* buf, size_t len, Mr* mr, uint64_t tag, void** out) {
  return Tagged(c, Kind::kSend, p, const_cast<void*>(buf), len, mr, tag, out);
}

int Irecv(Context* c, Peer* p, void* buf, size_t len, Mr* mr, uint64_t tag, void** out) {
  return Tagged(c, Kind::kRecv, p, buf, len, mr, tag, out);
}

int Put(Context* c, Peer* p, const void* local, size_t len, Mr* mr, uint64_t raddr, Rkey* rk,
        void** out) {
  return Rma(c, Kind::kPut, p, const_cast<void*>(local), len, mr, raddr, rk, out);
}

int Get(Context* c, Peer* p, void* local, size_t len, Mr* mr, uint64_t raddr, Rkey* rk,
        void** out) {
  return Rma(c, Kind::kGet, p, local, len, mr, raddr, rk, out);
}

// Puts are posted with FI_DELIVERY_COMPLETE, so a flush is done once every put posted before it on
// this endpoint has completed; it moves nothing on the wire.
int Flush(Context* c, Peer* p, void** out) {
  if (!c->has_rma) {
    SetError(c, "ofi: flush: provider %s has no RMA", c->prov_name.c_str());
    return WEFT_TP_ERR_UNSUPPORTED;
  }
  int rc = CheckPeer(c, p, "flush", false);
  if (rc != WEFT_TP_SUCCESS) return rc;
  if (out == nullptr) {
    SetError(c, "ofi: flush: NULL request");
    return WEFT_TP_ERR_INVALID;
  }
  Req* r = Alloc(c, Kind::kFlush, p);
  r->seq = p->put_seq_next;
  *out = r;
  return WEFT_TP_SUCCESS;
}

int Progress(Context* c) {
  if (PollCq(c) < 0) return WEFT_TP_ERR_INTERNAL;
  DrainQueue(c);
  if (c->liveness != Liveness::kNone && c->in_flight > 1) CheckPeers(c);  // 1: the control receive
  return WEFT_TP_SUCCESS;
}

int Test(Context* c, Req* r, int* done, size_t* bytes) {
  if (r == nullptr || done == nullptr || !r->active || r->released) {
    SetError(c, "ofi: test: bad or already completed request");
    return WEFT_TP_ERR_INVALID;
  }
  *done = 0;
  // A finished request needs no progress call (weft tests many requests in a row).
  if (!r->finished && Progress(c) != WEFT_TP_SUCCESS) return WEFT_TP_ERR_INTERNAL;
  if (r->kind == Kind::kFlush && !r->finished) {
    Peer* p = r->peer;
    if (p->dead || p->closed) {
      Finish(r, WEFT_TP_ERR_PEER, "%s", p->dead_msg);
    } else if (p->puts_outstanding.empty() || *p->puts_outstanding.begin() >= r->seq) {
      Finish(r, WEFT_TP_SUCCESS, nullptr);
    }
  }
  if (!r->finished) return WEFT_TP_SUCCESS;
  *done = 1;
  if (bytes != nullptr) *bytes = r->bytes;
  int rc = r->result;
  if (rc != WEFT_TP_SUCCESS) SetError(c, "%s", r->msg);
  r->released = true;
  MaybeRecycle(c, r);
  return rc;
}

void CancelAndDrain(Context* c) {
  if (c->ep == nullptr) return;
  // Goodbye to every live peer this context used, so that their liveness checks do not take it for
  // dead (only where they run: shm crashes sending to an endpoint of the same process that closed).
  for (auto& p : c->peers) {
    if (c->liveness != Liveness::kConnect || !p->ever_used || p->dead || p->closed ||
        c->by_rank[p->rank] != p.get())
      continue;
    Req* r = Alloc(c, Kind::kBye, p.get());
    r->released = true;
    r->tag = c->control_bit | WireTag(c, c->rank, 1);
    if (PostOnce(c, r) != 0) Recycle(c, r);
  }
  c->closing = true;
  for (auto& r : c->reqs) {
    if (r->active && r->in_flight && r->kind != Kind::kBye) fi_cancel(&c->ep->fid, &r->fctx);
  }
  c->queue.clear();
  // Cancelled receives and goodbyes come back promptly; a send that no one will match cannot be
  // cancelled on most providers, so stop once the CQ has been quiet for a while (fi_close discards
  // the rest).
  uint64_t start = NowNs(), last = start;
  while (c->in_flight > 0) {
    int n = PollCq(c);
    if (n < 0) break;
    uint64_t now = NowNs();
    if (n > 0) last = now;
    bool byes = c->byes_in_flight > 0 && now - start < kByeWaitNs;
    if (now - start > kDrainNs || (!byes && now - last > kDrainIdleNs)) break;
    if (n == 0) {
      timespec ts{0, 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
  }
}

}  // namespace weft_ofi
