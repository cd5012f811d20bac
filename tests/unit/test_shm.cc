// The shared-memory transport's set-up errors, without other processes: a fake out-of-band exchange
// stands in for the bootstrap (every other rank "succeeds").
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/statvfs.h>

#include <cstdio>
#include <set>
#include <string>

#include "transports/shm/shm_transport.h"

namespace weft {
namespace {

class LoneOob final : public OobExchange {
 public:
  Status allgather(void*, size_t) override {
    return Status::Ok();
  }  // the other slots stay zero: success
};

// The directory's entries that belong to communicator `commId` (other tests running beside this
// one create and remove their own).
std::set<std::string> entries(const std::string& dir, uint64_t commId) {
  char prefix[32];
  std::snprintf(prefix, sizeof prefix, "weft-%016llx-", static_cast<unsigned long long>(commId));
  std::set<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::string(e->d_name).starts_with(prefix)) out.insert(e->d_name);
    closedir(d);
  }
  return out;
}

TEST(Shm, TooSmallDirectoryNamesItAndTheSizeNeeded) {
  ShmConfig cfg;
  cfg.dir = "/dev/shm";
  cfg.slotBytes = 16u << 20;
  cfg.nslots = 64;
  const int nranks = 4000;  // 4000 x 64 x 16 MiB: more than any tmpfs here holds
  struct statvfs vfs;
  ASSERT_EQ(statvfs(cfg.dir.c_str(), &vfs), 0);
  ASSERT_GT(shmSegmentBytes(nranks, cfg), static_cast<size_t>(vfs.f_bavail) * vfs.f_frsize);
  const auto before = entries(cfg.dir, 0x1234);
  LoneOob oob;
  auto t = createShmTransport(0, nranks, 0x1234, cfg, oob);
  ASSERT_FALSE(t.ok());
  const std::string msg = t.status().message();
  EXPECT_EQ(t.status().code(), weftSystemError);
  EXPECT_NE(msg.find("/dev/shm has"), std::string::npos) << msg;
  EXPECT_NE(msg.find("MiB for its shared-memory segment"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--shm-size"), std::string::npos) << msg;
  EXPECT_NE(msg.find("WEFT_SHM_DIR"), std::string::npos) << msg;
  EXPECT_EQ(entries(cfg.dir, 0x1234), before) << "nothing may be left behind";
}

TEST(Shm, MissingDirectoryIsNamed) {
  ShmConfig cfg;
  cfg.dir = "/nonexistent/weft-shm";
  LoneOob oob;
  auto t = createShmTransport(0, 2, 0x1234, cfg, oob);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("WEFT_SHM_DIR=/nonexistent/weft-shm"), std::string::npos)
      << t.status().message();
}

TEST(Shm, SingleRankSegmentIsUnlinkedAfterSetUp) {
  ShmConfig cfg;
  cfg.slotBytes = 4096;
  cfg.nslots = 2;
  const auto before = entries(cfg.dir, 0x5678);
  LoneOob oob;
  auto t = createShmTransport(0, 1, 0x5678, cfg, oob);
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(entries(cfg.dir, 0x5678), before) << "the segment must be unlinked once mapped";
  // A message to itself goes through.
  auto ep = t.value()->endpoint(0, 0);
  ASSERT_TRUE(ep.ok());
  void* slot = ep.value()->sendBegin();
  ASSERT_NE(slot, nullptr);
  static_cast<char*>(slot)[0] = 42;
  ep.value()->sendEnd(1, MsgTag{1, 0, 7, 0});
  size_t bytes = 0;
  MsgTag tag;
  const void* got = ep.value()->recvBegin(&bytes, &tag);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(bytes, 1u);
  EXPECT_EQ(static_cast<const char*>(got)[0], 42);
  EXPECT_EQ(tag.signature, 7u);
  ep.value()->recvEnd();
}

}  // namespace
}  // namespace weft
