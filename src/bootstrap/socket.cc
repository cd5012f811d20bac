// The bootstrap's socket layer: see socket.h. Everything here is non-blocking underneath; the
// blocking calls are loops of "try, then poll until the deadline".
#include "bootstrap/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <thread>

#include "core/log.h"

namespace weft::bootstrap {
namespace {

using std::chrono::milliseconds;

// Milliseconds for poll(), rounded up so that we do not spin in the last fraction of a millisecond.
int msUntil(Deadline deadline) {
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<milliseconds>(left).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

void setNoDelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Errors of a connect() attempt worth retrying until the deadline: the listener is not up yet, its
// backlog is full, or the route is still coming up.
bool retryableConnectError(int err) {
  return err == ECONNREFUSED || err == ECONNRESET || err == ETIMEDOUT || err == EHOSTUNREACH ||
         err == ENETUNREACH || err == EAGAIN || err == ECONNABORTED;
}

// accept4() errors that mean "this one connection failed, try the next" (see accept(2), Linux
// notes).
bool retryableAcceptError(int err) {
  return err == EINTR || err == ECONNABORTED || err == EPROTO || err == ENETDOWN ||
         err == ENOPROTOOPT || err == EHOSTDOWN || err == ENONET || err == EHOSTUNREACH ||
         err == EOPNOTSUPP || err == ENETUNREACH;
}

bool closedError(int err) {
  return err == EPIPE || err == ECONNRESET || err == ENOTCONN;
}

}  // namespace

Deadline deadlineIn(double seconds) {
  constexpr double kMax = 365.0 * 24 * 3600;
  seconds = std::clamp(seconds, 0.0, kMax);
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

// ---- SocketAddress ----

SocketAddress SocketAddress::fromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress a;
  if (sa == nullptr) return a;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in)))
    a.len_ = sizeof(sockaddr_in);
  else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6)))
    a.len_ = sizeof(sockaddr_in6);
  else
    return a;
  std::memcpy(&a.storage_, sa, a.len_);
  return a;
}

Result<SocketAddress> SocketAddress::parse(const std::string& hostPort) {
  std::string host, port;
  auto bad = [&](const char* why) {
    return errorStatus(weftInvalidArgument,
                       "\"%s\" is not a valid address (%s); expected host:port or [ipv6]:port",
                       hostPort.c_str(), why);
  };
  if (!hostPort.empty() && hostPort[0] == '[') {
    size_t close = hostPort.find(']');
    if (close == std::string::npos) return bad("no closing ']'");
    if (close + 1 >= hostPort.size() || hostPort[close + 1] != ':')
      return bad("no :port after ']'");
    host = hostPort.substr(1, close - 1);
    port = hostPort.substr(close + 2);
  } else {
    size_t colon = hostPort.rfind(':');
    if (colon == std::string::npos) return bad("no :port");
    host = hostPort.substr(0, colon);
    port = hostPort.substr(colon + 1);
    if (host.find(':') != std::string::npos) return bad("write IPv6 addresses as [addr]:port");
  }
  if (host.empty()) return bad("no host");
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535)
    return bad("the port must be a number from 0 to 65535");

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) {
    int err = errno;
    std::string why = rc == EAI_SYSTEM ? std::strerror(err) : gai_strerror(rc);
    return errorStatus(weftInvalidArgument, "cannot resolve \"%s\" in \"%s\": %s", host.c_str(),
                       hostPort.c_str(), why.c_str());
  }
  SocketAddress found;
  for (addrinfo* ai = list; ai != nullptr && !found.valid(); ai = ai->ai_next)
    found = fromSockaddr(ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(list);
  if (!found.valid())
    return errorStatus(weftInvalidArgument, "\"%s\" resolves to no IPv4 or IPv6 address",
                       host.c_str());
  return found;
}

SocketAddress SocketAddress::wildcard(int family, uint16_t port) {
  SocketAddress a;
  if (family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    s6->sin6_family = AF_INET6;
    s6->sin6_addr = in6addr_any;
    s6->sin6_port = htons(port);
    a.len_ = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(INADDR_ANY);
    s4->sin_port = htons(port);
    a.len_ = sizeof(sockaddr_in);
  }
  return a;
}

