// UCX plugin: what the context and its endpoints use, read from UCX's own reports (UCX 1.13 has no
// query for an endpoint's transports, so ucp_ep_print_info and ucp_context_print_info are parsed).
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "ucx_internal.h"

namespace weft_ucx {
namespace {

// Runs print(FILE*) into memory and returns what it wrote (UCX reports lanes and resources only
// through its print functions in 1.13).
template <class F>
std::string Capture(F&& print) {
  char* mem = nullptr;
  size_t size = 0;
  FILE* fp = open_memstream(&mem, &size);
  if (fp == nullptr) throw std::bad_alloc();
  print(fp);
  fclose(fp);
  std::unique_ptr<char, void (*)(void*)> owned(mem, free);
  return mem != nullptr ? std::string(mem, size) : std::string();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    out.emplace_back(text, pos, nl - pos);
    pos = nl + 1;
  }
  return out;
}

void AddUnique(std::vector<std::string>* v, const std::string& s) {
  if (!s.empty() && std::find(v->begin(), v->end(), s) == v->end()) v->push_back(s);
}

std::string Join(const std::vector<std::string>& v, size_t max_len) {
  std::string out;
  for (const std::string& s : v) {
    size_t need = out.size() + (out.empty() ? 0 : 1) + s.size();
    if (need > max_len) break;  // whole entries only
    if (!out.empty()) out += ',';
    out += s;
  }
  return out;
}

bool IsShmTl(const std::string& tl) {
  return tl == "posix" || tl == "sysv" || tl == "xpmem" || tl == "knem" || tl == "cma";
}

bool IsAcceleratorTl(const std::string& tl) {
  return tl.rfind("cuda", 0) == 0 || tl.rfind("rocm", 0) == 0 || tl == "gdr_copy" ||
         tl.rfind("ze_", 0) == 0;
}

}  // namespace

// From ucp_context_print_info's "resource N : md M dev D flags -- tl/dev" lines: caps.device (the
// resources endpoints can use, e.g. "tcp/eth0,tcp/lo" or "sysv,posix,cma"), the failure mode and
// the tuner hints, rough orders of magnitude for the kind of transport endpoints will use:
//   RDMA (rc/ud/dc...) 2 us, 12 GB/s; tcp 25 us, 1.25 GB/s; shared memory only 0.5 us, 8 GB/s.
bool DescribeResources(Context* c, const char* mode) {
  std::string info = Capture([c](FILE* fp) { ucp_context_print_info(c->ucp, fp); });
  std::vector<std::string> shm, net;
  bool has_tcp = false, has_rdma = false;
  for (const std::string& line : Lines(info)) {
    if (line.find("resource") == std::string::npos || line.find(" md ") == std::string::npos) {
      continue;
    }
    size_t sp = line.find_last_of(" \t");
    std::string res = line.substr(sp == std::string::npos ? 0 : sp + 1);
    size_t slash = res.find('/');
    if (slash == std::string::npos) continue;
    std::string tl = res.substr(0, slash);
    if (tl == "self" || IsAcceleratorTl(tl)) continue;
    if (IsShmTl(tl)) {
      AddUnique(&shm, tl);
    } else {
      AddUnique(&net, res);
      if (tl == "tcp") {
        has_tcp = true;
      } else {
        has_rdma = true;
      }
    }
  }
  // UCX 1.13 detects a dead peer on network transports only, and an endpoint with peer error
  // handling never uses shared memory. Guard endpoints (see FailureMode) are the default over tcp,
  // where error handling on the data path costs most; over RDMA the data endpoints keep it (an
  // RDMA endpoint without it may abort the process when its peer dies).
  const bool has_net = has_tcp || has_rdma;
  std::string m = mode != nullptr ? mode : "auto";  // weft passes it upper-cased
  std::transform(m.begin(), m.end(), m.begin(),
                 [](char ch) { return ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch + 32) : ch; });
  if (m == "auto") {
    c->failure_mode = !has_net   ? FailureMode::kNone
                      : has_rdma ? FailureMode::kPeer
                                 : FailureMode::kGuard;
  } else if (m == "peer" || m == "guard") {
    if (!has_net) {
      SetError(c,
               "ucx: WEFT_UCX_ERROR_MODE=%s needs a network transport, and UCX opened none "
               "(UCX_TLS?)",
               m.c_str());
      return false;
    }
    c->failure_mode = m == "peer" ? FailureMode::kPeer : FailureMode::kGuard;
  } else {
    SetError(c, "ucx: WEFT_UCX_ERROR_MODE=\"%s\": expected auto, peer or guard", m.c_str());
    return false;
  }
  std::vector<std::string> used;
  if (c->failure_mode != FailureMode::kNone) used = net;
  if (c->failure_mode != FailureMode::kPeer) used.insert(used.end(), shm.begin(), shm.end());
  c->device =
      used.empty() ? std::string("ucx") : Join(used, sizeof(weft_transport_caps_t{}.device) - 1);
  if (has_rdma) {
    c->latency_us = 2.0;
    c->bandwidth_gbps = 12.0;
  } else if (has_tcp) {
    c->latency_us = 25.0;
    c->bandwidth_gbps = 1.25;
  } else {
    c->latency_us = 0.5;
    c->bandwidth_gbps = 8.0;
  }
  return true;
}

int DescribeEp(Context* c, Endpoint* e, char* buf, size_t len) {
  if (buf == nullptr || len == 0) {
    SetError(c, "ucx: describe_ep: no buffer");
    return WEFT_TP_ERR_INVALID;
  }
  if (!e->failed && e->ep != nullptr) {
    // Lines look like "#   lane[0]:  3:sysv/memory.0 md[2]   -> md[2]/sysv/sysdev[255] am am_bw#0":
    // keep "tl/device" (without the ".path" index) of every lane, first appearance first.
    std::string info = Capture([e](FILE* fp) { ucp_ep_print_info(e->ep, fp); });
    std::vector<std::string> lanes;
    for (const std::string& line : Lines(info)) {
      size_t pos = line.find("lane[");
      if (pos == std::string::npos) continue;
      pos = line.find("]:", pos);
      if (pos == std::string::npos) continue;
      pos += 2;
      while (pos < line.size() && line[pos] == ' ')
        ++pos;
      size_t start = pos;
      while (pos < line.size() && line[pos] >= '0' && line[pos] <= '9')
        ++pos;
      if (pos < line.size() && line[pos] == ':' && pos > start) {
        start = ++pos;
      } else {
        pos = start;
      }
      size_t end = line.find(' ', start);
      std::string res =
          line.substr(start, end == std::string::npos ? std::string::npos : end - start);
      size_t dot = res.find_last_of('.');
      if (dot != std::string::npos && dot + 1 < res.size() &&
          res.find_first_not_of("0123456789", dot + 1) == std::string::npos) {
        res.resize(dot);
      }
      if (res.find('/') != std::string::npos) AddUnique(&lanes, res);
    }
    if (!lanes.empty()) e->desc = Join(lanes, 1024);
  }
  // A failed endpoint keeps its last answer (UCX has switched it to a lane-less configuration), so
  // the string weft keys its per-transport counters on stays stable.
  snprintf(buf, len, "%s", e->desc.empty() ? "ucx" : e->desc.c_str());
  return WEFT_TP_SUCCESS;
}

}  // namespace weft_ucx
