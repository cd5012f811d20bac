#include "core/coll.h"

#include "core/dtype.h"
#include "core/status.h"

namespace weft {
namespace {
struct CollNames {
  const char* name;
  const char* display;
};
const CollNames kNames[] = {
    {"allreduce", "all_reduce"},
    {"allgather", "all_gather"},
    {"reducescatter", "reduce_scatter"},
    {"broadcast", "broadcast"},
    {"reduce", "reduce"},
    {"send", "send"},
    {"recv", "recv"},
    {"alltoall", "all_to_all"},
    {"alltoallv", "all_to_all_v"},
    {"gather", "gather"},
    {"scatter", "scatter"},
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(CollType::kCount),
              "a name for every collective");
}  // namespace

const char* collName(CollType type) {
  return kNames[static_cast<int>(type)].name;
}
const char* collDisplayName(CollType type) {
  return kNames[static_cast<int>(type)].display;
}

bool parseCollName(const std::string& name, CollType* out) {
  std::string lower;
  for (char c : name)
    if (c != '_' && c != '-')
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (int i = 0; i < static_cast<int>(CollType::kCount); ++i) {
    if (lower == kNames[i].name) {
      *out = static_cast<CollType>(i);
      return true;
    }
  }
  return false;
}

uint64_t CollDesc::sendBufBytes() const {
  switch (type) {
    case CollType::kReduceScatter:
    case CollType::kAllToAll:
      return bytes() * static_cast<uint64_t>(nranks);
    case CollType::kAllToAllv:
      return sendSpan * elemSize;
    case CollType::kScatter:
      return rank == root ? bytes() * static_cast<uint64_t>(nranks) : 0;
    case CollType::kRecv:
      return 0;
    default:
      return bytes();
  }
}

uint64_t CollDesc::recvBufBytes() const {
  switch (type) {
    case CollType::kAllGather:
    case CollType::kAllToAll:
      return bytes() * static_cast<uint64_t>(nranks);
    case CollType::kAllToAllv:
      return recvSpan * elemSize;
    case CollType::kGather:
      return rank == root ? bytes() * static_cast<uint64_t>(nranks) : 0;
    case CollType::kSend:
      return 0;
    default:
      return bytes();
  }
}

uint32_t CollDesc::signature() const {
  // FNV-1a over the fields every rank must agree on.
  // Registered calls differ from unregistered ones: their algorithms may differ.
  uint64_t fields[] = {static_cast<uint64_t>(type) | (mapped ? 0x100u : 0u), count,
                       static_cast<uint64_t>(dtype), static_cast<uint64_t>(op),
                       static_cast<uint64_t>(static_cast<int64_t>(root))};
  if (type == CollType::kSend || type == CollType::kRecv) {
    fields[0] = 100;  // a send and its receive must agree on bytes only
    fields[1] = bytes();
    fields[2] = fields[3] = fields[4] = 0;
  }
  // All-to-all-v: each rank sends its own total; every message's size is checked on arrival instead
  // (MsgTag::msgBytes).
  if (type == CollType::kAllToAllv) fields[1] = 0;
  uint32_t h = 2166136261u;
  for (uint64_t f : fields) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint8_t>(f >> (8 * i));
      h *= 16777619u;
    }
  }
  return h;
}

std::string CollDesc::describe() const {
  if (type == CollType::kAllToAllv)
    return strprintf("%s %s (this rank sends %llu elements)", collDisplayName(type),
                     dtypeName(dtype), static_cast<unsigned long long>(count));
  std::string s = strprintf("%s count=%llu %s", collDisplayName(type),
                            static_cast<unsigned long long>(count), dtypeName(dtype));
  if (type == CollType::kAllReduce || type == CollType::kReduceScatter || type == CollType::kReduce)
    s += std::string(" ") + opName(op);
  if (root >= 0) s += strprintf(" root=%d", root);
  if (peer >= 0) s += strprintf(" peer=%d", peer);
  if (mapped) s += " registered";
  return s;
}

}  // namespace weft
