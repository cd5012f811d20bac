/*
 * The example transport: a complete weft_transport_v1_t in plain C, small enough to read as
 * documentation of include/weft/transport.h.
 *
 * It is a "loopback" transport for ranks that are threads of one process. Every context registers
 * itself in a process-global registry keyed by (comm_id, rank); an address is just that key, and a
 * send finds the receiving context there. Sends are eager: isend copies the bytes straight into a
 * matching posted receive or, when none is posted yet, into a queue of unexpected messages on the
 * receiver, and completes at once. RMA is a memcpy, since every address is in this process.
 *
 * One mutex guards the registry and every context in it; no call blocks with it held, and nothing
 * (weft's logger included) is called back under it. A real network plugin would instead own a
 * device, a progress engine and a wire protocol, but the contract it meets is the same: tag
 * matching per (sender, tag), truncation reported as an error, a failed peer's requests ending in
 * WEFT_TP_ERR_PEER, and finalize releasing whatever is left.
 *
 * The plugin reads no settings; a plugin that has some asks init_args.get_param for them rather
 * than reading the environment itself.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/transport.h"

#define EXPORT __attribute__((visibility("default")))
#define ADDR_MAGIC 0x77656674u /* "weft" */

typedef struct request request;
typedef struct message message;

typedef struct context {
  uint64_t comm_id;
  int rank, nranks;
  /* Under g_lock, since other ranks' calls reach them too: */
  struct context* next; /* in the registry */
  request* reqs;        /* every request weft has not yet seen complete, oldest first */
  message* unexpected;  /* messages that arrived before their receive, oldest first */
  /* Touched only by calls on this context: */
  struct endpoint* eps;
  struct region* regions; /* registrations and unpacked remote keys */
  char err[256];
} context;

typedef struct endpoint {
  int peer;
  struct endpoint* next;
} endpoint;

typedef enum { REQ_SEND, REQ_RECV, REQ_RMA } req_kind;

struct request {
  req_kind kind;
  int done, status;
  size_t bytes;  /* the length sent or received (truncated: the length that was sent) */
  int peer;      /* receives: whom the message must come from */
  uint64_t tag;  /* receives: the tag to match */
  void* buf;     /* receives: where the message goes... */
  size_t len;    /* ...and how much room there is */
  request* next; /* in the owning context's reqs */
};

struct message {
  int src;
  uint64_t tag;
  size_t len;
  message* next;
  unsigned char data[]; /* len bytes */
};

typedef struct {
  uint64_t comm_id;
  int32_t rank;
  uint32_t magic;
} address;

/* A registration, or an unpacked remote key: either simply describes memory. */
typedef struct region {
  uintptr_t addr;
  size_t len;
  struct region* next; /* in the context's list: finalize frees what weft did not */
} region;

typedef struct {
  uint64_t addr, len;
} rkey_blob; /* what pack_rkey writes */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static context* g_contexts; /* the registry */

/* ---- helpers: all but fail and done_request are called with g_lock held ---- */

static int fail(context* c, int code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = snprintf(c->err, sizeof c->err, "example: ");
  vsnprintf(c->err + n, sizeof c->err - (size_t)n, fmt, ap);
  va_end(ap);
  return code;
}

static context* find_context(uint64_t comm_id, int rank) {
  for (context* c = g_contexts; c; c = c->next)
    if (c->comm_id == comm_id && c->rank == rank) return c;
  return NULL;
}

static request* new_request(context* c, req_kind kind, int done, size_t bytes) {
  request* r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->kind = kind;
  r->done = done;
  r->bytes = bytes;
  request** tail = &c->reqs; /* append: receives must match in the order they were posted */
  while (*tail)
    tail = &(*tail)->next;
  *tail = r;
  return r;
}

static void unlink_request(context* c, request* r) {
  for (request** p = &c->reqs; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      return;
    }
}

/* A request that finished in the call that made it. */
static int done_request(context* c, size_t bytes, void** req) {
  pthread_mutex_lock(&g_lock);
  request* r = new_request(c, REQ_RMA, 1, bytes);
  pthread_mutex_unlock(&g_lock);
  if (!r) return fail(c, WEFT_TP_ERR_NO_MEMORY, "out of memory");
  *req = r;
  return WEFT_TP_SUCCESS;
}

/* Delivers a message into a receive: copies it, or fails the receive if it does not fit. */
static void deliver(request* r, const void* data, size_t len) {
  if (len > r->len) {
    r->status = WEFT_TP_ERR_TRUNCATED;
    r->bytes = len; /* kept for the error message */
  } else {
    if (len) memcpy(r->buf, data, len);
    r->bytes = len;
  }
  r->done = 1;
}

/* ---- life of a context ---- */

