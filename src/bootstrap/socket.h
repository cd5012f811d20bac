// A small RAII layer over TCP sockets for the bootstrap.
//
// SocketAddress holds an IPv4 or IPv6 address and port (a sockaddr_storage and its length), prints
// as "1.2.3.4:5" or "[::1]:5", parses the same forms (resolving host names), and packs into 24
// bytes that read the same on every host (PackedAddress, used by the unique id and the bootstrap
// messages).
//
// Socket owns one file descriptor (move-only; closed on destruction). Every socket is non-blocking
// and close-on-exec, TCP sockets have TCP_NODELAY, and every wait is bounded by a deadline on the
// steady clock, using poll(): connect retries refused connections with backoff (the listener may
// not be up yet) until the deadline; sendAll/recvAll move whole buffers through partial I/O, EINTR
// and EAGAIN; sends use MSG_NOSIGNAL so a vanished peer is an error, not SIGPIPE. Each socket
// carries a display name for its peer ("rank 3 (10.0.0.2:4111)") that every error message uses.
// Codes: weftTimeout when a deadline passes, weftRemoteError when the peer closes or resets the
// connection, weftSystemError for the rest.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace weft::bootstrap {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// Now plus `seconds` (capped at about a year, so that huge settings cannot overflow).
Deadline deadlineIn(double seconds);

// Big-endian integers in byte arrays: the wire format of every bootstrap message.
template <typename T>
void putBE(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * (sizeof(T) - 1 - i)));
}
template <typename T>
T getBE(const uint8_t* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    v = static_cast<T>((v << 8) | p[i]);
  return v;
}

// An address in 24 bytes with a fixed layout, independent of the host's sockaddr structures.
struct PackedAddress {
  uint8_t family;      // 4 (IPv4) or 6 (IPv6)
  uint8_t reserved;    // 0
  uint8_t port[2];     // big-endian
  uint8_t scopeId[4];  // IPv6 scope (interface index), big-endian; 0 for IPv4
  uint8_t addr[16];    // IPv4 in the first 4 bytes, the rest 0
};
static_assert(sizeof(PackedAddress) == 24, "PackedAddress must be 24 bytes");

class SocketAddress {
 public:
  SocketAddress() = default;
  // Copies a sockaddr of family AF_INET or AF_INET6; anything else gives an invalid address.
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);
  // "host:port" or "[ipv6]:port"; a host name is resolved with getaddrinfo (first answer wins).
  static Result<SocketAddress> parse(const std::string& hostPort);
  // 0.0.0.0 / :: and 127.0.0.1 / ::1 with the given port (family AF_INET or AF_INET6).
  static SocketAddress wildcard(int family, uint16_t port);
  static SocketAddress loopback(int family, uint16_t port);
  static Result<SocketAddress> unpack(const PackedAddress& packed);

  bool valid() const { return len_ > 0; }
  int family() const { return storage_.ss_family; }
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t len() const { return len_; }
  uint16_t port() const;
  SocketAddress withPort(uint16_t port) const;
  bool isLoopback() const;
  bool isWildcard() const;
  // IPv6 link-local (fe80::/10): usable only together with its scope.
  bool isLinkLocal() const;
  // The host part alone ("1.2.3.4", "::1") and the whole address ("1.2.3.4:5", "[::1]:5").
  std::string hostString() const;
  std::string toString() const;
  PackedAddress pack() const;
  // Same family, host and port.
  bool operator==(const SocketAddress& other) const;

 private:
  sockaddr_storage storage_{};
  socklen_t len_ = 0;
};

class Socket {
 public:
  Socket() = default;
  Socket(int fd, std::string peerName) : fd_(fd), peer_(std::move(peerName)) {}
  ~Socket() { close(); }
  Socket(Socket&& other) noexcept;
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Binds and listens on addr (port 0 = an ephemeral port; SO_REUSEADDR is set) and reports the
  // address actually bound in *bound.
  static Result<Socket> listen(const SocketAddress& addr, SocketAddress* bound);
  // Connects to peer, retrying refused, reset and unreachable attempts with backoff until the
  // deadline (weftTimeout then, naming the last error). Other errors return at once.
  static Result<Socket> connect(const SocketAddress& peer, Deadline deadline);

  // Waits for one connection until the deadline.
  Result<Socket> accept(Deadline deadline, SocketAddress* from = nullptr) const;
  // One connection if one is queued, else an invalid Socket; never waits.
  Result<Socket> tryAccept(SocketAddress* from = nullptr) const;

  // Whole buffers, or an error naming the peer and how far it got.
  Status sendAll(const void* buf, size_t n, Deadline deadline);
  Status recvAll(void* buf, size_t n, Deadline deadline);
  // As much as the kernel takes or has now (0 when it would block); never waits. A closed
  // connection is weftRemoteError.
  Result<size_t> trySend(const void* buf, size_t n);
  Result<size_t> tryRecv(void* buf, size_t n);

  // The local address of a bound or connected socket.
  Result<SocketAddress> localAddress() const;

  bool valid() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void close();
  const std::string& peerName() const { return peer_; }
  void setPeerName(std::string name) { peer_ = std::move(name); }

 private:
  // Polls for `events` until the deadline; weftTimeout says what was being done and, when n > 0,
  // how many of n bytes were done.
  Status waitFor(short events, Deadline deadline, const char* doing, size_t done, size_t n) const;

  int fd_ = -1;
  std::string peer_;  // for messages: "10.0.0.2:4111", "rank 3 (10.0.0.2:4111)"
};

// poll() until the deadline, restarting on EINTR: >0 ready, 0 deadline passed, -1 error (errno).
int pollUntil(pollfd* fds, size_t nfds, Deadline deadline);

}  // namespace weft::bootstrap
