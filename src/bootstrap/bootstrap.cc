// One rank's bootstrap: joining through the root, the ring, and allgather/barrier over it. See
// bootstrap.h.
#include "bootstrap/bootstrap.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "bootstrap/ifaces.h"
#include "bootstrap/root.h"
#include "core/config.h"
#include "core/log.h"

namespace weft::bootstrap {
namespace {

// Ring hello (sender -> receiver, 28 bytes): magic "WFG1", secret[16], sender's rank u32,
// nranks u32.
constexpr uint8_t kRingMagic[4] = {'W', 'F', 'G', '1'};
constexpr size_t kRingHelloBytes = 28;
// Allgather header (16 bytes): magic "WFA1", sequence number u32, bytes per rank u64.
constexpr uint8_t kGatherMagic[4] = {'W', 'F', 'A', '1'};
constexpr size_t kGatherHeaderBytes = 16;
// Added to the wait for the root's answer: time for its own (earlier) timeout message to arrive.
constexpr double kReplyGraceSeconds = 1.0;

}  // namespace

Bootstrap::Bootstrap(int rank, int nranks, double timeout, const Secret& secret)
    : rank_(rank), nranks_(nranks), timeout_(timeout), secret_(secret) {}

Bootstrap::~Bootstrap() = default;

Result<std::unique_ptr<Bootstrap>> Bootstrap::create(const weftUniqueId& id, int rank, int nranks) {
  if (nranks < 1 || nranks > kMaxRanks)
    return errorStatus(weftInvalidArgument, "nranks=%d is not valid (1..%d)", nranks, kMaxRanks);
  if (rank < 0 || rank >= nranks)
    return errorStatus(weftInvalidArgument, "rank %d is not valid for nranks=%d (ranks are 0..%d)",
                       rank, nranks, nranks - 1);
  SocketAddress root;
  Secret secret;
  Status s = decodeUniqueId(id, &root, &secret);
  if (!s.ok()) return s.withContext(strprintf("rank %d", rank));
  std::unique_ptr<Bootstrap> b(
      new Bootstrap(rank, nranks, config::secondsValue("WEFT_CONNECT_TIMEOUT"), secret));
  WEFT_TRY(b->join(root));
  return b;
}

Status Bootstrap::join(const SocketAddress& root) {
  const std::string rootName = root.toString();
  auto connected = Socket::connect(root, deadlineIn(timeout_));
  if (!connected.ok()) {
    if (connected.status().code() == weftTimeout)
      return errorStatus(weftTimeout,
                         "rank %d: no bootstrap root at %s after %g s; is rank 0 running? "
                         "(WEFT_CONNECT_TIMEOUT)",
                         rank_, rootName.c_str(), timeout_);
    return connected.status().withContext(
        strprintf("rank %d: connecting to the bootstrap root at %s", rank_, rootName.c_str()));
  }
  Socket rootSock = std::move(*connected);
  rootSock.setPeerName("the bootstrap root at " + rootName);
  const Deadline deadline = deadlineIn(timeout_ + kReplyGraceSeconds);
  const std::string ctx = strprintf("rank %d", rank_);

  // Listen where the others can reach this rank (see bootstrap.h).
  SocketAddress local;
  if (!config::stringValue("WEFT_SOCKET_IFNAME").empty()) {
    auto picked = pickLocalAddress();
    if (!picked.ok()) return picked.status().withContext(ctx);
    local = *picked;
  } else {
    auto mine = rootSock.localAddress();
    if (!mine.ok()) return mine.status().withContext(ctx);
    local = *mine;
  }
  SocketAddress bound;
  auto listener = Socket::listen(local.withPort(0), &bound);
  if (!listener.ok()) return listener.status().withContext(ctx);

  uint8_t hello[kRankHelloBytes];
  encodeRankHello(RankHello{secret_, rank_, nranks_, bound}, hello);
  Status s = rootSock.sendAll(hello, sizeof hello, deadline);
  if (!s.ok()) return s.withContext(ctx + ": registering with the bootstrap root");

  uint8_t head[kRootReplyHeaderBytes];
  s = rootSock.recvAll(head, sizeof head, deadline);
  if (s.code() == weftTimeout)
    return errorStatus(weftTimeout,
                       "rank %d: the bootstrap root at %s did not answer within %g s "
                       "(WEFT_CONNECT_TIMEOUT)",
                       rank_, rootName.c_str(), timeout_);
  if (s.code() == weftRemoteError)
    return errorStatus(
        weftRemoteError,
        "rank %d: the bootstrap root at %s closed the connection without answering; it may have "
        "stopped after an error (see the log of rank 0's process)",
        rank_, rootName.c_str());
  if (!s.ok()) return s.withContext(ctx + ": waiting for the bootstrap root");
  RootReplyHeader reply;
  s = decodeRootReplyHeader(head, &reply);
  if (!s.ok()) return s.withContext(ctx + ": from " + rootName);

  if (reply.kind == kReplyError) {
    std::string text(reply.length, '\0');
    s = rootSock.recvAll(text.data(), text.size(), deadline);
    if (!s.ok()) return s.withContext(ctx + ": reading the bootstrap root's error message");
    auto code = static_cast<weftResult_t>(reply.code);
    if (reply.code == 0 || reply.code >= weftNumResults) code = weftRemoteError;
    return errorStatus(code, "rank %d: bootstrap root at %s: %s", rank_, rootName.c_str(),
                       text.c_str());
  }
  if (reply.length != sizeof(PackedAddress) * static_cast<size_t>(nranks_))
    return errorStatus(weftRemoteError,
                       "rank %d: the bootstrap root at %s sent a table of %u bytes for %d ranks",
                       rank_, rootName.c_str(), reply.length, nranks_);
  std::vector<PackedAddress> table(static_cast<size_t>(nranks_));
  s = rootSock.recvAll(table.data(), reply.length, deadline);
  if (!s.ok()) return s.withContext(ctx + ": reading the bootstrap address table");
  rootSock.close();
  for (const PackedAddress& p : table) {
    auto a = SocketAddress::unpack(p);
    if (!a.ok()) return a.status().withContext(ctx + ": in the bootstrap address table");
    addresses_.push_back(*a);
  }
  if (nranks_ == 1) return Status::Ok();
  return buildRing(std::move(*listener));
}

Status Bootstrap::buildRing(Socket listener) {
  const int next = (rank_ + 1) % nranks_;
  const int prev = (rank_ + nranks_ - 1) % nranks_;
  const Deadline deadline = deadlineIn(timeout_);
  const SocketAddress& nextAddr = addresses_[static_cast<size_t>(next)];

  // Connect first, then accept: the kernel completes the connection before rank+1 accepts it, and
  // the hello fits in its socket buffer, so no rank waits on another here.
  auto connected = Socket::connect(nextAddr, deadline);
  if (!connected.ok()) {
    if (connected.status().code() == weftTimeout)
      return errorStatus(weftTimeout,
                         "rank %d: could not connect to rank %d at %s within %g s to build "
                         "the bootstrap ring (WEFT_CONNECT_TIMEOUT)",
                         rank_, next, nextAddr.toString().c_str(), timeout_);
    return connected.status().withContext(strprintf("rank %d: connecting to rank %d", rank_, next));
  }
  next_ = std::move(*connected);
  next_.setPeerName(strprintf("rank %d (%s)", next, nextAddr.toString().c_str()));
  uint8_t hello[kRingHelloBytes];
  std::memcpy(hello, kRingMagic, 4);
  std::memcpy(hello + 4, secret_.bytes.data(), 16);
  putBE<uint32_t>(hello + 20, static_cast<uint32_t>(rank_));
  putBE<uint32_t>(hello + 24, static_cast<uint32_t>(nranks_));
  Status s = next_.sendAll(hello, sizeof hello, deadline);
  if (!s.ok()) return s.withContext(strprintf("rank %d: greeting rank %d", rank_, next));

  Greeter greeter(listener, kRingHelloBytes);
  for (;;) {
    auto g = greeter.next(deadline);
    if (!g.ok()) {
      if (g.status().code() == weftTimeout)
        return errorStatus(weftTimeout,
                           "rank %d: rank %d did not connect within %g s to build the "
                           "bootstrap ring (WEFT_CONNECT_TIMEOUT)",
                           rank_, prev, timeout_);
      return g.status().withContext(strprintf("rank %d: waiting for rank %d", rank_, prev));
    }
    const uint8_t* b = g->bytes.data();
    Secret theirs;
    std::memcpy(theirs.bytes.data(), b + 4, 16);
    int from = static_cast<int>(getBE<uint32_t>(b + 20));
    int n = static_cast<int>(getBE<uint32_t>(b + 24));
    if (std::memcmp(b, kRingMagic, 4) != 0 || !(theirs == secret_) || from != prev ||
        n != nranks_) {
      WEFT_WARN(kBootstrap,
                "bootstrap rank %d: dropped a connection from %s: expected rank %d of %d with "
                "this communicator's secret (a stray process of another job?)",
                rank_, g->from.toString().c_str(), prev, nranks_);
      continue;
    }
    prev_ = std::move(g->socket);
    prev_.setPeerName(strprintf("rank %d (%s)", prev, g->from.toString().c_str()));
    return Status::Ok();
  }
}

Status Bootstrap::fail(Status s) {
  if (!s.ok() && broken_.ok()) broken_ = s;
  return s;
}

Status Bootstrap::allgather(void* buf, size_t bytesPerRank) {
  if (!broken_.ok())
    return errorStatus(broken_.code(),
                       "rank %d: the bootstrap failed earlier and cannot be used: %s", rank_,
                       broken_.message().c_str());
  if (buf == nullptr && bytesPerRank > 0)
    return errorStatus(weftInvalidArgument, "rank %d: bootstrap allgather into a null buffer",
                       rank_);
  if (bytesPerRank > SIZE_MAX / static_cast<size_t>(nranks_))
    return errorStatus(weftInvalidArgument,
                       "rank %d: bootstrap allgather of %zu bytes per rank is too large", rank_,
                       bytesPerRank);
  if (nranks_ == 1) return Status::Ok();
  return fail(stream(static_cast<uint8_t*>(buf), bytesPerRank));
}

Status Bootstrap::barrier() {
  std::vector<uint8_t> bytes(static_cast<size_t>(nranks_));
  return allgather(bytes.data(), 1);
}

Status Bootstrap::stream(uint8_t* buf, size_t bytes) {
  const uint32_t seq = ++sequence_;
  const size_t n = static_cast<size_t>(nranks_);
  const size_t r = static_cast<size_t>(rank_);
  const int prev = (rank_ + nranks_ - 1) % nranks_;
  const int next = (rank_ + 1) % nranks_;
  const std::string ctx = strprintf("rank %d: bootstrap allgather #%u", rank_, seq);

  // The header: both neighbours must be in the same call with the same size.
  uint8_t mine[kGatherHeaderBytes], theirs[kGatherHeaderBytes];
  std::memcpy(mine, kGatherMagic, 4);
  putBE<uint32_t>(mine + 4, seq);
  putBE<uint64_t>(mine + 8, bytes);
  Deadline deadline = deadlineIn(timeout_);
  Status s = next_.sendAll(mine, sizeof mine, deadline);
  if (!s.ok()) return s.withContext(ctx);
  s = prev_.recvAll(theirs, sizeof theirs, deadline);
  if (s.code() == weftTimeout)
    return errorStatus(weftTimeout,
                       "%s: rank %d did not answer within %g s; is it running and making the "
                       "same bootstrap calls? (WEFT_CONNECT_TIMEOUT)",
                       ctx.c_str(), prev, timeout_);
  if (!s.ok()) return s.withContext(ctx);
  if (std::memcmp(theirs, kGatherMagic, 4) != 0)
    return errorStatus(weftInternalError, "%s: rank %d sent garbage instead of an allgather header",
                       ctx.c_str(), prev);
  if (getBE<uint32_t>(theirs + 4) != seq || getBE<uint64_t>(theirs + 8) != bytes)
    return errorStatus(
        weftInvalidUsage,
        "%s has %zu bytes per rank, but rank %d is in bootstrap allgather #%u with %llu bytes per "
        "rank; every rank must make the same bootstrap calls",
        ctx.c_str(), bytes, prev, getBE<uint32_t>(theirs + 4),
        static_cast<unsigned long long>(getBE<uint64_t>(theirs + 8)));

  // The data, as one stream each way. Sent stream position p lies in slot rank - p/bytes: first
  // this rank's own slot, then each slot as it arrives. Received position p lies in slot
  // rank - 1 - p/bytes. Position p can be sent once position p - bytes has been received.
  const size_t total = (n - 1) * bytes;
  size_t sent = 0, received = 0;
  while (sent < total || received < total) {
    const size_t sendable = std::min(total, received + bytes);
    pollfd fds[2];
    int nfds = 0, sendIdx = -1, recvIdx = -1;
    if (sent < sendable) {
      sendIdx = nfds;
      fds[nfds++] = {next_.fd(), POLLOUT, 0};
    }
    if (received < total) {
      recvIdx = nfds;
      fds[nfds++] = {prev_.fd(), POLLIN, 0};
    }
    int rc = pollUntil(fds, static_cast<size_t>(nfds), deadline);
    if (rc < 0) return sysError(errno, "%s: poll", ctx.c_str());
    if (rc == 0 && recvIdx >= 0)
      return errorStatus(weftTimeout,
                         "%s: rank %d sent nothing for %g s (received %zu of %zu bytes); is it "
                         "running and making the same bootstrap calls? (WEFT_CONNECT_TIMEOUT)",
                         ctx.c_str(), prev, timeout_, received, total);
    if (rc == 0)
      return errorStatus(weftTimeout,
                         "%s: rank %d took nothing for %g s (sent %zu of %zu bytes); is it "
                         "running? (WEFT_CONNECT_TIMEOUT)",
                         ctx.c_str(), next, timeout_, sent, total);
    bool progress = false;
    if (sendIdx >= 0 && fds[sendIdx].revents != 0) {
      size_t slot = (r + n - sent / bytes) % n, off = sent % bytes;
      auto k = next_.trySend(buf + slot * bytes + off, std::min(bytes - off, sendable - sent));
      if (!k.ok()) return k.status().withContext(ctx);
      sent += *k;
      progress = progress || *k > 0;
    }
    if (recvIdx >= 0 && fds[recvIdx].revents != 0) {
      size_t slot = (r + n - 1 - received / bytes) % n, off = received % bytes;
      auto k = prev_.tryRecv(buf + slot * bytes + off, bytes - off);
      if (!k.ok()) return k.status().withContext(ctx);
      received += *k;
      progress = progress || *k > 0;
    }
    if (progress)
      deadline = deadlineIn(timeout_);  // the bound is on silence, not on the whole transfer
  }
  return Status::Ok();
}

Status createUniqueId(weftUniqueId* out) {
  WEFT_ASSIGN_OR_RETURN(SocketAddress local, pickLocalAddress());
  WEFT_ASSIGN_OR_RETURN(Secret secret, randomSecret());
  SocketAddress bound;
  WEFT_TRY(startRoot(local.withPort(0), secret, &bound));
  return encodeUniqueId(bound, secret, out);
}

Status uniqueIdFromRoot(const std::string& hostPort, int nranks, bool serveRoot,
                        weftUniqueId* out) {
  if (nranks < 1 || nranks > kMaxRanks)
    return errorStatus(weftInvalidArgument, "nranks=%d is not valid (1..%d)", nranks, kMaxRanks);
  auto addr = SocketAddress::parse(hostPort);
  if (!addr.ok()) return addr.status().withContext("the bootstrap rendezvous address");
  if (addr->port() == 0 || addr->isWildcard())
    return errorStatus(weftInvalidArgument,
                       "the bootstrap rendezvous address %s needs a fixed port and an address "
                       "the other ranks can reach",
                       hostPort.c_str());
  Secret secret = deriveSecret(hostPort + "/" + std::to_string(nranks));
  if (serveRoot) {
    SocketAddress bindAddr =
        isLocalAddress(*addr) ? *addr : SocketAddress::wildcard(addr->family(), addr->port());
    Status s = startRoot(bindAddr, secret, nullptr);
    if (!s.ok())
      return s.withContext("rank 0 cannot serve the bootstrap rendezvous at " + hostPort +
                           " (is the port in use by another job?)");
  }
  return encodeUniqueId(*addr, secret, out);
}

}  // namespace weft::bootstrap
