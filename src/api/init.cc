// Communicator life cycle: unique ids, init (rendezvous, host check, transport set-up), destroy and
// abort.
#include <sched.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "api/comm.h"
#include "bootstrap/bootstrap.h"
#include "core/config.h"
#include "core/log.h"
#include "topology/node_topology.h"
#include "transports/net/net_transport.h"
#include "transports/net/routed_transport.h"
#include "transports/shm/peer_memory.h"
#include "transports/shm/shm_transport.h"

using weft::errorStatus;
using weft::Status;

namespace {

// Adapts the bootstrap to the transport's out-of-band exchange.
class BootstrapOob final : public weft::OobExchange {
 public:
  explicit BootstrapOob(weft::bootstrap::Bootstrap* b) : b_(b) {}
  Status allgather(void* buf, size_t bytesPerRank) override {
    return b_->allgather(buf, bytesPerRank);
  }

 private:
  weft::bootstrap::Bootstrap* b_;
};

// What every rank publishes at init: which host it is on, and rank 0's communicator id.
struct PeerInfo {
  char host[64];     // the host name, for messages
  char hostKey[96];  // what decides which ranks share a host: WEFT_HOST_ID, or name and boot id
  // The kernel this process runs on (its boot id, or the host name where that cannot be read),
  // whatever WEFT_HOST_ID says: ranks posing as several hosts on one machine, or in containers of
  // one machine, still share its CPUs.
  char machineKey[96];
  uint64_t commId;
  int32_t pid;
  int32_t version;
  int32_t numa;      // the NUMA node this process is bound inside, -1 when none or unknown
  int32_t channels;  // WEFT_NCHANNELS, which every rank must share
  char binding[64];  // this process's CPUs (a cpulist, cut short if longer)
  char nic[32];      // the NIC nearest to its NUMA node: its interface or verbs name, or bus id
  char accel[32];    // the accelerator nearest to it: "gpu 0000:3b:00.0", ...
  // The CPUs this process may run on (sched_getaffinity, CPUs 0-1023); all zero where unknown.
  uint64_t cpuMask[16];
  // The kernel's copy on this machine (kernelCopyCost(); 0 where refused).
  double kernelCopyRatio;
  double kernelCopyCachedUsPerByte;
  double kernelCallUs;
};

// This node's topology, read once per process (tens of milliseconds with hwloc): every
// communicator of the process shares it. A failure (WEFT_TOPO_FILE unreadable) is returned to every
// init.
const weft::Result<weft::topo::NodeTopology>& nodeTopology() {
  static const weft::Result<weft::topo::NodeTopology> topo = weft::topo::discoverTopology();
  return topo;
}

std::string deviceName(const weft::topo::PciDevice* d) {
  if (d == nullptr) return "";
  using weft::topo::OsDeviceType;
  for (OsDeviceType t : {OsDeviceType::kOpenFabrics, OsDeviceType::kNetwork, OsDeviceType::kGpu,
                         OsDeviceType::kCoproc}) {
    std::string n = d->osName(t);
    if (!n.empty()) return n;
  }
  return std::string(weft::topo::deviceKindName(d->kind)) + " " + d->busId;
}

void placeInfo(const weft::topo::NodeTopology& topo, PeerInfo* info) {
  info->numa = topo.boundNuma;
  std::snprintf(info->binding, sizeof info->binding, "%s", topo.binding.c_str());
  std::snprintf(info->nic, sizeof info->nic, "%s",
                deviceName(topo.nearestNic(topo.boundNuma)).c_str());
  const weft::topo::PciDevice* acc = topo.nearestAccelerator(topo.boundNuma);
  std::snprintf(
      info->accel, sizeof info->accel, "%s",
      acc == nullptr
          ? ""
          : (std::string(weft::topo::deviceKindName(acc->kind)) + " " + acc->busId).c_str());
}

PeerInfo localInfo() {
  PeerInfo info;
  std::memset(&info, 0, sizeof info);
  gethostname(info.host, sizeof info.host - 1);
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::string id;
  boot >> id;
  std::snprintf(info.machineKey, sizeof info.machineKey, "%s:%.64s", id.empty() ? "host" : "boot",
                id.empty() ? info.host : id.c_str());
  if (weft::config::isSet("WEFT_HOST_ID")) {
    std::snprintf(info.hostKey, sizeof info.hostKey, "id:%s",
                  weft::config::stringValue("WEFT_HOST_ID").c_str());
  } else {
    std::snprintf(info.hostKey, sizeof info.hostKey, "%.54s/%.36s", info.host, id.c_str());
  }
  if (getrandom(&info.commId, sizeof info.commId, 0) != sizeof info.commId)
    info.commId = static_cast<uint64_t>(getpid()) * 0x9E3779B97F4A7C15ull ^
                  static_cast<uint64_t>(time(nullptr));
  info.pid = getpid();
  info.version = WEFT_VERSION_CODE;
  info.channels = static_cast<int32_t>(weft::config::intValue("WEFT_NCHANNELS"));
  info.numa = -1;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof cpus, &cpus) == 0)
    for (size_t c = 0; c < CPU_SETSIZE && c < 64 * std::size(info.cpuMask); ++c)
      if (CPU_ISSET(c, &cpus)) info.cpuMask[c / 64] |= uint64_t{1} << (c % 64);
  const weft::KernelCopyCost& kernel = weft::kernelCopyCost();
  info.kernelCopyRatio = kernel.ratio;
  info.kernelCopyCachedUsPerByte = kernel.cachedUsPerByte;
  info.kernelCallUs = kernel.callUs;
  return info;
}

