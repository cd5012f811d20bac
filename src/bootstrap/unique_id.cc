// Encoding and checking of weftUniqueId, and the bootstrap secret: see unique_id.h.
#include "bootstrap/unique_id.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace weft::bootstrap {
namespace {

constexpr const char* kRemedy = "pass the 128 bytes from weftGetUniqueId unchanged";

Status corrupted(const std::string& what) {
  return errorStatus(weftInvalidArgument, "unique id is corrupted: %s; %s", what.c_str(), kRemedy);
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t n, uint64_t basis) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = basis;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kPrime;
  }
  return h;
}

uint64_t uniqueIdChecksum(const weftUniqueId& id) {
  return fnv1a64(id.internal, offsetof(UniqueIdLayout, checksum));
}

Result<Secret> randomSecret() {
  Secret s;
  size_t got = 0;
  while (got < s.bytes.size()) {
    ssize_t k = getrandom(s.bytes.data() + got, s.bytes.size() - got, 0);
    if (k < 0) {
      if (errno == EINTR) continue;
      return sysError(errno, "getrandom() for the bootstrap secret");
    }
    got += static_cast<size_t>(k);
  }
  return s;
}

Secret deriveSecret(const std::string& text) {
  // Two FNV-1a passes with different starting points fill the 128 bits; the second also folds in
  // the first so that the halves differ even for an empty text.
  uint64_t a = fnv1a64(text.data(), text.size());
  uint64_t b = fnv1a64(text.data(), text.size(), a ^ 0x9e3779b97f4a7c15ull);
  Secret s;
  putBE<uint64_t>(s.bytes.data(), a);
  putBE<uint64_t>(s.bytes.data() + 8, b);
  return s;
}

Status encodeUniqueId(const SocketAddress& root, const Secret& secret, weftUniqueId* out) {
  if (!root.valid() || root.port() == 0 || root.isWildcard())
    return errorStatus(weftInternalError,
                       "cannot put %s in a unique id: a root needs a concrete address and port",
                       root.toString().c_str());
  UniqueIdLayout l{};
  std::memcpy(l.magic, kUniqueIdMagic, sizeof l.magic);
  l.version = kUniqueIdVersion;
  l.root = root.pack();
  std::memcpy(l.secret, secret.bytes.data(), sizeof l.secret);
  std::memcpy(out->internal, &l, sizeof l);
  putBE<uint64_t>(reinterpret_cast<uint8_t*>(out->internal) + offsetof(UniqueIdLayout, checksum),
                  uniqueIdChecksum(*out));
  return Status::Ok();
}

Status decodeUniqueId(const weftUniqueId& id, SocketAddress* root, Secret* secret) {
  UniqueIdLayout l;
  std::memcpy(&l, id.internal, sizeof l);
  if (std::memcmp(l.magic, kUniqueIdMagic, sizeof l.magic) != 0)
    return corrupted("bad magic (these bytes are not a weft unique id)");
  if (l.version != kUniqueIdVersion)
    return corrupted(
        strprintf("version %u, but this weft reads version %u (is every process running the same "
                  "weft?)",
                  l.version, kUniqueIdVersion));
  if (getBE<uint64_t>(l.checksum) != uniqueIdChecksum(id)) return corrupted("checksum mismatch");
  auto addr = SocketAddress::unpack(l.root);
  if (!addr.ok()) return corrupted("root address has " + addr.status().message());
  if (addr->port() == 0) return corrupted("root port is 0");
  *root = *addr;
  std::memcpy(secret->bytes.data(), l.secret, sizeof l.secret);
  return Status::Ok();
}

}  // namespace weft::bootstrap
