// Internal to src/topology/: the two readers behind discoverTopology and loadTopology, and what
// the files of the folder share. hwloc_reader.cc reads through hwloc (and compiles to stubs without
// it); sysfs_reader.cc reads Linux's /sys.
#pragma once

#include <string>

#include "core/status.h"
#include "topology/node_topology.h"

namespace weft::topo::detail {

// What hwloc is asked to read.
enum class HwlocInput {
  kThisSystem,  // discover this machine
  kXml,         // `arg` is the path of an XML export
  kSynthetic,   // `arg` is a synthetic description
};

// Reads a topology with hwloc, with I/O devices. When dumpPath is not empty and the topology was
// read, also exports it there as XML, and says in *dumped how that went (an error names
// WEFT_TOPO_DUMP_FILE and the path). The hwloc topology is released before it returns. Without
// hwloc: an error saying so.
Result<NodeTopology> readWithHwloc(HwlocInput input, const std::string& arg,
                                   const std::string& dumpPath, Status* dumped);

// What every reader does last: devices sorted by bus id, NUMA nodes by OS index, the cpus of the
// node derived from the NUMA nodes when the reader did not set them.
void finish(NodeTopology* topo);

// Whether a binding (cpulist) holds every PU of the node's cpulist: the process is not bound.
bool coversAll(const std::string& allCpus, const std::string& binding);

// gethostname(), "" if it fails.
std::string localHostname();

}  // namespace weft::topo::detail
