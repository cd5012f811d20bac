// This process's node as weft sees it: packages, NUMA nodes, cores, caches, where the process is
// bound, and the PCI devices that matter to a collective library (GPUs, NPUs and other
// accelerators, NICs) with their NUMA locality and operating-system names.
//
// Where it comes from, in order (discoverTopology):
//   WEFT_TOPO_FILE=<path>   an hwloc XML export (the file starts with '<'), or a file holding an
//                           hwloc synthetic description such as "pack:2 numa:2 core:4 pu:1"
//                           ('#' starts a comment); needs hwloc. For tests and for machines whose
//                           firmware misreports locality: the file stands for this machine.
//   hwloc discovery         when weft is built with hwloc (WEFT_HAVE_HWLOC)
//   /sys                    otherwise, or when hwloc fails: NUMA nodes, CPUs and caches from
//                           /sys/devices/system, PCI devices from /sys/bus/pci/devices
// WEFT_TOPO_DUMP_FILE=<path> ("%h" host name, "%p" pid) writes what was found as hwloc XML, which
// lstopo and WEFT_TOPO_FILE read back. It needs hwloc: without it, setting the variable is an
// error rather than a silently missing file.
//
// discoverTopology logs what it found at INFO under the GRAPH subsystem (WEFT_DEBUG=INFO
// WEFT_DEBUG_SUBSYS=GRAPH). It reads the hardware afresh on every call (tens of milliseconds with
// hwloc's I/O discovery): callers keep the result.
//
// CPU sets are Linux cpulists ("0-3,8"). A NUMA node or device locality is the NUMA node's OS
// index, -1 when unknown or when a device hangs off several NUMA nodes. The process binding is the
// calling thread's CPU affinity, the one a launcher (numactl, taskset, srun --cpu-bind) sets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace weft::topo {

// What a PCI device is to weft. GPUs: NVIDIA (0x10de) and AMD (0x1002) display/3D controllers
// (class 0x03xx) and their processing accelerators (0x12xx). NPUs: Huawei Ascend (0x19e5, class
// 0x12xx). Accelerators: any other processing accelerator (class 0x12xx). NICs: network
// controllers (0x02xx) and InfiniBand controllers (0x0c06).
enum class DeviceKind { kGpu, kNpu, kAccelerator, kNic };
const char* deviceKindName(DeviceKind kind);  // "gpu", "npu", "accelerator", "nic"
// The kind of a device of that vendor and class (class = base class and subclass, e.g. 0x0302);
// false for devices weft has no use for (storage, bridges, integrated graphics...).
bool classifyPciDevice(uint16_t vendorId, uint16_t classId, DeviceKind* kind);

// An operating-system handle of a PCI device, as hwloc's OS devices name them.
enum class OsDeviceType {
  kNetwork,      // a network interface: "eth0", "ens1f0", "ib0"
  kOpenFabrics,  // a verbs device: "mlx5_0", "hfi1_0"
  kGpu,          // "card0", "renderD128", "nvml0", "rsmi0"
  kCoproc,       // "cuda0", "opencl0d0", "ve0"
  kBlock,        // "nvme0n1"
  kDma,          // "dma0chan0"
  kOther,
};
const char* osDeviceTypeName(OsDeviceType type);  // "network", "openfabrics", ...

struct OsDevice {
  std::string name;
  OsDeviceType type = OsDeviceType::kOther;
};

struct PciDevice {
  std::string busId;  // "0000:3b:00.0"
  uint16_t vendorId = 0;
  uint16_t deviceId = 0;
  uint16_t classId = 0;  // base class and subclass: 0x0302 = 3D controller
  DeviceKind kind = DeviceKind::kNic;
  int numa = -1;  // OS index of the NUMA node the device is attached to; -1: unknown or several
  std::vector<OsDevice> osDevices;

  bool isAccelerator() const { return kind != DeviceKind::kNic; }
  std::vector<std::string> osNames() const;
  // The first OS device name of that type ("" if none): the interface for sockets, the verbs
  // device for RDMA.
  std::string osName(OsDeviceType type) const;
};

struct NumaNode {
  int osIndex = 0;
  std::string cpus;  // cpulist; empty for memory-only nodes (HBM, CXL)
  uint64_t memoryBytes = 0;
};

// One level of data (or unified) caches: L1d, L2, L3, ...
struct CacheLevel {
  int level = 0;
  std::string name;        // "L1d", "L2", "L3"
  uint64_t sizeBytes = 0;  // of one instance (the largest, where instances differ)
  int count = 0;           // instances on the node
};

struct NodeTopology {
  std::string source;    // "hwloc discovery", "WEFT_TOPO_FILE=<path>", "/sys", "file <path>"
  std::string hostname;  // this host's name (also for a topology read from a file)
  int packages = 0;
  int cores = 0;
  int pus = 0;
  std::string cpus;  // every PU, as a cpulist
  std::vector<NumaNode> numaNodes;
  std::vector<CacheLevel> caches;  // by level
  std::string binding;             // this process's CPU affinity; "" when not known
  int boundNuma = -1;  // the NUMA node the binding lies inside; -1 if unbound or spanning several
  std::vector<PciDevice> devices;  // GPUs, NPUs, accelerators, NICs, by bus id

  const NumaNode* numaNode(int osIndex) const;
  std::vector<const PciDevice*> devicesOfKind(DeviceKind kind) const;
  // The accelerator (GPU, NPU or other) or NIC nearest to a NUMA node: the first one attached to
  // that NUMA node, else the first one of the node; nullptr when there is none. Pointers into
  // `devices`.
  const PciDevice* nearestAccelerator(int numa) const;
  const PciDevice* nearestNic(int numa) const;

  // Records a binding (cpulist) and derives boundNuma from the NUMA nodes' cpusets: -1 when the
  // binding is empty, covers every PU (unbound) or is not inside a single NUMA node.
  Status setBinding(const std::string& cpulist);

  // A few human-readable lines (no trailing newline).
  std::string summary() const;
  // A JSON object. Lines after the first are indented by 2 x depth spaces plus their own nesting,
  // so that the text can follow a key of an enclosing object written at that depth.
  std::string toJson(int depth = 0) const;
};

// The node this process runs on, from WEFT_TOPO_FILE, hwloc or /sys (see the top of this file),
// with the process binding; writes WEFT_TOPO_DUMP_FILE when set. Errors name the variable and the
// file.
Result<NodeTopology> discoverTopology();
// Reads a topology file (hwloc XML or a synthetic description, told apart by the first character)
// with hwloc. The binding is left unknown. Errors name the file and hwloc's reason.
Result<NodeTopology> loadTopology(const std::string& path);
// Reads what Linux says under sysRoot (normally /sys): the fallback when weft has no hwloc, and
// testable on a fake tree. The binding is left unknown.
Result<NodeTopology> readSysfs(const std::string& sysRoot = "/sys");

// Whether this build has hwloc, and the hwloc version it was built against ("2.9.0"; "" without).
bool haveHwloc();
std::string hwlocVersion();

// Linux cpulists: "0-3,8,10-11" <-> sorted, distinct CPU numbers.
Result<std::vector<int>> parseCpuList(const std::string& text);
std::string formatCpuList(std::vector<int> cpus);

}  // namespace weft::topo