static int ex_init(const weft_transport_init_args_t* a, void** out, char* err, size_t err_len) {
  if (!a || !out || a->abi_version != WEFT_TRANSPORT_ABI_VERSION ||
      a->struct_size < sizeof(weft_transport_init_args_t) || a->nranks < 1 || a->rank < 0 ||
      a->rank >= a->nranks) {
    snprintf(err, err_len, "example: bad init arguments");
    return WEFT_TP_ERR_INVALID;
  }
  context* c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, err_len, "example: out of memory");
    return WEFT_TP_ERR_NO_MEMORY;
  }
  c->comm_id = a->comm_id;
  c->rank = a->rank;
  c->nranks = a->nranks;
  pthread_mutex_lock(&g_lock);
  int taken = find_context(c->comm_id, c->rank) != NULL;
  if (!taken) {
    c->next = g_contexts;
    g_contexts = c;
  }
  pthread_mutex_unlock(&g_lock);
  if (taken) {
    snprintf(err, err_len, "example: rank %d of communicator %#llx already has a context", a->rank,
             (unsigned long long)a->comm_id);
    free(c);
    return WEFT_TP_ERR_INVALID;
  }
  if (a->log) {
    char msg[128];
    snprintf(msg, sizeof msg, "example: rank %d of %d, communicator %#llx", a->rank, a->nranks,
             (unsigned long long)a->comm_id);
    a->log(a->log_ctx, WEFT_TP_LOG_DEBUG, msg);
  }
  *out = c;
  return WEFT_TP_SUCCESS;
}