// The ranks on one machine (one kernel, whatever hosts they pose as) and the CPUs they may run on
// together: the union of their affinity masks, or 0 where a mask is unknown.
struct MachineLoad {
  int ranks = 0;
  int cpus = 0;
  bool crowded() const { return cpus > 0 && ranks > cpus; }
};

MachineLoad machineLoad(const std::vector<PeerInfo>& infos, const PeerInfo& of) {
  MachineLoad load;
  uint64_t mask[std::size(PeerInfo{}.cpuMask)] = {};
  bool known = true;
  for (const PeerInfo& p : infos) {
    if (strncmp(p.machineKey, of.machineKey, sizeof p.machineKey) != 0) continue;
    ++load.ranks;
    bool any = false;
    for (size_t w = 0; w < std::size(mask); ++w) {
      mask[w] |= p.cpuMask[w];
      any = any || p.cpuMask[w] != 0;
    }
    known = known && any;
  }
  if (known)
    for (uint64_t w : mask)
      load.cpus += __builtin_popcountll(w);
  return load;
}

// The communicator's layout: nodes from the host keys, NUMA groups from each rank's binding.
weft::CommLayout commLayout(const std::vector<PeerInfo>& infos) {
  std::vector<std::string> keys;
  std::vector<int> numa;
  for (const PeerInfo& p : infos) {
    keys.emplace_back(p.hostKey, strnlen(p.hostKey, sizeof p.hostKey));
    numa.push_back(p.numa);
  }
  return weft::CommLayout(keys, numa);
}

// WEFT_TRANSPORT: whether shared memory carries local peers, and the network plugins to try.
struct TransportChoice {
  bool shm = true;
  std::vector<std::string> nets;
};

TransportChoice transportChoice() {
  TransportChoice c;
  if (!weft::config::isSet("WEFT_TRANSPORT")) {
    c.nets = {"ucx", "ofi"};
    return c;
  }
  c.shm = false;
  const std::string spec = weft::config::stringValue("WEFT_TRANSPORT");
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(pos, end - pos);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.find('/') == std::string::npos)
      std::transform(item.begin(), item.end(), item.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (item == "shm")
      c.shm = true;
    else if (!item.empty())
      c.nets.push_back(item);
    pos = end + 1;
  }
  return c;
}

