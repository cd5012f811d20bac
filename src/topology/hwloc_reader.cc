// The hwloc reader: discovery of this machine, or an XML export or synthetic description, read into
// a NodeTopology. I/O devices are kept at hwloc's "important" level (GPUs, NICs, accelerators,
// storage, and the bridges above them); a PCI device's locality is the nodeset of its first non-I/O
// ancestor (a Package, a Group, or the Machine). Without hwloc this file compiles to stubs.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "topology/internal.h"

#if defined(WEFT_HAVE_HWLOC)
#include <hwloc.h>
#endif

namespace weft::topo {

#if defined(WEFT_HAVE_HWLOC)

namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using TopologyPtr = std::unique_ptr<hwloc_topology, TopologyDeleter>;

// hwloc components weft keeps out of discovery: the device-runtime ones would start CUDA, OpenCL or
// Level Zero inside the application (or reach an X server), and "pci" goes through libpciaccess,
// which leaks on every discovery; hwloc's linux component reads the same PCI devices from sysfs.
const char* const kSkippedComponents[] = {"cuda", "opencl", "levelzero", "gl", "pci"};

// hwloc's reason for the last failure: its errno, when it set one.
std::string reason(int err) {
  return err != 0 ? strprintf("%s (errno %d)", std::strerror(err), err) : "no reason given";
}

std::string cpulistOf(hwloc_const_bitmap_t set) {
  if (set == nullptr || hwloc_bitmap_iszero(set)) return "";
  char* text = nullptr;
  if (hwloc_bitmap_list_asprintf(&text, set) < 0 || text == nullptr) return "";
  std::string out = text;
  std::free(text);
  return out;
}

int countOf(hwloc_topology_t t, hwloc_obj_type_t type) {
  const int n = hwloc_get_nbobjs_by_type(t, type);
  return n > 0 ? n : 0;
}

// The NUMA node a non-CPU object hangs off: the only node of its first non-I/O ancestor, or -1.
int localityOf(hwloc_topology_t t, hwloc_obj_t obj) {
  hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(t, obj);
  if (anc == nullptr || anc->nodeset == nullptr || hwloc_bitmap_weight(anc->nodeset) != 1)
    return -1;
  return hwloc_bitmap_first(anc->nodeset);
}

OsDeviceType osDeviceType(hwloc_obj_osdev_type_t type) {
  switch (type) {
    case HWLOC_OBJ_OSDEV_NETWORK:
      return OsDeviceType::kNetwork;
    case HWLOC_OBJ_OSDEV_OPENFABRICS:
      return OsDeviceType::kOpenFabrics;
    case HWLOC_OBJ_OSDEV_GPU:
      return OsDeviceType::kGpu;
    case HWLOC_OBJ_OSDEV_COPROC:
      return OsDeviceType::kCoproc;
    case HWLOC_OBJ_OSDEV_BLOCK:
      return OsDeviceType::kBlock;
    case HWLOC_OBJ_OSDEV_DMA:
      return OsDeviceType::kDma;
  }
  return OsDeviceType::kOther;
}

void readCaches(hwloc_topology_t t, NodeTopology* out) {
  static const hwloc_obj_type_t kLevels[] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE,
                                             HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L4CACHE,
                                             HWLOC_OBJ_L5CACHE};
  for (hwloc_obj_type_t type : kLevels) {
    CacheLevel c;
    bool data = false;
    for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_obj_by_type(t, type, o)) != nullptr;) {
      if (o->attr->cache.type == HWLOC_OBJ_CACHE_INSTRUCTION) continue;
      c.level = static_cast<int>(o->attr->cache.depth);
      data = data || o->attr->cache.type == HWLOC_OBJ_CACHE_DATA;
      c.sizeBytes = std::max<uint64_t>(c.sizeBytes, o->attr->cache.size);
      ++c.count;
    }
    if (c.count == 0) continue;
    c.name = c.level == 1 && data ? "L1d" : strprintf("L%d", c.level);
    out->caches.push_back(c);
  }
}

void readDevices(hwloc_topology_t t, NodeTopology* out) {
  for (hwloc_obj_t o = nullptr; (o = hwloc_get_next_pcidev(t, o)) != nullptr;) {
    const auto& pci = o->attr->pcidev;
    PciDevice d;
    if (!classifyPciDevice(pci.vendor_id, pci.class_id, &d.kind)) continue;
    d.busId = strprintf("%04x:%02x:%02x.%x", static_cast<unsigned>(pci.domain),
                        static_cast<unsigned>(pci.bus), static_cast<unsigned>(pci.dev),
                        static_cast<unsigned>(pci.func));
    d.vendorId = pci.vendor_id;
    d.deviceId = pci.device_id;
    d.classId = pci.class_id;
    d.numa = localityOf(t, o);
    // OS devices are I/O children of their PCI device.
    for (hwloc_obj_t c = o->io_first_child; c != nullptr; c = c->next_sibling)
      if (c->type == HWLOC_OBJ_OS_DEVICE && c->name != nullptr)
        d.osDevices.push_back({c->name, osDeviceType(c->attr->osdev.type)});
    out->devices.push_back(std::move(d));
  }
}

