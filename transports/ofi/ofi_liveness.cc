// Dead-peer detection for libfabric's tcp providers.
//
// libfabric 1.17's tcp;ofi_rxm (and net) report nothing when a peer process dies: rxm sees the
// connection drop, tries to reconnect, gets "connection refused" and keeps retrying quietly, so
// pending sends, receives and later sends all stay pending. For those providers the address blob
// is the sockaddr of the peer provider's TCP listener, which the kernel closes when the process
// dies (it listens from fi_enable on, before its address was published). So, for a peer this
// context waits on (requests pending) that has been quiet for kQuietNs, the plugin opens a
// non-blocking TCP connection to that address and closes it at once: refused twice in a row
// (kRecheckNs apart) means nothing listens there any more, and the peer is marked dead. A peer
// that finalizes says goodbye first (ofi_ops.cc), so it is not mistaken for a dead one.
//
// What this does not see: a host that vanishes without answering (power, cable): the connection
// attempt times out without a verdict, and weft's WEFT_TIMEOUT applies.
//
// shm reports nothing either (sends to a dead peer even complete, into its queue). Its address is
// the string "fi_shm://<pid>:..."; the same scan checks that the process still exists (kill 0, and
// not a zombie). shm peers say no goodbye (sending to a closed endpoint of the same process crashes
// shm), so a peer that finalized but lives on is simply alive.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ofi_internal.h"

namespace weft_ofi {
namespace {

bool Refusal(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH;
}

// Starts a connection to p's listener. Returns 0 with p->check_fd set (in progress), or the
// verdict at once: -1 no verdict / connected, or a positive errno.
int StartCheck(Peer* p) {
  sockaddr_storage ss{};
  if (p->raw.size() < sizeof(sa_family_t) || p->raw.size() > sizeof(ss)) return -1;
  memcpy(&ss, p->raw.data(), p->raw.size());
  socklen_t len = 0;
  if (ss.ss_family == AF_INET) {
    len = sizeof(sockaddr_in);
  } else if (ss.ss_family == AF_INET6) {
    len = sizeof(sockaddr_in6);
  } else {
    return -1;
  }
  if (p->raw.size() < len) return -1;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
    close(fd);
    return -1;
  }
  int e = errno;
  if (e == EINPROGRESS) {
    p->check_fd = fd;
    return 0;
  }
  close(fd);
  return Refusal(e) ? e : -1;
}

// shm: ESRCH when the process in "fi_shm://<pid>:..." is gone or a zombie, else -1.
int CheckPid(const Peer* p) {
  static const char kPrefix[] = "fi_shm://";
  std::string a(p->raw.begin(), p->raw.end());
  if (a.compare(0, sizeof(kPrefix) - 1, kPrefix) != 0) return -1;
  char* end = nullptr;
  long pid = strtol(a.c_str() + sizeof(kPrefix) - 1, &end, 10);
  if (pid <= 0 || end == nullptr || *end != ':') return -1;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return ESRCH;
  char path[64];
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  FILE* f = fopen(path, "re");
  if (f == nullptr) return -1;
  char buf[512] = {};
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char* paren = strrchr(buf, ')');  // "pid (comm) S ..."
  if (paren != nullptr && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X')) return ESRCH;
  return -1;
}

// Result of the connection in flight: 0 still pending, -1 connected or no verdict, else errno.
int PollCheck(Peer* p, uint64_t now) {
  pollfd pfd{p->check_fd, POLLOUT, 0};
  int n = poll(&pfd, 1, 0);
  if (n == 0) {
    if (now - p->check_started_ns < kCheckTimeoutNs) return 0;
    StopCheck(p);
    return -1;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  if (n < 0 || getsockopt(p->check_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = 0;
  StopCheck(p);
  return Refusal(err) ? err : -1;
}

void Verdict(Context* c, Peer* p, int v, uint64_t now) {
  if (v <= 0) {
    p->refusals = 0;
    p->next_check_ns = now + kCheckIntervalNs;
    return;
  }
  if (++p->refusals < 2) {
    p->next_check_ns = now + kRecheckNs;
    return;
  }
  char addr[96] = "?";
  size_t alen = sizeof(addr);
  fi_av_straddr(c->av, p->raw.data(), addr, &alen);
  char why[256];
  if (c->liveness == Liveness::kPid) {
    snprintf(why, sizeof(why),
             "ofi: rank %d is gone: the process of its endpoint %s has exited while requests on "
             "it are pending",
             p->rank, addr);
  } else {
    snprintf(why, sizeof(why),
             "ofi: rank %d is gone: its endpoint %s refuses connections (%s) while requests on it "
             "are pending",
             p->rank, addr, strerror(v));
  }
  MarkPeerDead(c, p, why);
}

}  // namespace

Liveness LivenessMode(const fi_info* info) {
  const char* prov = info->fabric_attr->prov_name;
  if (prov == nullptr) return Liveness::kNone;
  if (strcmp(prov, "shm") == 0 && info->addr_format == FI_ADDR_STR) return Liveness::kPid;
  if (info->addr_format != FI_SOCKADDR_IN && info->addr_format != FI_SOCKADDR_IN6 &&
      info->addr_format != FI_SOCKADDR) {
    return Liveness::kNone;
  }
  // The core provider (the first name) must be one that listens on TCP at its address.
  if (strncmp(prov, "tcp", 3) == 0 || strncmp(prov, "net", 3) == 0) return Liveness::kConnect;
  return Liveness::kNone;
}

void StopCheck(Peer* p) {
  if (p->check_fd >= 0) close(p->check_fd);
  p->check_fd = -1;
}

void CheckPeers(Context* c) {
  uint64_t now = NowNs();
  if (now - c->last_scan_ns < kScanNs || c->peers.empty()) return;
  c->last_scan_ns = now;
  // Round robin from where the last scan stopped, at most kMaxNewChecks new checks per scan and
  // kMaxOpenChecks connections open, so that a rank waiting with many peers stays cheap for them.
  size_t n = c->peers.size();
  int started = 0, open = 0;
  for (auto& owned : c->peers)
    open += owned->check_fd >= 0 ? 1 : 0;
  for (size_t k = 0; k < n; ++k) {
    size_t idx = (c->scan_cursor + k) % n;
    Peer* p = c->peers[idx].get();
    if (p->dead || p->closed) continue;
    if (p->check_fd >= 0) {
      int v = PollCheck(p, now);
      if (p->check_fd < 0) --open;
      if (v != 0) Verdict(c, p, v, now);
      continue;
    }
    if (p->recvs_in_flight + p->others_in_flight == 0) {
      p->refusals = 0;
      continue;
    }
    if (p->refusals == 0 && now - p->last_heard_ns < kQuietNs) continue;
    if (now < p->next_check_ns || started >= kMaxNewChecks || open >= kMaxOpenChecks) continue;
    if (++started == kMaxNewChecks) c->scan_cursor = idx + 1;
    p->check_started_ns = now;
    int v = c->liveness == Liveness::kPid ? CheckPid(p) : StartCheck(p);
    if (p->check_fd >= 0) ++open;
    if (v != 0) Verdict(c, p, v, now);
  }
}

}  // namespace weft_ofi
