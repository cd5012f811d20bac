// The bootstrap root's thread and the messages it exchanges with ranks: see root.h.
#include "bootstrap/root.h"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/log.h"

namespace weft::bootstrap {
namespace {

constexpr uint8_t kHelloMagic[4] = {'W', 'F', 'H', '1'};
constexpr uint8_t kReplyMagic[4] = {'W', 'F', 'R', '1'};

std::atomic<int> gLiveRoots{0};

// One root's whole state; owned by its thread.
class RootService {
 public:
  RootService(Socket listener, const Secret& secret, double timeout, Deadline deadline,
              const SocketAddress& bound)
      : listener_(std::move(listener)),
        secret_(secret),
        timeout_(timeout),
        deadline_(deadline),
        name_(bound.toString()) {}

  void run() {
    Greeter greeter(listener_, kRankHelloBytes);
    while (nranks_ < 0 || joined_ < nranks_) {
      auto g = greeter.next(deadline_);
      if (!g.ok()) {
        if (g.status().code() != weftTimeout) {
          fail(g.status().code(), "the root failed: " + g.status().message());
        } else if (nranks_ < 0) {
          WEFT_WARN(kBootstrap, "bootstrap root at %s: no rank joined within %g s; shutting down",
                    name_.c_str(), timeout_);
        } else {
          std::vector<int> missing;
          for (int r = 0; r < nranks_; ++r)
            if (members_.count(r) == 0) missing.push_back(r);
          fail(weftTimeout,
               strprintf("%s of %d did not join within %g s; check that every process was "
                         "started with the same unique id, or raise WEFT_CONNECT_TIMEOUT",
                         describeRanks(missing).c_str(), nranks_, timeout_));
        }
        return;
      }
      if (!admit(std::move(*g))) return;
    }
    sendTables();
  }

 private:
  struct Member {
    Socket socket;
    SocketAddress listenAddr;
    SocketAddress from;
  };

  // Registers one greeting; false after a fatal error (already reported to every connected rank).
  bool admit(Greeter::Greeting g) {
    RankHello h;
    Status s = decodeRankHello(g.bytes.data(), &h);
    if (!s.ok()) {
      WEFT_WARN(kBootstrap, "bootstrap root at %s: dropped a connection from %s: %s", name_.c_str(),
                g.from.toString().c_str(), s.message().c_str());
      return true;
    }
    if (!(h.secret == secret_)) {
      WEFT_WARN(
          kBootstrap,
          "bootstrap root at %s: dropped a connection from %s (claiming rank %d of %d) that "
          "presented a wrong secret: a process of another job, or one given another unique id?",
          name_.c_str(), g.from.toString().c_str(), h.rank, h.nranks);
      return true;
    }
    if (h.nranks < 1 || h.nranks > kMaxRanks || h.rank < 0 || h.rank >= h.nranks) {
      std::string text = strprintf("rank %d of %d is not a valid rank (0..nranks-1, nranks 1..%d)",
                                   h.rank, h.nranks, kMaxRanks);
      WEFT_WARN(kBootstrap, "bootstrap root at %s: %s (from %s)", name_.c_str(), text.c_str(),
                g.from.toString().c_str());
      sendError(g.socket, weftInvalidArgument, text, deadlineIn(std::min(timeout_, 2.0)));
      return true;
    }
    if (nranks_ < 0) {
      nranks_ = h.nranks;
      firstRank_ = h.rank;
      // The id may have been made long before the ranks start: count the timeout from the first
      // rank too. Still before any rank's own wait ends (that starts when it connects).
      deadline_ = std::max(deadline_, deadlineIn(timeout_));
    } else if (h.nranks != nranks_) {
      fail(
          weftInvalidUsage,
          strprintf(
              "rank %d was started with nranks=%d but rank %d with nranks=%d; every rank must pass "
              "the same number of ranks",
              h.rank, h.nranks, firstRank_, nranks_),
          &g.socket);
      return false;
    }
    Member& m = members_[h.rank];
    if (m.socket.valid()) {
      fail(
          weftInvalidUsage,
          strprintf(
              "rank %d joined twice (from %s and from %s); every process must pass a distinct rank",
              h.rank, m.from.toString().c_str(), g.from.toString().c_str()),
          &g.socket);
      return false;
    }
    m.socket = std::move(g.socket);
    m.socket.setPeerName(strprintf("rank %d (%s)", h.rank, g.from.toString().c_str()));
    m.listenAddr = h.listenAddr;
    m.from = g.from;
    ++joined_;
    WEFT_TRACE(kBootstrap, "bootstrap root at %s: rank %d joined from %s (%d of %d)", name_.c_str(),
               h.rank, g.from.toString().c_str(), joined_, nranks_);
    return true;
  }

