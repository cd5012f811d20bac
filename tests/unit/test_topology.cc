// Tests of src/topology/ and of CommLayout (src/core/layout.h).
//
// Topology: the checked-in hwloc XML fixtures of tests/topology/ (made by make_fixtures.py there),
// read with loadTopology: counts, caches, every device's kind, ids, OS names and NUMA locality, the
// nearest-device answers; a synthetic description in a file; WEFT_TOPO_FILE errors (missing,
// garbage, empty) naming the variable and the path; WEFT_TOPO_DUMP_FILE written and read back;
// discovery of this machine; the /sys reader on made-up trees; the binding's NUMA node; cpulists;
// the JSON and text forms. Without hwloc the file-based tests are skipped and the errors that say
// hwloc is needed are checked instead.
//
// Layout: blocks of uneven sizes, interleaved hosts, NUMA groups, rails and leaders.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/layout.h"
#include "test_env.h"
#include "topology/node_topology.h"

namespace weft::test {
namespace {

namespace fs = std::filesystem;
using topo::DeviceKind;
using topo::NodeTopology;
using topo::OsDeviceType;
using topo::PciDevice;

const std::string kFixtures = std::string(WEFT_SOURCE_DIR) + "/tests/topology/";

// A directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/weft_topology_test.XXXXXX";
    if (mkdtemp(pattern) != nullptr) path_ = pattern;
    EXPECT_FALSE(path_.empty()) << "mkdtemp failed";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes a file (creating its directories) and returns its path.
  std::string write(const std::string& relative, const std::string& text) const {
    const fs::path p = fs::path(path_) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  void mkdir(const std::string& relative) const {
    fs::create_directories(fs::path(path_) / relative);
  }

 private:
  std::string path_;
};

NodeTopology load(const std::string& fixture) {
  auto r = topo::loadTopology(kFixtures + fixture);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : NodeTopology{};
}

const PciDevice* device(const NodeTopology& t, const std::string& busId) {
  for (const PciDevice& d : t.devices)
    if (d.busId == busId) return &d;
  ADD_FAILURE() << "no device " << busId;
  return nullptr;
}

std::string busIdOf(const PciDevice* d) {
  return d != nullptr ? d->busId : "none";
}

#define REQUIRE_HWLOC() \
  if (!topo::haveHwloc()) GTEST_SKIP() << "weft was built without hwloc"

// The hardware of two topologies (not where they came from, nor the binding) is the same.
void expectSameHardware(const NodeTopology& a, const NodeTopology& b) {
  EXPECT_EQ(a.packages, b.packages);
  EXPECT_EQ(a.cores, b.cores);
  EXPECT_EQ(a.pus, b.pus);
  EXPECT_EQ(a.cpus, b.cpus);
  ASSERT_EQ(a.numaNodes.size(), b.numaNodes.size());
  for (size_t i = 0; i < a.numaNodes.size(); ++i) {
    EXPECT_EQ(a.numaNodes[i].osIndex, b.numaNodes[i].osIndex);
    EXPECT_EQ(a.numaNodes[i].cpus, b.numaNodes[i].cpus);
    EXPECT_EQ(a.numaNodes[i].memoryBytes, b.numaNodes[i].memoryBytes);
  }
  ASSERT_EQ(a.caches.size(), b.caches.size());
  for (size_t i = 0; i < a.caches.size(); ++i) {
    EXPECT_EQ(a.caches[i].name, b.caches[i].name);
    EXPECT_EQ(a.caches[i].sizeBytes, b.caches[i].sizeBytes);
    EXPECT_EQ(a.caches[i].count, b.caches[i].count);
  }
  ASSERT_EQ(a.devices.size(), b.devices.size());
  for (size_t i = 0; i < a.devices.size(); ++i) {
    EXPECT_EQ(a.devices[i].busId, b.devices[i].busId);
    EXPECT_EQ(a.devices[i].kind, b.devices[i].kind);
    EXPECT_EQ(a.devices[i].vendorId, b.devices[i].vendorId);
    EXPECT_EQ(a.devices[i].deviceId, b.devices[i].deviceId);
    EXPECT_EQ(a.devices[i].numa, b.devices[i].numa);
    EXPECT_EQ(a.devices[i].osNames(), b.devices[i].osNames());
  }
}

// ---- Fixtures ----

TEST(TopologyFile, SingleNumaNode) {
  REQUIRE_HWLOC();
  const NodeTopology t = load("single_numa.xml");
  EXPECT_EQ(t.source, "file " + kFixtures + "single_numa.xml");
  EXPECT_FALSE(t.hostname.empty());
  EXPECT_EQ(t.packages, 1);
  EXPECT_EQ(t.cores, 4);
  EXPECT_EQ(t.pus, 8);
  EXPECT_EQ(t.cpus, "0-7");
  ASSERT_EQ(t.numaNodes.size(), 1u);
  EXPECT_EQ(t.numaNodes[0].osIndex, 0);
  EXPECT_EQ(t.numaNodes[0].cpus, "0-7");
  EXPECT_EQ(t.numaNodes[0].memoryBytes, 16ull << 30);
  ASSERT_EQ(t.caches.size(), 3u);
  EXPECT_EQ(t.caches[0].name, "L1d");
  EXPECT_EQ(t.caches[0].level, 1);
  EXPECT_EQ(t.caches[0].sizeBytes, 48u << 10);
  EXPECT_EQ(t.caches[0].count, 4);
  EXPECT_EQ(t.caches[1].name, "L2");
  EXPECT_EQ(t.caches[1].sizeBytes, 1u << 20);
  EXPECT_EQ(t.caches[1].count, 4);
  EXPECT_EQ(t.caches[2].name, "L3");
  EXPECT_EQ(t.caches[2].sizeBytes, 16u << 20);
  EXPECT_EQ(t.caches[2].count, 1);
  EXPECT_TRUE(t.devices.empty());
  EXPECT_EQ(t.nearestAccelerator(0), nullptr);
  EXPECT_EQ(t.nearestNic(0), nullptr);
  EXPECT_EQ(t.binding, "") << "loadTopology leaves the binding unknown";
  EXPECT_EQ(t.boundNuma, -1);
}

TEST(TopologyFile, TwoNumaNodesWithGpusAndNic) {
  REQUIRE_HWLOC();
  const NodeTopology t = load("two_numa_gpus_nic.xml");
  EXPECT_EQ(t.packages, 2);
  EXPECT_EQ(t.cores, 8);
  EXPECT_EQ(t.pus, 8);
  ASSERT_EQ(t.numaNodes.size(), 2u);
  EXPECT_EQ(t.numaNodes[0].cpus, "0-3");
  EXPECT_EQ(t.numaNodes[1].cpus, "4-7");
  EXPECT_EQ(t.numaNodes[1].memoryBytes, 64ull << 30);
  ASSERT_EQ(t.caches.size(), 3u);
  EXPECT_EQ(t.caches[2].count, 2);
  EXPECT_EQ(t.caches[2].sizeBytes, 32u << 20);

  // The NVMe drive is of no interest; the GPU behind a PCI bridge is found.
  ASSERT_EQ(t.devices.size(), 3u);
  const PciDevice* gpu0 = device(t, "0000:17:00.0");
  const PciDevice* gpu1 = device(t, "0000:b1:00.0");
  const PciDevice* nic = device(t, "0000:ca:00.0");
  ASSERT_TRUE(gpu0 && gpu1 && nic);
  EXPECT_EQ(gpu0->kind, DeviceKind::kGpu);
  EXPECT_EQ(gpu0->vendorId, 0x10de);
  EXPECT_EQ(gpu0->deviceId, 0x20b0);
  EXPECT_EQ(gpu0->classId, 0x0302);
  EXPECT_EQ(gpu0->numa, 0);
  EXPECT_EQ(gpu0->osNames(), (std::vector<std::string>{"card1", "cuda0"}));
  EXPECT_EQ(gpu0->osName(OsDeviceType::kCoproc), "cuda0");
  EXPECT_EQ(gpu1->kind, DeviceKind::kGpu);
  EXPECT_EQ(gpu1->numa, 1);
  EXPECT_EQ(nic->kind, DeviceKind::kNic);
  EXPECT_EQ(nic->vendorId, 0x15b3);
  EXPECT_EQ(nic->classId, 0x0207);
  EXPECT_EQ(nic->numa, 1);
  EXPECT_EQ(nic->osName(OsDeviceType::kOpenFabrics), "mlx5_0");
  EXPECT_EQ(nic->osName(OsDeviceType::kNetwork), "ib0");
  EXPECT_EQ(nic->osName(OsDeviceType::kGpu), "");
  EXPECT_EQ(t.devicesOfKind(DeviceKind::kGpu).size(), 2u);

  EXPECT_EQ(busIdOf(t.nearestAccelerator(0)), "0000:17:00.0");
  EXPECT_EQ(busIdOf(t.nearestAccelerator(1)), "0000:b1:00.0");
  EXPECT_EQ(busIdOf(t.nearestAccelerator(-1)), "0000:17:00.0") << "unknown NUMA: the first";
  EXPECT_EQ(busIdOf(t.nearestNic(1)), "0000:ca:00.0");
  EXPECT_EQ(busIdOf(t.nearestNic(0)), "0000:ca:00.0") << "none on NUMA 0: the first";
}

TEST(TopologyFile, FourNumaNodesWithNpus) {
  REQUIRE_HWLOC();
  const NodeTopology t = load("four_numa_npus.xml");
  EXPECT_EQ(t.packages, 2);
  EXPECT_EQ(t.cores, 8);
  EXPECT_EQ(t.pus, 8);
  ASSERT_EQ(t.numaNodes.size(), 4u);
  const char* cpus[] = {"0-1", "2-3", "4-5", "6-7"};
  for (int n = 0; n < 4; ++n) {
    EXPECT_EQ(t.numaNodes[static_cast<size_t>(n)].osIndex, n);
    EXPECT_EQ(t.numaNodes[static_cast<size_t>(n)].cpus, cpus[n]);
  }
  EXPECT_TRUE(t.caches.empty());

  const char* npus[] = {"0000:01:00.0", "0000:41:00.0", "0000:81:00.0", "0000:c1:00.0"};
  ASSERT_EQ(t.devicesOfKind(DeviceKind::kNpu).size(), 4u);
  for (int n = 0; n < 4; ++n) {
    const PciDevice* d = device(t, npus[n]);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->kind, DeviceKind::kNpu);
    EXPECT_EQ(d->vendorId, 0x19e5);
    EXPECT_EQ(d->classId, 0x1200);
    EXPECT_EQ(d->numa, n);
    EXPECT_TRUE(d->osDevices.empty());
    EXPECT_EQ(busIdOf(t.nearestAccelerator(n)), npus[n]);
  }
  const PciDevice* nic1 = device(t, "0000:42:00.0");
  const PciDevice* nicPkg = device(t, "0000:bd:00.0");
  ASSERT_TRUE(nic1 && nicPkg);
  EXPECT_EQ(nic1->kind, DeviceKind::kNic);
  EXPECT_EQ(nic1->vendorId, 0x19e5) << "a Huawei NIC is a NIC, not an NPU";
  EXPECT_EQ(nic1->numa, 1);
  EXPECT_EQ(nic1->osName(OsDeviceType::kNetwork), "enp66s0f0");
  EXPECT_EQ(nicPkg->numa, -1) << "attached to a package of two NUMA nodes";
  EXPECT_EQ(nicPkg->osNames(), std::vector<std::string>{"enp189s0f0"});
  EXPECT_EQ(t.devices.size(), 6u);

