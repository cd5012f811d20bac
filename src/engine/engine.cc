#include "engine/engine.h"

#include <sys/mman.h>

#include <cstring>

#include "core/dtype.h"
#include "core/log.h"
#include "memory/shared_alloc.h"

namespace weft {

ScratchPool::~ScratchPool() {
  release();
}

void ScratchPool::release() {
  if (base_ == nullptr) return;
  if (shared_)
    (void)freeShared(base_);
  else
    munmap(base_, bytes_);
  base_ = nullptr;
  bytes_ = 0;
}

Result<char*> ScratchPool::get(uint64_t bytes) {
  if (bytes <= bytes_) return base_;
  uint64_t want = bytes_ == 0 ? (1u << 20) : bytes_;
  while (want < bytes)
    want *= 2;
  void* p = nullptr;
  if (shared_) {
    // A segment peers map; allocShared populates it. The old one goes first, so that its
    // descriptor is likely reused and peers drop their mappings of it (ProcessPeerMemory::map).
    release();
    WEFT_ASSIGN_OR_RETURN(p, allocShared(want));
  } else {
    p = mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return sysError(errno, "cannot allocate %llu bytes of scratch memory",
                      static_cast<unsigned long long>(want));
    // Huge pages where the kernel offers them, then touch every page now rather than on the hot
    // path.
    madvise(p, want, MADV_HUGEPAGE);
    for (uint64_t off = 0; off < want; off += 4096)
      static_cast<volatile char*>(p)[off] = 0;
  }
  release();
  base_ = static_cast<char*>(p);
  bytes_ = want;
  WEFT_INFO(kAlloc, "scratch pool grown to %llu bytes%s", static_cast<unsigned long long>(want),
            shared_ ? " (shared with peers)" : "");
  return base_;
}

Engine::Engine(int rank, int nranks, Transport* transport, uint64_t chunkBytes, WaitPolicy wait)
    : rank_(rank),
      nranks_(nranks),
      transport_(transport),
      chunkBytes_(chunkBytes),
      wait_(wait),
      scratch_(transport->peerMemory() != nullptr && transport->peerMemory()->mapsShared()) {}

namespace {

// Out-of-place calls write their output with streaming stores once what all the ranks touch (every
// rank's input, output and staging slots) no longer fits the caches: on this machine class 32 MiB
// of last-level cache plus 1 MiB of L2 per core. Below that a benchmark loop, or a trainer that
// reads its result at once, finds the plainly stored lines still cached; above it they are written
// back anyway, and streaming stores save each line's read for ownership. Measured (docs/
// performance.md): on 2 ranks plain stores win with 34 MiB in all and streaming with 50; on 4
// ranks plain with 32 and streaming with 44. In place, the output lines were just read as input
// and sit in cache: plain stores win there at every size.
constexpr uint64_t kCacheBytes = 34u << 20;

// The cache key: everything a schedule depends on, per call, as raw bytes.
void appendKey(std::string* key, const OpCall& c) {
  struct {
    uint8_t type;
    uint8_t dtype;
    uint8_t op;
    uint8_t inPlace;
    uint8_t mapped;
    int32_t root;
    int32_t peer;
    uint64_t count;
    const void* algo;
  } k;
  std::memset(&k, 0, sizeof k);
  k.type = static_cast<uint8_t>(c.desc.type);
  k.dtype = static_cast<uint8_t>(c.desc.dtype);
  k.op = static_cast<uint8_t>(c.desc.op);
  k.inPlace = c.desc.inPlace ? 1 : 0;
  k.mapped = c.desc.mapped ? 1 : 0;
  k.root = c.desc.root;
  k.peer = c.desc.peer;
  k.count = c.desc.count;
  k.algo = c.algo;
  key->append(reinterpret_cast<const char*>(&k), sizeof k);
  // All-to-all-v: the per-peer arrays themselves, so that the cache tells every layout apart
  // exactly (the key is the owned copy it compares against). O(nranks) per call; the string is
  // reused, so a warm call still allocates nothing.
  if (c.desc.type == CollType::kAllToAllv) {
    const PeerLayout& v = c.desc.layout;
    const size_t n = static_cast<size_t>(c.desc.nranks) * sizeof(size_t);
    for (const size_t* a : {v.sendCounts, v.sendDispls, v.recvCounts, v.recvDispls})
      key->append(reinterpret_cast<const char*>(a), n);
  }
}

// Whether two calls have the same cache key (appendKey's fields). Never for all-to-all-v, whose
// key holds the arrays' contents.
bool sameKey(const OpCall& a, const OpCall& b) {
  return a.algo == b.algo && sameShape(a.desc, b.desc);
}

}  // namespace

Result<Engine::Cached*> Engine::planFor(std::span<const OpCall> calls) {
  if (lastWasSingle_ && calls.size() == 1 && sameKey(calls[0], lastSingle_)) return last_;
  key_.clear();
  for (const OpCall& c : calls)
    appendKey(&key_, c);
  if (last_ != nullptr && key_ == lastKey_) return last_;
  const std::string& key = key_;
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    Schedule merged;
    std::vector<uint64_t> offsets;
    uint64_t scratch = 0;
    for (size_t i = 0; i < calls.size(); ++i) {
      Schedule s;
      s.elemSize = calls[i].desc.elemSize;
      WEFT_TRY(calls[i]
                   .algo->build(calls[i].desc, &s)
                   .withContext(strprintf("building %s for %s", calls[i].algo->name,
                                          calls[i].desc.describe().c_str())));
      offsets.push_back(scratch);
      scratch += (s.scratchBytes + 63) & ~uint64_t{63};
      if (calls.size() == 1) {
        merged = std::move(s);
      } else {
        merged.append(s, static_cast<uint16_t>(i));
        merged.elemSize = 1;  // chunk boundaries stay on element boundaries of every part below
      }
    }
    if (calls.size() > 1) {
      // Chunks must split every part on its own element boundary: use the least common multiple of
      // sizes.
      uint64_t lcm = 1;
      for (const OpCall& c : calls) {
        uint64_t a = lcm, b = c.desc.elemSize;
        while (b != 0) {
          uint64_t t = a % b;
          a = b;
          b = t;
        }
        lcm = lcm / a * c.desc.elemSize;
      }
      merged.elemSize = lcm;
    }
    merged.scratchBytes = scratch;
    std::unique_ptr<WindowLayout> window;
    if (usesWindows(merged)) {
      if (transport_->peerMemory() == nullptr)
        return errorStatus(weftInvalidUsage,
                           "%s uses one-sided steps, which the %s transport cannot run",
                           calls[0].algo->name, transport_->name());
      Schedule withWindows;
      window = std::make_unique<WindowLayout>();
      WEFT_TRY(addWindowProtocol(merged, static_cast<int>(calls.size()), nranks_,
                                 transport_->peerMemory()->keyBytes(), &withWindows, window.get()));
      merged = std::move(withWindows);
    }
    WEFT_ASSIGN_OR_RETURN(Plan plan, compilePlan(merged, chunkBytes_, transport_->channels()));
    WEFT_TRACE(kColl, "new plan: %zu steps, %zu ops\n%s", merged.steps.size(), plan.ops.size(),
               merged.dump().c_str());
    std::vector<PartContext> parts(calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      const CollDesc& d = calls[i].desc;
      PartContext& p = parts[i];
      p.reduce = reduceFn(d.dtype, d.op);
      p.dtype = d.dtype;
      p.elemSize = d.elemSize;
      p.signature = d.signature();
      p.avgDivisor = d.op == weftAvg ? static_cast<uint64_t>(nranks_) : 0;
      p.streamOutput = !d.inPlace && d.footprintBytes(transport_->stagingBytes()) > kCacheBytes;
      p.perPeerCounts = d.type == CollType::kAllToAllv;
    }
    std::vector<Endpoint*> endpoints(plan.peers.size());
    for (size_t p = 0; p < plan.peers.size(); ++p) {
      WEFT_ASSIGN_OR_RETURN(endpoints[p],
                            transport_->endpoint(plan.peers[p].rank, plan.peers[p].channel));
    }
    Cached c{std::make_unique<Plan>(std::move(plan)),
             std::move(offsets),
             std::move(parts),
             std::move(window),
             {},
             {},
             std::move(endpoints)};
    if (c.window) {
      c.table.resize(c.window->tableBytes / sizeof(uint64_t));
      c.peerTables.resize(c.window->peers.size() * c.window->tableBytes);
    }
    it = cache_.emplace(key, std::move(c)).first;
  }
  lastKey_ = key;
  last_ = &it->second;
  lastWasSingle_ = calls.size() == 1;
  if (lastWasSingle_) lastSingle_ = calls[0];
  return last_;
}

