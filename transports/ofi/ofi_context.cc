// Context life (provider choice, open/close), addresses, endpoints and memory registration.
#include <sys/mman.h>
#include <time.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "ofi_internal.h"

namespace weft_ofi {
namespace {

constexpr uint64_t kRmaCaps = FI_RMA | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
constexpr uint32_t kRkeyMagic = 0x3149464fu;  // "OFI1"

// sockets and udp (ofi_rxd) work but are far too slow to pick unless asked for.
bool Discouraged(const char* prov) {
  if (prov == nullptr) return true;
  std::string s(prov);
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(';', start);
    if (end == std::string::npos) end = s.size();
    std::string part = s.substr(start, end - start);
    if (part == "sockets" || part == "udp") return true;
    start = end + 1;
  }
  return false;
}

fi_info* MakeHints(bool rma, const char* prov) {
  fi_info* h = fi_allocinfo();
  if (h == nullptr) return nullptr;
  h->caps = FI_TAGGED | (rma ? kRmaCaps : 0);
  h->mode = FI_CONTEXT | FI_CONTEXT2;
  h->ep_attr->type = FI_EP_RDM;
  h->domain_attr->mr_mode =
      FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  h->domain_attr->threading = FI_THREAD_DOMAIN;
  h->domain_attr->av_type = FI_AV_TABLE;
  // fi_freeinfo frees the string.
  if (prov != nullptr) h->fabric_attr->prov_name = strdup(prov);
  return h;
}

void CloseFid(fid* f) {
  if (f != nullptr) fi_close(f);
}

std::mutex g_scratch_mu;
void* g_scratch = nullptr;
size_t g_scratch_refs = 0;

void CloseAll(Context* c) {
  for (auto& p : c->peers)
    StopCheck(p.get());
  for (auto& r : c->reqs)
    ReleaseReqResources(c, r.get());
  for (Mr* m : c->mrs) {
    CloseFid(m->mr ? &m->mr->fid : nullptr);
    delete m;
  }
  c->mrs.clear();
  for (Rkey* k : c->rkeys)
    delete k;
  c->rkeys.clear();
  CloseFid(c->ep ? &c->ep->fid : nullptr);
  CloseFid(c->av ? &c->av->fid : nullptr);
  CloseFid(c->cq ? &c->cq->fid : nullptr);
  CloseFid(c->domain ? &c->domain->fid : nullptr);
  CloseFid(c->fabric ? &c->fabric->fid : nullptr);
  c->ep = nullptr;
  c->av = nullptr;
  c->cq = nullptr;
  c->domain = nullptr;
  c->fabric = nullptr;
  if (c->info != nullptr) fi_freeinfo(c->info);
  c->info = nullptr;
  if (c->scratch != nullptr) ReleaseScratch();
  c->scratch = nullptr;
}

// Rough one-way latency (us) and single-stream bandwidth (GB/s) per provider, for weft's tuner.
void Hints(const std::string& prov, double* lat, double* bw) {
  auto has = [&](const char* p) { return prov.find(p) != std::string::npos; };
  if (has("shm")) {
    *lat = 1.0, *bw = 8.0;
  } else if (has("verbs")) {
    *lat = 3.0, *bw = 10.0;
  } else if (has("efa")) {
    *lat = 15.0, *bw = 10.0;
  } else if (has("cxi") || has("psm")) {
    *lat = 2.0, *bw = 10.0;
  } else if (has("tcp") || has("net")) {
    *lat = 25.0, *bw = 1.0;
  } else {
    *lat = 50.0, *bw = 0.5;
  }
}

int Fail(Context* c, int code, const char* what, int fi_rc) {
  SetError(c, "ofi: %s failed: %s (%d)", what, fi_strerror(-fi_rc), fi_rc);
  return code;
}

int OpenResources(Context* c) {
  fi_info* info = c->info;
  int rc = fi_fabric(info->fabric_attr, &c->fabric, nullptr);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_fabric", rc);
  rc = fi_domain(c->fabric, info, &c->domain, nullptr);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_domain", rc);
  fi_cq_attr cq_attr{};
  cq_attr.format = FI_CQ_FORMAT_TAGGED;
  cq_attr.wait_obj = FI_WAIT_NONE;
  rc = fi_cq_open(c->domain, &cq_attr, &c->cq, nullptr);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_cq_open", rc);
  fi_av_attr av_attr{};
  av_attr.type = FI_AV_TABLE;
  av_attr.count = static_cast<size_t>(c->nranks);
  rc = fi_av_open(c->domain, &av_attr, &c->av, nullptr);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_av_open", rc);
  rc = fi_endpoint(c->domain, info, &c->ep, nullptr);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_endpoint", rc);
  rc = fi_ep_bind(c->ep, &c->av->fid, 0);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_ep_bind(av)", rc);
  rc = fi_ep_bind(c->ep, &c->cq->fid, FI_TRANSMIT | FI_RECV);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_ep_bind(cq)", rc);
  rc = fi_enable(c->ep);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_enable", rc);
  size_t len = 64;
  for (int i = 0; i < 2; ++i) {
    c->addr.assign(len, 0);
    rc = fi_getname(&c->ep->fid, c->addr.data(), &len);
    if (rc != -FI_ETOOSMALL) break;
  }
  if (rc != 0) return Fail(c, WEFT_TP_ERR_UNAVAILABLE, "fi_getname", rc);
  c->addr.resize(len);
  return WEFT_TP_SUCCESS;
}

// Picks the provider: libfabric filters by FI_PROVIDER / hints; we skip sockets and udp unless
// they are all there is (asked for by name, by FI_PROVIDER, or nothing else exists).
int ChooseInfo(const char* prov, const char* domain, fi_info** out, char* err, size_t err_len) {
  fi_info* fallback = nullptr;
  int last_rc = -FI_ENODATA;
  for (bool rma : {true, false}) {
    fi_info* hints = MakeHints(rma, prov);
    if (hints == nullptr) return WEFT_TP_ERR_NO_MEMORY;
    fi_info* list = nullptr;
    int rc = fi_getinfo(kFiVersion, nullptr, nullptr, 0, hints, &list);
    fi_freeinfo(hints);
    if (rc != 0) {
      last_rc = rc;
      continue;
    }
    fi_info* pick = nullptr;
    last_rc = 0;
    fi_info* first = nullptr;  // of the domain asked for
    for (fi_info* i = list; i != nullptr && pick == nullptr; i = i->next) {
      // Utility providers (rxm) ignore a domain name in the hints, so filter here.
      if (domain != nullptr &&
          (i->domain_attr->name == nullptr || strcmp(i->domain_attr->name, domain) != 0)) {
        continue;
      }
      if (first == nullptr) first = i;
      if (prov != nullptr || !Discouraged(i->fabric_attr->prov_name)) pick = i;
    }
    if (pick != nullptr) {
      *out = fi_dupinfo(pick);
      fi_freeinfo(list);
      if (fallback != nullptr) fi_freeinfo(fallback);
      return *out ? WEFT_TP_SUCCESS : WEFT_TP_ERR_NO_MEMORY;
    }
    if (fallback == nullptr && first != nullptr) fallback = fi_dupinfo(first);
    fi_freeinfo(list);
  }
  if (fallback != nullptr) {
    *out = fallback;
    return WEFT_TP_SUCCESS;
  }
  snprintf(err, err_len,
           "ofi: no libfabric provider%s%s%s%s%s offers FI_EP_RDM endpoints with FI_TAGGED here "
           "(fi_getinfo: %s; FI_PROVIDER and FI_*_IFACE also filter)",
           prov ? " \"" : "", prov ? prov : "", prov ? "\"" : "", domain ? " on domain " : "",
           domain ? domain : "", last_rc == 0 ? "no such domain" : fi_strerror(-last_rc));
  return WEFT_TP_ERR_UNAVAILABLE;
}

const char* Param(const weft_transport_init_args_t* a, const char* name) {
  if (a->struct_size < offsetof(weft_transport_init_args_t, param_ctx) + sizeof(void*)) {
    return nullptr;
  }
  if (a->get_param == nullptr) return nullptr;
  const char* v = a->get_param(a->param_ctx, name);
  return (v != nullptr && v[0] != '\0') ? v : nullptr;
}

}  // namespace