  EXPECT_EQ(busIdOf(t.nearestNic(1)), "0000:42:00.0");
  EXPECT_EQ(busIdOf(t.nearestNic(3)), "0000:42:00.0") << "none on NUMA 3: the first";
}

// What two_numa_gpus_nic.xml holds, written by hand: for the tests that need no hwloc.
NodeTopology twoNumaByHand() {
  NodeTopology t;
  t.source = "by hand";
  t.hostname = "h";
  t.packages = 2;
  t.cores = t.pus = 8;
  t.cpus = "0-7";
  t.numaNodes = {{0, "0-3", 64ull << 30}, {1, "4-7", 64ull << 30}};
  t.caches = {{1, "L1d", 32 << 10, 8}, {2, "L2", 1 << 20, 8}, {3, "L3", 32 << 20, 2}};
  t.devices = {{"0000:17:00.0",
                0x10de,
                0x20b0,
                0x0302,
                DeviceKind::kGpu,
                0,
                {{"card1", OsDeviceType::kGpu}, {"cuda0", OsDeviceType::kCoproc}}},
               {"0000:b1:00.0",
                0x10de,
                0x20b0,
                0x0302,
                DeviceKind::kGpu,
                1,
                {{"card2", OsDeviceType::kGpu}, {"cuda1", OsDeviceType::kCoproc}}},
               {"0000:ca:00.0",
                0x15b3,
                0x101b,
                0x0207,
                DeviceKind::kNic,
                1,
                {{"ib0", OsDeviceType::kNetwork}, {"mlx5_0", OsDeviceType::kOpenFabrics}}}};
  return t;
}

TEST(TopologyFile, FixtureMatchesTheHandMadeCopy) {
  REQUIRE_HWLOC();
  expectSameHardware(load("two_numa_gpus_nic.xml"), twoNumaByHand());
}

TEST(TopologyParts, BindingAndItsNumaNode) {
  NodeTopology t = twoNumaByHand();
  struct Case {
    const char* binding;
    int numa;
  } cases[] = {{"0-7", -1}, {"0-3", 0}, {"1,2", 0}, {"5", 1}, {"4-7", 1}, {"2-5", -1}, {"", -1}};
  for (const Case& c : cases) {
    ASSERT_TRUE(t.setBinding(c.binding).ok()) << c.binding;
    EXPECT_EQ(t.binding, c.binding);
    EXPECT_EQ(t.boundNuma, c.numa) << c.binding;
  }
  ASSERT_TRUE(t.setBinding("5").ok());
  EXPECT_NE(t.summary().find("binding: cpus 5, inside NUMA 1"), std::string::npos) << t.summary();
  ASSERT_TRUE(t.setBinding("0-7").ok());
  EXPECT_NE(t.summary().find("(unbound)"), std::string::npos) << t.summary();
  // A binding wider than the node's PUs (a file describing a smaller machine) is inside no node.
  ASSERT_TRUE(t.setBinding("0-15").ok());
  EXPECT_EQ(t.boundNuma, -1);
  EXPECT_FALSE(t.setBinding("4-x").ok());
}

TEST(TopologyFile, SyntheticDescription) {
  REQUIRE_HWLOC();
  TempDir dir;
  const std::string path =
      dir.write("synthetic.txt", "# two sockets\n  pack:2 numa:2\n core:4 pu:1  # 16 cores\n");
  auto r = topo::loadTopology(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->packages, 2);
  EXPECT_EQ(r->numaNodes.size(), 4u);
  EXPECT_EQ(r->cores, 16);
  EXPECT_EQ(r->pus, 16);
  EXPECT_EQ(r->numaNodes[3].cpus, "12-15");
  EXPECT_TRUE(r->devices.empty());

  // Through WEFT_TOPO_FILE: the source names the variable, and the binding is this process's.
  ScopedEnv file("WEFT_TOPO_FILE", path);
  ScopedEnv dump("WEFT_TOPO_DUMP_FILE", std::nullopt);
  auto d = topo::discoverTopology();
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->source, "WEFT_TOPO_FILE=" + path);
  EXPECT_EQ(d->pus, 16);
  EXPECT_FALSE(d->binding.empty());
}