static int ex_finalize(void* ctx) {
  context* c = ctx;
  pthread_mutex_lock(&g_lock);
  for (context** p = &g_contexts; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  /* This rank is gone: receives that other ranks posted from it can never match. */
  for (context* o = g_contexts; o; o = o->next)
    if (o->comm_id == c->comm_id)
      for (request* r = o->reqs; r; r = r->next)
        if (r->kind == REQ_RECV && !r->done && r->peer == c->rank) {
          r->status = WEFT_TP_ERR_PEER;
          r->done = 1;
        }
  pthread_mutex_unlock(&g_lock);
  /* Nobody can reach c any more: release everything, pending requests included. */
  while (c->reqs) {
    request* r = c->reqs;
    c->reqs = r->next;
    free(r);
  }
  while (c->unexpected) {
    message* m = c->unexpected;
    c->unexpected = m->next;
    free(m);
  }
  while (c->regions) {
    region* m = c->regions;
    c->regions = m->next;
    free(m);
  }
  while (c->eps) {
    endpoint* e = c->eps;
    c->eps = e->next;
    free(e);
  }
  free(c);
  return WEFT_TP_SUCCESS;
}

static const char* ex_last_error(void* ctx) {
  return ((context*)ctx)->err;
}

static int ex_get_caps(void* ctx, weft_transport_caps_t* caps) {
  (void)ctx;
  memset(caps, 0, sizeof *caps);
  caps->flags = WEFT_TP_CAP_TAGGED | WEFT_TP_CAP_RMA;
  caps->mem_kinds = WEFT_TP_MEM_HOST;
  caps->max_message_bytes = (uint64_t)1 << 40;
  caps->max_address_bytes = sizeof(address);
  caps->max_rkey_bytes = sizeof(rkey_blob);
  caps->latency_us = 0.5;
  caps->bandwidth_gbps = 10.0;
  snprintf(caps->device, sizeof caps->device, "loopback");
  return WEFT_TP_SUCCESS;
}

/* ---- wire-up ---- */

static int ex_get_address(void* ctx, void* buf, size_t* len) {
  context* c = ctx;
  address a = {c->comm_id, c->rank, ADDR_MAGIC};
  if (*len < sizeof a)
    return fail(c, WEFT_TP_ERR_INVALID, "address needs %zu bytes, got %zu", sizeof a, *len);
  memcpy(buf, &a, sizeof a);
  *len = sizeof a;
  return WEFT_TP_SUCCESS;
}

static int ex_connect(void* ctx, int peer, const void* addr, size_t len, void** ep) {
  context* c = ctx;
  address a;
  if (len != sizeof a) return fail(c, WEFT_TP_ERR_INVALID, "address of %zu bytes", len);
  memcpy(&a, addr, sizeof a);
  if (a.magic != ADDR_MAGIC || a.comm_id != c->comm_id || a.rank != peer || peer == c->rank ||
      peer < 0 || peer >= c->nranks)
    return fail(c, WEFT_TP_ERR_INVALID, "address is not rank %d's of this communicator", peer);
  endpoint* e = calloc(1, sizeof *e);
  if (!e) return fail(c, WEFT_TP_ERR_NO_MEMORY, "out of memory");
  e->peer = peer;
  pthread_mutex_lock(&g_lock);
  int alive = find_context(c->comm_id, peer) != NULL;
  pthread_mutex_unlock(&g_lock);
  if (!alive) {
    free(e);
    return fail(c, WEFT_TP_ERR_PEER, "rank %d is not in this process (or has finalized)", peer);
  }
  e->next = c->eps;
  c->eps = e;
  *ep = e;
  return WEFT_TP_SUCCESS;
}

static int ex_describe_ep(void* ctx, void* ep, char* buf, size_t len) {
  (void)ctx;
  (void)ep;
  snprintf(buf, len, "example/loopback");
  return WEFT_TP_SUCCESS;
}

/* ---- memory: nothing to pin, so a registration only remembers the range ---- */

static int add_region(context* c, uintptr_t addr, size_t len, void** out) {
  region* m = malloc(sizeof *m);
  if (!m) return fail(c, WEFT_TP_ERR_NO_MEMORY, "out of memory");
  m->addr = addr;
  m->len = len;
  m->next = c->regions;
  c->regions = m;
  *out = m;
  return WEFT_TP_SUCCESS;
}

static int remove_region(context* c, void* handle) {
  for (region** p = &c->regions; *p; p = &(*p)->next)
    if (*p == handle) {
      *p = (*p)->next;
      free(handle);
      return WEFT_TP_SUCCESS;
    }
  return fail(c, WEFT_TP_ERR_INVALID, "unknown memory handle %p", handle);
}

static int ex_reg_mem(void* ctx, void* addr, size_t len, uint32_t mem_kind, void** mr) {
  if (mem_kind != WEFT_TP_MEM_HOST)
    return fail(ctx, WEFT_TP_ERR_UNSUPPORTED, "memory kind %#x: host memory only", mem_kind);
  return add_region(ctx, (uintptr_t)addr, len, mr);
}

static int ex_dereg_mem(void* ctx, void* mr) {
  return remove_region(ctx, mr);
}

/* ---- tagged messages ---- */

static int ex_isend(void* ctx, void* ep, const void* buf, size_t len, void* mr, uint64_t tag,
                    void** req) {
  context* c = ctx;
  int peer = ((endpoint*)ep)->peer;
  (void)mr; /* nothing is pinned, so registered and unregistered buffers are alike */
  pthread_mutex_lock(&g_lock);
  context* dst = find_context(c->comm_id, peer);
  if (!dst) {
    pthread_mutex_unlock(&g_lock);
    return fail(c, WEFT_TP_ERR_PEER, "rank %d has finalized", peer);
  }
  request* match = NULL; /* the oldest receive on dst posted for (this rank, tag) */
  for (request* q = dst->reqs; q && !match; q = q->next)
    if (q->kind == REQ_RECV && !q->done && q->peer == c->rank && q->tag == tag) match = q;
  request* r = new_request(c, REQ_SEND, 1, len); /* eager: done as soon as the bytes are copied */
  message* m = match ? NULL : malloc(sizeof *m + len);
  if (!r || (!match && !m)) {
    if (r) unlink_request(c, r);
    pthread_mutex_unlock(&g_lock);
    free(r);
    return fail(c, WEFT_TP_ERR_NO_MEMORY, "out of memory for a %zu-byte message", len);
  }
  if (match) {
    deliver(match, buf, len);
  } else { /* nobody is waiting yet: park a copy on the receiver */
    m->src = c->rank;
    m->tag = tag;
    m->len = len;
    m->next = NULL;
    if (len) memcpy(m->data, buf, len);
    message** tail = &dst->unexpected;
    while (*tail)
      tail = &(*tail)->next;
    *tail = m;
  }
  pthread_mutex_unlock(&g_lock);
  *req = r;
  return WEFT_TP_SUCCESS;
}

static int ex_irecv(void* ctx, void* ep, void* buf, size_t len, void* mr, uint64_t tag,
                    void** req) {
  context* c = ctx;
  (void)mr;
  pthread_mutex_lock(&g_lock);
  request* r = new_request(c, REQ_RECV, 0, 0);
  if (!r) {
    pthread_mutex_unlock(&g_lock);
    return fail(c, WEFT_TP_ERR_NO_MEMORY, "out of memory");
  }
  r->peer = ((endpoint*)ep)->peer;
  r->tag = tag;
  r->buf = buf;
  r->len = len;
  for (message** p = &c->unexpected; *p; p = &(*p)->next) {
    message* m = *p;
    if (m->src == r->peer && m->tag == tag) { /* it is already here */
      *p = m->next;
      deliver(r, m->data, m->len);
      free(m);
      break;
    }
  }
  if (!r->done && !find_context(c->comm_id, r->peer)) { /* and nothing more will come */
    r->status = WEFT_TP_ERR_PEER;
    r->done = 1;
  }
  *req = r;
  pthread_mutex_unlock(&g_lock);
  return WEFT_TP_SUCCESS;
}

static int ex_test(void* ctx, void* req, int* done, size_t* bytes) {
  context* c = ctx;
  request* r = req;
  pthread_mutex_lock(&g_lock);
  *done = r->done;
  *bytes = 0;
  int rc = r->status;
  if (r->done) { /* finished: the request is ours again */
    *bytes = rc == WEFT_TP_SUCCESS ? r->bytes : 0;
    unlink_request(c, r);
    if (rc == WEFT_TP_ERR_TRUNCATED)
      fail(c, rc, "a %zu-byte message from rank %d (tag %#llx) overflows a %zu-byte receive",
           r->bytes, r->peer, (unsigned long long)r->tag, r->len);
    else if (rc == WEFT_TP_ERR_PEER)
      fail(c, rc, "rank %d finalized before its message (tag %#llx) arrived", r->peer,
           (unsigned long long)r->tag);
    else if (rc != WEFT_TP_SUCCESS)
      fail(c, rc, "request failed (%d)", rc);
    free(r);
  }
  pthread_mutex_unlock(&g_lock);
  return rc;
}

static int ex_progress(void* ctx) {
  (void)ctx; /* every transfer finishes inside the call that starts it */
  return WEFT_TP_SUCCESS;
}

/* ---- RMA: the remote key is the target's registration; put and get are memcpy ---- */

static int ex_pack_rkey(void* ctx, void* mr, void* buf, size_t* len) {
  const region* m = mr;
  rkey_blob k = {m->addr, m->len};
  if (*len < sizeof k) return fail(ctx, WEFT_TP_ERR_INVALID, "rkey needs %zu bytes", sizeof k);
  memcpy(buf, &k, sizeof k);
  *len = sizeof k;
  return WEFT_TP_SUCCESS;
}

static int ex_unpack_rkey(void* ctx, void* ep, const void* buf, size_t len, void** rkey) {
  rkey_blob k;
  (void)ep;
  if (len != sizeof k) return fail(ctx, WEFT_TP_ERR_INVALID, "bad rkey (%zu bytes)", len);
  memcpy(&k, buf, sizeof k);
  return add_region(ctx, (uintptr_t)k.addr, (size_t)k.len, rkey);
}

static int ex_release_rkey(void* ctx, void* rkey) {
  return remove_region(ctx, rkey);
}

/* remote_addr is the target's virtual address, inside the registration the rkey describes. */
static int rma(context* c, void* local, size_t len, uint64_t remote_addr, const region* k,
               int is_put, void** req) {
  if (remote_addr < k->addr || len > k->len || remote_addr - k->addr > k->len - len)
    return fail(c, WEFT_TP_ERR_INVALID, "%zu bytes at %#llx: outside the remote registration", len,
                (unsigned long long)remote_addr);
  void* remote = (void*)(uintptr_t)remote_addr;
  if (len) memcpy(is_put ? remote : local, is_put ? local : remote, len);
  return done_request(c, len, req);
}

static int ex_put(void* ctx, void* ep, const void* local, size_t len, void* mr,
                  uint64_t remote_addr, void* rkey, void** req) {
  (void)ep;
  (void)mr;
  return rma(ctx, (void*)local, len, remote_addr, rkey, 1, req);
}

static int ex_get(void* ctx, void* ep, void* local, size_t len, void* mr, uint64_t remote_addr,
                  void* rkey, void** req) {
  (void)ep;
  (void)mr;
  return rma(ctx, local, len, remote_addr, rkey, 0, req);
}

static int ex_flush(void* ctx, void* ep, void** req) {
  (void)ep; /* every put is visible when it completes: nothing to wait for */
  return done_request(ctx, 0, req);
}

/* ---- the one exported symbol ---- */

EXPORT const weft_transport_v1_t weft_transport_v1 = {
    .abi_version = WEFT_TRANSPORT_ABI_VERSION,
    .struct_size = sizeof(weft_transport_v1_t),
    .name = "example",
    .init = ex_init,
    .finalize = ex_finalize,
    .last_error = ex_last_error,
    .get_caps = ex_get_caps,
    .get_address = ex_get_address,
    .connect = ex_connect,
    .describe_ep = ex_describe_ep,
    .reg_mem = ex_reg_mem,
    .dereg_mem = ex_dereg_mem,
    .isend = ex_isend,
    .irecv = ex_irecv,
    .test = ex_test,
    .progress = ex_progress,
    .pack_rkey = ex_pack_rkey,
    .unpack_rkey = ex_unpack_rkey,
    .release_rkey = ex_release_rkey,
    .put = ex_put,
    .get = ex_get,
    .flush = ex_flush,
};
