// The bootstrap root: the rendezvous service that tells every rank where the others listen.
//
// startRoot() binds a listening socket (port 0 = ephemeral) and hands it to a detached thread,
// which owns everything it uses (the socket, a copy of the secret, the timeout read at start) and
// touches nothing of the caller's. The thread:
//   1. accepts connections and reads a RankHello from each, several at once (a silent connection
//      cannot stall the others). A hello with a bad magic or a wrong secret is dropped (closed,
//      WARN logged); one with the right secret but an impossible rank/nranks gets an error reply
//      and is closed; the root keeps waiting in both cases.
//   2. takes nranks from the first registration. A later hello with another nranks, or a rank
//      that joins twice, is fatal: every connected rank gets an error reply naming the problem,
//      and the root exits.
//   3. when all nranks have joined, sends each of them the table of all listen addresses and
//      exits.
//   4. when WEFT_CONNECT_TIMEOUT passes first (counted from the start, and again from the first
//      registration, whichever ends later), sends each connected rank an error naming the
//      missing ranks ("ranks 3, 5 of 8 did not join within 5 s; ...") and exits. With no
//      registration at all it logs a WARN and exits.
// Its lifetime is bounded: at most twice the timeout to collect, then the timeout to deliver.
//
// The wire messages (all integers big-endian):
//   RankHello (rank -> root, 52 bytes): magic "WFH1", secret[16], rank u32, nranks u32, and the
//     PackedAddress of the rank's own listening socket.
//   RootReply (root -> rank): magic "WFR1", kind u32 (kReplyTable | kReplyError), code u32 (a
//     weftResult_t, for errors), length u32, then `length` bytes: nranks PackedAddresses in rank
//     order, or the error text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bootstrap/socket.h"
#include "bootstrap/unique_id.h"
#include "core/status.h"

namespace weft::bootstrap {

// Accepts connections on a listening socket and reads a fixed-size greeting from each, from many at
// once, so that one silent or slow stray connection cannot hold up the real ones. Used by the root
// for RankHellos and by Bootstrap for the ring's hellos.
class Greeter {
 public:
  struct Greeting {
    Socket socket;
    SocketAddress from;
    std::vector<uint8_t> bytes;  // exactly the greeting size
  };
  // The listener must outlive the Greeter.
  Greeter(const Socket& listener, size_t greetingBytes)
      : listener_(listener), bytes_(greetingBytes) {}
  // The next connection whose greeting is complete, or weftTimeout at the deadline. Connections
  // that close or fail before their greeting is complete are dropped (closed, WARN logged).
  // Connections still incomplete stay pending for the next call and are closed with the Greeter.
  Result<Greeting> next(Deadline deadline);

 private:
  struct Pending {
    Socket socket;
    SocketAddress from;
    std::vector<uint8_t> buf;
    size_t got = 0;
  };
  const Socket& listener_;
  size_t bytes_;
  std::vector<Pending> pending_;
};

// The most ranks one communicator's bootstrap accepts (bounds what a hello can make the root
// allocate).
inline constexpr int kMaxRanks = 1 << 22;

struct RankHello {
  Secret secret;
  int rank = -1;
  int nranks = 0;
  SocketAddress listenAddr;
};
inline constexpr size_t kRankHelloBytes = 52;
// Writes kRankHelloBytes.
void encodeRankHello(const RankHello& hello, uint8_t* out);
// Checks the magic and the address; rank, nranks and the secret are the reader's to judge.
Status decodeRankHello(const uint8_t* in, RankHello* hello);

inline constexpr size_t kRootReplyHeaderBytes = 16;
inline constexpr uint32_t kReplyTable = 1;
inline constexpr uint32_t kReplyError = 2;
inline constexpr uint32_t kMaxReplyErrorBytes = 64 * 1024;
struct RootReplyHeader {
  uint32_t kind = 0;
  uint32_t code = 0;
  uint32_t length = 0;
};
// Writes kRootReplyHeaderBytes.
void encodeRootReplyHeader(const RootReplyHeader& header, uint8_t* out);
Status decodeRootReplyHeader(const uint8_t* in, RootReplyHeader* header);

// Binds to listenAddr (port 0 = ephemeral), reports the bound address in *boundAddr and starts
// serving in a detached thread, as described above. Returns once the socket is listening, so a rank
// may connect at once.
Status startRoot(const SocketAddress& listenAddr, const Secret& secret, SocketAddress* boundAddr);

// How many root threads are running in this process (tests wait for 0 to check that they end).
int liveRootThreads();

// "rank 3", "ranks 3, 5", "ranks 0-2, 7" (at most ~16 items, then "and N more"): for messages.
std::string describeRanks(const std::vector<int>& sortedRanks);

}  // namespace weft::bootstrap
