// Which local address the bootstrap advertises: the answer to "the bootstrap picks the wrong
// network interface and hangs", the most common complaint about collective libraries' start-up.
//
// WEFT_SOCKET_IFNAME uses NCCL's grammar (NCCL_SOCKET_IFNAME):
//   eth,ib        names starting with "eth" or "ib"
//   =eth0,eth1    exactly these names
//   ^docker,lo    any name except those starting with "docker" or "lo"
//   ^=eth0        any name except exactly "eth0"
// Empty entries are ignored. When the variable is set, it alone decides which interfaces may be
// used (loopback included if it matches), non-loopback interfaces are preferred, and a list that
// matches no interface is an error naming the interfaces that exist. When it is unset, loopback and
// docker* bridges are skipped, and loopback is the fall-back (logged at INFO: then only ranks on
// this host can join).
//
// Among the allowed interfaces that are up, the first IPv4 address wins (in the order the system
// lists interfaces); failing that, the first IPv6 address that is not link-local.
#pragma once

#include <string>
#include <vector>

#include "bootstrap/socket.h"
#include "core/status.h"

namespace weft::bootstrap {

struct Interface {
  std::string name;
  bool up = false;
  bool loopback = false;
  // IPv4 and IPv6, port 0, in the system's order; may be empty.
  std::vector<SocketAddress> addresses;
};

// Every interface from getifaddrs(), in the system's order, including those that are down or have
// no IP address.
Result<std::vector<Interface>> listInterfaces();

// Whether `name` is allowed by `spec` in the grammar above. An empty spec allows every name (the
// defaults that skip loopback and docker* are applied by pickLocalAddress, not here).
bool matchIfname(const std::string& spec, const std::string& name);

// The address to advertise (port 0), chosen from `ifaces` by `spec` as described above. `spec`
// empty means WEFT_SOCKET_IFNAME is unset.
Result<SocketAddress> pickLocalAddress(const std::string& spec,
                                       const std::vector<Interface>& ifaces);
// The same, with WEFT_SOCKET_IFNAME and this host's interfaces.
Result<SocketAddress> pickLocalAddress();

// True when addr's host is one of this host's addresses (loopback included), so that it can be
// bound.
bool isLocalAddress(const SocketAddress& addr);

// "lo (127.0.0.1, ::1), eth0 (192.0.2.2), ifb0 (down, no address)": for error messages.
std::string describeInterfaces(const std::vector<Interface>& ifaces);

}  // namespace weft::bootstrap
