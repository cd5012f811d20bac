// The built-in shared-memory transport for ranks on one host.
//
// Each rank creates one segment (a file in WEFT_SHM_DIR, mode 0600, named after the communicator's
// random id) holding its doorbell, its failure record and one FIFO per sender (itself included).
// Every rank maps every segment; as soon as all have mapped them the files are unlinked, so nothing
// is left in /dev/shm even if a process is killed later. Free space is checked before anything is
// created, and a shortfall is reported with the directory, the size needed and the remedies.
//
// When cfg.direct is set, set-up also checks that every rank may read every other's memory with
// process_vm_readv; if all may, the transport offers PeerMemory and one-sided algorithms can run,
// otherwise it says why at INFO and the tuner keeps to message-passing ones.
//
// A peer is known to be gone when its process no longer exists (or is a zombie), or when it has
// written a failure into its segment; checkPeers() reports either, naming the rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/transport.h"

namespace weft {

struct ShmConfig {
  std::string dir = "/dev/shm";
  size_t slotBytes = 128 * 1024;
  int nslots = 8;
  int channels = 1;  // FIFOs per peer and direction (WEFT_NCHANNELS)
  // Offer one-sided access to peers' memory when the kernel allows it on every rank
  // (WEFT_SHM_DIRECT).
  bool direct = true;
  // The communicator's rank of each member, when the transport serves a subset of the ranks (those
  // on this host); empty when it serves them all. Used to name ranks in messages.
  std::vector<int> ranks;
};

// Collective over `nranks` ranks, all on this host (the whole communicator, or its ranks on this
// host with cfg.ranks naming them; `rank` and peers are then positions in that list). `oob`
// exchanges small records between them during set-up.
Result<std::unique_ptr<Transport>> createShmTransport(int rank, int nranks, uint64_t commId,
                                                      const ShmConfig& cfg, OobExchange& oob);

// Bytes of one rank's segment, for messages and tests.
size_t shmSegmentBytes(int nranks, const ShmConfig& cfg);

}  // namespace weft
