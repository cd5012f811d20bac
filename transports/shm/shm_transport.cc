#include "transports/shm/shm_transport.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/log.h"
#include "transports/shm/fifo.h"
#include "transports/shm/peer_memory.h"

namespace weft {
namespace {

constexpr uint64_t kMagic = 0x5745465453484d31ull;  // "WEFTSHM1"
constexpr size_t kHeaderBytes = 4096;

struct SegmentHeader {
  uint64_t magic;
  int32_t rank;
  int32_t pid;
  fifo::Doorbell bell;
  alignas(64) std::atomic<int32_t> failed;
  // Set when the rank destroys its communicator: its process may then exit without that being a
  // failure, since everything it had to send is already in its peers' FIFOs.
  std::atomic<int32_t> departed;
  int32_t failCode;
  char failMessage[1024];
  uint64_t probeAddr;  // a word in the owner's private memory, and its value: the CMA probe
  uint64_t probeValue;
};
static_assert(sizeof(SegmentHeader) <= kHeaderBytes, "segment header too large");

std::string segmentPath(const ShmConfig& cfg, uint64_t commId, int rank) {
  return strprintf("%s/weft-%016llx-%d", cfg.dir.c_str(), static_cast<unsigned long long>(commId),
                   rank);
}

bool processGone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  // A killed child that its parent has not reaped yet still answers kill(): read its state.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = std::strrchr(buf, ')');
  return close != nullptr && close[1] == ' ' && (close[2] == 'Z' || close[2] == 'X');
}

class ShmTransport final : public Transport {
 public:
  ShmTransport(int rank, int nranks, ShmConfig cfg)
      : rank_(rank),
        nranks_(nranks),
        cfg_(std::move(cfg)),
        segBytes_(shmSegmentBytes(nranks, cfg_)),
        segments_(static_cast<size_t>(nranks), nullptr),
        endpoints_(static_cast<size_t>(nranks * cfg_.channels)) {}

  ~ShmTransport() override {
    endpoints_.clear();
    if (segments_[static_cast<size_t>(rank_)] != nullptr)
      header(rank_)->departed.store(1, std::memory_order_release);
    for (char* s : segments_)
      if (s != nullptr) munmap(s, segBytes_);
    if (!ownPath_.empty()) unlink(ownPath_.c_str());  // only if set-up failed before the unlink
  }

  const char* name() const override { return "shm"; }

  Status setup(uint64_t commId, OobExchange& oob);

  int channels() const override { return cfg_.channels; }
  Result<Endpoint*> endpoint(int peer, int channel) override {
    if (peer < 0 || peer >= nranks_ || channel < 0 || channel >= cfg_.channels)
      return errorStatus(weftInternalError, "shm transport: peer %d channel %d out of range", peer,
                         channel);
    auto& ep = endpoints_[static_cast<size_t>(peer * cfg_.channels + channel)];
    if (!ep) {
      ep = std::make_unique<fifo::FifoEndpoint>(fifoIn(peer, rank_, channel),
                                                fifoIn(rank_, peer, channel), &header(peer)->bell,
                                                &header(rank_)->bell, cfg_.nslots, cfg_.slotBytes);
    }
    return static_cast<Endpoint*>(ep.get());
  }

  uint32_t prepareWait() override { return fifo::prepareSleep(&header(rank_)->bell); }
  void wait(uint32_t token, int timeoutUs) override {
    fifo::sleep(&header(rank_)->bell, token, timeoutUs);
  }
  void finishWait() override { fifo::finishSleep(&header(rank_)->bell); }

  PeerMemory* peerMemory() override { return peerMemory_.get(); }
  uint64_t stagingBytes() const override {
    return static_cast<uint64_t>(nranks_ - 1) * static_cast<uint64_t>(cfg_.channels) *
           static_cast<uint64_t>(cfg_.nslots) * cfg_.slotBytes;
  }

  void stats(std::vector<TransportStats>* out) override {
    out->push_back(fifo::endpointStats("shm", cfg_.dir, endpoints_, rank_, cfg_.channels));
  }

  Status checkPeers() override {
    for (int r = 0; r < nranks_; ++r) {
      if (r == rank_) continue;
      SegmentHeader* h = header(r);
      if (h->failed.load(std::memory_order_acquire) != 0) {
        const std::string cause(h->failMessage, strnlen(h->failMessage, sizeof h->failMessage));
        return Status(weftRemoteError, strprintf("%s (reported by rank %d)", cause.c_str(), g(r)))
            .withCause(cause);
      }
      if (h->departed.load(std::memory_order_acquire) == 0 && processGone(h->pid))
        return errorStatus(weftRemoteError,
                           "rank %d (pid %d on this host) has exited or was killed", g(r), h->pid);
    }
    return Status::Ok();
  }

