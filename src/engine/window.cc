#include "engine/window.h"

#include <algorithm>

namespace weft {

bool usesWindows(const Schedule& s) {
  if (!s.exposeTo.empty()) return true;
  for (const Step& st : s.steps)
    if (stepIsOneSided(st.kind)) return true;
  return false;
}

Status addWindowProtocol(const Schedule& in, int nparts, int nranks, uint32_t keyBytes,
                         Schedule* out, WindowLayout* layout) {
  WindowLayout w;
  w.tableBuf = static_cast<BufferId>(nparts * kBuffersPerPart);
  w.peerTablesBuf = static_cast<BufferId>(w.tableBuf + 1);
  w.entryBytes = (sizeof(WindowEntry) + keyBytes + 7) & ~uint64_t{7};
  w.tableBytes = static_cast<uint64_t>(nparts) * kBuffersPerPart * w.entryBytes;
  w.slotOf.assign(static_cast<size_t>(nranks), -1);
  for (const Step& st : in.steps) {
    if (!stepIsOneSided(st.kind)) continue;
    if (st.windowPeer < 0 || st.windowPeer >= nranks)
      return errorStatus(weftInternalError, "one-sided step names peer %d of %d ranks",
                         st.windowPeer, nranks);
    if (st.remote.buf >= w.tableBuf)
      return errorStatus(weftInternalError, "one-sided step names buffer %u of %d operations",
                         st.remote.buf, nparts);
    int32_t& slot = w.slotOf[static_cast<size_t>(st.windowPeer)];
    if (slot < 0) {
      slot = static_cast<int32_t>(w.peers.size());
      w.peers.push_back(st.windowPeer);
    }
  }

  Schedule s;
  s.elemSize = in.elemSize;
  s.scratchBytes = in.scratchBytes;
  s.exposeTo = in.exposeTo;
  for (int32_t peer : in.exposeTo)
    s.send(peer, Region{w.tableBuf, 0, w.tableBytes});
  std::vector<StepId> attached(w.peers.size());
  for (size_t k = 0; k < w.peers.size(); ++k)
    attached[k] = s.recv(w.peers[k], Region{w.peerTablesBuf, k * w.tableBytes, w.tableBytes});

  const StepId base = static_cast<StepId>(s.steps.size());
  std::vector<std::vector<StepId>> users(w.peers.size());
  std::vector<StepId> after;
  for (size_t i = 0; i < in.steps.size(); ++i) {
    const Step& st = in.steps[i];
    after.clear();
    for (uint32_t d = 0; d < st.depCount; ++d)
      after.push_back(in.deps[st.depBegin + d] + base);
    if (stepIsOneSided(st.kind)) {
      const auto slot = static_cast<size_t>(w.slotOf[static_cast<size_t>(st.windowPeer)]);
      after.push_back(attached[slot]);
      users[slot].push_back(base + static_cast<StepId>(i));
    }
    s.add(st, after);
  }
  for (size_t k = 0; k < w.peers.size(); ++k) {
    Step done;  // a zero-byte message

    done.kind = StepKind::kSend;
    done.sendPeer = w.peers[k];
    done.src = Region{w.tableBuf, 0, 0};
    s.add(done, users[k]);
  }
  for (int32_t peer : in.exposeTo) {
    Step wait;
    wait.kind = StepKind::kRecv;
    wait.recvPeer = peer;
    wait.dst = Region{w.tableBuf, 0, 0};
    s.add(wait);
  }
  *out = std::move(s);
  *layout = std::move(w);
  return Status::Ok();
}

}  // namespace weft