// Where this rank's buffers are this call, and their keys, for the peers that reach into them.
Status Engine::fillWindowTable(std::span<const OpCall> calls, Cached* c) {
  PeerMemory* pm = transport_->peerMemory();
  char* table = reinterpret_cast<char*>(c->table.data());
  for (size_t i = 0; i < calls.size(); ++i) {
    const CollDesc& d = calls[i].desc;
    const uint64_t scratchEnd =
        i + 1 < calls.size() ? c->scratchOffsets[i + 1] : c->plan->scratchBytes;
    const uint64_t bytes[kBuffersPerPart] = {d.sendBufBytes(), d.recvBufBytes(),
                                             scratchEnd - c->scratchOffsets[i]};
    for (BufferId b = 0; b < kBuffersPerPart; ++b) {
      const char* base = args_.buffers[i * kBuffersPerPart + b];
      WindowEntry& e = *windowEntry(table, *c->window, i * kBuffersPerPart + b);
      e = WindowEntry{};
      e.addr = reinterpret_cast<uint64_t>(base);
      e.bytes = base != nullptr ? bytes[b] : 0;
      SharedSegment seg;
      if (e.bytes > 0 && findShared(base, e.bytes, &seg)) {
        e.segId = seg.id;
        e.segAddr = reinterpret_cast<uint64_t>(seg.base);
        e.segBytes = seg.bytes;
        e.segFd = seg.fd;
      }
      if (c->window->entryBytes > sizeof(WindowEntry)) {
        char* key = reinterpret_cast<char*>(&e) + sizeof(WindowEntry);
        std::memset(key, 0, c->window->entryBytes - sizeof(WindowEntry));
        if (e.bytes > 0) WEFT_TRY(pm->expose(base, e.bytes, key));
      }
    }
  }
  return Status::Ok();
}