// The transport for this rank: shared memory among the ranks of one host, a network plugin for
// the rest (or for every peer when WEFT_TRANSPORT leaves shm out). Every rank makes the same calls
// on the bootstrap, so that a plugin that fails anywhere is given up everywhere.
weft::Result<std::unique_ptr<weft::Transport>> makeTransport(int rank, int nranks,
                                                             const std::vector<PeerInfo>& infos,
                                                             const weft::CommLayout& layout,
                                                             weft::OobExchange& oob) {
  const TransportChoice choice = transportChoice();
  weft::ShmConfig shm;
  shm.dir = weft::config::stringValue("WEFT_SHM_DIR");
  shm.slotBytes = static_cast<size_t>(weft::config::intValue("WEFT_CHUNK_SIZE"));
  shm.nslots = static_cast<int>(weft::config::intValue("WEFT_SHM_NSLOTS"));
  shm.direct = weft::config::intValue("WEFT_SHM_DIRECT") != 0;
  shm.channels = static_cast<int>(weft::config::intValue("WEFT_NCHANNELS"));
  const uint64_t commId = infos[0].commId;
  const int host = layout.nodeOf(rank);
  const std::vector<int>& localRanks = layout.nodeRanks(host);
  if (choice.shm && layout.nnodes() == 1)
    return weft::createShmTransport(rank, nranks, commId, shm, oob);

  if (choice.nets.empty()) {
    int other = 0;
    while (other < nranks && layout.nodeOf(other) == host)
      ++other;
    return errorStatus(weftInvalidUsage,
                       "rank %d is on host %s and rank %d on host %s, but WEFT_TRANSPORT=%s allows "
                       "only shared memory; add a network transport (ucx or ofi)",
                       other, infos[static_cast<size_t>(other)].host, rank,
                       infos[static_cast<size_t>(rank)].host,
                       weft::config::stringValue("WEFT_TRANSPORT").c_str());
  }
  std::unique_ptr<weft::Transport> local;
  std::vector<bool> remote(static_cast<size_t>(nranks), true);
  if (choice.shm) {
    // Segment names must differ between hosts that share /dev/shm (network namespaces, or
    // WEFT_HOST_ID on one machine).
    shm.ranks = localRanks;
    weft::SubsetOob hostOob(oob, rank, nranks, localRanks);
    WEFT_ASSIGN_OR_RETURN(
        local,
        weft::createShmTransport(layout.localRank(rank), static_cast<int>(localRanks.size()),
                                 commId ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(host + 1)),
                                 shm, hostOob));
    for (int r : localRanks)
      remote[static_cast<size_t>(r)] = false;
  }
  remote[static_cast<size_t>(rank)] = false;
  weft::NetConfig net;
  net.slotBytes = shm.slotBytes;
  net.nslots = static_cast<int>(weft::config::intValue("WEFT_NET_NSLOTS"));
  net.directBytes = static_cast<uint64_t>(weft::config::intValue("WEFT_NET_DIRECT_BYTES"));
  net.channels = shm.channels;
  std::string reasons;
  for (const std::string& name : choice.nets) {
    auto t = weft::createNetTransport(name, rank, nranks, commId, remote, net, oob);
    if (t.ok()) {
      if (!local) return std::move(*t);
      return weft::makeRoutedTransport(std::move(local), localRanks, std::move(*t), nranks);
    }
    WEFT_INFO(kNet, "transport %s not used: %s", name.c_str(), t.status().message().c_str());
    reasons += weft::strprintf("\n  %s: %s", name.c_str(), t.status().message().c_str());
  }
  if (layout.nnodes() > 1)
    return errorStatus(weftSystemError,
                       "the ranks are on %d hosts and no network transport could be set up "
                       "(WEFT_TRANSPORT=%s):%s",
                       layout.nnodes(),
                       weft::config::isSet("WEFT_TRANSPORT")
                           ? weft::config::stringValue("WEFT_TRANSPORT").c_str()
                           : "unset: ucx, then ofi",
                       reasons.c_str());
  return errorStatus(weftSystemError, "WEFT_TRANSPORT=%s: no transport could be set up:%s",
                     weft::config::stringValue("WEFT_TRANSPORT").c_str(), reasons.c_str());
}

