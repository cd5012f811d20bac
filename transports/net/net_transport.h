// A network transport plugin (include/weft/transport.h) adapted to the engine's slot channels.
//
// Per peer and channel, this rank keeps WEFT_NET_NSLOTS send slots and as many receive slots, each
// a header plus one chunk (WEFT_CHUNK_SIZE), in one registered arena. The engine fills a send slot
// and the adapter posts it as one tagged message; every receive slot has a receive posted for the
// next message in sequence, so messages match by (peer, sequence number) whatever order the plugin
// completes them in, and a slot is reposted as soon as the engine hands it back. The header carries
// the engine's MsgTag, which the engine checks as it does for shared memory.
//
// Failures: a request that fails records the first error (naming the peer and the plugin's reason),
// and checkPeers() reports it. poison() sends the failure to every peer on a control tag, whose
// receive is posted at set-up, so peers waiting on this rank stop at once rather than at their
// timeout.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/transport.h"
#include "transports/net/plugin_loader.h"

namespace weft {

struct NetConfig {
  size_t slotBytes = 128 * 1024;  // payload per slot (WEFT_CHUNK_SIZE)
  int nslots = 8;                 // per peer, channel and direction (WEFT_NET_NSLOTS)
  // Channels per peer (WEFT_NCHANNELS): each has its own slots and message order and, where the
  // plugin declares WEFT_TP_CAP_MULTI_EP, its own plugin endpoint (a connection of its own).
  int channels = 1;
  // Steps of at least this many bytes go as one whole transfer straight between the ranks'
  // buffers (Endpoint::directThreshold); 0: never.
  uint64_t directBytes = 256 * 1024;
};

// Collective over all `nranks` ranks (each must call it with the same plugin): loads the plugin
// named `spec` ("ucx", "ofi" or a path), initialises it, exchanges addresses through `oob` and
// connects to every rank r with peers[r] set (this rank's own endpoint is a loop in memory). If
// loading or set-up fails on any rank, every rank returns the same error, naming that rank, so that
// all can go on to the next choice together.
Result<std::unique_ptr<Transport>> createNetTransport(const std::string& spec, int rank, int nranks,
                                                      uint64_t commId,
                                                      const std::vector<bool>& peers,
                                                      const NetConfig& cfg, OobExchange& oob);

}  // namespace weft
