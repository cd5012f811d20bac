// Internals of the libfabric (OFI) transport plugin. Nothing here is part of the plugin ABI; the
// plugin exports only `weft_transport_v1` (ofi_plugin.cc).
//
// Design in short:
//  - one fabric/domain/CQ/AV/RDM endpoint per context (FI_THREAD_DOMAIN: weft drives a context from
//    one thread at a time);
//  - tags: bits [0, 40) are weft's, bits [40, tag_bits - 1) carry the sender's rank, so a receive
//    matches only its endpoint's peer without FI_DIRECTED_RECV; the top usable tag bit marks the
//    plugin's own control messages ("goodbye" at finalize), which a wildcard receive consumes;
//  - requests are pooled objects that start with an fi_context2 (FI_CONTEXT / FI_CONTEXT2);
//  - operations the provider refuses with -FI_EAGAIN are retried a few times and then queued and
//    reposted from progress()/test();
//  - receives carry an overflow iovec (kScratchBytes) so that the provider never truncates;
//  - peer failure: a connection error on any operation marks the peer dead and fails every pending
//    and later request on it with WEFT_TP_ERR_PEER. libfabric 1.17's tcp providers report nothing
//    when a peer dies (rxm retries the refused connection forever), nor does shm, so the plugin
//    checks a quiet peer it waits on itself (ofi_liveness.cc): tcp providers by connecting to its
//    listening address (refused twice: the process is gone), shm by looking for its process. A
//    tcp peer that finalizes says goodbye first, so it is "closed", not dead: its pending sends
//    fail, receives stay (data it sent may still be matched).
#ifndef WEFT_TRANSPORTS_OFI_OFI_INTERNAL_H_
#define WEFT_TRANSPORTS_OFI_OFI_INTERNAL_H_

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_tagged.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "weft/transport.h"

namespace weft_ofi {

// Receives carry a second iovec into this much scratch address space (MAP_NORESERVE, shared by
// all contexts of the process, only touched by an over-long message): a longer message is
// reported as truncated by the plugin. libfabric 1.17 handles a truncated receive badly:
// tcp;ofi_rxm drops the connection, shm spins forever in fi_cq_read (CMA) or never completes it
// (SAR).
constexpr size_t kScratchBytes = size_t{256} << 20;
// libfabric API version the plugin asks for.
constexpr uint32_t kFiVersion = FI_VERSION(1, 11);
constexpr uint64_t kUserTagMask = (uint64_t{1} << WEFT_TP_TAG_BITS) - 1;
// Liveness checks: a peer with requests pending and no completion for kQuietNs is
// checked every kCheckIntervalNs; a refusal is confirmed after kRecheckNs; a check that neither
// connects nor fails within kCheckTimeoutNs gives no verdict. The scan runs at most every kScanNs
// and starts at most kMaxNewChecks checks (round robin over the peers).
constexpr uint64_t kQuietNs = 1000ull * 1000 * 1000;
constexpr uint64_t kCheckIntervalNs = 1000ull * 1000 * 1000;
constexpr uint64_t kRecheckNs = 200ull * 1000 * 1000;
constexpr uint64_t kCheckTimeoutNs = 5000ull * 1000 * 1000;
constexpr uint64_t kScanNs = 50ull * 1000 * 1000;
constexpr int kMaxNewChecks = 4;
constexpr int kMaxOpenChecks = 16;
// -FI_EAGAIN: retries (each after a CQ poll) before an operation is queued.
constexpr int kPostRetries = 8;
// finalize: how long cancelled operations may take to drain from the CQ.
constexpr uint64_t kDrainNs = 500ull * 1000 * 1000;
constexpr uint64_t kDrainIdleNs = 20ull * 1000 * 1000;
constexpr uint64_t kByeWaitNs = 100ull * 1000 * 1000;

enum class Kind : uint8_t { kSend, kRecv, kPut, kGet, kFlush, kBye, kControlRecv };

struct Peer;

// How this provider's dead peers are found (ofi_liveness.cc).
enum class Liveness : uint8_t {
  kNone,     // only through the provider's errors
  kConnect,  // tcp, net: the address is the peer's TCP listener
  kPid,      // shm: the address names the peer's process
};

struct Req {
  fi_context2 fctx;  // must stay first: op_context points at it
  Kind kind = Kind::kSend;
  bool active = false;     // handed out (not in the free list)
  bool in_flight = false;  // posted; libfabric owns it until its completion arrives
  bool queued = false;     // waiting in the -FI_EAGAIN queue
  bool finished = false;   // result known
  bool released = false;   // weft has seen the result (or the request is internal)
  int result = WEFT_TP_SUCCESS;
  Peer* peer = nullptr;
  void* buf = nullptr;
  size_t len = 0;
  size_t bytes = 0;
  void* desc = nullptr;
  fid_mr* temp_mr = nullptr;  // on-the-fly registration (FI_MR_LOCAL, caller passed no mr)
  uint64_t tag = 0;           // wire tag
  uint64_t raddr = 0;         // RMA target address as the provider wants it
  uint64_t rkey = 0;
  uint64_t seq = 0;  // puts: sequence number; flush: puts before this one must be done
  char msg[256] = {};
};

struct Peer {
  int rank = -1;
  fi_addr_t addr = FI_ADDR_UNSPEC;
  std::vector<uint8_t> raw;  // the peer's address blob (for fi_av_straddr and liveness checks)
  bool dead = false;         // failed: every pending and later request fails
  bool closed = false;       // said goodbye: sends fail, receives may still match what it sent
  char dead_msg[256] = {};
  uint32_t recvs_in_flight = 0;
  uint32_t others_in_flight = 0;  // sends, RMA
  bool ever_used = false;         // an operation was posted to or from it
  uint64_t last_heard_ns = 0;     // last completion with it, or when requests became pending
  // liveness check (ofi_liveness.cc)
  int check_fd = -1;
  uint64_t check_started_ns = 0;
  uint64_t next_check_ns = 0;
  int refusals = 0;
  uint64_t put_seq_next = 1;
  std::set<uint64_t> puts_outstanding;
};

struct Mr {
  fid_mr* mr = nullptr;  // nullptr: light handle (no registration needed)
  void* desc = nullptr;
  uint64_t key = 0;
  uintptr_t base = 0;
  size_t len = 0;
};

struct Rkey {
  uint64_t key = 0;
  uint64_t base = 0;
  bool virt_addr = true;
};

struct Context {
  int rank = 0;
  int nranks = 0;
  void (*log_fn)(void*, int, const char*) = nullptr;
  void* log_ctx = nullptr;

