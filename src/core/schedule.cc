#include "core/schedule.h"

#include <algorithm>

#include "core/status.h"

namespace weft {

const char* stepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kSend:
      return "send";
    case StepKind::kRecv:
      return "recv";
    case StepKind::kRecvReduce:
      return "recvReduce";
    case StepKind::kRecvReduceSend:
      return "recvReduceSend";
    case StepKind::kRecvReduceCopySend:
      return "recvReduceCopySend";
    case StepKind::kRecvCopySend:
      return "recvCopySend";
    case StepKind::kCopy:
      return "copy";
    case StepKind::kReduce:
      return "reduce";
    case StepKind::kGet:
      return "get";
    case StepKind::kGetReduce:
      return "getReduce";
    case StepKind::kPut:
      return "put";
  }
  return "?";
}

uint64_t Step::bytes() const {
  switch (kind) {
    case StepKind::kSend:
    case StepKind::kRecvReduceSend:
    case StepKind::kPut:
      return src.bytes;
    default:
      return dst.bytes;
  }
}

StepId Schedule::add(const Step& s, std::initializer_list<StepId> after) {
  return add(s, std::vector<StepId>(after));
}

StepId Schedule::add(const Step& s, const std::vector<StepId>& after) {
  Step step = s;
  step.depBegin = static_cast<uint32_t>(deps.size());
  for (StepId d : after)
    if (d != kNoStep) deps.push_back(d);  // kNoStep: "after nothing", for conditional chains
  step.depCount = static_cast<uint32_t>(deps.size()) - step.depBegin;
  steps.push_back(step);
  return static_cast<StepId>(steps.size() - 1);
}

namespace {
Step makeStep(StepKind kind, int sendPeer, int recvPeer, Region dst, Region src) {
  Step s;
  s.kind = kind;
  s.sendPeer = sendPeer;
  s.recvPeer = recvPeer;
  s.dst = dst;
  s.src = src;
  return s;
}
const Region kNone{};
}  // namespace

StepId Schedule::send(int peer, Region src, std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kSend, peer, -1, kNone, src), after);
}

StepId Schedule::recv(int peer, Region dst, std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kRecv, -1, peer, dst, kNone), after);
}

StepId Schedule::recvReduce(int peer, Region dst, Region src, std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kRecvReduce, -1, peer, dst, src), after);
}

StepId Schedule::recvReduceSend(int recvPeer, int sendPeer, Region src,
                                std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kRecvReduceSend, sendPeer, recvPeer, kNone, src), after);
}

StepId Schedule::recvReduceCopySend(int recvPeer, int sendPeer, Region dst, Region src,
                                    std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kRecvReduceCopySend, sendPeer, recvPeer, dst, src), after);
}

StepId Schedule::recvCopySend(int recvPeer, int sendPeer, Region dst,
                              std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kRecvCopySend, sendPeer, recvPeer, dst, kNone), after);
}

StepId Schedule::copy(Region dst, Region src, std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kCopy, -1, -1, dst, src), after);
}

StepId Schedule::copy(Region dst, Region src, const std::vector<StepId>& after) {
  return add(makeStep(StepKind::kCopy, -1, -1, dst, src), after);
}

StepId Schedule::reduce(Region dst, Region src, std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kReduce, -1, -1, dst, src), after);
}

StepId Schedule::get(int peer, Region dst, Region remote, std::initializer_list<StepId> after) {
  Step s = makeStep(StepKind::kGet, -1, -1, dst, kNone);
  s.windowPeer = peer;
  s.remote = remote;
  return add(s, after);
}

StepId Schedule::getReduce(int peer, Region dst, Region src, Region remote,
                           std::initializer_list<StepId> after) {
  Step s = makeStep(StepKind::kGetReduce, -1, -1, dst, src);
  s.windowPeer = peer;
  s.remote = remote;
  return add(s, after);
}

StepId Schedule::put(int peer, Region remote, Region src, std::initializer_list<StepId> after) {
  Step s = makeStep(StepKind::kPut, -1, -1, kNone, src);
  s.windowPeer = peer;
  s.remote = remote;
  return add(s, after);
}

StepId Schedule::signal(int peer, std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kSend, peer, -1, kNone, Region{kSendBuf, 0, 0}), after);
}

StepId Schedule::waitFor(int peer, std::initializer_list<StepId> after) {
  return add(makeStep(StepKind::kRecv, -1, peer, Region{kRecvBuf, 0, 0}, kNone), after);
}

void Schedule::append(const Schedule& other, uint16_t part) {
  const uint32_t stepBase = static_cast<uint32_t>(steps.size());
  uint16_t phaseBase = 0;
  bool phased = false;
  for (const Step& s : other.steps)
    phased |= s.phase != 0;
  if (phased)
    for (const Step& s : steps)
      phaseBase = std::max<uint16_t>(phaseBase, static_cast<uint16_t>(s.phase + 1));
  auto shift = [&](Region r) {
    if (r.buf != kNoBuf) r.buf = static_cast<BufferId>(r.buf + part * kBuffersPerPart);
    return r;
  };
  for (const Step& s : other.steps) {
    Step t = s;
    t.part = part;
    t.phase = static_cast<uint16_t>(s.phase + phaseBase);
    t.dst = shift(s.dst);
    t.src = shift(s.src);
    t.remote = shift(s.remote);
    t.depBegin = static_cast<uint32_t>(deps.size());
    for (uint32_t d = 0; d < s.depCount; ++d)
      deps.push_back(other.deps[s.depBegin + d] + stepBase);
    steps.push_back(t);
  }
  for (int32_t peer : other.exposeTo)
    if (std::find(exposeTo.begin(), exposeTo.end(), peer) == exposeTo.end())
      exposeTo.push_back(peer);
}

namespace {
std::string bufName(BufferId b) {
  static const char* const kNames[] = {"send", "recv", "scratch"};
  std::string name = kNames[b % kBuffersPerPart];
  if (b >= kBuffersPerPart) name += std::to_string(b / kBuffersPerPart);
  return name;
}
}  // namespace

std::string Schedule::dump() const {
  std::string out;
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    out += strprintf("%zu %s%s", i, stepKindName(s.kind), s.finalize ? "*" : "");
    if (s.recvPeer >= 0) out += strprintf(" from %d", s.recvPeer);
    if (s.sendPeer >= 0) out += strprintf(" to %d", s.sendPeer);
    if (s.dst.buf != kNoBuf)
      out += strprintf(" dst=%s[%llu+%llu]", bufName(s.dst.buf).c_str(),
                       static_cast<unsigned long long>(s.dst.offset),
                       static_cast<unsigned long long>(s.dst.bytes));
    if (s.src.buf != kNoBuf)
      out += strprintf(" src=%s[%llu+%llu]", bufName(s.src.buf).c_str(),
                       static_cast<unsigned long long>(s.src.offset),
                       static_cast<unsigned long long>(s.src.bytes));
    if (s.windowPeer >= 0)
      out += strprintf(" window=%d:%s[%llu+%llu]", s.windowPeer, bufName(s.remote.buf).c_str(),
                       static_cast<unsigned long long>(s.remote.offset),
                       static_cast<unsigned long long>(s.remote.bytes));
    if (s.phase != 0) out += strprintf(" phase=%u", s.phase);
    if (s.depCount > 0) {
      out += " after";
      for (uint32_t d = 0; d < s.depCount; ++d)
        out += strprintf(" %u", deps[s.depBegin + d]);
    }
    out += '\n';
  }
  return out;
}

}  // namespace weft