SocketAddress SocketAddress::loopback(int family, uint16_t port) {
  SocketAddress a = wildcard(family, port);
  if (family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_addr = in6addr_loopback;
  else
    reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

SocketAddress SocketAddress::withPort(uint16_t port) const {
  SocketAddress a = *this;
  if (family() == AF_INET)
    reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_port = htons(port);
  else if (family() == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&a.storage_)->sin6_port = htons(port);
  return a;
}

bool SocketAddress::isLoopback() const {
  if (family() == AF_INET)
    return (ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr) >> 24) == 127;
  if (family() == AF_INET6) {
    const in6_addr& a6 = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  }
  return false;
}

bool SocketAddress::isWildcard() const {
  if (family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == htonl(INADDR_ANY);
  if (family() == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
  return false;
}

bool SocketAddress::isLinkLocal() const {
  return family() == AF_INET6 &&
         IN6_IS_ADDR_LINKLOCAL(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
}

std::string SocketAddress::hostString() const {
  char buf[INET6_ADDRSTRLEN + 16] = "?";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  } else if (family() == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof buf);
    if (s6->sin6_scope_id != 0) return std::string(buf) + "%" + std::to_string(s6->sin6_scope_id);
  } else {
    return "(no address)";
  }
  return buf;
}

std::string SocketAddress::toString() const {
  if (!valid()) return "(no address)";
  std::string out;  // appended piece by piece: "[" + string trips GCC 12's -Wrestrict at -O3
  if (family() == AF_INET6) out += '[';
  out += hostString();
  if (family() == AF_INET6) out += ']';
  out += ':';
  out += std::to_string(port());
  return out;
}

PackedAddress SocketAddress::pack() const {
  PackedAddress p{};
  putBE<uint16_t>(p.port, port());
  if (family() == AF_INET) {
    p.family = 4;
    std::memcpy(p.addr, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, 4);
  } else if (family() == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    p.family = 6;
    putBE<uint32_t>(p.scopeId, s6->sin6_scope_id);
    std::memcpy(p.addr, &s6->sin6_addr, 16);
  }
  return p;
}

Result<SocketAddress> SocketAddress::unpack(const PackedAddress& p) {
  SocketAddress a;
  if (p.family == 4) {
    a = wildcard(AF_INET, getBE<uint16_t>(p.port));
    std::memcpy(&reinterpret_cast<sockaddr_in*>(&a.storage_)->sin_addr, p.addr, 4);
  } else if (p.family == 6) {
    a = wildcard(AF_INET6, getBE<uint16_t>(p.port));
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    std::memcpy(&s6->sin6_addr, p.addr, 16);
    s6->sin6_scope_id = getBE<uint32_t>(p.scopeId);
  } else {
    return errorStatus(weftInvalidArgument, "unknown address family %u", p.family);
  }
  return a;
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  if (!valid() || !other.valid()) return valid() == other.valid();
  PackedAddress a = pack(), b = other.pack();
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// ---- Socket ----

Socket::Socket(Socket&& other) noexcept : fd_(other.fd_), peer_(std::move(other.peer_)) {
  other.fd_ = -1;
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    peer_ = std::move(other.peer_);
    other.fd_ = -1;
  }
  return *this;
}

void Socket::close() {
  if (fd_ >= 0) ::close(fd_);  // Linux closes the descriptor even when close() reports EINTR
  fd_ = -1;
}

int pollUntil(pollfd* fds, size_t nfds, Deadline deadline) {
  for (;;) {
    int rc = ::poll(fds, nfds, msUntil(deadline));
    if (rc > 0) return rc;
    if (rc < 0 && errno != EINTR) return -1;
    if (rc == 0 && Clock::now() >= deadline) return 0;
  }
}

Result<Socket> Socket::listen(const SocketAddress& addr, SocketAddress* bound) {
  int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return sysError(errno, "cannot create a socket to listen on %s", addr.toString().c_str());
  Socket s(fd, addr.toString());
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, addr.sa(), addr.len()) != 0)
    return sysError(errno, "cannot bind a listening socket to %s", addr.toString().c_str());
  if (::listen(fd, SOMAXCONN) != 0)
    return sysError(errno, "cannot listen on %s", addr.toString().c_str());
  WEFT_ASSIGN_OR_RETURN(SocketAddress local, s.localAddress());
  s.setPeerName(local.toString());
  if (bound != nullptr) *bound = local;
  return s;
}