Status initRank(weftComm_t* out, int nranks, const weftUniqueId& id, int rank) {
  if (out == nullptr)
    return Status(weftInvalidArgument, "comm is NULL (pass the address of a weftComm_t)");
  *out = nullptr;
  if (nranks < 1) return errorStatus(weftInvalidArgument, "nranks %d must be at least 1", nranks);
  if (rank < 0 || rank >= nranks)
    return errorStatus(weftInvalidArgument, "rank %d is out of range for nranks %d", rank, nranks);
  WEFT_TRY(weft::config::load());
  weft::log::setThreadRank(rank);
  static std::once_flag logged;
  std::call_once(logged, [] {
    WEFT_LOG(weft::log::kVersion, weft::log::kInit, "weft version %d.%d.%d", WEFT_MAJOR, WEFT_MINOR,
             WEFT_PATCH);
    for (const std::string& line : weft::config::describeNonDefault())
      WEFT_INFO(kEnv, "%s", line.c_str());
  });

  WEFT_ASSIGN_OR_RETURN(std::unique_ptr<weft::bootstrap::Bootstrap> boot,
                        weft::bootstrap::Bootstrap::create(id, rank, nranks));
  std::vector<PeerInfo> infos(static_cast<size_t>(nranks));
  const auto& topo = nodeTopology();
  if (!topo.ok()) return topo.status();
  infos[static_cast<size_t>(rank)] = localInfo();
  placeInfo(*topo, &infos[static_cast<size_t>(rank)]);
  WEFT_TRY(boot->allgather(infos.data(), sizeof(PeerInfo)));
  for (int r = 0; r < nranks; ++r) {
    const PeerInfo& p = infos[static_cast<size_t>(r)];
    if (p.version != WEFT_VERSION_CODE)
      return errorStatus(weftInvalidUsage, "rank %d runs weft version code %d but rank %d runs %d",
                         r, p.version, rank, WEFT_VERSION_CODE);
    if (p.channels != infos[static_cast<size_t>(rank)].channels)
      return errorStatus(weftInvalidUsage,
                         "WEFT_NCHANNELS is %d on rank %d but %d on rank %d: every rank must use "
                         "the same",
                         p.channels, r, infos[static_cast<size_t>(rank)].channels, rank);
  }
  BootstrapOob oob(boot.get());
  weft::CommOptions options = weft::commOptionsFromConfig();
  options.layout = commLayout(infos);
  WEFT_ASSIGN_OR_RETURN(std::unique_ptr<weft::Transport> transport,
                        makeTransport(rank, nranks, infos, options.layout, oob));
  for (const PeerInfo& p : infos)
    options.places.push_back(
        weft::RankPlace{std::string(p.host, strnlen(p.host, sizeof p.host)), p.numa,
                        std::string(p.binding, strnlen(p.binding, sizeof p.binding)),
                        std::string(p.nic, strnlen(p.nic, sizeof p.nic)),
                        std::string(p.accel, strnlen(p.accel, sizeof p.accel))});
  // More ranks on this machine than CPUs to run them: spinning only delays the peer that shares
  // the CPU, so yield at once (as Open MPI's yield-when-idle does), unless WEFT_SPIN_US says
  // otherwise. Ranks are counted by kernel, not by weft's hosts: ranks posing as several hosts
  // (WEFT_HOST_ID, network namespaces, containers) still share this machine's CPUs.
  const MachineLoad load = machineLoad(infos, infos[static_cast<size_t>(rank)]);
  if (load.crowded() && !weft::config::isSet("WEFT_SPIN_US")) {
    options.wait.spinUs = 0;
    WEFT_INFO(kInit, "%d ranks on this machine's %d CPUs: yielding as soon as nothing moves",
              load.ranks, load.cpus);
  }
  // One price for the kernel's copy on every rank, so that all choose alike: the median of the
  // ranks' measurements (0, unknown, if any rank's kernel refused it).
  auto agreed = [&](double PeerInfo::*field) {
    std::vector<double> v;
    for (const PeerInfo& p : infos)
      v.push_back(p.*field);
    std::sort(v.begin(), v.end());
    return v.front() > 0 ? v[v.size() / 2] : 0.0;
  };
  options.kernelCopy.ratio = agreed(&PeerInfo::kernelCopyRatio);
  options.kernelCopy.cachedUsPerByte = agreed(&PeerInfo::kernelCopyCachedUsPerByte);
  options.kernelCopy.callUs = agreed(&PeerInfo::kernelCallUs);
  WEFT_ASSIGN_OR_RETURN(weftComm * comm, weft::createComm(rank, nranks, std::move(transport),
                                                          std::move(boot), options));
  // The price of a synchronisation depends most on whether the ranks spin on CPUs of their own or
  // yield to each other: measure it where they spin on one machine. Where they share CPUs the
  // built-in price stands: measured there (2.4 us on 4 ranks of 2 CPUs) it moved choices both ways
  // (docs/tuning.md). Every rank sees the same infos, so all measure or none.
  if (nranks > 1 && options.layout.nnodes() == 1 && !load.crowded()) {
    const Status s = weft::calibrateSync(comm);
    if (!s.ok()) {
      delete comm;
      return s;
    }
  }
  WEFT_INFO(kInit, "comm %p rank %d of %d ready on host %s (transport %s, id %016llx)",
            static_cast<void*>(comm), rank, nranks, infos[static_cast<size_t>(rank)].host,
            comm->transport->name(), static_cast<unsigned long long>(infos[0].commId));
  *out = comm;
  return Status::Ok();
}

int parseRankVar(const char* text, bool* ok) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  *ok = end != text && *end == '\0' && v >= 0 && v < INT32_MAX;
  return static_cast<int>(v);
}