  fi_info* info = nullptr;
  fid_fabric* fabric = nullptr;
  fid_domain* domain = nullptr;
  fid_cq* cq = nullptr;
  fid_av* av = nullptr;
  fid_ep* ep = nullptr;

  std::string prov_name;
  std::string domain_name;
  std::string fabric_name;
  char device[64] = {};
  std::vector<uint8_t> addr;

  bool mr_local = false;  // FI_MR_LOCAL: descriptors required for local buffers
  bool mr_virt = false;   // FI_MR_VIRT_ADDR: RMA addresses are virtual addresses
  bool mr_prov_key = false;
  bool mr_endpoint = false;
  bool mr_allocated = false;
  bool has_rma = false;
  bool need_reg = false;  // registrations are real (mr_local or RMA)
  Liveness liveness = Liveness::kNone;
  // Receives get a second iovec into a shared scratch area (see kScratchBytes) so that the provider
  // never truncates; a longer message is reported as truncated by the plugin itself.
  void* scratch = nullptr;
  uint64_t next_key = 1;
  int rank_shift = WEFT_TP_TAG_BITS;
  uint64_t control_bit = 0;

  std::vector<std::unique_ptr<Req>> reqs;
  std::vector<Req*> free_reqs;
  std::deque<Req*> queue;  // -FI_EAGAIN
  std::vector<std::unique_ptr<Peer>> peers;
  std::vector<Peer*> by_rank;  // the latest endpoint to each rank
  std::unordered_set<Mr*> mrs;
  std::unordered_set<Rkey*> rkeys;
  Req* control = nullptr;
  uint32_t recvs_in_flight = 0;  // weft's receives posted to libfabric
  uint32_t in_flight = 0;        // every operation posted to libfabric
  uint32_t byes_in_flight = 0;
  uint64_t last_scan_ns = 0;
  size_t scan_cursor = 0;
  bool closing = false;

  char err[512] = {};
};

// ofi_context.cc
int Init(const weft_transport_init_args_t* args, Context** out, char* err, size_t err_len);
void Finalize(Context* c);
int GetCaps(Context* c, weft_transport_caps_t* caps);
int GetAddress(Context* c, void* buf, size_t* len);
int Connect(Context* c, int peer, const void* addr, size_t len, void** ep);
int DescribeEp(Context* c, Peer* p, char* buf, size_t len);
int RegMem(Context* c, void* addr, size_t len, uint32_t kind, void** mr);
int DeregMem(Context* c, Mr* mr);
int PackRkey(Context* c, Mr* mr, void* buf, size_t* len);
int UnpackRkey(Context* c, Peer* p, const void* buf, size_t len, void** rkey);
int ReleaseRkey(Context* c, Rkey* rk);
// fi_mr_reg (+ fi_mr_bind/fi_mr_enable under FI_MR_ENDPOINT); returns a WEFT_TP_* code.
int RegisterRegion(Context* c, const void* addr, size_t len, uint64_t access, fid_mr** out);
constexpr size_t kRkeyBytes = 24;

// ofi_ops.cc
int Isend(Context* c, Peer* p, const void* buf, size_t len, Mr* mr, uint64_t tag, void** req);
int Irecv(Context* c, Peer* p, void* buf, size_t len, Mr* mr, uint64_t tag, void** req);
int Put(Context* c, Peer* p, const void* local, size_t len, Mr* mr, uint64_t raddr, Rkey* rk,
        void** req);
int Get(Context* c, Peer* p, void* local, size_t len, Mr* mr, uint64_t raddr, Rkey* rk, void** req);
int Flush(Context* c, Peer* p, void** req);
int Test(Context* c, Req* r, int* done, size_t* bytes);
int Progress(Context* c);
int PostControlRecv(Context* c);
void CancelAndDrain(Context* c);
void ReleaseReqResources(Context* c, Req* r);

// ofi_liveness.cc
Liveness LivenessMode(const fi_info* info);
// Runs the checks that are due; marks peers dead through MarkPeerDead.
void CheckPeers(Context* c);
void StopCheck(Peer* p);
void MarkPeerDead(Context* c, Peer* p, const char* why);

// helpers
void* AcquireScratch();
void ReleaseScratch();
void SetError(Context* c, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Log(Context* c, int level, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
uint64_t NowNs();

}  // namespace weft_ofi

#endif  // WEFT_TRANSPORTS_OFI_OFI_INTERNAL_H_
