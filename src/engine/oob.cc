// Set-up helpers over the out-of-band exchange: agreement on a step's outcome, and exchanges among
// a subset of the ranks.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "engine/transport.h"

namespace weft {

Status agree(OobExchange& oob, int rank, int nranks, const Status& mine, const char* what,
             const std::vector<int>* names) {
  struct Record {
    int32_t code;
    char message[1020];  // room for a plugin's reasons
  };
  std::vector<Record> all(static_cast<size_t>(nranks));
  Record& r = all[static_cast<size_t>(rank)];
  r.code = mine.code();
  std::snprintf(r.message, sizeof r.message, "%s", mine.message().c_str());
  WEFT_TRY(oob.allgather(all.data(), sizeof(Record)));
  for (int i = 0; i < nranks; ++i) {
    const Record& x = all[static_cast<size_t>(i)];
    if (x.code != weftSuccess)
      return errorStatus(static_cast<weftResult_t>(x.code), "%s failed on rank %d: %.*s", what,
                         names != nullptr ? (*names)[static_cast<size_t>(i)] : i,
                         static_cast<int>(sizeof x.message), x.message);
  }
  return Status::Ok();
}

Status SubsetOob::allgather(void* buf, size_t bytesPerRank) {
  auto self = std::find(members_.begin(), members_.end(), rank_);
  if (self == members_.end())
    return errorStatus(weftInternalError, "rank %d is not in its own subset", rank_);
  std::vector<char> whole(static_cast<size_t>(nranks_) * bytesPerRank);
  char* mine =
      static_cast<char*>(buf) + static_cast<size_t>(self - members_.begin()) * bytesPerRank;
  std::memcpy(whole.data() + static_cast<size_t>(rank_) * bytesPerRank, mine, bytesPerRank);
  WEFT_TRY(whole_.allgather(whole.data(), bytesPerRank));
  for (size_t i = 0; i < members_.size(); ++i)
    std::memcpy(static_cast<char*>(buf) + i * bytesPerRank,
                whole.data() + static_cast<size_t>(members_[i]) * bytesPerRank, bytesPerRank);
  return Status::Ok();
}

}  // namespace weft