  void poison(const Status& why) override {
    SegmentHeader* h = header(rank_);
    if (h->failed.load(std::memory_order_acquire) != 0) return;
    std::snprintf(h->failMessage, sizeof h->failMessage, "%s", why.message().c_str());
    h->failCode = why.code();
    h->failed.store(1, std::memory_order_release);
    for (int r = 0; r < nranks_; ++r)
      fifo::ringAlways(&header(r)->bell);
  }

 private:
  // The communicator's rank of member r, for messages.
  int g(int r) const {
    return cfg_.ranks.empty() || r < 0 ? r : cfg_.ranks[static_cast<size_t>(r)];
  }
  const std::vector<int>* names() const { return cfg_.ranks.empty() ? nullptr : &cfg_.ranks; }
  SegmentHeader* header(int r) {
    return reinterpret_cast<SegmentHeader*>(segments_[static_cast<size_t>(r)]);
  }
  // The FIFO in `owner`'s segment that `from` sends into on `channel`.
  char* fifoIn(int owner, int from, int channel) {
    return segments_[static_cast<size_t>(owner)] + kHeaderBytes +
           static_cast<size_t>(from * cfg_.channels + channel) *
               fifo::fifoBytes(cfg_.nslots, cfg_.slotBytes);
  }
  Status createOwn(uint64_t commId);
  Status mapPeer(uint64_t commId, int r);
  Status setupDirect(OobExchange& oob);

  const int rank_, nranks_;
  const ShmConfig cfg_;
  const size_t segBytes_;
  std::vector<char*> segments_;
  std::vector<std::unique_ptr<fifo::FifoEndpoint>> endpoints_;
  std::string ownPath_;
  uint64_t probe_ = 0;
  std::unique_ptr<ProcessPeerMemory> peerMemory_;
};

Status ShmTransport::createOwn(uint64_t commId) {
  struct statvfs vfs;
  if (statvfs(cfg_.dir.c_str(), &vfs) != 0)
    return sysError(errno, "WEFT_SHM_DIR=%s cannot be used for shared memory", cfg_.dir.c_str());
  const uint64_t freeBytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const uint64_t mib = 1 << 20;
  auto tooSmall = [&](uint64_t have) {
    return errorStatus(
        weftSystemError,
        "%s has %llu MiB free but rank %d needs %llu MiB for its shared-memory segment (%d ranks x "
        "%d channels x %d slots x %zu KiB); enlarge it (e.g. docker run --shm-size=1g), lower "
        "WEFT_SHM_NSLOTS, WEFT_NCHANNELS or WEFT_CHUNK_SIZE, or set WEFT_SHM_DIR to a larger "
        "tmpfs",
        cfg_.dir.c_str(), static_cast<unsigned long long>(have / mib), g(rank_),
        static_cast<unsigned long long>((segBytes_ + mib - 1) / mib), nranks_, cfg_.channels,
        cfg_.nslots, cfg_.slotBytes / 1024);
  };
  if (freeBytes < segBytes_) return tooSmall(freeBytes);

  ownPath_ = segmentPath(cfg_, commId, rank_);
  int fd = open(ownPath_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    Status s = sysError(errno, "cannot create shared-memory segment %s", ownPath_.c_str());
    ownPath_.clear();
    return s;
  }
  int err = posix_fallocate(fd, 0, static_cast<off_t>(segBytes_));
  if (err != 0) {
    close(fd);
    return err == ENOSPC ? tooSmall(freeBytes)
                         : sysError(err, "cannot size shared-memory segment %s", ownPath_.c_str());
  }
  void* p = mmap(nullptr, segBytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  err = errno;
  close(fd);
  if (p == MAP_FAILED)
    return sysError(err, "cannot map shared-memory segment %s", ownPath_.c_str());
  segments_[static_cast<size_t>(rank_)] = static_cast<char*>(p);
  auto* h = new (p) SegmentHeader();
  h->rank = rank_;
  h->pid = getpid();
  probe_ = commId ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(rank_ + 1));
  h->probeAddr = reinterpret_cast<uint64_t>(&probe_);
  h->probeValue = probe_;
  for (int from = 0; from < nranks_; ++from)
    for (int c = 0; c < cfg_.channels; ++c)
      fifo::initFifo(fifoIn(rank_, from, c));
  std::atomic_thread_fence(std::memory_order_release);
  h->magic = kMagic;
  return Status::Ok();
}

Status ShmTransport::mapPeer(uint64_t commId, int r) {
  const std::string path = segmentPath(cfg_, commId, r);
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return sysError(errno, "cannot open rank %d's shared-memory segment %s", g(r), path.c_str());
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != segBytes_) {
    close(fd);
    return errorStatus(
        weftInvalidUsage,
        "rank %d's shared-memory segment %s has another size than this rank's: the ranks were "
        "started with different WEFT_CHUNK_SIZE, WEFT_SHM_NSLOTS or WEFT_NCHANNELS",
        g(r), path.c_str());
  }
  void* p = mmap(nullptr, segBytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED)
    return sysError(err, "cannot map rank %d's shared-memory segment %s", g(r), path.c_str());
  segments_[static_cast<size_t>(r)] = static_cast<char*>(p);
  if (header(r)->magic != kMagic || header(r)->rank != r)
    return errorStatus(weftInternalError, "rank %d's shared-memory segment %s is not initialised",
                       g(r), path.c_str());
  return Status::Ok();
}

