// The 128-byte weftUniqueId: where the bootstrap root listens and the secret that admits a rank.
//
// Layout (UniqueIdLayout below; integers big-endian, so that an id made on one host reads the
// same on another):
//
//   offset  size  field
//        0     8  magic "WEFTID01"
//        8     1  version (kUniqueIdVersion)
//        9     7  reserved, zero
//       16    24  the root's address: PackedAddress (family 4|6, port, IPv6 scope, address)
//       40    16  the secret: 128 random bits from getrandom()
//       56    64  reserved, zero
//      120     8  checksum: FNV-1a 64 over bytes 0..119
//
// Decoding checks, in this order, the magic, the version, the checksum, then the address (family
// and a non-zero port), and names the check that failed, so that an id mangled in transit
// (truncated, sent as a C string, mixed up with another buffer) is reported as such instead of as a
// connection failure later.
//
// The secret is what a connection presents to the root and to its ring neighbours before it is
// believed. It keeps stray connections (a stale process of a previous job, a port scanner, another
// job that reuses the port) out of a communicator. It is not a defence against an attacker who can
// read the id or the traffic: the bootstrap is neither encrypted nor authenticated beyond this.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "bootstrap/socket.h"
#include "core/status.h"
#include "weft/weft.h"

namespace weft::bootstrap {

inline constexpr char kUniqueIdMagic[8] = {'W', 'E', 'F', 'T', 'I', 'D', '0', '1'};
inline constexpr uint8_t kUniqueIdVersion = 1;

struct UniqueIdLayout {
  char magic[8];
  uint8_t version;
  uint8_t reserved0[7];
  PackedAddress root;
  uint8_t secret[16];
  uint8_t reserved1[64];
  uint8_t checksum[8];  // big-endian FNV-1a 64 of the 120 bytes before it
};
static_assert(sizeof(UniqueIdLayout) == WEFT_UNIQUE_ID_BYTES,
              "the unique id layout must be 128 bytes");
static_assert(offsetof(UniqueIdLayout, checksum) == 120, "the checksum must be the last 8 bytes");

struct Secret {
  std::array<uint8_t, 16> bytes{};
  bool operator==(const Secret& other) const = default;
};

// FNV-1a, 64 bits. Not cryptographic: a checksum and a cheap mixer.
inline constexpr uint64_t kFnvOffsetBasis = 0xcbf29ce484222325ull;
uint64_t fnv1a64(const void* data, size_t n, uint64_t basis = kFnvOffsetBasis);

// The checksum an id should carry (over its first 120 bytes).
uint64_t uniqueIdChecksum(const weftUniqueId& id);

// 128 bits from getrandom().
Result<Secret> randomSecret();

// A secret all ranks can compute from text they share, for weftCommInitFromEnv, where the ranks
// only know the rendezvous address and the world size (the text is "host:port/nranks"). It guards
// against stray connections (another job on the same port, a rank started with a different world
// size), not against attackers: anyone who knows the address can compute it.
Secret deriveSecret(const std::string& text);

// Writes all 128 bytes. The root address must be valid and have a non-zero port.
Status encodeUniqueId(const SocketAddress& root, const Secret& secret, weftUniqueId* out);
// weftInvalidArgument naming the failed check ("unique id is corrupted: checksum mismatch; ...").
Status decodeUniqueId(const weftUniqueId& id, SocketAddress* root, Secret* secret);

}  // namespace weft::bootstrap