void* AcquireScratch() {
  std::lock_guard<std::mutex> lock(g_scratch_mu);
  if (g_scratch == nullptr) {
    void* p = mmap(nullptr, kScratchBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    g_scratch = p;
  }
  ++g_scratch_refs;
  return g_scratch;
}

void ReleaseScratch() {
  std::lock_guard<std::mutex> lock(g_scratch_mu);
  if (g_scratch_refs > 0 && --g_scratch_refs == 0) {
    munmap(g_scratch, kScratchBytes);
    g_scratch = nullptr;
  }
}

uint64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void SetError(Context* c, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof(c->err), fmt, ap);
  va_end(ap);
}

void Log(Context* c, int level, const char* fmt, ...) {
  if (c->log_fn == nullptr) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  c->log_fn(c->log_ctx, level, buf);
}

int Init(const weft_transport_init_args_t* args, Context** out, char* err, size_t err_len) {
  auto say = [&](const char* m) {
    if (err != nullptr && err_len > 0) snprintf(err, err_len, "%s", m);
  };
  if (args == nullptr || out == nullptr) {
    say("ofi: init: NULL argument");
    return WEFT_TP_ERR_INVALID;
  }
  if (args->abi_version != WEFT_TRANSPORT_ABI_VERSION ||
      args->struct_size < offsetof(weft_transport_init_args_t, log_ctx) + sizeof(void*)) {
    say("ofi: init: unsupported weft transport ABI version or struct size");
    return WEFT_TP_ERR_UNSUPPORTED;
  }
  if (args->nranks < 1 || args->rank < 0 || args->rank >= args->nranks) {
    say("ofi: init: rank out of range");
    return WEFT_TP_ERR_INVALID;
  }
  auto c = std::make_unique<Context>();
  c->rank = args->rank;
  c->nranks = args->nranks;
  c->log_fn = args->log;
  c->log_ctx = args->log_ctx;
  const char* prov = Param(args, "WEFT_OFI_PROVIDER");
  const char* domain = Param(args, "WEFT_OFI_DOMAIN");
  char local_err[512] = {};
  int rc = ChooseInfo(prov, domain, &c->info, local_err, sizeof(local_err));
  if (rc != WEFT_TP_SUCCESS) {
    say(local_err[0] ? local_err : "ofi: init: out of memory");
    return rc;
  }
  fi_info* info = c->info;
  c->prov_name = info->fabric_attr->prov_name ? info->fabric_attr->prov_name : "?";
  c->fabric_name = info->fabric_attr->name ? info->fabric_attr->name : "?";
  c->domain_name = info->domain_attr->name ? info->domain_attr->name : "?";
  snprintf(c->device, sizeof(c->device), "%s:%s", c->prov_name.c_str(), c->domain_name.c_str());
  uint64_t mm = static_cast<uint64_t>(info->domain_attr->mr_mode);
  c->mr_local = (mm & FI_MR_LOCAL) != 0;
  c->mr_virt = (mm & FI_MR_VIRT_ADDR) != 0;
  c->mr_prov_key = (mm & FI_MR_PROV_KEY) != 0;
  c->mr_endpoint = (mm & FI_MR_ENDPOINT) != 0;
  c->mr_allocated = (mm & FI_MR_ALLOCATED) != 0;
  c->has_rma = (info->caps & FI_RMA) != 0;
  c->need_reg = c->mr_local || c->has_rma;
  // Without FI_MR_LOCAL the scratch iovec needs no registration.
  if (!c->mr_local && info->rx_attr->iov_limit >= 2) c->scratch = AcquireScratch();
  c->liveness = LivenessMode(info);
  c->by_rank.assign(static_cast<size_t>(c->nranks), nullptr);

  // Tag layout: [0,40) weft's tag, then the sender's rank, then one control bit at the top.
  uint64_t fmt = info->ep_attr->mem_tag_format;
  int tag_bits = fmt == 0 ? 64 : 64 - __builtin_clzll(fmt);
  int rank_bits = tag_bits - 1 - WEFT_TP_TAG_BITS;
  if (rank_bits < 1 ||
      (rank_bits < 31 && static_cast<int64_t>(c->nranks) > (int64_t{1} << rank_bits))) {
    snprintf(local_err, sizeof(local_err),
             "ofi: provider %s has %d tag bits, too few for %d ranks above weft's %d-bit tags",
             c->prov_name.c_str(), tag_bits, c->nranks, WEFT_TP_TAG_BITS);
    say(local_err);
    CloseAll(c.get());
    return WEFT_TP_ERR_UNAVAILABLE;
  }
  c->rank_shift = WEFT_TP_TAG_BITS;
  c->control_bit = uint64_t{1} << (tag_bits - 1);

  rc = OpenResources(c.get());
  if (rc == WEFT_TP_SUCCESS) rc = PostControlRecv(c.get());
  if (rc != WEFT_TP_SUCCESS) {
    if (err != nullptr && err_len > 0) {
      snprintf(err, err_len, "%s (provider %s, domain %s)", c->err, c->prov_name.c_str(),
               c->domain_name.c_str());
    }
    CloseAll(c.get());
    return rc;
  }
  char mrbuf[256];
  fi_tostr_r(mrbuf, sizeof(mrbuf), &info->domain_attr->mr_mode, FI_TYPE_MR_MODE);
  Log(c.get(), WEFT_TP_LOG_INFO,
      "ofi: rank %d: provider %s, fabric %s, domain %s, mr_mode [%s], rma %s, tag bits %d, "
      "address %zu bytes%s",
      c->rank, c->prov_name.c_str(), c->fabric_name.c_str(), c->domain_name.c_str(), mrbuf,
      c->has_rma ? "yes" : "no", tag_bits, c->addr.size(),
      c->scratch ? ", overflow iovec for receives" : "");
  if (prov == nullptr && Discouraged(c->prov_name.c_str())) {
    Log(c.get(), WEFT_TP_LOG_WARN,
        "ofi: %s is the only provider left (FI_PROVIDER?); it is slow, set WEFT_OFI_PROVIDER to "
        "choose it on purpose",
        c->prov_name.c_str());
  }
  *out = c.release();
  return WEFT_TP_SUCCESS;
}