// rank, size and the rendezvous address from the launcher's variables.
Status fromEnv(int* rank, int* size, std::string* root) {
  WEFT_TRY(weft::config::load());
  using weft::config::launcherEnv;
  const char* r = nullptr;
  const char* s = nullptr;
  const char* source = nullptr;
  std::string rv, sv;
  if (weft::config::isSet("WEFT_RANK") || weft::config::isSet("WEFT_WORLD_SIZE")) {
    if (!weft::config::isSet("WEFT_RANK") || !weft::config::isSet("WEFT_WORLD_SIZE"))
      return Status(weftInvalidArgument, "WEFT_RANK and WEFT_WORLD_SIZE must be set together");
    rv = std::to_string(weft::config::intValue("WEFT_RANK"));
    sv = std::to_string(weft::config::intValue("WEFT_WORLD_SIZE"));
    r = rv.c_str();
    s = sv.c_str();
    source = "WEFT_RANK/WEFT_WORLD_SIZE";
  } else if (launcherEnv("RANK") != nullptr && launcherEnv("WORLD_SIZE") != nullptr) {
    r = launcherEnv("RANK");
    s = launcherEnv("WORLD_SIZE");
    source = "RANK/WORLD_SIZE (torchrun)";
  } else if (launcherEnv("OMPI_COMM_WORLD_RANK") != nullptr &&
             launcherEnv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    r = launcherEnv("OMPI_COMM_WORLD_RANK");
    s = launcherEnv("OMPI_COMM_WORLD_SIZE");
    source = "OMPI_COMM_WORLD_RANK/SIZE (mpirun)";
  } else if (launcherEnv("SLURM_PROCID") != nullptr && launcherEnv("SLURM_NTASKS") != nullptr) {
    r = launcherEnv("SLURM_PROCID");
    s = launcherEnv("SLURM_NTASKS");
    source = "SLURM_PROCID/SLURM_NTASKS (srun)";
  } else {
    return Status(weftInvalidArgument,
                  "weftCommInitFromEnv found no rank: set WEFT_RANK, WEFT_WORLD_SIZE and WEFT_ROOT "
                  "(weftrun does), "
                  "or run under torchrun, mpirun or srun");
  }
  bool okR = false, okS = false;
  *rank = parseRankVar(r, &okR);
  *size = parseRankVar(s, &okS);
  if (!okR || !okS || *size < 1 || *rank >= *size)
    return errorStatus(weftInvalidArgument,
                       "%s gives rank \"%s\" of size \"%s\", which is not a valid rank", source, r,
                       s);
  if (weft::config::isSet("WEFT_ROOT")) {
    *root = weft::config::stringValue("WEFT_ROOT");
  } else if (launcherEnv("MASTER_ADDR") != nullptr && launcherEnv("MASTER_PORT") != nullptr) {
    const std::string addr = launcherEnv("MASTER_ADDR");
    *root = (addr.find(':') != std::string::npos ? "[" + addr + "]" : addr) + ":" +
            launcherEnv("MASTER_PORT");
  } else {
    return errorStatus(
        weftInvalidArgument,
        "weftCommInitFromEnv has rank %d of %d from %s but no rendezvous address: set WEFT_ROOT="
        "host:port (rank 0 listens there), or MASTER_ADDR and MASTER_PORT",
        *rank, *size, source);
  }
  return Status::Ok();
}

}  // namespace

extern "C" {

weftResult_t weftGetUniqueId(weftUniqueId* uniqueId) {
  return weft::guarded(nullptr, [&]() -> Status {
    if (uniqueId == nullptr) return Status(weftInvalidArgument, "uniqueId is NULL");
    WEFT_TRY(weft::config::load());
    return weft::bootstrap::createUniqueId(uniqueId);
  });
}

weftResult_t weftCommInitRank(weftComm_t* comm, int nranks, weftUniqueId commId, int rank) {
  return weft::guarded(nullptr, [&]() -> Status { return initRank(comm, nranks, commId, rank); });
}

weftResult_t weftCommInitFromEnv(weftComm_t* comm) {
  return weft::guarded(nullptr, [&]() -> Status {
    if (comm == nullptr)
      return Status(weftInvalidArgument, "comm is NULL (pass the address of a weftComm_t)");
    int rank = 0, size = 0;
    std::string root;
    WEFT_TRY(fromEnv(&rank, &size, &root));
    weftUniqueId id;
    WEFT_TRY(weft::bootstrap::uniqueIdFromRoot(root, size, rank == 0, &id));
    return initRank(comm, size, id, rank);
  });
}

weftResult_t weftCommDestroy(weftComm_t comm) {
  if (comm == nullptr)
    return weft::reportError(nullptr, Status(weftInvalidArgument, "comm is NULL"));
  // Outstanding requests finish first (the destructor drains the queue and joins the progress
  // thread).
  delete comm;
  return weftSuccess;
}

weftResult_t weftCommAbort(weftComm_t comm) {
  if (comm == nullptr)
    return weft::reportError(nullptr, Status(weftInvalidArgument, "comm is NULL"));
  comm->cancel.store(true);
  comm->transport->poison(
      Status(weftRemoteError, weft::strprintf("rank %d aborted the communicator", comm->rank)));
  delete comm;
  return weftSuccess;
}

}  // extern "C"
