// The window protocol: what turns a schedule with one-sided steps into one the executor can run.
//
// A one-sided step reads or writes a peer's buffer, so before it runs this rank must know where
// the peer's buffers are, and the peer must not return from the call (and hand its buffers back to
// the application) while anyone still uses them. addWindowProtocol() adds, as ordinary messages:
//   - first, this rank's window table (one entry per buffer of every part: a WindowEntry, then the
//     transport's key for the buffer where it needs one, see PeerMemory::keyBytes) sent to every
//     peer in Schedule::exposeTo, and the table of every peer whose window this rank uses received
//     into a slot of its own; each one-sided step waits for its peer's table;
//   - last, a zero-byte "done" to every peer whose window this rank used, after the last step that
//     used it, and a wait for "done" from every peer in exposeTo.
// The engine fills this rank's table per call (addresses change from call to call); the plan stays
// cacheable.
#pragma once

#include <cstdint>
#include <vector>

#include "core/schedule.h"
#include "core/status.h"
#include "engine/transport.h"

namespace weft {

struct WindowLayout {
  BufferId tableBuf = kNoBuf;       // this rank's table, filled by the engine per call
  BufferId peerTablesBuf = kNoBuf;  // the tables received from peers, one slot each
  uint64_t entryBytes = 0;          // a WindowEntry and the key bytes after it, 8-byte aligned
  uint64_t tableBytes = 0;          // nparts * kBuffersPerPart entries
  std::vector<int32_t> peers;       // slot -> rank of the peers whose windows this rank uses
  std::vector<int32_t> slotOf;      // rank -> slot, -1 where unused (sized nranks)
};

bool usesWindows(const Schedule& s);

// `in` covers `nparts` operations (buffer ids 0 .. nparts*kBuffersPerPart-1); the protocol's two
// buffers take the next two ids. `keyBytes`: PeerMemory::keyBytes() of the transport.
Status addWindowProtocol(const Schedule& in, int nparts, int nranks, uint32_t keyBytes,
                         Schedule* out, WindowLayout* layout);

// Entry `index` of a window table (this rank's or a peer's), and the key bytes after it.
inline WindowEntry* windowEntry(char* table, const WindowLayout& w, uint64_t index) {
  return reinterpret_cast<WindowEntry*>(table + index * w.entryBytes);
}
inline const WindowEntry* windowEntry(const char* table, const WindowLayout& w, uint64_t index) {
  return reinterpret_cast<const WindowEntry*>(table + index * w.entryBytes);
}
inline const void* windowKey(const WindowEntry* e, const WindowLayout& w) {
  return w.entryBytes > sizeof(WindowEntry) ? reinterpret_cast<const char*>(e) + sizeof(WindowEntry)
                                            : nullptr;
}

}  // namespace weft
