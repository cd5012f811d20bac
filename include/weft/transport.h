/*
 * weft transport plugin interface, version 1.
 *
 * A network transport is a shared object that exports one symbol, `weft_transport_v1`, of type
 * weft_transport_v1_t. weft loads it with dlopen (WEFT_TRANSPORT=ucx loads
 * libweft-transport-ucx.so; a path loads that file), checks `abi_version`, and drives it from one
 * thread at a time per context. This header is all a third party needs: it includes nothing of
 * weft's and pulls in only <stddef.h> and <stdint.h>. docs/transports.md walks through a plugin.
 *
 * Life of a context (one per communicator):
 *   init            creates the context (rank, nranks, a logger, a settings lookup), opening
 * whatever devices it needs; get_caps        says what the plugin can do; get_address     gives a
 * blob that weft sends to every peer through its bootstrap; connect         makes an endpoint to
 * one peer from that peer's blob (for every peer weft reaches through this plugin; never for the
 * rank itself); reg_mem         registers buffers weft will send from and receive into (its staging
 * slots); isend / irecv   start tagged transfers, test completes them, progress drives them;
 *   finalize        cancels whatever is pending and releases everything, on every path.
 *
 * Matching. Tags are 64-bit; weft uses only the low WEFT_TP_TAG_BITS bits, so a plugin may put
 * the sender's rank (or anything else) in the high bits. A receive posted on endpoint E with tag T
 * matches exactly one message that E's peer sent to this rank with tag T, whatever the order in
 * which messages with different tags arrive. weft never has two receives with the same (E, T)
 * outstanding, nor two sends with the same (E, T) in flight. A message longer than the receive
 * buffer is an error (WEFT_TP_ERR_TRUNCATED), never a silent cut.
 *
 * Requests. isend/irecv/put/get/flush return an opaque request. test() reports whether it is done
 * and, for a receive, how many bytes arrived; once test() reports done (or an error) the request
 * belongs to the plugin again and weft never passes it back. A send's buffer may be reused once its
 * request is done.
 *
 * Progress. Nothing needs to move between calls: weft calls progress() (and test()) whenever it
 * waits. Both must return promptly; neither may block.
 *
 * Errors. Every call returns WEFT_TP_SUCCESS or an error code; last_error() then gives a one-line
 * explanation (the provider's or library's message included), valid until the next call on the
 * context. init() has no context yet and writes its explanation into the caller's buffer. A peer
 * that dies or becomes unreachable makes its endpoint's pending and later requests fail with
 * WEFT_TP_ERR_PEER; weft names the rank. weft also runs its own timeout (WEFT_TIMEOUT), so a plugin
 * that cannot detect a dead peer still never hangs a job.
 *
 * RMA (optional, WEFT_TP_CAP_RMA): a buffer registered with reg_mem can be described to peers with
 * pack_rkey; a peer turns the blob into a handle with unpack_rkey and reads or writes the memory
 * with get/put, addressing it by its virtual address in the owner's process (a plugin whose
 * provider wants offsets keeps the base in the packed key). A completed put or get is complete
 * locally; flush on the endpoint completes once every earlier put on it is visible at the target.
 *
 * Edge cases: 0-byte messages are allowed. A buffer too small for get_address or pack_rkey gives
 * WEFT_TP_ERR_INVALID with *len set to the size needed. A truncated message fails the receive only;
 * the send completes and the endpoint stays usable. On a failed peer, a later call may fail at once
 * or through test(), either with WEFT_TP_ERR_PEER.
 */
#ifndef WEFT_TRANSPORT_H_
#define WEFT_TRANSPORT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_TRANSPORT_ABI_VERSION 1
/* The symbol a plugin exports (a weft_transport_v1_t object). */
#define WEFT_TRANSPORT_SYMBOL "weft_transport_v1"
/* weft's tags use only this many low bits. */
#define WEFT_TP_TAG_BITS 40

typedef enum {
  WEFT_TP_SUCCESS = 0,
  WEFT_TP_ERR_INTERNAL = 1,    /* the library or provider failed */
  WEFT_TP_ERR_INVALID = 2,     /* a bad argument (a bug in the caller) */
  WEFT_TP_ERR_UNSUPPORTED = 3, /* an optional feature this plugin or device lacks */
  WEFT_TP_ERR_NO_MEMORY = 4,
  WEFT_TP_ERR_UNAVAILABLE = 5, /* init: no usable device or provider here; weft tries the next */
  WEFT_TP_ERR_PEER = 6,        /* the peer failed, closed or cannot be reached */
  WEFT_TP_ERR_TRUNCATED = 7    /* a message longer than the receive buffer */
} weft_tp_result_t;

/* Log levels of the logger weft passes to init. */
typedef enum {
  WEFT_TP_LOG_WARN = 1,
  WEFT_TP_LOG_INFO = 2,
  WEFT_TP_LOG_DEBUG = 3
} weft_tp_log_level_t;

/* Memory kinds (bit flags in caps.mem_kinds; one value in reg_mem). */
#define WEFT_TP_MEM_HOST 0x1u
#define WEFT_TP_MEM_CUDA 0x2u
#define WEFT_TP_MEM_ASCEND 0x4u