// Reads WEFT_TOPO_FILE=path and returns the error message ("" if it loaded).
std::string topoFileError(const std::string& path) {
  ScopedEnv file("WEFT_TOPO_FILE", path);
  ScopedEnv dump("WEFT_TOPO_DUMP_FILE", std::nullopt);
  auto r = topo::discoverTopology();
  EXPECT_FALSE(r.ok()) << path << " loaded";
  if (r.ok()) return "";
  EXPECT_NE(r.status().message().find("WEFT_TOPO_FILE=" + path), std::string::npos)
      << r.status().message();
  return r.status().message();
}

TEST(TopologyFile, MissingFile) {
  const std::string msg = topoFileError("/nonexistent/weft/node.xml");
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  auto r = topo::loadTopology("/nonexistent/weft/node.xml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/weft/node.xml"), std::string::npos);
}

TEST(TopologyFile, GarbageFiles) {
  TempDir dir;
  // Not a synthetic description, broken XML, valid XML that is not a topology, nothing at all.
  const std::string words = dir.write("words.txt", "this is not a topology\n");
  const std::string broken = dir.write("broken.xml", "<?xml version=\"1.0\"?>\n<topology><obj");
  const std::string other = dir.write("other.xml", "<?xml version=\"1.0\"?>\n<html></html>\n");
  const std::string empty = dir.write("empty.txt", "  # only a comment\n\n");
  for (const std::string& path : {words, broken, other, empty}) {
    const std::string msg = topoFileError(path);
    if (!topo::haveHwloc() && path != empty) {
      EXPECT_NE(msg.find("hwloc"), std::string::npos) << msg;
    }
  }
  if (topo::haveHwloc()) {
    EXPECT_NE(topoFileError(words).find("synthetic description \"this is not a topology\""),
              std::string::npos);
    EXPECT_NE(topoFileError(broken).find("hwloc failed reading the XML file"), std::string::npos);
    EXPECT_NE(topoFileError(other).find("HWLOC_XML_VERBOSE=1"), std::string::npos);
  }
  EXPECT_NE(topoFileError(empty).find("is empty"), std::string::npos);
}

