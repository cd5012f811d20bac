// NodeTopology's text and JSON forms: summary() for logs and weft-info, toJson() for weft-info
// --json.
#include <cinttypes>

#include "topology/internal.h"
#include "topology/node_topology.h"

namespace weft::topo {

namespace {

std::string formatBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (v == static_cast<double>(static_cast<uint64_t>(v)))
    return strprintf("%" PRIu64 " %s", static_cast<uint64_t>(v), kUnits[u]);
  return strprintf("%.1f %s", v, kUnits[u]);
}

std::string plural(int n, const char* word) {
  return strprintf("%d %s%s", n, word, n == 1 ? "" : "s");
}

// Builds JSON text with two-space indentation, starting at a given depth.
class JsonText {
 public:
  explicit JsonText(int depth) : base_(depth) {}
  void beginObject() { open('{'); }
  void endObject() { close('}'); }
  void beginArray() { open('['); }
  void endArray() { close(']'); }
  JsonText& key(const char* k) {
    comma();
    str(k);
    out_ += ": ";
    pendingKey_ = true;
    return *this;
  }
  void value(const std::string& s) {
    comma();
    str(s);
  }
  void value(int64_t v) {
    comma();
    out_ += std::to_string(v);
  }
  void null() {
    comma();
    out_ += "null";
  }
  const std::string& text() const { return out_; }

 private:
  void newline() {
    out_ += '\n';
    out_.append(2 * (static_cast<size_t>(base_) + first_.size()), ' ');
  }
  void comma() {
    if (pendingKey_) {
      pendingKey_ = false;
      return;
    }
    if (first_.empty()) return;
    if (!first_.back()) out_ += ',';
    first_.back() = false;
    newline();
  }
  void open(char c) {
    comma();
    out_ += c;
    first_.push_back(true);
  }
  void close(char c) {
    const bool empty = first_.back();
    first_.pop_back();
    if (!empty) newline();
    out_ += c;
  }
  void str(const std::string& s) {
    out_ += '"';
    for (const char ch : s) {
      const auto u = static_cast<unsigned char>(ch);
      if (ch == '"' || ch == '\\') {
        out_ += '\\';
        out_ += ch;
      } else if (u < 0x20) {
        out_ += strprintf("\\u%04x", u);
      } else {
        out_ += ch;
      }
    }
    out_ += '"';
  }

  int base_;
  std::string out_;
  std::vector<bool> first_;
  bool pendingKey_ = false;
};

std::string hex4(uint16_t v) {
  return strprintf("0x%04x", v);
}

}  // namespace

std::string NodeTopology::summary() const {
  std::string s = strprintf("node %s (%s): %s, %s, %s (cpus %s), %s", hostname.c_str(),
                            source.c_str(), plural(packages, "package").c_str(),
                            plural(cores, "core").c_str(), plural(pus, "PU").c_str(), cpus.c_str(),
                            plural(static_cast<int>(numaNodes.size()), "NUMA node").c_str());
  for (const NumaNode& n : numaNodes)
    s += strprintf("\n  NUMA %d: cpus %s, %s", n.osIndex, n.cpus.empty() ? "none" : n.cpus.c_str(),
                   formatBytes(n.memoryBytes).c_str());
  if (!caches.empty()) {
    s += "\n  caches:";
    for (size_t i = 0; i < caches.size(); ++i)
      s += strprintf("%s %s %s x%d", i == 0 ? "" : ",", caches[i].name.c_str(),
                     formatBytes(caches[i].sizeBytes).c_str(), caches[i].count);
  }
  if (binding.empty())
    s += "\n  binding: unknown";
  else if (boundNuma >= 0)
    s += strprintf("\n  binding: cpus %s, inside NUMA %d", binding.c_str(), boundNuma);
  else
    s += strprintf("\n  binding: cpus %s (%s)", binding.c_str(),
                   detail::coversAll(cpus, binding) ? "unbound" : "not inside one NUMA node");
  for (const PciDevice& d : devices) {
    std::string names;
    for (const OsDevice& o : d.osDevices)
      names += (names.empty() ? ": " : ", ") + o.name;
    const std::string numa = d.numa >= 0 ? strprintf("NUMA %d", d.numa) : "NUMA unknown";
    s += strprintf("\n  %s %s [%04x:%04x] class %04x, %s%s", deviceKindName(d.kind),
                   d.busId.c_str(), d.vendorId, d.deviceId, d.classId, numa.c_str(), names.c_str());
  }
  return s;
}

std::string NodeTopology::toJson(int depth) const {
  JsonText j(depth);
  j.beginObject();
  j.key("source").value(source);
  j.key("hostname").value(hostname);
  j.key("packages").value(int64_t{packages});
  j.key("cores").value(int64_t{cores});
  j.key("pus").value(int64_t{pus});
  j.key("cpus").value(cpus);
  j.key("numa_nodes").beginArray();
  for (const NumaNode& n : numaNodes) {
    j.beginObject();
    j.key("os_index").value(int64_t{n.osIndex});
    j.key("cpus").value(n.cpus);
    j.key("memory_bytes").value(static_cast<int64_t>(n.memoryBytes));
    j.endObject();
  }
  j.endArray();
  j.key("caches").beginArray();
  for (const CacheLevel& c : caches) {
    j.beginObject();
    j.key("name").value(c.name);
    j.key("level").value(int64_t{c.level});
    j.key("size_bytes").value(static_cast<int64_t>(c.sizeBytes));
    j.key("count").value(int64_t{c.count});
    j.endObject();
  }
  j.endArray();
  if (binding.empty())
    j.key("binding").null();
  else
    j.key("binding").value(binding);
  j.key("bound_numa").value(int64_t{boundNuma});
  j.key("devices").beginArray();
  for (const PciDevice& d : devices) {
    j.beginObject();
    j.key("bus_id").value(d.busId);
    j.key("kind").value(deviceKindName(d.kind));
    j.key("vendor_id").value(hex4(d.vendorId));
    j.key("device_id").value(hex4(d.deviceId));
    j.key("class_id").value(hex4(d.classId));
    j.key("numa").value(int64_t{d.numa});
    j.key("os_devices").beginArray();
    for (const OsDevice& o : d.osDevices) {
      j.beginObject();
      j.key("name").value(o.name);
      j.key("type").value(osDeviceTypeName(o.type));
      j.endObject();
    }
    j.endArray();
    j.endObject();
  }
  j.endArray();
  j.endObject();
  return j.text();
}

}  // namespace weft::topo