  void sendTables() {
    std::vector<uint8_t> msg(kRootReplyHeaderBytes + sizeof(PackedAddress) * members_.size());
    encodeRootReplyHeader(
        {kReplyTable, 0, static_cast<uint32_t>(msg.size() - kRootReplyHeaderBytes)}, msg.data());
    for (const auto& [rank, m] : members_) {
      PackedAddress p = m.listenAddr.pack();
      std::memcpy(msg.data() + kRootReplyHeaderBytes + static_cast<size_t>(rank) * sizeof p, &p,
                  sizeof p);
    }
    Deadline d = deadlineIn(timeout_);
    int sent = 0;
    for (auto& [rank, m] : members_) {
      Status s = m.socket.sendAll(msg.data(), msg.size(), d);
      if (s.ok())
        ++sent;
      else
        WEFT_WARN(kBootstrap, "bootstrap root at %s: could not send the address table: %s",
                  name_.c_str(), s.message().c_str());
    }
    WEFT_INFO(kBootstrap, "bootstrap root at %s: all %d ranks joined; address table sent to %d",
              name_.c_str(), nranks_, sent);
  }

  // Tells every connected rank (and `extra`, the connection that caused it) what went wrong.
  void fail(weftResult_t code, const std::string& text, Socket* extra = nullptr) {
    WEFT_WARN(kBootstrap, "bootstrap root at %s: %s", name_.c_str(), text.c_str());
    Deadline d = deadlineIn(std::min(timeout_, 2.0));
    for (auto& [rank, m] : members_)
      sendError(m.socket, code, text, d);
    if (extra != nullptr) sendError(*extra, code, text, d);
  }

  static void sendError(Socket& s, weftResult_t code, const std::string& text, Deadline d) {
    size_t len = std::min<size_t>(text.size(), kMaxReplyErrorBytes);
    std::vector<uint8_t> msg(kRootReplyHeaderBytes + len);
    encodeRootReplyHeader({kReplyError, static_cast<uint32_t>(code), static_cast<uint32_t>(len)},
                          msg.data());
    std::memcpy(msg.data() + kRootReplyHeaderBytes, text.data(), len);
    (void)s.sendAll(msg.data(), msg.size(), d);  // a rank that is gone cannot be told
  }

