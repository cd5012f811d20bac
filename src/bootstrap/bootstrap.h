// The bootstrap: out-of-band setup between the ranks of a communicator over TCP, before any
// transport exists. One Bootstrap per communicator rank.
//
// create():
//   1. decodes the unique id (root address + secret) and connects to the root, retrying until
//      WEFT_CONNECT_TIMEOUT ("rank 2: no bootstrap root at 127.0.0.1:4000 after 5 s; is rank 0
//      running?");
//   2. opens its own listening socket on an ephemeral port: on the interface WEFT_SOCKET_IFNAME
//      selects when it is set, otherwise on the local address of its connection to the root,
//      i.e. the interface and address family that reach the root (loopback when the root is on
//      loopback);
//   3. registers with the root (RankHello) and receives the table of every rank's listen
//      address, or the root's error (a missing, duplicate or inconsistent rank), which becomes
//      this call's Status;
//   4. builds a ring: connects to rank+1 and accepts from rank-1, each connection first
//      presenting the secret and the sender's rank (wrong ones are dropped and logged).
// Every wait is bounded by WEFT_CONNECT_TIMEOUT, read once at create(). Waiting for the root's
// answer is measured from the moment the connection to it succeeded, plus a second of grace, so
// that the root's own timeout (which started earlier) always reports first and names the missing
// ranks.
//
// allgather() runs over the ring as one pipelined stream: each rank sends its own slot and then
// forwards what it receives, sending and receiving at once (poll on both sockets), so no payload
// size can deadlock. A 16-byte header (sequence number and size) goes first, so that ranks making
// different bootstrap calls get an error instead of garbage. After any error the Bootstrap refuses
// further calls (the stream is out of step); destroy it.
//
// A Bootstrap is used by one thread at a time. Its destructor closes every socket; nothing
// outlives it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "bootstrap/socket.h"
#include "bootstrap/unique_id.h"
#include "core/status.h"
#include "weft/weft.h"

namespace weft::bootstrap {

class Bootstrap {
 public:
  static Result<std::unique_ptr<Bootstrap>> create(const weftUniqueId& id, int rank, int nranks);
  ~Bootstrap();
  Bootstrap(const Bootstrap&) = delete;
  Bootstrap& operator=(const Bootstrap&) = delete;

  int rank() const { return rank_; }
  int nranks() const { return nranks_; }
  // Every rank's bootstrap listen address, as the root collected them (informative: the listening
  // sockets are closed once the ring is built).
  const std::vector<SocketAddress>& addresses() const { return addresses_; }

  // In place: buf holds nranks*bytesPerRank bytes; this rank's slot (rank*bytesPerRank) is filled
  // by the caller, the others are filled from the other ranks. Every rank must pass the same
  // bytesPerRank.
  Status allgather(void* buf, size_t bytesPerRank);
  // Returns once every rank has entered it (an allgather of one byte).
  Status barrier();

 private:
  Bootstrap(int rank, int nranks, double timeout, const Secret& secret);
  Status join(const SocketAddress& root);
  Status buildRing(Socket listener);
  Status stream(uint8_t* buf, size_t bytesPerRank);
  Status fail(Status s);

  int rank_;
  int nranks_;
  double timeout_;  // seconds: WEFT_CONNECT_TIMEOUT at create()
  Secret secret_;
  std::vector<SocketAddress> addresses_;
  Socket next_;  // to rank+1: this rank sends here
  Socket prev_;  // from rank-1: this rank receives here
  uint32_t sequence_ = 0;
  Status broken_;  // the first error of allgather; later calls fail with it
};

// For weftGetUniqueId: picks the local address (pickLocalAddress), draws a random secret, starts a
// root on an ephemeral port of that address and encodes the id.
Status createUniqueId(weftUniqueId* out);

// For weftCommInitFromEnv, where the ranks share only the rendezvous address and the world size:
// the secret is deriveSecret(hostPort + "/" + nranks) and the root is hostPort. With serveRoot
// (rank 0) it also starts the root there: bound to that address when it is one of this host's, else
// to the wildcard address of that port (SO_REUSEADDR is set either way).
Status uniqueIdFromRoot(const std::string& hostPort, int nranks, bool serveRoot, weftUniqueId* out);

}  // namespace weft::bootstrap