void Finalize(Context* c) {
  CancelAndDrain(c);
  CloseAll(c);
}

int GetCaps(Context* c, weft_transport_caps_t* caps) {
  if (caps == nullptr) {
    SetError(c, "ofi: get_caps: NULL caps");
    return WEFT_TP_ERR_INVALID;
  }
  *caps = weft_transport_caps_t{};
  // FI_MR_LOCAL stays hidden: isend/irecv/put/get register an unregistered buffer on the fly.
  caps->flags = WEFT_TP_CAP_TAGGED | (c->has_rma ? WEFT_TP_CAP_RMA : 0u);
  caps->mem_kinds = WEFT_TP_MEM_HOST;
  caps->max_message_bytes = c->info->ep_attr->max_msg_size;
  caps->max_address_bytes = c->addr.size();
  caps->max_rkey_bytes = c->has_rma ? kRkeyBytes : 0;
  Hints(c->prov_name, &caps->latency_us, &caps->bandwidth_gbps);
  snprintf(caps->device, sizeof(caps->device), "%s", c->device);
  return WEFT_TP_SUCCESS;
}

int GetAddress(Context* c, void* buf, size_t* len) {
  if (len == nullptr) {
    SetError(c, "ofi: get_address: NULL length");
    return WEFT_TP_ERR_INVALID;
  }
  if (buf == nullptr || *len < c->addr.size()) {
    SetError(c, "ofi: get_address: buffer of %zu bytes, the address needs %zu", *len,
             c->addr.size());
    *len = c->addr.size();
    return WEFT_TP_ERR_INVALID;
  }
  memcpy(buf, c->addr.data(), c->addr.size());
  *len = c->addr.size();
  return WEFT_TP_SUCCESS;
}