TEST(TopologyFile, WithoutHwlocFilesAreRefused) {
  if (topo::haveHwloc()) GTEST_SKIP() << "weft was built with hwloc";
  const std::string msg = topoFileError(kFixtures + "single_numa.xml");
  EXPECT_NE(msg.find("needs hwloc"), std::string::npos) << msg;
  ScopedEnv dump("WEFT_TOPO_DUMP_FILE", "/tmp/never-written.xml");
  auto r = topo::discoverTopology();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("WEFT_TOPO_DUMP_FILE=/tmp/never-written.xml"),
            std::string::npos);
}

// ---- Dump and reload ----

TEST(TopologyDump, FixtureRoundTrip) {
  REQUIRE_HWLOC();
  TempDir dir;
  ScopedEnv file("WEFT_TOPO_FILE", kFixtures + "two_numa_gpus_nic.xml");
  ScopedEnv dump("WEFT_TOPO_DUMP_FILE", dir.path() + "/dump-%p.xml");
  auto found = topo::discoverTopology();
  ASSERT_TRUE(found.ok()) << found.status().message();
  const std::string written = dir.path() + "/dump-" + std::to_string(getpid()) + ".xml";
  ASSERT_TRUE(fs::exists(written)) << "%p expands to the pid";
  auto reloaded = topo::loadTopology(written);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().message();
  expectSameHardware(*found, *reloaded);
  EXPECT_EQ(reloaded->devices.size(), 3u);
  // Nothing but the dump is left in the directory (no temporary file).
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

TEST(TopologyDump, LiveRoundTrip) {
  REQUIRE_HWLOC();
  TempDir dir;
  ScopedEnv file("WEFT_TOPO_FILE", std::nullopt);
  ScopedEnv dump("WEFT_TOPO_DUMP_FILE", dir.path() + "/node.xml");
  auto live = topo::discoverTopology();
  ASSERT_TRUE(live.ok()) << live.status().message();
  EXPECT_EQ(live->source, "hwloc discovery");
  auto reloaded = topo::loadTopology(dir.path() + "/node.xml");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().message();
  expectSameHardware(*live, *reloaded);
}

TEST(TopologyDump, UnwritablePathIsAnError) {
  REQUIRE_HWLOC();
  ScopedEnv file("WEFT_TOPO_FILE", kFixtures + "single_numa.xml");
  ScopedEnv dump("WEFT_TOPO_DUMP_FILE", "/nonexistent/weft/dump.xml");
  auto r = topo::discoverTopology();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("WEFT_TOPO_DUMP_FILE=/nonexistent/weft/dump.xml"),
            std::string::npos)
      << r.status().message();
}

// ---- This machine ----

void expectSane(const NodeTopology& t) {
  EXPECT_FALSE(t.hostname.empty());
  EXPECT_GE(t.pus, 1);
  EXPECT_GE(t.cores, 1);
  EXPECT_LE(t.cores, t.pus);
  EXPECT_GE(t.packages, 1);
  ASSERT_GE(t.numaNodes.size(), 1u);
  auto all = topo::parseCpuList(t.cpus);
  ASSERT_TRUE(all.ok()) << t.cpus;
  EXPECT_EQ(static_cast<int>(all->size()), t.pus);
  for (const PciDevice& d : t.devices)
    EXPECT_TRUE(d.numa == -1 || t.numaNode(d.numa) != nullptr) << d.busId << " NUMA " << d.numa;
}