/* Capability flags (caps.flags). */
#define WEFT_TP_CAP_TAGGED 0x1u   /* isend/irecv: required of every plugin */
#define WEFT_TP_CAP_RMA 0x2u      /* pack_rkey/unpack_rkey/put/get/flush work */
#define WEFT_TP_CAP_MR_LOCAL 0x4u /* buffers must be registered before isend/irecv use them */
/* connect may be called several times for one peer, and each endpoint it returns is a connection
 * of its own (its own stream of bytes): weft then makes one per channel (WEFT_NCHANNELS). Without
 * it, weft connects once per peer and its channels share that endpoint, told apart by tag. */
#define WEFT_TP_CAP_MULTI_EP 0x8u

typedef struct {
  uint32_t struct_size; /* sizeof(weft_transport_init_args_t) as weft was built */
  uint32_t abi_version; /* WEFT_TRANSPORT_ABI_VERSION as weft was built */
  int32_t rank;         /* this rank in the communicator */
  int32_t nranks;
  uint64_t comm_id; /* the same on every rank of the communicator, random per communicator */
  /* Messages for weft's log (may be NULL); msg is one line without a newline. */
  void (*log)(void* log_ctx, int level, const char* msg);
  void* log_ctx;
  /* weft's settings (may be NULL): the value of a setting such as "WEFT_OFI_PROVIDER", or NULL
   * when it is unset or unknown. Plugins read their WEFT_* settings here rather than with getenv,
   * so that weft declares, validates, documents and logs them in one place. The string stays valid
   * until finalize. (Variables of the underlying library, UCX_* or FI_*, are that library's.) */
  const char* (*get_param)(void* param_ctx, const char* name);
  void* param_ctx;
} weft_transport_init_args_t;

typedef struct {
  uint32_t flags;     /* WEFT_TP_CAP_* */
  uint32_t mem_kinds; /* WEFT_TP_MEM_* this plugin moves directly (host at least) */
  uint64_t max_message_bytes;
  uint64_t max_address_bytes; /* capacity get_address needs (weft passes every rank the largest) */
  uint64_t max_rkey_bytes;    /* capacity pack_rkey needs; 0 without RMA */
  double latency_us;          /* hints for the tuner: one small message, one way */
  double bandwidth_gbps;      /* one stream, large messages, GB/s (1e9 bytes) */
  char device[64];            /* what this context drives, e.g. "tcp;ofi_rxm:veth_a" */
} weft_transport_caps_t;

typedef struct weft_transport_v1 {
  uint32_t abi_version; /* WEFT_TRANSPORT_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(weft_transport_v1_t) as the plugin was built */
  const char* name;     /* short, lower case: "ucx", "ofi" */

  int (*init)(const weft_transport_init_args_t* args, void** ctx, char* err, size_t err_len);
  int (*finalize)(void* ctx);
  const char* (*last_error)(void* ctx);
  int (*get_caps)(void* ctx, weft_transport_caps_t* caps);

  /* Wire-up. *len is the buffer's capacity on entry and the blob's length on return. */
  int (*get_address)(void* ctx, void* buf, size_t* len);
  int (*connect)(void* ctx, int peer, const void* addr, size_t len, void** ep);
  /* Optional (may be NULL): what carries bytes to this peer, e.g. "tcp/veth_a", for logs and
   * weft's per-transport counters, truncated to fit `len`. Meaningful once a message has moved. */
  int (*describe_ep)(void* ctx, void* ep, char* buf, size_t len);

  /* Memory registration. mem_kind is one WEFT_TP_MEM_* value. */
  int (*reg_mem)(void* ctx, void* addr, size_t len, uint32_t mem_kind, void** mr);
  int (*dereg_mem)(void* ctx, void* mr);

  /* Tagged messages. mr is the registration covering buf, or NULL when buf is not registered
   * (allowed unless the plugin declares WEFT_TP_CAP_MR_LOCAL). */
  int (*isend)(void* ctx, void* ep, const void* buf, size_t len, void* mr, uint64_t tag,
               void** req);
  int (*irecv)(void* ctx, void* ep, void* buf, size_t len, void* mr, uint64_t tag, void** req);
  /* *done becomes 1 once req has finished; *bytes is then the length received (sends: sent). An
   * error return also finishes the request (and sets *done to 1). */
  int (*test)(void* ctx, void* req, int* done, size_t* bytes);
  int (*progress)(void* ctx);

  /* RMA: weft calls these only when caps.flags has WEFT_TP_CAP_RMA; a plugin that never offers
   * RMA leaves them NULL, one that offers it on some devices returns WEFT_TP_ERR_UNSUPPORTED. */
  int (*pack_rkey)(void* ctx, void* mr, void* buf, size_t* len);
  int (*unpack_rkey)(void* ctx, void* ep, const void* buf, size_t len, void** rkey);
  int (*release_rkey)(void* ctx, void* rkey);
  int (*put)(void* ctx, void* ep, const void* local, size_t len, void* mr, uint64_t remote_addr,
             void* rkey, void** req);
  int (*get)(void* ctx, void* ep, void* local, size_t len, void* mr, uint64_t remote_addr,
             void* rkey, void** req);
  int (*flush)(void* ctx, void* ep, void** req);
} weft_transport_v1_t;

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TRANSPORT_H_ */
