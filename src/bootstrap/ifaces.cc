// Choosing the bootstrap's local address from the host's interfaces and WEFT_SOCKET_IFNAME: see
// ifaces.h.
#include "bootstrap/ifaces.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>

#include "core/config.h"
#include "core/log.h"

namespace weft::bootstrap {
namespace {

struct Spec {
  bool exclude = false;
  bool exact = false;
  std::vector<std::string> names;
};

Spec parseSpec(const std::string& text) {
  Spec s;
  size_t pos = 0;
  if (pos < text.size() && text[pos] == '^') {
    s.exclude = true;
    ++pos;
  }
  if (pos < text.size() && text[pos] == '=') {
    s.exact = true;
    ++pos;
  }
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    if (comma > pos) s.names.push_back(text.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return s;
}

bool listed(const Spec& s, const std::string& name) {
  for (const std::string& n : s.names)
    if (s.exact ? name == n : name.compare(0, n.size(), n) == 0) return true;
  return false;
}

// The first IPv4 address among the interfaces, else the first IPv6 address that is not link-local.
const SocketAddress* firstUsable(const std::vector<const Interface*>& ifaces) {
  for (int family : {AF_INET, AF_INET6})
    for (const Interface* i : ifaces)
      for (const SocketAddress& a : i->addresses)
        if (a.family() == family && !a.isLinkLocal()) return &a;
  return nullptr;
}

}  // namespace

bool matchIfname(const std::string& spec, const std::string& name) {
  if (spec.empty()) return true;
  Spec s = parseSpec(spec);
  return listed(s, name) != s.exclude;
}

Result<std::vector<Interface>> listInterfaces() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return sysError(errno, "getifaddrs() listing network interfaces");
  std::vector<Interface> out;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_name == nullptr) continue;
    Interface* entry = nullptr;
    for (Interface& i : out)
      if (i.name == ifa->ifa_name) entry = &i;
    if (entry == nullptr) {
      out.push_back(Interface{ifa->ifa_name, false, false, {}});
      entry = &out.back();
    }
    entry->up = entry->up || (ifa->ifa_flags & IFF_UP) != 0;
    entry->loopback = entry->loopback || (ifa->ifa_flags & IFF_LOOPBACK) != 0;
    if (ifa->ifa_addr == nullptr) continue;
    socklen_t len =
        ifa->ifa_addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    SocketAddress a = SocketAddress::fromSockaddr(ifa->ifa_addr, len);
    if (a.valid()) entry->addresses.push_back(a.withPort(0));
  }
  freeifaddrs(list);
  return out;
}

std::string describeInterfaces(const std::vector<Interface>& ifaces) {
  std::string out;
  for (const Interface& i : ifaces) {
    if (!out.empty()) out += ", ";
    out += i.name + " (";
    std::string inner = i.up ? "" : "down";
    if (i.addresses.empty()) inner += inner.empty() ? "no address" : ", no address";
    for (const SocketAddress& a : i.addresses)
      inner += (inner.empty() ? "" : ", ") + a.hostString();
    out += inner + ")";
  }
  return out.empty() ? "(none)" : out;
}

Result<SocketAddress> pickLocalAddress(const std::string& spec,
                                       const std::vector<Interface>& ifaces) {
  std::vector<const Interface*> allowed, allowedLoopback;
  bool anyNameMatched = false;
  for (const Interface& i : ifaces) {
    bool ok = spec.empty() ? !i.loopback && i.name != "lo" && i.name.rfind("docker", 0) != 0
                           : matchIfname(spec, i.name);
    if (!ok) continue;
    anyNameMatched = true;
    if (i.up) (i.loopback ? allowedLoopback : allowed).push_back(&i);
  }
  if (const SocketAddress* a = firstUsable(allowed)) return *a;
  if (!spec.empty()) {
    if (const SocketAddress* a = firstUsable(allowedLoopback)) return *a;
    const char* why = anyNameMatched ? "matches no interface that is up with a usable address"
                                     : "matches no network interface";
    return errorStatus(weftInvalidArgument, "WEFT_SOCKET_IFNAME=\"%s\" %s; interfaces here: %s",
                       spec.c_str(), why, describeInterfaces(ifaces).c_str());
  }
  // Unset and nothing but loopback: fine for a single host.
  std::vector<const Interface*> loops;
  for (const Interface& i : ifaces)
    if (i.up && i.loopback) loops.push_back(&i);
  const SocketAddress* lo = firstUsable(loops);
  SocketAddress chosen = lo != nullptr ? *lo : SocketAddress::loopback(AF_INET, 0);
  WEFT_INFO(
      kBootstrap,
      "bootstrap: no usable network interface besides loopback (interfaces here: %s); using %s, so "
      "only ranks on this host can join. Set WEFT_SOCKET_IFNAME to choose an interface.",
      describeInterfaces(ifaces).c_str(), chosen.hostString().c_str());
  return chosen;
}

Result<SocketAddress> pickLocalAddress() {
  WEFT_ASSIGN_OR_RETURN(std::vector<Interface> ifaces, listInterfaces());
  return pickLocalAddress(config::stringValue("WEFT_SOCKET_IFNAME"), ifaces);
}

bool isLocalAddress(const SocketAddress& addr) {
  if (addr.isLoopback()) return true;
  auto ifaces = listInterfaces();
  if (!ifaces.ok()) return false;
  for (const Interface& i : *ifaces)
    for (const SocketAddress& a : i.addresses)
      if (a == addr.withPort(0)) return true;
  return false;
}

}  // namespace weft::bootstrap