TEST(TopologyLive, DiscoversThisMachine) {
  ScopedEnv file("WEFT_TOPO_FILE", std::nullopt);
  ScopedEnv dump("WEFT_TOPO_DUMP_FILE", std::nullopt);
  auto r = topo::discoverTopology();
  ASSERT_TRUE(r.ok()) << r.status().message();
  expectSane(*r);
  EXPECT_EQ(r->source, topo::haveHwloc() ? "hwloc discovery" : "/sys");
  EXPECT_FALSE(r->binding.empty());
  EXPECT_TRUE(r->boundNuma == -1 || r->numaNode(r->boundNuma) != nullptr);
  // The test runs with the affinity it was started with: normally every CPU, hence unbound.
  if (r->binding == r->cpus) {
    EXPECT_EQ(r->boundNuma, -1);
  }
  EXPECT_NE(r->summary().find(r->hostname), std::string::npos);
}

TEST(TopologyLive, SysfsAgreesWithDiscovery) {
  auto sys = topo::readSysfs("/sys");
  ASSERT_TRUE(sys.ok()) << sys.status().message();
  expectSane(*sys);
  EXPECT_EQ(sys->source, "/sys");
  ScopedEnv file("WEFT_TOPO_FILE", std::nullopt);
  auto found = topo::discoverTopology();
  ASSERT_TRUE(found.ok()) << found.status().message();
  EXPECT_EQ(sys->numaNodes.size(), found->numaNodes.size());
  EXPECT_EQ(sys->devicesOfKind(DeviceKind::kNic).size(),
            found->devicesOfKind(DeviceKind::kNic).size());
  // hwloc leaves out the CPUs a cgroup (a container's cpuset) forbids, /sys lists every one
  // online: compare the counts only where this process may use them all.
  if (found->binding == sys->cpus) {
    EXPECT_EQ(sys->pus, found->pus);
    EXPECT_EQ(sys->cpus, found->cpus);
    EXPECT_EQ(sys->cores, found->cores);
  } else {
    EXPECT_GE(sys->pus, found->pus);
  }
}

// ---- The /sys reader on made-up trees ----

void writeCpu(const TempDir& sys, int cpu, int package, int core) {
  const std::string dir = "devices/system/cpu/cpu" + std::to_string(cpu);
  sys.write(dir + "/topology/physical_package_id", std::to_string(package) + "\n");
  sys.write(dir + "/topology/core_id", std::to_string(core) + "\n");
  struct {
    const char* level;
    const char* type;
    const char* size;
    std::string shared;
  } caches[] = {{"1", "Data", "32K", std::to_string(cpu)},
                {"1", "Instruction", "32K", std::to_string(cpu)},
                {"2", "Unified", "1024K", std::to_string(cpu)},
                {"3", "Unified", "32768K", package == 0 ? "0-1" : "2-3"}};
  int i = 0;
  for (const auto& c : caches) {
    const std::string idx = dir + "/cache/index" + std::to_string(i++);
    sys.write(idx + "/level", std::string(c.level) + "\n");
    sys.write(idx + "/type", std::string(c.type) + "\n");
    sys.write(idx + "/size", std::string(c.size) + "\n");
    sys.write(idx + "/shared_cpu_list", c.shared + "\n");
  }
}

void writePci(const TempDir& sys, const std::string& bus, const char* cls, const char* vendor,
              const char* numa) {
  const std::string dir = "bus/pci/devices/" + bus;
  sys.write(dir + "/class", std::string(cls) + "\n");
  sys.write(dir + "/vendor", std::string(vendor) + "\n");
  sys.write(dir + "/device", "0x1234\n");
  sys.write(dir + "/numa_node", std::string(numa) + "\n");
}