Status Engine::run(std::span<const OpCall> calls) {
  WEFT_ASSIGN_OR_RETURN(Cached * cached, planFor(calls));
  const Plan* plan = cached->plan.get();
  const uint32_t seq = ++opSeq_;
  if (plan->ops.empty()) return Status::Ok();
  WEFT_ASSIGN_OR_RETURN(char* scratch, scratch_.get(plan->scratchBytes));

  args_.plan = plan;
  // Every part's three buffers, then (one-sided plans) the two window tables.
  const size_t nbuf = calls.size() * kBuffersPerPart + (cached->window ? 2 : 0);
  if (args_.buffers.size() != nbuf) args_.buffers.resize(nbuf);
  args_.parts = cached->parts;  // a view: the cache entry outlives the call
  for (size_t i = 0; i < calls.size(); ++i) {
    args_.buffers[i * kBuffersPerPart + kSendBuf] =
        const_cast<char*>(static_cast<const char*>(calls[i].send));
    args_.buffers[i * kBuffersPerPart + kRecvBuf] = static_cast<char*>(calls[i].recv);
    args_.buffers[i * kBuffersPerPart + kScratchBuf] = scratch + cached->scratchOffsets[i];
  }
  args_.window = cached->window.get();
  args_.peerMemory = cached->window ? transport_->peerMemory() : nullptr;
  // Whatever the call exposed or looked up is released when it ends, however it ends.
  struct EndCall {
    PeerMemory* pm;
    ~EndCall() {
      if (pm != nullptr) pm->endCall();
    }
  } endCall{args_.peerMemory};
  if (cached->window) {
    WEFT_TRY(fillWindowTable(calls, cached));
    args_.buffers[nbuf - 2] = reinterpret_cast<char*>(cached->table.data());
    args_.buffers[nbuf - 1] = cached->peerTables.data();
  }
  args_.endpoints = cached->endpoints;
  // One more operation with each peer this call exchanges messages with, over however many of its
  // channels.
  if (pairSeq_.empty()) {
    pairSeq_.assign(static_cast<size_t>(nranks_), 0);
    pairStamp_.assign(static_cast<size_t>(nranks_), 0);
  }
  if (args_.peerSeq.size() != plan->peers.size()) args_.peerSeq.resize(plan->peers.size());
  for (size_t p = 0; p < plan->peers.size(); ++p) {
    const auto r = static_cast<size_t>(plan->peers[p].rank);
    if (pairStamp_[r] != seq) {
      pairStamp_[r] = seq;
      ++pairSeq_[r];
    }
    args_.peerSeq[p] = pairSeq_[r];
  }
  args_.transport = transport_;
  args_.opSeq = seq;
  args_.rank = rank_;
  args_.describe = [](const void* ctx) {
    const auto* c = static_cast<const std::span<const OpCall>*>(ctx);
    return c->size() == 1 ? (*c)[0].desc.describe()
                          : strprintf("a group of %zu operations", c->size());
  };
  args_.describeCtx = &calls;
  args_.wait = wait_;
  return executor_.run(args_);
}

}  // namespace weft
