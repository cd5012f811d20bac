// NodeTopology itself: device classification, the questions asked of a topology (nearest devices,
// the NUMA node of a binding) and cpulists. The readers are hwloc_reader.cc and sysfs_reader.cc,
// the choice between them discover.cc, the text and JSON forms topology_text.cc.
#include "topology/node_topology.h"

#include <unistd.h>

#include <algorithm>
#include <climits>

#include "core/run_list.h"
#include "topology/internal.h"

namespace weft::topo {

// ---- Devices ----

const char* deviceKindName(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kGpu:
      return "gpu";
    case DeviceKind::kNpu:
      return "npu";
    case DeviceKind::kAccelerator:
      return "accelerator";
    case DeviceKind::kNic:
      return "nic";
  }
  return "unknown";
}

bool classifyPciDevice(uint16_t vendorId, uint16_t classId, DeviceKind* kind) {
  constexpr uint16_t kNvidia = 0x10de, kAmd = 0x1002, kHuawei = 0x19e5;
  const unsigned base = classId >> 8;
  const bool gpuVendor = vendorId == kNvidia || vendorId == kAmd;
  if (base == 0x02 || classId == 0x0c06) {  // network controller, InfiniBand controller
    *kind = DeviceKind::kNic;
  } else if (base == 0x03 && gpuVendor) {  // VGA, 3D or other display controller
    *kind = DeviceKind::kGpu;
  } else if (base == 0x12 || (classId == 0x0b40 && gpuVendor)) {  // accelerator, co-processor
    *kind = gpuVendor             ? DeviceKind::kGpu
            : vendorId == kHuawei ? DeviceKind::kNpu
                                  : DeviceKind::kAccelerator;
  } else {
    return false;
  }
  return true;
}

const char* osDeviceTypeName(OsDeviceType type) {
  switch (type) {
    case OsDeviceType::kNetwork:
      return "network";
    case OsDeviceType::kOpenFabrics:
      return "openfabrics";
    case OsDeviceType::kGpu:
      return "gpu";
    case OsDeviceType::kCoproc:
      return "coproc";
    case OsDeviceType::kBlock:
      return "block";
    case OsDeviceType::kDma:
      return "dma";
    case OsDeviceType::kOther:
      return "other";
  }
  return "other";
}

std::vector<std::string> PciDevice::osNames() const {
  std::vector<std::string> out;
  for (const OsDevice& d : osDevices)
    out.push_back(d.name);
  return out;
}

std::string PciDevice::osName(OsDeviceType type) const {
  for (const OsDevice& d : osDevices)
    if (d.type == type) return d.name;
  return "";
}

// ---- Questions ----

const NumaNode* NodeTopology::numaNode(int osIndex) const {
  for (const NumaNode& n : numaNodes)
    if (n.osIndex == osIndex) return &n;
  return nullptr;
}

std::vector<const PciDevice*> NodeTopology::devicesOfKind(DeviceKind kind) const {
  std::vector<const PciDevice*> out;
  for (const PciDevice& d : devices)
    if (d.kind == kind) out.push_back(&d);
  return out;
}

namespace {

template <typename Pred>
const PciDevice* nearest(const std::vector<PciDevice>& devices, int numa, Pred wanted) {
  const PciDevice* first = nullptr;
  for (const PciDevice& d : devices) {
    if (!wanted(d)) continue;
    if (numa >= 0 && d.numa == numa) return &d;
    if (first == nullptr) first = &d;
  }
  return first;
}

bool isSubset(const std::vector<int>& sub, const std::vector<int>& super) {
  return std::includes(super.begin(), super.end(), sub.begin(), sub.end());
}

}  // namespace

const PciDevice* NodeTopology::nearestAccelerator(int numa) const {
  return nearest(devices, numa, [](const PciDevice& d) { return d.isAccelerator(); });
}

const PciDevice* NodeTopology::nearestNic(int numa) const {
  return nearest(devices, numa, [](const PciDevice& d) { return d.kind == DeviceKind::kNic; });
}

Status NodeTopology::setBinding(const std::string& cpulist) {
  binding = cpulist;
  boundNuma = -1;
  if (cpulist.empty()) return Status::Ok();
  auto bound = parseCpuList(cpulist);
  if (!bound.ok()) return bound.status().withContext("binding");
  if (detail::coversAll(cpus, cpulist)) return Status::Ok();  // not bound
  for (const NumaNode& n : numaNodes) {
    auto local = parseCpuList(n.cpus);
    if (local.ok() && !local->empty() && isSubset(*bound, *local)) {
      boundNuma = n.osIndex;
      break;
    }
  }
  return Status::Ok();
}

// ---- cpulists ----

namespace {

// CPU numbers above this are refused, so that a typo cannot ask for gigabytes (Linux's NR_CPUS is
// at most 8192).
constexpr unsigned kMaxCpu = 1u << 20;

// Reads a decimal number at text[*pos]; false if there is none or it exceeds kMaxCpu.
bool readCpuNumber(const std::string& text, size_t* pos, unsigned* out) {
  const size_t start = *pos;
  unsigned v = 0;
  while (*pos < text.size() && text[*pos] >= '0' && text[*pos] <= '9') {
    v = v * 10 + static_cast<unsigned>(text[*pos] - '0');
    if (v > kMaxCpu) return false;
    ++*pos;
  }
  *out = v;
  return *pos > start;
}

}  // namespace

Result<std::vector<int>> parseCpuList(const std::string& text) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos < text.size()) {
    unsigned lo = 0, hi = 0;
    bool good = readCpuNumber(text, &pos, &lo);
    hi = lo;
    if (good && pos < text.size() && text[pos] == '-') {
      ++pos;
      good = readCpuNumber(text, &pos, &hi) && hi >= lo;
    }
    if (good && pos < text.size()) good = text[pos++] == ',' && pos < text.size();
    if (!good)
      return errorStatus(weftInvalidArgument, "\"%s\" is not a CPU list (like 0-3,8)",
                         text.c_str());
    for (unsigned c = lo; c <= hi; ++c)
      out.push_back(static_cast<int>(c));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string formatCpuList(std::vector<int> cpus) {
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return runList(cpus);
}

// ---- What the readers share ----

namespace detail {

bool coversAll(const std::string& allCpus, const std::string& binding) {
  auto all = parseCpuList(allCpus);
  auto bound = parseCpuList(binding);
  return all.ok() && bound.ok() && !bound->empty() && isSubset(*all, *bound);
}

void finish(NodeTopology* topo) {
  std::sort(topo->numaNodes.begin(), topo->numaNodes.end(),
            [](const NumaNode& a, const NumaNode& b) { return a.osIndex < b.osIndex; });
  std::sort(topo->devices.begin(), topo->devices.end(),
            [](const PciDevice& a, const PciDevice& b) { return a.busId < b.busId; });
  if (topo->cpus.empty()) {
    std::vector<int> all;
    for (const NumaNode& n : topo->numaNodes)
      if (auto c = parseCpuList(n.cpus); c.ok()) all.insert(all.end(), c->begin(), c->end());
    topo->cpus = formatCpuList(all);
  }
}

std::string localHostname() {
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

}  // namespace detail

}  // namespace weft::topo
