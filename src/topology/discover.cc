// discoverTopology and loadTopology: which source describes this node (WEFT_TOPO_FILE, hwloc
// discovery, /sys), WEFT_TOPO_DUMP_FILE, the process binding, and the log of what was found.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "core/config.h"
#include "core/log.h"
#include "topology/internal.h"
#include "topology/node_topology.h"

namespace weft::topo {
namespace {

// The calling thread's CPU affinity as a cpulist; "" if it cannot be read.
std::string currentBinding() {
  for (int ncpus = 1024; ncpus <= (1 << 22); ncpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpus);
    if (set == nullptr) return "";
    const size_t size = CPU_ALLOC_SIZE(ncpus);
    if (sched_getaffinity(0, size, set) == 0) {
      std::vector<int> cpus;
      for (int c = 0; c < ncpus; ++c)
        if (CPU_ISSET_S(c, size, set)) cpus.push_back(c);
      CPU_FREE(set);
      return formatCpuList(cpus);
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) return "";  // EINVAL: the kernel's mask is larger; try a larger set
  }
  return "";
}

// WEFT_TOPO_DUMP_FILE's "%h" (host name), "%p" (pid) and "%%".
std::string expandPath(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%' || i + 1 == pattern.size()) {
      out += pattern[i];
      continue;
    }
    const char c = pattern[++i];
    if (c == 'h')
      out += detail::localHostname();
    else if (c == 'p')
      out += std::to_string(getpid());
    else if (c == '%')
      out += '%';
    else
      out.append({'%', c});
  }
  return out;
}

// A synthetic description from a file's text: '#' comments dropped, whitespace collapsed.
std::string syntheticDescription(const std::string& text) {
  std::string out;
  bool comment = false, space = false;
  for (const char c : text) {
    if (c == '\n') comment = false;
    if (comment || c == '#') {
      comment = true;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// Reads a topology file; `label` starts every error message ("WEFT_TOPO_FILE=/x", "topology file
// /x").
Result<NodeTopology> loadFile(const std::string& path, const std::string& dumpPath,
                              const std::string& label) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return sysError(errno, "%s cannot be read", label.c_str());
  // A synthetic description is a line; an XML export may be megabytes, and hwloc reads it.
  constexpr size_t kMaxSynthetic = 64 * 1024;
  std::string text;
  char buf[4096];
  size_t n = 0;
  bool xml = false;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= kMaxSynthetic) {
    text.append(buf, n);
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '<') {
      xml = true;
      break;
    }
  }
  const bool readError = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (readError) return sysError(err, "%s cannot be read", label.c_str());
  if (!xml && text.size() > kMaxSynthetic)
    return errorStatus(weftInvalidArgument,
                       "%s is neither hwloc XML (it does not start with '<') nor a synthetic "
                       "description (it is longer than %zu bytes)",
                       label.c_str(), kMaxSynthetic);
  const std::string synthetic = xml ? "" : syntheticDescription(text);
  if (!xml && synthetic.empty())
    return errorStatus(weftInvalidArgument, "%s is empty", label.c_str());
  Status dumped;
  auto r = detail::readWithHwloc(xml ? detail::HwlocInput::kXml : detail::HwlocInput::kSynthetic,
                                 xml ? path : synthetic, dumpPath, &dumped);
  if (!r.ok())
    return r.status().withContext(xml ? label
                                      : label + " (synthetic description \"" + synthetic + "\")");
  WEFT_TRY(dumped);
  return r;
}

}  // namespace

Result<NodeTopology> loadTopology(const std::string& path) {
  WEFT_ASSIGN_OR_RETURN(NodeTopology topo, loadFile(path, "", "topology file " + path));
  topo.source = "file " + path;
  return topo;
}

Result<NodeTopology> discoverTopology() {
  const std::string file = config::stringValue("WEFT_TOPO_FILE");
  const std::string dumpSetting = config::stringValue("WEFT_TOPO_DUMP_FILE");
  const std::string dump = expandPath(dumpSetting);
  if (!dump.empty() && !haveHwloc())
    return errorStatus(weftInvalidArgument,
                       "WEFT_TOPO_DUMP_FILE=%s: writing a topology needs hwloc, and this build of "
                       "weft has none; unset the variable",
                       dumpSetting.c_str());
  NodeTopology topo;
  if (!file.empty()) {
    WEFT_ASSIGN_OR_RETURN(topo, loadFile(file, dump, "WEFT_TOPO_FILE=" + file));
    topo.source = "WEFT_TOPO_FILE=" + file;
  } else if (haveHwloc()) {
    Status dumped;
    auto r = detail::readWithHwloc(detail::HwlocInput::kThisSystem, "", dump, &dumped);
    if (r.ok()) {
      WEFT_TRY(dumped);
      topo = std::move(r).value();
      topo.source = "hwloc discovery";
    } else {
      if (!dump.empty())
        return r.status().withContext("WEFT_TOPO_DUMP_FILE=" + dumpSetting + " not written");
      WEFT_WARN(kGraph, "%s; reading /sys instead", r.status().message().c_str());
      WEFT_ASSIGN_OR_RETURN(topo, readSysfs("/sys"));
    }
  } else {
    WEFT_ASSIGN_OR_RETURN(topo, readSysfs("/sys"));
  }
  WEFT_TRY(topo.setBinding(currentBinding()));
  if (log::enabled(log::kInfo, log::kGraph)) {
    const std::string text = topo.summary();
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t end = std::min(text.find('\n', pos), text.size());
      WEFT_INFO(kGraph, "%s", text.substr(pos, end - pos).c_str());
      pos = end + 1;
    }
  }
  if (!dump.empty()) WEFT_INFO(kGraph, "topology written to %s", dump.c_str());
  return topo;
}

}  // namespace weft::topo