int Connect(Context* c, int peer, const void* addr, size_t len, void** ep) {
  if (ep == nullptr || addr == nullptr || len == 0 || peer < 0 || peer >= c->nranks ||
      peer == c->rank) {
    SetError(c, "ofi: connect: bad argument (peer %d of %d, address of %zu bytes)", peer, c->nranks,
             len);
    return WEFT_TP_ERR_INVALID;
  }
  auto p = std::make_unique<Peer>();
  p->rank = peer;
  p->raw.assign(static_cast<const uint8_t*>(addr), static_cast<const uint8_t*>(addr) + len);
  int rc = fi_av_insert(c->av, p->raw.data(), 1, &p->addr, 0, nullptr);
  if (rc != 1) {
    SetError(c, "ofi: connect: fi_av_insert of rank %d's address failed: %s", peer,
             rc < 0 ? fi_strerror(-rc) : "address not inserted");
    return WEFT_TP_ERR_PEER;
  }
  c->peers.push_back(std::move(p));
  c->by_rank[static_cast<size_t>(peer)] = c->peers.back().get();
  *ep = c->peers.back().get();
  return WEFT_TP_SUCCESS;
}

int DescribeEp(Context* c, Peer* p, char* buf, size_t len) {
  if (p == nullptr || buf == nullptr || len == 0) {
    SetError(c, "ofi: describe_ep: bad argument");
    return WEFT_TP_ERR_INVALID;
  }
  // What carries the bytes (provider and domain: for tcp, the interface), the same for every peer
  // reached the same way, so that weft's counters can name it once.
  snprintf(buf, len, "%s", c->device);
  return WEFT_TP_SUCCESS;
}