TEST(TopologySysfs, TwoNumaNodesAndDevices) {
  TempDir sys;
  sys.write("devices/system/cpu/online", "0-3\n");
  for (int cpu = 0; cpu < 4; ++cpu)
    writeCpu(sys, cpu, cpu / 2, cpu % 2);
  sys.write("devices/system/node/node0/cpulist", "0-1\n");
  sys.write("devices/system/node/node0/meminfo",
            "Node 0 MemTotal:        1048576 kB\nNode 0 MemFree: 1 kB\n");
  sys.write("devices/system/node/node1/cpulist", "2-3\n");
  sys.write("devices/system/node/node1/meminfo", "Node 1 MemTotal:        2097152 kB\n");
  sys.write("devices/system/node/online", "0-1\n");  // not a node
  writePci(sys, "0000:17:00.0", "0x030200", "0x10de", "0");
  sys.mkdir("bus/pci/devices/0000:17:00.0/drm/card0");
  writePci(sys, "0000:ca:00.0", "0x020700", "0x15b3", "1");
  sys.mkdir("bus/pci/devices/0000:ca:00.0/net/ib0");
  sys.mkdir("bus/pci/devices/0000:ca:00.0/infiniband/mlx5_0");
  writePci(sys, "0000:00:03.0", "0x020000", "0x1af4", "-1");
  sys.mkdir("bus/pci/devices/0000:00:03.0/virtio2/net/eth0");
  writePci(sys, "0000:c1:00.0", "0x120000", "0x19e5", "1");
  writePci(sys, "0000:18:00.0", "0x010802", "0x144d", "0");  // NVMe: of no interest
  writePci(sys, "0000:00:02.0", "0x030000", "0x8086", "0");  // integrated graphics: none either

  auto r = topo::readSysfs(sys.path());
  ASSERT_TRUE(r.ok()) << r.status().message();
  const NodeTopology& t = *r;
  EXPECT_EQ(t.source, "sysfs tree " + sys.path());
  EXPECT_EQ(t.pus, 4);
  EXPECT_EQ(t.cores, 4);
  EXPECT_EQ(t.packages, 2);
  EXPECT_EQ(t.cpus, "0-3");
  ASSERT_EQ(t.numaNodes.size(), 2u);
  EXPECT_EQ(t.numaNodes[0].cpus, "0-1");
  EXPECT_EQ(t.numaNodes[0].memoryBytes, 1ull << 30);
  EXPECT_EQ(t.numaNodes[1].memoryBytes, 2ull << 30);
  ASSERT_EQ(t.caches.size(), 3u);
  EXPECT_EQ(t.caches[0].name, "L1d");
  EXPECT_EQ(t.caches[0].count, 4);
  EXPECT_EQ(t.caches[1].name, "L2");
  EXPECT_EQ(t.caches[1].sizeBytes, 1u << 20);
  EXPECT_EQ(t.caches[2].name, "L3");
  EXPECT_EQ(t.caches[2].sizeBytes, 32u << 20);
  EXPECT_EQ(t.caches[2].count, 2);

  ASSERT_EQ(t.devices.size(), 4u);
  EXPECT_EQ(t.devices[0].busId, "0000:00:03.0") << "sorted by bus id";
  EXPECT_EQ(t.devices[0].kind, DeviceKind::kNic);
  EXPECT_EQ(t.devices[0].numa, -1) << "numa_node -1 on a machine of two NUMA nodes";
  EXPECT_EQ(t.devices[0].osName(OsDeviceType::kNetwork), "eth0");
  const PciDevice* gpu = device(t, "0000:17:00.0");
  const PciDevice* nic = device(t, "0000:ca:00.0");
  const PciDevice* npu = device(t, "0000:c1:00.0");
  ASSERT_TRUE(gpu && nic && npu);
  EXPECT_EQ(gpu->kind, DeviceKind::kGpu);
  EXPECT_EQ(gpu->classId, 0x0302);
  EXPECT_EQ(gpu->deviceId, 0x1234);
  EXPECT_EQ(gpu->numa, 0);
  EXPECT_EQ(gpu->osName(OsDeviceType::kGpu), "card0");
  EXPECT_EQ(nic->numa, 1);
  EXPECT_EQ(nic->osName(OsDeviceType::kOpenFabrics), "mlx5_0");
  EXPECT_EQ(nic->osName(OsDeviceType::kNetwork), "ib0");
  EXPECT_EQ(npu->kind, DeviceKind::kNpu);
  EXPECT_EQ(npu->numa, 1);
  EXPECT_EQ(busIdOf(t.nearestNic(1)), "0000:ca:00.0");
  EXPECT_EQ(busIdOf(t.nearestNic(0)), "0000:00:03.0");
  EXPECT_EQ(busIdOf(t.nearestAccelerator(1)), "0000:c1:00.0");
}

TEST(TopologySysfs, NoNumaDirectoryIsOneNode) {
  TempDir sys;
  sys.write("devices/system/cpu/online", "0-1\n");
  writePci(sys, "0000:00:03.0", "0x020000", "0x1af4", "-1");
  sys.mkdir("bus/pci/devices/0000:00:03.0/net/eth0");
  auto r = topo::readSysfs(sys.path());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->pus, 2);
  ASSERT_EQ(r->numaNodes.size(), 1u);
  EXPECT_EQ(r->numaNodes[0].osIndex, 0);
  EXPECT_EQ(r->numaNodes[0].cpus, "0-1");
  ASSERT_EQ(r->devices.size(), 1u);
  EXPECT_EQ(r->devices[0].numa, 0) << "the only NUMA node is everyone's";
  EXPECT_EQ(r->devices[0].osNames(), std::vector<std::string>{"eth0"});
}

TEST(TopologySysfs, MissingTreeIsAnError) {
  TempDir sys;
  auto r = topo::readSysfs(sys.path());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(sys.path() + "/devices/system/cpu/online"), std::string::npos)
      << r.status().message();
}

// ---- Small parts ----

TEST(TopologyParts, CpuLists) {
  auto r = topo::parseCpuList("0-3,8,10-11");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(topo::formatCpuList(*r), "0-3,8,10-11");
  EXPECT_EQ(topo::formatCpuList({5, 1, 0, 2, 2, 7}), "0-2,5,7");
  EXPECT_EQ(topo::formatCpuList({}), "");
  EXPECT_TRUE(topo::parseCpuList("")->empty());
  EXPECT_EQ(*topo::parseCpuList("3,1-2,2"), (std::vector<int>{1, 2, 3}));
  for (const char* bad : {"3-1", "a", "1,,2", "1-", "-1", "0-3 ", "1,", "1-2-3", "99999999"})
    EXPECT_FALSE(topo::parseCpuList(bad).ok()) << bad;
}