Result<Socket> Socket::connect(const SocketAddress& peer, Deadline deadline) {
  const std::string name = peer.toString();
  auto backoff = milliseconds(1);
  int attempts = 0;
  for (;;) {
    ++attempts;
    int fd = ::socket(peer.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return sysError(errno, "cannot create a socket to connect to %s", name.c_str());
    Socket s(fd, name);
    int err = ::connect(fd, peer.sa(), peer.len()) == 0 ? 0 : errno;
    if (err == EINPROGRESS || err == EINTR) {
      pollfd p{fd, POLLOUT, 0};
      int rc = pollUntil(&p, 1, deadline);
      if (rc < 0) return sysError(errno, "waiting to connect to %s", name.c_str());
      socklen_t len = sizeof err;
      if (rc == 0)
        err = ETIMEDOUT;
      else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    }
    if (err == 0) {
      // Retrying against a free port in the ephemeral range can connect the socket to itself (TCP
      // simultaneous open); that is no listener either.
      auto local = s.localAddress();
      if (local.ok() && *local == peer) err = ECONNREFUSED;
    }
    if (err == 0) {
      setNoDelay(fd);
      return s;
    }
    if (!retryableConnectError(err)) return sysError(err, "cannot connect to %s", name.c_str());
    auto now = Clock::now();
    if (now >= deadline) {
      char buf[128];
      return errorStatus(weftTimeout,
                         "could not connect to %s before the deadline (%d attempts; last: %s)",
                         name.c_str(), attempts, strerror_r(err, buf, sizeof buf));
    }
    s.close();
    std::this_thread::sleep_for(std::min<Clock::duration>(backoff, deadline - now));
    backoff = std::min(backoff * 2, milliseconds(100));
  }
}

Result<Socket> Socket::tryAccept(SocketAddress* from) const {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      setNoDelay(fd);
      SocketAddress peer = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
      if (from != nullptr) *from = peer;
      return Socket(fd, peer.toString());
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Socket();
    if (!retryableAcceptError(errno))
      return sysError(errno, "cannot accept a connection on %s", peer_.c_str());
  }
}

Result<Socket> Socket::accept(Deadline deadline, SocketAddress* from) const {
  for (;;) {
    WEFT_ASSIGN_OR_RETURN(Socket s, tryAccept(from));
    if (s.valid()) return s;
    WEFT_TRY(waitFor(POLLIN, deadline, "waiting for a connection on", 0, 0));
  }
}

Result<size_t> Socket::trySend(const void* buf, size_t n) {
  for (;;) {
    ssize_t k = ::send(fd_, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k >= 0) return static_cast<size_t>(k);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return size_t{0};
    if (closedError(errno))
      return errorStatus(weftRemoteError, "connection closed by %s while sending", peer_.c_str());
    return sysError(errno, "sending to %s", peer_.c_str());
  }
}

Result<size_t> Socket::tryRecv(void* buf, size_t n) {
  if (n == 0) return size_t{0};
  for (;;) {
    ssize_t k = ::recv(fd_, buf, n, MSG_DONTWAIT);
    if (k > 0) return static_cast<size_t>(k);
    if (k == 0) return errorStatus(weftRemoteError, "connection closed by %s", peer_.c_str());
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return size_t{0};
    if (closedError(errno))
      return errorStatus(weftRemoteError, "connection reset by %s", peer_.c_str());
    return sysError(errno, "receiving from %s", peer_.c_str());
  }
}

Status Socket::waitFor(short events, Deadline deadline, const char* doing, size_t done,
                       size_t n) const {
  pollfd p{fd_, events, 0};
  int rc = pollUntil(&p, 1, deadline);
  if (rc < 0) return sysError(errno, "waiting while %s %s", doing, peer_.c_str());
  if (rc == 0 && n == 0) return errorStatus(weftTimeout, "timed out %s %s", doing, peer_.c_str());
  if (rc == 0)
    return errorStatus(weftTimeout, "timed out %s %s (%zu of %zu bytes done)", doing, peer_.c_str(),
                       done, n);
  return Status::Ok();
}

Status Socket::sendAll(const void* buf, size_t n, Deadline deadline) {
  size_t done = 0;
  while (done < n) {
    auto k = trySend(static_cast<const uint8_t*>(buf) + done, n - done);
    if (!k.ok()) return k.status().withContext(strprintf("after %zu of %zu bytes", done, n));
    done += *k;
    if (done < n && *k == 0) WEFT_TRY(waitFor(POLLOUT, deadline, "sending to", done, n));
  }
  return Status::Ok();
}

Status Socket::recvAll(void* buf, size_t n, Deadline deadline) {
  size_t done = 0;
  while (done < n) {
    auto k = tryRecv(static_cast<uint8_t*>(buf) + done, n - done);
    if (!k.ok()) return k.status().withContext(strprintf("after %zu of %zu bytes", done, n));
    done += *k;
    if (done < n && *k == 0) WEFT_TRY(waitFor(POLLIN, deadline, "receiving from", done, n));
  }
  return Status::Ok();
}

Result<SocketAddress> Socket::localAddress() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return sysError(errno, "getsockname on the socket to %s", peer_.c_str());
  SocketAddress a = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
  if (!a.valid())
    return errorStatus(weftSystemError, "socket to %s has no IP address", peer_.c_str());
  return a;
}

}  // namespace weft::bootstrap