int RegisterRegion(Context* c, const void* addr, size_t len, uint64_t access, fid_mr** out) {
  uint64_t key = c->mr_prov_key ? 0 : c->next_key++;
  fid_mr* mr = nullptr;
  int rc = fi_mr_reg(c->domain, addr, len, access, 0, key, 0, &mr, nullptr);
  if (rc != 0) return Fail(c, WEFT_TP_ERR_INTERNAL, "fi_mr_reg", rc);
  if (c->mr_endpoint) {
    rc = fi_mr_bind(mr, &c->ep->fid, 0);
    if (rc == 0) rc = fi_mr_enable(mr);
    if (rc != 0) {
      fi_close(&mr->fid);
      return Fail(c, WEFT_TP_ERR_INTERNAL, "fi_mr_bind/fi_mr_enable", rc);
    }
  }
  *out = mr;
  return WEFT_TP_SUCCESS;
}

int RegMem(Context* c, void* addr, size_t len, uint32_t kind, void** out) {
  if (out == nullptr || (addr == nullptr && len > 0)) {
    SetError(c, "ofi: reg_mem: bad argument");
    return WEFT_TP_ERR_INVALID;
  }
  if (kind != WEFT_TP_MEM_HOST) {
    SetError(c, "ofi: reg_mem: memory kind %#x is not supported (host memory only)", kind);
    return WEFT_TP_ERR_UNSUPPORTED;
  }
  auto m = std::make_unique<Mr>();
  m->base = reinterpret_cast<uintptr_t>(addr);
  m->len = len;
  if (c->need_reg && len > 0) {
    uint64_t access = FI_SEND | FI_RECV;
    if (c->has_rma) access |= FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
    int rc = RegisterRegion(c, addr, len, access, &m->mr);
    if (rc != WEFT_TP_SUCCESS) return rc;
    m->desc = fi_mr_desc(m->mr);
    m->key = fi_mr_key(m->mr);
  }
  c->mrs.insert(m.get());
  *out = m.release();
  return WEFT_TP_SUCCESS;
}