TEST(TopologyParts, Classification) {
  struct Case {
    uint16_t vendor, cls;
    bool wanted;
    DeviceKind kind;
  } cases[] = {
      {0x10de, 0x0302, true, DeviceKind::kGpu},          // NVIDIA 3D controller
      {0x10de, 0x0300, true, DeviceKind::kGpu},          // NVIDIA VGA
      {0x1002, 0x0380, true, DeviceKind::kGpu},          // AMD Instinct (display, other)
      {0x1002, 0x1200, true, DeviceKind::kGpu},          // AMD as a processing accelerator
      {0x19e5, 0x1200, true, DeviceKind::kNpu},          // Huawei Ascend
      {0x1da3, 0x1200, true, DeviceKind::kAccelerator},  // another accelerator (Habana)
      {0x15b3, 0x0207, true, DeviceKind::kNic},          // Mellanox InfiniBand
      {0x19e5, 0x0200, true, DeviceKind::kNic},          // Huawei Ethernet
      {0x8086, 0x0c06, true, DeviceKind::kNic},          // InfiniBand serial-bus class
      {0x8086, 0x0300, false, DeviceKind::kNic},         // integrated graphics
      {0x10de, 0x0403, false, DeviceKind::kNic},         // a GPU's audio function
      {0x144d, 0x0108, false, DeviceKind::kNic},         // NVMe
      {0x10de, 0x0680, false, DeviceKind::kNic},         // NVSwitch bridge
  };
  for (const Case& c : cases) {
    DeviceKind kind = DeviceKind::kNic;
    EXPECT_EQ(topo::classifyPciDevice(c.vendor, c.cls, &kind), c.wanted)
        << std::hex << c.vendor << ":" << c.cls;
    if (c.wanted) {
      EXPECT_EQ(kind, c.kind) << std::hex << c.vendor << ":" << c.cls;
    }
  }
  EXPECT_STREQ(topo::deviceKindName(DeviceKind::kNpu), "npu");
  EXPECT_STREQ(topo::osDeviceTypeName(OsDeviceType::kOpenFabrics), "openfabrics");
}

TEST(TopologyParts, SummaryAndJson) {
  NodeTopology t = twoNumaByHand();
  const std::string s = t.summary();
  for (const char* want : {"2 packages, 8 cores, 8 PUs (cpus 0-7), 2 NUMA nodes",
                           "NUMA 1: cpus 4-7, 64 GiB", "L1d 32 KiB x8", "L3 32 MiB x2",
                           "binding: unknown", "gpu 0000:17:00.0 [10de:20b0] class 0302, NUMA 0",
                           "nic 0000:ca:00.0 [15b3:101b] class 0207, NUMA 1: ib0, mlx5_0"})
    EXPECT_NE(s.find(want), std::string::npos) << "missing \"" << want << "\" in\n" << s;

  const std::string j = t.toJson(1);
  for (const char* want :
       {"\"packages\": 2", "\"bound_numa\": -1", "\"binding\": null",
        "\"bus_id\": \"0000:ca:00.0\"", "\"kind\": \"nic\"", "\"vendor_id\": \"0x15b3\"",
        "\"class_id\": \"0x0207\"", "\"name\": \"mlx5_0\"", "\"type\": \"openfabrics\"",
        "\"memory_bytes\": 68719476736"})
    EXPECT_NE(j.find(want), std::string::npos) << "missing " << want << " in\n" << j;
  EXPECT_EQ(j.front(), '{');
  EXPECT_EQ(j.back(), '}');
  EXPECT_NE(j.find("\n    \"source\""), std::string::npos)
      << "members at depth 2 of a depth-1 object";
  EXPECT_NE(j.find("\n  }"), std::string::npos) << "closed at depth 1";
  EXPECT_EQ(std::count(j.begin(), j.end(), '{'), std::count(j.begin(), j.end(), '}'));
  EXPECT_EQ(std::count(j.begin(), j.end(), '['), std::count(j.begin(), j.end(), ']'));
  ASSERT_TRUE(t.setBinding("4-5").ok());
  EXPECT_NE(t.toJson().find("\"binding\": \"4-5\",\n  \"bound_numa\": 1"), std::string::npos);
  // Strings are escaped.
  t.hostname = "a\"b\\c\n";
  EXPECT_NE(t.toJson().find("\"hostname\": \"a\\\"b\\\\c\\u000a\""), std::string::npos);
}

// ---- CommLayout ----