  Socket listener_;
  Secret secret_;
  double timeout_;
  Deadline deadline_;
  std::string name_;
  int nranks_ = -1;
  int firstRank_ = -1;
  int joined_ = 0;
  std::map<int, Member> members_;  // by rank; only those that joined
};

}  // namespace

Result<Greeter::Greeting> Greeter::next(Deadline deadline) {
  std::vector<pollfd> fds;
  for (;;) {
    // Forget the dropped connections; hand out the first complete greeting.
    std::erase_if(pending_, [](const Pending& p) { return !p.socket.valid(); });
    for (size_t i = 0; i < pending_.size(); ++i) {
      if (pending_[i].got < bytes_) continue;
      Greeting g{std::move(pending_[i].socket), pending_[i].from, std::move(pending_[i].buf)};
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
      return g;
    }
    fds.clear();
    fds.push_back({listener_.fd(), POLLIN, 0});
    for (const Pending& p : pending_)
      fds.push_back({p.socket.fd(), POLLIN, 0});
    int rc = pollUntil(fds.data(), fds.size(), deadline);
    if (rc < 0)
      return sysError(errno, "waiting for connections on %s", listener_.peerName().c_str());
    if (rc == 0)
      return errorStatus(weftTimeout, "no complete greeting on %s before the deadline",
                         listener_.peerName().c_str());
    // Read from the connections that were polled; new ones join the next round.
    size_t polled = pending_.size();
    for (size_t i = 0; i < polled; ++i) {
      if (fds[i + 1].revents == 0) continue;
      Pending& p = pending_[i];
      auto k = p.socket.tryRecv(p.buf.data() + p.got, bytes_ - p.got);
      if (!k.ok()) {
        WEFT_WARN(kBootstrap,
                  "bootstrap: dropped a connection from %s on %s: %s (after %zu of %zu bytes)",
                  p.from.toString().c_str(), listener_.peerName().c_str(),
                  k.status().message().c_str(), p.got, bytes_);
        p.socket.close();
        continue;
      }
      p.got += *k;
    }
    if (fds[0].revents != 0) {
      for (;;) {
        Pending p;
        WEFT_ASSIGN_OR_RETURN(p.socket, listener_.tryAccept(&p.from));
        if (!p.socket.valid()) break;
        p.buf.resize(bytes_);
        pending_.push_back(std::move(p));
      }
    }
  }
}

void encodeRankHello(const RankHello& hello, uint8_t* out) {
  std::memcpy(out, kHelloMagic, 4);
  std::memcpy(out + 4, hello.secret.bytes.data(), 16);
  putBE<uint32_t>(out + 20, static_cast<uint32_t>(hello.rank));
  putBE<uint32_t>(out + 24, static_cast<uint32_t>(hello.nranks));
  PackedAddress p = hello.listenAddr.pack();
  std::memcpy(out + 28, &p, sizeof p);
}

Status decodeRankHello(const uint8_t* in, RankHello* hello) {
  if (std::memcmp(in, kHelloMagic, 4) != 0)
    return errorStatus(weftInvalidArgument,
                       "its greeting is not a weft bootstrap hello (bad magic)");
  std::memcpy(hello->secret.bytes.data(), in + 4, 16);
  hello->rank = static_cast<int>(getBE<uint32_t>(in + 20));
  hello->nranks = static_cast<int>(getBE<uint32_t>(in + 24));
  PackedAddress p;
  std::memcpy(&p, in + 28, sizeof p);
  auto addr = SocketAddress::unpack(p);
  if (!addr.ok() || addr->port() == 0)
    return errorStatus(weftInvalidArgument, "its hello carries no usable listen address");
  hello->listenAddr = *addr;
  return Status::Ok();
}

void encodeRootReplyHeader(const RootReplyHeader& header, uint8_t* out) {
  std::memcpy(out, kReplyMagic, 4);
  putBE<uint32_t>(out + 4, header.kind);
  putBE<uint32_t>(out + 8, header.code);
  putBE<uint32_t>(out + 12, header.length);
}

Status decodeRootReplyHeader(const uint8_t* in, RootReplyHeader* header) {
  if (std::memcmp(in, kReplyMagic, 4) != 0)
    return errorStatus(weftRemoteError, "the reply is not from a weft bootstrap root (bad magic)");
  header->kind = getBE<uint32_t>(in + 4);
  header->code = getBE<uint32_t>(in + 8);
  header->length = getBE<uint32_t>(in + 12);
  if (header->kind != kReplyTable && header->kind != kReplyError)
    return errorStatus(weftRemoteError, "the root's reply has an unknown kind %u", header->kind);
  if (header->kind == kReplyError && header->length > kMaxReplyErrorBytes)
    return errorStatus(weftRemoteError, "the root's error message is too long (%u bytes)",
                       header->length);
  return Status::Ok();
}

std::string describeRanks(const std::vector<int>& sortedRanks) {
  constexpr size_t kMaxItems = 16;
  std::string out;
  size_t items = 0, i = 0;
  while (i < sortedRanks.size() && items < kMaxItems) {
    size_t j = i;
    while (j + 1 < sortedRanks.size() && sortedRanks[j + 1] == sortedRanks[j] + 1)
      ++j;
    if (!out.empty()) out += ", ";
    if (j >= i + 2) {
      out += strprintf("%d-%d", sortedRanks[i], sortedRanks[j]);
    } else {
      out += std::to_string(sortedRanks[i]);
      if (j == i + 1) out += ", " + std::to_string(sortedRanks[j]);
    }
    ++items;
    i = j + 1;
  }
  if (i < sortedRanks.size()) out += strprintf(" and %zu more", sortedRanks.size() - i);
  return (sortedRanks.size() == 1 ? "rank " : "ranks ") + out;
}

Status startRoot(const SocketAddress& listenAddr, const Secret& secret, SocketAddress* boundAddr) {
  // Configure logging here, in the caller's thread, so that the root thread only ever reads it.
  (void)log::enabled(log::kWarn, log::kBootstrap);
  const double timeout = config::secondsValue("WEFT_CONNECT_TIMEOUT");
  SocketAddress bound;
  auto listener = Socket::listen(listenAddr, &bound);
  if (!listener.ok())
    return listener.status().withContext("cannot start the bootstrap root on " +
                                         listenAddr.toString());
  auto service = std::make_unique<RootService>(std::move(*listener), secret, timeout,
                                               deadlineIn(timeout), bound);
  gLiveRoots.fetch_add(1);
  try {
    std::thread([svc = std::move(service)]() mutable {
      try {
        svc->run();
      } catch (const std::exception& e) {
        WEFT_WARN(kBootstrap, "bootstrap root: stopped by an exception: %s", e.what());
      }
      svc.reset();  // closes every socket before the thread counts as gone
      gLiveRoots.fetch_sub(1);
    }).detach();
  } catch (const std::exception& e) {
    gLiveRoots.fetch_sub(1);
    return errorStatus(weftSystemError, "cannot start the bootstrap root thread: %s", e.what());
  }
  WEFT_INFO(kBootstrap, "bootstrap root listening on %s (timeout %g s)", bound.toString().c_str(),
            timeout);
  if (boundAddr != nullptr) *boundAddr = bound;
  return Status::Ok();
}

int liveRootThreads() {
  return gLiveRoots.load();
}

}  // namespace weft::bootstrap