Status ShmTransport::setup(uint64_t commId, OobExchange& oob) {
  Status mine = createOwn(commId);
  WEFT_TRY(agree(oob, rank_, nranks_, mine, "creating shared-memory segments", names()));
  mine = Status::Ok();
  for (int r = 0; r < nranks_ && mine.ok(); ++r)
    if (r != rank_) mine = mapPeer(commId, r);
  Status all = agree(oob, rank_, nranks_, mine, "mapping shared-memory segments", names());
  // Every rank has mapped every segment (or set-up failed): the names are no longer needed.
  unlink(ownPath_.c_str());
  ownPath_.clear();
  WEFT_TRY(all);
  if (cfg_.direct) WEFT_TRY(setupDirect(oob));
  WEFT_INFO(kShm, "shared memory ready: %d ranks, %zu KiB segment per rank in %s (unlinked)",
            nranks_, segBytes_ / 1024, cfg_.dir.c_str());
  return Status::Ok();
}

// Every rank probes every peer with process_vm_readv; one-sided access is offered only if all
// succeed, so that every rank reaches the same verdict (the tuner's choices depend on it).
Status ShmTransport::setupDirect(OobExchange& oob) {
  struct Verdict {
    int32_t err;   // 0: this rank can read every peer
    int32_t peer;  // else the first peer it could not read
  };
  std::vector<Verdict> all(static_cast<size_t>(nranks_));
  Verdict& mine = all[static_cast<size_t>(rank_)];
  mine = {0, -1};
  std::vector<pid_t> pids(static_cast<size_t>(nranks_));
  for (int r = 0; r < nranks_; ++r) {
    SegmentHeader* h = header(r);
    pids[static_cast<size_t>(r)] = h->pid;
    int err = 0;
    if (r != rank_ && mine.err == 0 &&
        !probeCma(h->pid, reinterpret_cast<const void*>(h->probeAddr), h->probeValue, &err))
      mine = {err != 0 ? err : EIO, r};
  }
  WEFT_TRY(oob.allgather(all.data(), sizeof(Verdict)));
  for (int r = 0; r < nranks_; ++r) {
    const Verdict& v = all[static_cast<size_t>(r)];
    if (v.err != 0) {
      WEFT_INFO(kShm,
                "one-sided algorithms off: rank %d cannot read rank %d's memory with "
                "process_vm_readv (%s)",
                g(r), g(v.peer), std::strerror(v.err));
      return Status::Ok();
    }
  }
  peerMemory_ = std::make_unique<ProcessPeerMemory>(std::move(pids), true);
  WEFT_INFO(kShm, "one-sided access to peers' memory: process_vm_readv, and weftMemAlloc mappings");
  return Status::Ok();
}

}  // namespace

size_t shmSegmentBytes(int nranks, const ShmConfig& cfg) {
  return kHeaderBytes + static_cast<size_t>(nranks) * static_cast<size_t>(cfg.channels) *
                            fifo::fifoBytes(cfg.nslots, cfg.slotBytes);
}

Result<std::unique_ptr<Transport>> createShmTransport(int rank, int nranks, uint64_t commId,
                                                      const ShmConfig& cfg, OobExchange& oob) {
  auto t = std::make_unique<ShmTransport>(rank, nranks, cfg);
  WEFT_TRY(t->setup(commId, oob));
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace weft
