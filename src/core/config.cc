#include "core/config.h"

#include <strings.h>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "core/log.h"

extern char** environ;

namespace weft::config {
namespace {

// The table. Keep docs/environment.md in step (a test compares the two).
const std::vector<Param> kParams = {
    // Logging
    {"WEFT_DEBUG", Type::kEnum, "WARN", "NONE|VERSION|WARN|INFO|TRACE",
     "How much to log: NONE, VERSION (the version at init), WARN, INFO, TRACE (debug builds)."},
    {"WEFT_DEBUG_SUBSYS", Type::kString, "INIT,BOOTSTRAP,ENV,SHM",
     "comma list of INIT,COLL,P2P,SHM,BOOTSTRAP,ENV,ALLOC,TUNING,NET,GRAPH,ALL; ^ excludes",
     "Subsystems logged at INFO and TRACE. A leading ^ logs all but the listed ones."},
    {"WEFT_DEBUG_FILE", Type::kString, "", "path; %h = host name, %p = pid",
     "Write the log to this file instead of stderr."},
    // Launch and bootstrap
    {"WEFT_RANK", Type::kInt, "", "0..2147483646",
     "This process's rank, for weftCommInitFromEnv (set by weftrun)."},
    {"WEFT_WORLD_SIZE", Type::kInt, "", "1..2147483647",
     "Number of ranks, for weftCommInitFromEnv (set by weftrun)."},
    {"WEFT_LOCAL_RANK", Type::kInt, "", "0..2147483646",
     "Rank among the processes on this host (set by weftrun; informative)."},
    {"WEFT_LOCAL_SIZE", Type::kInt, "", "1..2147483647",
     "Number of ranks on this host (set by weftrun; informative)."},
    {"WEFT_ROOT", Type::kString, "", "host:port or [ipv6]:port",
     "Rendezvous address for weftCommInitFromEnv; rank 0 listens there. Falls back to "
     "MASTER_ADDR:MASTER_PORT."},
    {"WEFT_SOCKET_IFNAME", Type::kString, "", "prefix list; =exact; ^exclude",
     "Network interfaces the bootstrap may use, in NCCL's grammar (eth, =eth0, ^docker). By "
     "default the "
     "first interface that is up, skipping loopback and docker bridges, then loopback."},
    {"WEFT_CONNECT_TIMEOUT", Type::kSeconds, "120", "seconds > 0 (suffix ms, s, m)",
     "Bound on every bootstrap wait (rendezvous, connections, out-of-band exchanges); the error "
     "names "
     "the ranks that did not arrive."},
    // Execution
    {"WEFT_TIMEOUT", Type::kSeconds, "300", "seconds > 0 (suffix ms, s, m)",
     "Bound on how long a collective waits without progress before it fails naming the peer it "
     "waits "
     "for. A dead local peer is reported sooner, when it is seen to be gone."},
    {"WEFT_CHUNK_SIZE", Type::kBytes, "128K", "bytes, 4K..16M (suffix K, M)",
     "Pipelining unit: the size of one shared-memory slot and of one step in flight."},
    {"WEFT_NCHANNELS", Type::kInt, "1", "1..16",
     "Channels per peer: every step longer than one chunk is split into up to this many "
     "contiguous slices, each with its own slots and message order and, over a network plugin "
     "that allows it (ucx), its own connection. Worth raising where one connection is the limit "
     "(a TCP stream, a NIC queue); on shared memory channels only add FIFOs, since one thread per "
     "rank does the copies. Every rank must use the same value."},
    {"WEFT_SHM_NSLOTS", Type::kInt, "8", "2..64",
     "Slots per shared-memory connection: how many chunks may be in flight to one peer."},
    {"WEFT_SHM_DIR", Type::kString, "/dev/shm", "directory on a tmpfs",
     "Where shared-memory segments are created (they are unlinked once every local rank has mapped "
     "them)."},
    {"WEFT_SHM_DIRECT", Type::kBool, "1", "0 or 1",
     "Lets ranks on one host read and write each other's buffers directly (process_vm_readv, and "
     "mappings of weftMemAlloc memory) so that one-sided algorithms can run; 0 keeps to "
     "message passing through shared-memory slots."},
    {"WEFT_TRANSPORT", Type::kString, "", "list of shm, ucx, ofi, example or plugin paths",
     "Transports in order of preference. Unset: shared memory between ranks of one host and the "
     "first network plugin that loads (ucx, then ofi) between hosts. A list without shm sends "
     "every peer, local ones included, through the first network plugin that loads; shm alone "
     "refuses ranks on several hosts."},
    {"WEFT_NET_NSLOTS", Type::kInt, "8", "2..64",
     "Slots per network connection and direction: how many chunks may be in flight to one peer "
     "through a network plugin."},
    {"WEFT_NET_DIRECT_BYTES", Type::kBytes, "256K", "0 (never), or bytes (suffix K, M, G)",
     "Steps of at least this size go through a network plugin as one whole transfer, straight "
     "from the sender's buffer into the receiver's (one rendezvous, no copies through slots); "
     "smaller ones are cut into chunks and staged in slots. The sender decides, so ranks may "
     "differ."},
    {"WEFT_UCX_ERROR_MODE", Type::kEnum, "AUTO", "AUTO|PEER|GUARD",
     "How the ucx plugin notices a dead peer (any case). peer: UCX's peer error handling on the "
     "endpoints "
     "that carry data (over tcp it costs UCX 1.13 about 30% of its bandwidth). guard: data "
     "endpoints without it, and a second endpoint per peer, with it, that only watches the peer. "
     "auto: guard over tcp, peer over RDMA (where an endpoint without error handling may abort "
     "the process when its peer dies)."},
    {"WEFT_OFI_PROVIDER", Type::kString, "", "libfabric provider name, e.g. tcp;ofi_rxm, shm",
     "The libfabric provider the ofi plugin uses (FI_PROVIDER also works). Unset: the first "
     "provider with reliable tagged messages, skipping sockets and udp."},
    {"WEFT_OFI_DOMAIN", Type::kString, "", "libfabric domain name, e.g. lo, eth0, mlx5_0",
     "Restricts the ofi plugin to one libfabric domain (for tcp, an interface); unset: the "
     "provider's first."},
    {"WEFT_TOPO_FILE", Type::kString, "", "path to an hwloc XML export or synthetic description",
     "Describes this node from a file instead of discovering it: an hwloc XML export (lstopo "
     "node.xml, or what WEFT_TOPO_DUMP_FILE wrote) or, when the file does not start with <, an "
     "hwloc synthetic description such as pack:2 numa:2 core:4 pu:1. For tests and for machines "
     "whose firmware misreports locality. Needs hwloc; a file that cannot be read is an error "
     "naming it and hwloc's reason."},
    {"WEFT_TOPO_DUMP_FILE", Type::kString, "", "path; %h = host name, %p = pid",
     "Writes the node topology weft found (discovered or read from WEFT_TOPO_FILE) to this file "
     "as hwloc XML, which lstopo and WEFT_TOPO_FILE read back. Needs hwloc: without it, setting "
     "the variable is an error."},
    {"WEFT_HOST_ID", Type::kString, "", "any string",
     "This process's host identity, overriding host name and boot id: ranks with the same value "
     "share memory, others talk through a network transport (tests pose as several nodes)."},
    {"WEFT_SPIN_US", Type::kInt, "50", "0..1000000",
     "Microseconds a waiting rank polls before it starts yielding the CPU. When unset and a "
     "machine has more ranks than CPUs, 0: every poll that finds nothing yields the CPU, since "
     "spinning there only delays the peer that shares it. "
     "Ranks are counted per kernel (boot id), so ranks posing as several hosts on one machine "
     "(WEFT_HOST_ID, network namespaces, containers) count together."},
    {"WEFT_YIELD_US", Type::kInt, "500", "0..1000000",
     "Microseconds a waiting rank yields before it sleeps until woken."},
    {"WEFT_ALGO", Type::kString, "", "[coll:][lo-hi:][^]algo[,algo];... (see docs/tuning.md)",
     "Restricts the algorithms per collective and per size range of the per-rank message (count x "
     "element size, [lo, hi), K/M/G suffixes, inf), in NCCL 2.24's grammar, e.g. "
     "allreduce:0-64K:recursive_doubling,64K-inf:ring;broadcast:tree. Several algorithms: the "
     "tuner chooses among them; ^ excludes; sizes no range covers are left to the tuner. "
     "hier(intra=ALGO,inter=ALGO) picks the levels of a hierarchical algorithm, e.g. "
     "allreduce:hier(intra=ring,inter=recursive_doubling). Names are case-insensitive; an unknown "
     "name is an error."},
    {"WEFT_TUNE_FILE", Type::kString, "", "path to a tuning file (docs/tuning.md)",
     "Cost-model constants (and optional algorithm preferences) measured by weft-tune, read when "
     "a communicator is created; a bad file is an error naming the file, the line and the key."},
};

const char* const kLauncherVars[] = {
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "LOCAL_WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
};

struct Value {
  bool set = false;
  std::string raw;
  int64_t i = 0;
  double d = 0;
  std::string s;
};

std::mutex gMu;
bool gLoaded = false;
Status gLoadStatus;
std::map<std::string, Value> gValues;

Result<int64_t> parseInt(const std::string& text) {
  if (text.empty()) return Status(weftInvalidArgument, "empty");
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0')
    return Status(weftInvalidArgument, "not an integer");
  return static_cast<int64_t>(v);
}

bool parseRange(const char* accepted, int64_t* lo, int64_t* hi) {
  long long a = 0, b = 0;
  if (std::sscanf(accepted, "%lld..%lld", &a, &b) != 2) return false;
  *lo = a;
  *hi = b;
  return true;
}

std::string upper(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

Status badValue(const Param& p, const std::string& raw, const std::string& why) {
  return errorStatus(weftInvalidArgument, "%s=\"%s\" is not valid (%s); accepted: %s", p.name,
                     raw.c_str(), why.c_str(), p.accepted);
}

Status parseValue(const Param& p, const std::string& raw, Value* v) {
  v->raw = raw;
  switch (p.type) {
    case Type::kInt: {
      auto r = parseInt(raw);
      if (!r.ok()) return badValue(p, raw, r.status().message());
      int64_t lo = 0, hi = 0;
      if (parseRange(p.accepted, &lo, &hi) && (*r < lo || *r > hi))
        return badValue(p, raw, "out of range");
      v->i = *r;
      return Status::Ok();
    }
    case Type::kBytes: {
      auto r = parseBytes(raw);
      if (!r.ok()) return badValue(p, raw, r.status().message());
      v->i = *r;
      if (std::strcmp(p.name, "WEFT_CHUNK_SIZE") == 0 && (*r < 4096 || *r > (16 << 20)))
        return badValue(p, raw, "out of range");
      return Status::Ok();
    }
    case Type::kSeconds: {
      auto r = parseSeconds(raw);
      if (!r.ok()) return badValue(p, raw, r.status().message());
      if (!(*r > 0)) return badValue(p, raw, "must be positive");
      v->d = *r;
      return Status::Ok();
    }
    case Type::kBool: {
      std::string u = upper(raw);
      if (u == "1" || u == "TRUE" || u == "YES" || u == "ON")
        v->i = 1;
      else if (u == "0" || u == "FALSE" || u == "NO" || u == "OFF")
        v->i = 0;
      else
        return badValue(p, raw, "not a boolean");
      return Status::Ok();
    }
    case Type::kEnum: {
      std::string u = upper(raw);
      std::string acc = p.accepted;
      size_t pos = 0;
      while (pos <= acc.size()) {
        size_t bar = acc.find('|', pos);
        if (bar == std::string::npos) bar = acc.size();
        if (acc.compare(pos, bar - pos, u) == 0 && !u.empty()) {
          v->s = u;
          return Status::Ok();
        }
        pos = bar + 1;
      }
      return badValue(p, raw, "unknown value");
    }
    case Type::kString:
      v->s = raw;
      if (std::strcmp(p.name, "WEFT_DEBUG_SUBSYS") == 0) {
        uint32_t mask = 0;
        const char* bad = nullptr;
        int badLen = 0;
        if (!log::parseSubsys(raw.c_str(), &mask, &bad, &badLen))
          return badValue(
              p, raw,
              "unknown subsystem \"" + std::string(bad, static_cast<size_t>(badLen)) + "\"");
      }
      return Status::Ok();
  }
  return Status::Ok();
}

Status loadLocked() {
  gValues.clear();
  Status first;
  for (const Param& p : kParams) {
    Value v;
    const char* env = std::getenv(p.name);  // the one place WEFT_* variables are read
    if (env != nullptr) v.set = true;
    std::string raw = env != nullptr ? env : p.defaultValue;
    if (!raw.empty()) {
      Status s = parseValue(p, raw, &v);
      if (!s.ok()) {
        if (first.ok()) first = s;
        // Fall back to the default so the rest of weft still has a sane value.
        Value def;
        if (p.defaultValue[0] != '\0') (void)parseValue(p, p.defaultValue, &def);
        def.set = v.set;
        def.raw = raw;
        v = def;
      }
    }
    gValues[p.name] = v;
  }
  return first;
}

// A copy, taken under the lock: reload() may rebuild the map from another thread.
Value valueOf(const char* name) {
  (void)load();
  std::lock_guard<std::mutex> lock(gMu);
  auto it = gValues.find(name);
  if (it == gValues.end()) {
    std::fprintf(stderr, "weft: internal error: setting %s is not in the table\n", name);
    std::abort();
  }
  return it->second;
}

}  // namespace

const std::vector<Param>& params() {
  return kParams;
}

const Param* find(const std::string& name) {
  for (const Param& p : kParams)
    if (name == p.name) return &p;
  return nullptr;
}

Status load() {
  std::lock_guard<std::mutex> lock(gMu);
  if (!gLoaded) {
    gLoadStatus = loadLocked();
    gLoaded = true;
  }
  return gLoadStatus;
}

Status reload() {
  {
    std::lock_guard<std::mutex> lock(gMu);
    gLoadStatus = loadLocked();
    gLoaded = true;
  }
  log::reconfigure();
  return gLoadStatus;
}

int64_t intValue(const char* name) {
  return valueOf(name).i;
}
double secondsValue(const char* name) {
  return valueOf(name).d;
}
std::string stringValue(const char* name) {
  return valueOf(name).s;
}
bool isSet(const char* name) {
  return valueOf(name).set;
}

Result<int64_t> parseBytes(const std::string& text) {
  if (text.empty()) return Status(weftInvalidArgument, "empty");
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || text[0] == '-')
    return Status(weftInvalidArgument, "not a byte count");
  std::string suffix = upper(end);
  unsigned shift = 0;
  if (suffix.empty() || suffix == "B")
    shift = 0;
  else if (suffix == "K" || suffix == "KB" || suffix == "KIB")
    shift = 10;
  else if (suffix == "M" || suffix == "MB" || suffix == "MIB")
    shift = 20;
  else if (suffix == "G" || suffix == "GB" || suffix == "GIB")
    shift = 30;
  else
    return Status(weftInvalidArgument, "unknown suffix \"" + std::string(end) + "\"");
  if (shift != 0 && v > (~0ull >> (shift + 1))) return Status(weftInvalidArgument, "too large");
  return static_cast<int64_t>(v << shift);
}

Result<double> parseSeconds(const std::string& text) {
  if (text.empty()) return Status(weftInvalidArgument, "empty");
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end == text.c_str() || !std::isfinite(v))
    return Status(weftInvalidArgument, "not a duration");
  std::string suffix = end;
  if (suffix.empty() || suffix == "s") return v;
  if (suffix == "ms") return v / 1000.0;
  if (suffix == "m" || suffix == "min") return v * 60.0;
  return Status(weftInvalidArgument, "unknown unit \"" + suffix + "\"");
}

const char* launcherEnv(const char* name) {
  for (const char* known : kLauncherVars)
    if (std::strcmp(known, name) == 0) return std::getenv(name);
  std::fprintf(stderr, "weft: internal error: launcher variable %s is not in the list\n", name);
  std::abort();
}

std::vector<std::string> describeNonDefault() {
  (void)load();
  std::vector<std::string> out;
  for (const Param& p : kParams) {
    const Value v = valueOf(p.name);
    if (v.set)
      out.push_back(strprintf("%s=%s (default \"%s\")", p.name, v.raw.c_str(), p.defaultValue));
  }
  // Unknown WEFT_* names are probably typos: say so.
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, "WEFT_", 5) != 0) continue;
    const char* eq = std::strchr(*e, '=');
    std::string name(*e, eq != nullptr ? static_cast<size_t>(eq - *e) : std::strlen(*e));
    if (find(name) == nullptr) out.push_back(name + " is not a weft setting and is ignored");
  }
  return out;
}

}  // namespace weft::config