NodeTopology extract(hwloc_topology_t t) {
  NodeTopology out;
  out.hostname = detail::localHostname();
  out.packages = countOf(t, HWLOC_OBJ_PACKAGE);
  out.cores = countOf(t, HWLOC_OBJ_CORE);
  out.pus = countOf(t, HWLOC_OBJ_PU);
  out.cpus = cpulistOf(hwloc_topology_get_topology_cpuset(t));
  for (hwloc_obj_t o = nullptr;
       (o = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, o)) != nullptr;)
    out.numaNodes.push_back({static_cast<int>(o->os_index), cpulistOf(o->cpuset),
                             static_cast<uint64_t>(o->attr->numanode.local_memory)});
  readCaches(t, &out);
  readDevices(t, &out);
  return out;
}

// Exports to a temporary name beside the target and renames it, so that ranks of one node dumping
// to the same path never leave a torn file.
Status exportXml(hwloc_topology_t t, const std::string& path) {
  const std::string tmp = strprintf("%s.tmp.%ld", path.c_str(), static_cast<long>(getpid()));
  errno = 0;
  if (hwloc_topology_export_xml(t, tmp.c_str(), 0) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return errorStatus(weftSystemError, "WEFT_TOPO_DUMP_FILE=%s: hwloc could not write it: %s",
                       path.c_str(), reason(err).c_str());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return errorStatus(weftSystemError, "WEFT_TOPO_DUMP_FILE=%s: %s", path.c_str(),
                       reason(err).c_str());
  }
  return Status::Ok();
}

}  // namespace

namespace detail {

Result<NodeTopology> readWithHwloc(HwlocInput input, const std::string& arg,
                                   const std::string& dumpPath, Status* dumped) {
  *dumped = Status::Ok();
  // The ABI of the hwloc that runs must be the one weft was compiled against.
  const unsigned runtime = hwloc_get_api_version();
  if ((runtime >> 16) != (HWLOC_API_VERSION >> 16))
    return errorStatus(weftSystemError,
                       "weft was built against hwloc API 0x%x but runs with hwloc API 0x%x",
                       static_cast<unsigned>(HWLOC_API_VERSION), runtime);
  const char* what = input == HwlocInput::kThisSystem ? "discovering this machine"
                     : input == HwlocInput::kXml      ? "reading the XML file"
                                                      : "reading the synthetic description";
  hwloc_topology_t raw = nullptr;
  errno = 0;
  if (hwloc_topology_init(&raw) != 0)
    return errorStatus(weftSystemError, "hwloc_topology_init failed: %s", reason(errno).c_str());
  TopologyPtr topo(raw);  // destroyed on every path from here on
  errno = 0;
  int rc = hwloc_topology_set_io_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (rc == 0) {
    switch (input) {
      case HwlocInput::kThisSystem:
        rc = hwloc_topology_set_flags(raw, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM);
        // Components that would initialise device runtimes inside the application (CUDA, OpenCL,
        // Level Zero) or talk to an X server, for OS device names weft does not use. Best effort:
        // a component this hwloc lacks is no error.
        for (const char* name : kSkippedComponents)
          (void)hwloc_topology_set_components(raw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, name);
        break;
      case HwlocInput::kXml:
        rc = hwloc_topology_set_xml(raw, arg.c_str());
        break;
      case HwlocInput::kSynthetic:
        rc = hwloc_topology_set_synthetic(raw, arg.c_str());
        break;
    }
  }
  if (rc == 0) rc = hwloc_topology_load(raw);
  if (rc != 0) {
    const int err = errno;
    const char* hint = input == HwlocInput::kXml ? "; HWLOC_XML_VERBOSE=1 prints hwloc's reasons"
                       : input == HwlocInput::kSynthetic
                           ? "; HWLOC_SYNTHETIC_VERBOSE=1 prints hwloc's reasons"
                           : "";
    return errorStatus(weftSystemError, "hwloc failed %s: %s%s", what, reason(err).c_str(), hint);
  }
  NodeTopology out = extract(raw);
  if (out.pus == 0 || out.numaNodes.empty())
    return errorStatus(weftSystemError, "hwloc found %d PUs and %zu NUMA nodes %s", out.pus,
                       out.numaNodes.size(), what);
  if (!dumpPath.empty()) *dumped = exportXml(raw, dumpPath);
  finish(&out);
  return out;
}

}  // namespace detail

bool haveHwloc() {
  return true;
}

std::string hwlocVersion() {
  return HWLOC_VERSION;
}

#else  // !WEFT_HAVE_HWLOC

namespace detail {

Result<NodeTopology> readWithHwloc(HwlocInput, const std::string&, const std::string&,
                                   Status* dumped) {
  *dumped = Status::Ok();
  return errorStatus(weftInvalidArgument,
                     "this needs hwloc, and this build of weft has none (install hwloc's "
                     "development package and rebuild)");
}

}  // namespace detail

bool haveHwloc() {
  return false;
}

std::string hwlocVersion() {
  return "";
}

#endif

}  // namespace weft::topo