int DeregMem(Context* c, Mr* m) {
  if (m == nullptr || c->mrs.erase(m) == 0) {
    SetError(c, "ofi: dereg_mem: unknown registration");
    return WEFT_TP_ERR_INVALID;
  }
  int rc = m->mr ? fi_close(&m->mr->fid) : 0;
  delete m;
  if (rc != 0) return Fail(c, WEFT_TP_ERR_INTERNAL, "fi_close(mr)", rc);
  return WEFT_TP_SUCCESS;
}

// The blob: magic, flags (bit 0: FI_MR_VIRT_ADDR), key, the region's base address. Peers pass
// the target's virtual address to put/get; without FI_MR_VIRT_ADDR it becomes an offset from base.
int PackRkey(Context* c, Mr* m, void* buf, size_t* len) {
  if (!c->has_rma) {
    SetError(c, "ofi: pack_rkey: provider %s has no RMA", c->prov_name.c_str());
    return WEFT_TP_ERR_UNSUPPORTED;
  }
  if (m == nullptr || len == nullptr || m->mr == nullptr || c->mrs.count(m) == 0) {
    SetError(c, "ofi: pack_rkey: bad argument or empty registration");
    return WEFT_TP_ERR_INVALID;
  }
  if (buf == nullptr || *len < kRkeyBytes) {
    SetError(c, "ofi: pack_rkey: buffer of %zu bytes, need %zu", *len, kRkeyBytes);
    *len = kRkeyBytes;
    return WEFT_TP_ERR_INVALID;
  }
  uint32_t head[2] = {kRkeyMagic, c->mr_virt ? 1u : 0u};
  uint64_t base = m->base;
  auto* b = static_cast<uint8_t*>(buf);
  memcpy(b, head, 8);
  memcpy(b + 8, &m->key, 8);
  memcpy(b + 16, &base, 8);
  *len = kRkeyBytes;
  return WEFT_TP_SUCCESS;
}

int UnpackRkey(Context* c, Peer* p, const void* buf, size_t len, void** out) {
  if (!c->has_rma) {
    SetError(c, "ofi: unpack_rkey: provider %s has no RMA", c->prov_name.c_str());
    return WEFT_TP_ERR_UNSUPPORTED;
  }
  uint32_t head[2] = {};
  if (p == nullptr || buf == nullptr || out == nullptr || len != kRkeyBytes ||
      (memcpy(head, buf, 8), head[0] != kRkeyMagic)) {
    SetError(c, "ofi: unpack_rkey: not a remote key of this plugin (%zu bytes)", len);
    return WEFT_TP_ERR_INVALID;
  }
  auto k = std::make_unique<Rkey>();
  const auto* b = static_cast<const uint8_t*>(buf);
  memcpy(&k->key, b + 8, 8);
  memcpy(&k->base, b + 16, 8);
  k->virt_addr = (head[1] & 1u) != 0;
  c->rkeys.insert(k.get());
  *out = k.release();
  return WEFT_TP_SUCCESS;
}

int ReleaseRkey(Context* c, Rkey* k) {
  if (k == nullptr || c->rkeys.erase(k) == 0) {
    SetError(c, "ofi: release_rkey: unknown remote key");
    return WEFT_TP_ERR_INVALID;
  }
  delete k;
  return WEFT_TP_SUCCESS;
}

}  // namespace weft_ofi