TEST(Layout, UnevenBlocks) {
  const CommLayout l = CommLayout::blocks({3, 2, 4});
  EXPECT_EQ(l.nranks(), 9);
  EXPECT_EQ(l.nnodes(), 3);
  const int node[] = {0, 0, 0, 1, 1, 2, 2, 2, 2};
  const int local[] = {0, 1, 2, 0, 1, 0, 1, 2, 3};
  const int size[] = {3, 3, 3, 2, 2, 4, 4, 4, 4};
  for (int r = 0; r < 9; ++r) {
    EXPECT_EQ(l.nodeOf(r), node[r]) << r;
    EXPECT_EQ(l.localRank(r), local[r]) << r;
    EXPECT_EQ(l.localSize(r), size[r]) << r;
    EXPECT_EQ(l.numaOf(r), 0) << "NUMA unknown: one group";
  }
  EXPECT_EQ(l.nodeRanks(1), (std::vector<int>{3, 4}));
  EXPECT_EQ(l.leaderOf(2), 5);
  EXPECT_EQ(l.leaders(), (std::vector<int>{0, 3, 5}));
  EXPECT_EQ(l.rail(0), (std::vector<int>{0, 3, 5}));
  EXPECT_EQ(l.rail(1), (std::vector<int>{1, 4, 6}));
  EXPECT_EQ(l.rail(2), (std::vector<int>{2, 7})) << "the 2-rank node has no rail 2";
  EXPECT_EQ(l.rail(3), (std::vector<int>{8}));
  EXPECT_TRUE(l.rail(4).empty());
  EXPECT_EQ(l.minLocalSize(), 2);
  EXPECT_EQ(l.maxLocalSize(), 4);
  EXPECT_FALSE(l.uniform());
  EXPECT_TRUE(l.blocked());
  EXPECT_EQ(l.numaGroups(0), 1);
  EXPECT_EQ(l.describe(), "3 nodes (3+2+4 ranks)");
}

TEST(Layout, UniformAndFlat) {
  const CommLayout two = CommLayout::blocks({4, 4});
  EXPECT_TRUE(two.uniform());
  EXPECT_TRUE(two.blocked());
  EXPECT_EQ(two.describe(), "2 nodes x 4 ranks");
  EXPECT_EQ(two.rail(3), (std::vector<int>{3, 7}));
  const CommLayout one = CommLayout::flat(8);
  EXPECT_EQ(one.nnodes(), 1);
  EXPECT_EQ(one.localRank(7), 7);
  EXPECT_EQ(one.leaders(), std::vector<int>{0});
  EXPECT_EQ(one.describe(), "1 node x 8 ranks");
  EXPECT_EQ(CommLayout::flat(1).describe(), "1 node x 1 rank");
  EXPECT_EQ(CommLayout::blocks({1, 1, 1}).describe(), "3 nodes x 1 rank");
  EXPECT_EQ(CommLayout().describe(), "no ranks");
  EXPECT_EQ(CommLayout::blocks({3, 2, 4}).hash(), CommLayout::blocks({3, 2, 4}).hash());
  EXPECT_NE(CommLayout::blocks({3, 2, 4}).hash(), CommLayout::blocks({4, 2, 3}).hash());
}

TEST(Layout, InterleavedHosts) {
  // Ranks 0 and 2 on host a, 1 and 3 on host b (round-robin placement).
  const CommLayout l({"a", "b", "a", "b"}, {-1, -1, -1, -1});
  EXPECT_EQ(l.nnodes(), 2);
  EXPECT_EQ(l.nodeOf(0), 0);
  EXPECT_EQ(l.nodeOf(1), 1);
  EXPECT_EQ(l.nodeOf(2), 0);
  EXPECT_EQ(l.nodeOf(3), 1);
  EXPECT_EQ(l.localRank(2), 1);
  EXPECT_EQ(l.localRank(3), 1);
  EXPECT_EQ(l.nodeRanks(0), (std::vector<int>{0, 2}));
  EXPECT_EQ(l.nodeRanks(1), (std::vector<int>{1, 3}));
  EXPECT_EQ(l.leaders(), (std::vector<int>{0, 1}));
  EXPECT_EQ(l.rail(1), (std::vector<int>{2, 3}));
  EXPECT_TRUE(l.uniform());
  EXPECT_FALSE(l.blocked());
  EXPECT_EQ(l.describe(), "2 nodes x 2 ranks");
  EXPECT_NE(l.hash(), CommLayout::blocks({2, 2}).hash());
  // Nodes are numbered by their lowest rank, whatever the keys.
  const CommLayout m({"z", "y", "z"}, {});
  EXPECT_EQ(m.nodeOf(0), 0);
  EXPECT_EQ(m.nodeOf(1), 1);
  EXPECT_EQ(m.nodeRanks(0), (std::vector<int>{0, 2}));
}

TEST(Layout, NumaGroups) {
  // Host a: NUMA keys 1, 0, 1, unknown; host b: 3, 3.
  const CommLayout l({"a", "a", "a", "a", "b", "b"}, {1, 0, 1, -1, 3, 3});
  EXPECT_EQ(l.numaOf(0), 0) << "groups numbered in order of first appearance";
  EXPECT_EQ(l.numaOf(1), 1);
  EXPECT_EQ(l.numaOf(2), 0);
  EXPECT_EQ(l.numaOf(3), 2) << "an unknown NUMA node is a group of its own";
  EXPECT_EQ(l.numaGroups(0), 3);
  EXPECT_EQ(l.numaOf(4), 0);
  EXPECT_EQ(l.numaOf(5), 0);
  EXPECT_EQ(l.numaGroups(1), 1);
  EXPECT_TRUE(l.blocked());
  EXPECT_EQ(l.describe(), "2 nodes (4+2 ranks)");
  // NUMA placement is part of the layout's identity.
  const CommLayout same({"a", "a", "a", "a", "b", "b"}, {1, 0, 1, -1, 3, 3});
  const CommLayout other({"a", "a", "a", "a", "b", "b"}, {0, 0, 0, 0, 3, 3});
  EXPECT_EQ(l.hash(), same.hash());
  EXPECT_NE(l.hash(), other.hash());
}

}  // namespace
}  // namespace weft::test
