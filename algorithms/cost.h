// The cost model algorithms are estimated with: per link level, a latency per hand-off (alpha), a
// time per byte moved through a message (beta), per byte reduced (gamma), per byte copied in a
// rank's own memory, per byte a one-sided step moves from or to a peer's memory (through the
// kernel, or mapped) with a price per move through the kernel, and the cost of one synchronisation
// of the ranks. Each algorithm states its own formula in these terms next to its schedule builder;
// the tuner evaluates them for the level a call spans. The defaults were measured on a 2-core
// shared-memory machine; weft-tune measures them and writes a tuning file (WEFT_TUNE_FILE).
#pragma once

#include <cmath>

namespace weft {

struct LevelCost {
  double alphaUs = 0.5;          // one message hand-off
  double betaUsPerByte = 1e-4;   // a byte copied through a message slot (~10 GB/s)
  double gammaUsPerByte = 5e-5;  // a byte reduced (~20 GB/s)
  // A byte copied in this rank's own memory, out of memory rather than cache: a single rank's
  // copy, a local rotation, an input read once more per peer. The default (~3 GB/s) is a memcpy
  // of uncached data on the 2-core VMs weft is developed on with every rank copying at once.
  double copyUsPerByte = 3e-4;
  double syncUs = 1.0;  // one barrier-like synchronisation of the ranks involved
  // What one more message costs where several go out together without waiting on each other
  // (posting it and taking it at the other end), beyond the hand-off they share.
  double msgUs = 0.1;
  // A byte a one-sided step loads or stores straight in a peer's mapped memory: a call whose
  // buffers are registered weftMemAlloc memory on every rank (CollDesc::mapped). The default is
  // memcpy of cache-resident data on those VMs (~29 GB/s).
  double mappedCopyUsPerByte = 3.5e-5;
  // A byte a one-sided step moves from or to a peer's memory that is not mapped here: through the
  // kernel (process_vm_readv) on one node, RMA between nodes. The default is what process_vm_readv
  // reaches on those VMs (~3 GB/s), so that one-sided algorithms are chosen only where they pay
  // with ordinary buffers.
  double kernelCopyUsPerByte = 3e-4;
  // The same where the call's buffers stay in the caches (kKernelCopyCachedBytes), where it is
  // cheaper (the lesser of the two applies): what process_vm_readv of 1 MiB in cache takes per
  // byte, measured at init (4.7e-5 to 5e-5 on the Intel development VMs). It has no tuning-file
  // key; unmeasured, it is no cheaper.
  double kernelCopyCachedUsPerByte = 3e-4;
  // What one such move costs beyond its bytes: a process_vm_readv/writev call (the system call,
  // finding and pinning the peer's pages) on one node, an RMA operation between nodes. The default
  // is a 64-byte process_vm_readv on those VMs (0.45-0.6 us); init measures it (kernelCopyCost()).
  double kernelCallUs = 0.6;
  // The engine's pipeline unit (WEFT_CHUNK_SIZE): a one-sided step that reduces from a peer's
  // memory makes one such move per chunk, so that each chunk is reduced while it is in cache.
  double chunkBytes = 128 * 1024;
};

struct CostModel {
  LevelCost intra;  // ranks on one node
  // Ranks on different nodes. The defaults are TCP between network namespaces of the development
  // VMs (~10 us a hand-off, ~2 GB/s, a send system call and the peer's poll per further message);
  // weft-tune measures real links. An RMA operation costs about a hand-off.
  LevelCost inter{10.0, 5e-4, 5e-5, 5e-4, 20.0, 5.0, 5e-4, 5e-4, 5e-4, 10.0};
};

inline double log2Ceil(int p) {
  return std::ceil(std::log2(static_cast<double>(p)));
}
inline double log2Floor(int p) {
  return std::floor(std::log2(static_cast<double>(p)));
}
inline bool isPow2(int p) {
  return p > 0 && (p & (p - 1)) == 0;
}

}  // namespace weft
