// The /sys reader, for builds without hwloc (and for when hwloc fails): what Linux says about this
// machine, read under a root directory so that tests can give it a made-up tree.
//
//   devices/system/cpu/online                       the PUs (a cpulist)
//   devices/system/cpu/cpuN/topology/               physical_package_id, die_id, core_id
//   devices/system/cpu/cpuN/cache/indexK/           level, type, size ("32K"), shared_cpu_list
//   devices/system/node/nodeN/cpulist, meminfo      NUMA nodes ("Node N MemTotal: X kB")
//   bus/pci/devices/<bus id>/                       class (0x020000), vendor, device, numa_node,
//                                                   net/<if>, virtio*/net/<if>, infiniband/<dev>,
//                                                   drm/<card>
// A machine without devices/system/node (a kernel without NUMA) is one NUMA node 0 holding every
// PU. A PCI device whose numa_node is -1 is local to NUMA node 0 when there is only that one, as
// hwloc reports it.
#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "topology/internal.h"

namespace weft::topo {
namespace {

// The first line of a file, trimmed; false (and errno set) when it cannot be read.
bool readLine(const std::string& path, std::string* out) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char buf[4096];
  std::string line = std::fgets(buf, sizeof buf, f) != nullptr ? buf : "";
  std::fclose(f);
  const size_t b = line.find_first_not_of(" \t\r\n");
  const size_t e = line.find_last_not_of(" \t\r\n");
  *out = b == std::string::npos ? "" : line.substr(b, e - b + 1);
  return true;
}

bool readLong(const std::string& path, long* out, int base = 10) {
  std::string text;
  if (!readLine(path, &text) || text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text.c_str(), &end, base);
  if (errno != 0 || end == text.c_str()) return false;
  *out = v;
  return true;
}

// Directory entries whose names start with `prefix`, sorted ("." and ".." never).
std::vector<std::string> listDir(const std::string& path, const char* prefix = "") {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return out;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (std::strncmp(e->d_name, prefix, std::strlen(prefix)) == 0) out.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// "32K", "1024K", "32M" -> bytes.
uint64_t parseCacheSize(const std::string& text) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  switch (end != nullptr ? *end : '\0') {
    case 'K':
      return v << 10;
    case 'M':
      return v << 20;
    case 'G':
      return v << 30;
    default:
      return v;
  }
}

void readCpus(const std::string& cpuDir, const std::vector<int>& online, NodeTopology* out) {
  std::set<long> packages;
  std::set<std::tuple<long, long, long>> cores;
  struct CacheKey {
    std::string sharedCpus;
    std::string type;
    bool operator<(const CacheKey& o) const {
      return std::tie(sharedCpus, type) < std::tie(o.sharedCpus, o.type);
    }
  };
  std::map<int, std::set<CacheKey>> instances;  // by level
  std::map<int, CacheLevel> levels;
  for (int cpu : online) {
    const std::string dir = cpuDir + "/cpu" + std::to_string(cpu);
    long pkg = -1, die = 0, core = cpu;
    (void)readLong(dir + "/topology/physical_package_id", &pkg);
    (void)readLong(dir + "/topology/die_id", &die);
    (void)readLong(dir + "/topology/core_id", &core);
    packages.insert(pkg);
    cores.insert({pkg, die, core});
    for (const std::string& index : listDir(dir + "/cache", "index")) {
      const std::string cdir = dir + "/cache/" + index;
      long level = 0;
      std::string type, size, shared;
      if (!readLong(cdir + "/level", &level) || !readLine(cdir + "/type", &type) ||
          type == "Instruction" || !readLine(cdir + "/size", &size))
        continue;
      if (!readLine(cdir + "/shared_cpu_list", &shared)) shared = std::to_string(cpu);
      CacheLevel& c = levels[static_cast<int>(level)];
      c.level = static_cast<int>(level);
      c.name = level == 1 && type == "Data" ? "L1d" : strprintf("L%ld", level);
      c.sizeBytes = std::max(c.sizeBytes, parseCacheSize(size));
      instances[c.level].insert({shared, type});
    }
  }
  out->packages = static_cast<int>(packages.size());
  out->cores = static_cast<int>(cores.size());
  for (auto& [level, c] : levels) {
    c.count = static_cast<int>(instances[level].size());
    out->caches.push_back(c);
  }
}

void readNuma(const std::string& nodeDir, const std::string& allCpus, NodeTopology* out) {
  for (const std::string& name : listDir(nodeDir, "node")) {
    char* end = nullptr;
    const long index = std::strtol(name.c_str() + 4, &end, 10);
    if (end == name.c_str() + 4 || *end != '\0') continue;  // "node0" only, not "node_foo"
    NumaNode n;
    n.osIndex = static_cast<int>(index);
    (void)readLine(nodeDir + "/" + name + "/cpulist", &n.cpus);
    std::ifstream meminfo(nodeDir + "/" + name + "/meminfo");
    std::string line;
    while (std::getline(meminfo, line)) {
      unsigned long long kb = 0;
      if (std::sscanf(line.c_str(), "Node %*d MemTotal: %llu kB", &kb) == 1) {
        n.memoryBytes = static_cast<uint64_t>(kb) << 10;
        break;
      }
    }
    out->numaNodes.push_back(n);
  }
  if (out->numaNodes.empty()) out->numaNodes.push_back({0, allCpus, 0});
}

void addOsDevices(const std::string& dir, OsDeviceType type, PciDevice* d) {
  for (const std::string& name : listDir(dir))
    d->osDevices.push_back({name, type});
}

void readPci(const std::string& pciDir, NodeTopology* out) {
  for (const std::string& bus : listDir(pciDir)) {
    const std::string dir = pciDir + "/" + bus;
    long cls = 0, vendor = 0, device = 0, numa = -1;
    if (!readLong(dir + "/class", &cls, 16) || !readLong(dir + "/vendor", &vendor, 16)) continue;
    (void)readLong(dir + "/device", &device, 16);
    PciDevice d;
    d.classId = static_cast<uint16_t>(cls >> 8);  // the file holds class, subclass, prog-if
    d.vendorId = static_cast<uint16_t>(vendor);
    d.deviceId = static_cast<uint16_t>(device);
    if (!classifyPciDevice(d.vendorId, d.classId, &d.kind)) continue;
    d.busId = bus;
    if (readLong(dir + "/numa_node", &numa) && numa >= 0)
      d.numa = static_cast<int>(numa);
    else if (out->numaNodes.size() == 1)
      d.numa = out->numaNodes.front().osIndex;
    addOsDevices(dir + "/infiniband", OsDeviceType::kOpenFabrics, &d);
    addOsDevices(dir + "/net", OsDeviceType::kNetwork, &d);
    for (const std::string& virtio : listDir(dir, "virtio"))
      addOsDevices(dir + "/" + virtio + "/net", OsDeviceType::kNetwork, &d);
    addOsDevices(dir + "/drm", OsDeviceType::kGpu, &d);
    out->devices.push_back(std::move(d));
  }
}

}  // namespace

Result<NodeTopology> readSysfs(const std::string& sysRoot) {
  NodeTopology out;
  out.source = sysRoot == "/sys" ? "/sys" : "sysfs tree " + sysRoot;
  out.hostname = detail::localHostname();
  const std::string cpuDir = sysRoot + "/devices/system/cpu";
  std::string online;
  if (!readLine(cpuDir + "/online", &online))
    return sysError(errno, "cannot read %s/online", cpuDir.c_str());
  auto cpus = parseCpuList(online);
  if (!cpus.ok() || cpus->empty())
    return errorStatus(weftSystemError, "%s/online holds \"%s\", not a list of CPUs",
                       cpuDir.c_str(), online.c_str());
  out.pus = static_cast<int>(cpus->size());
  out.cpus = formatCpuList(*cpus);
  readCpus(cpuDir, *cpus, &out);
  readNuma(sysRoot + "/devices/system/node", out.cpus, &out);
  readPci(sysRoot + "/bus/pci/devices", &out);
  detail::finish(&out);
  return out;
}

}  // namespace weft::topo
