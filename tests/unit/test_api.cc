// The C API's argument checks and error reporting: each bad input returns the right code and leaves
// a message in weftGetLastError that names the problem. Also settings: a bad WEFT_* value is an
// error naming the variable.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/config.h"
#include "runner.h"

namespace weft::test {
namespace {

TEST(Api, NullCommunicator) {
  float x = 0;
  expectError(weftAllReduce(&x, &x, 1, weftFloat32, weftSum, nullptr, nullptr), weftInvalidArgument,
              nullptr, "comm is NULL");
  int n = 0;
  expectError(weftCommCount(nullptr, &n), weftInvalidArgument, nullptr, "comm is NULL");
  expectError(weftCommDestroy(nullptr), weftInvalidArgument, nullptr, "comm is NULL");
  expectError(weftCommInitRank(nullptr, 2, weftUniqueId{}, 0), weftInvalidArgument, nullptr,
              "comm is NULL");
}

TEST(Api, BadArguments) {
  runRanks(2, [](int r, weftComm_t comm) {
    std::vector<float> buf(16, 1.0f);
    float* b = buf.data();
    expectError(weftAllReduce(nullptr, b, 4, weftFloat32, weftSum, comm, nullptr),
                weftInvalidArgument, comm, "sendbuff is NULL");
    expectError(weftAllReduce(b, nullptr, 4, weftFloat32, weftSum, comm, nullptr),
                weftInvalidArgument, comm, "recvbuff is NULL");
    expectError(weftAllReduce(b, b, 4, static_cast<weftDataType_t>(12), weftSum, comm, nullptr),
                weftInvalidArgument, comm, "datatype 12");
    expectError(weftAllReduce(b, b, 4, static_cast<weftDataType_t>(-1), weftSum, comm, nullptr),
                weftInvalidArgument, comm, "datatype -1");
    expectError(weftAllReduce(b, b, 4, weftFloat32, static_cast<weftRedOp_t>(5), comm, nullptr),
                weftInvalidArgument, comm, "op 5");
    expectError(weftAllReduce(b, b, SIZE_MAX / 2, weftFloat32, weftSum, comm, nullptr),
                weftInvalidArgument, comm, "overflows");
    expectError(weftAllGather(b, b, SIZE_MAX / 8, weftFloat64, comm, nullptr), weftInvalidArgument,
                comm, "overflows");
    expectError(weftBroadcast(b, b, 4, weftFloat32, 2, comm, nullptr), weftInvalidArgument, comm,
                "root 2");
    expectError(weftReduce(b, b, 4, weftFloat32, weftSum, -1, comm, nullptr), weftInvalidArgument,
                comm, "root -1");
    expectError(weftSend(b, 4, weftFloat32, 7, comm, nullptr), weftInvalidArgument, comm, "peer 7");
    expectError(weftRecv(b, 4, weftFloat32, -3, comm, nullptr), weftInvalidArgument, comm,
                "peer -3");
    int dummy = 0;
    expectError(weftAllReduce(b, b, 4, weftFloat32, weftSum, comm, &dummy), weftInvalidUsage, comm,
                "stream");
    expectError(weftIAllReduce(b, b, 4, weftFloat32, weftSum, comm, nullptr, nullptr),
                weftInvalidArgument, comm, "request is NULL");
    // A null buffer with count 0 is fine, and so is every call after the bad ones: they did not
    // poison.
    EXPECT_EQ(weftAllReduce(nullptr, nullptr, 0, weftFloat32, weftSum, comm, nullptr), weftSuccess);
    std::vector<float> in(8, static_cast<float>(r + 1)), out(8);
    ASSERT_EQ(weftAllReduce(in.data(), out.data(), 8, weftFloat32, weftSum, comm, nullptr),
              weftSuccess)
        << weftGetLastError(comm);
    EXPECT_EQ(out[7], 3.0f);
    weftResult_t async = weftInternalError;
    EXPECT_EQ(weftCommGetAsyncError(comm, &async), weftSuccess);
    EXPECT_EQ(async, weftSuccess);
  });
}

TEST(Api, GroupWithABadCallRunsNothing) {
  runRanks(2, [](int r, weftComm_t comm) {
    std::vector<float> a(4, 1.0f), b(4, 0.0f);
    ASSERT_EQ(weftGroupStart(), weftSuccess);
    EXPECT_EQ(weftSend(a.data(), 4, weftFloat32, 1 - r, comm, nullptr), weftSuccess);
    EXPECT_EQ(weftRecv(b.data(), 4, weftFloat32, 9, comm, nullptr), weftInvalidArgument);
    expectError(weftGroupEnd(), weftInvalidArgument, nullptr, "peer 9");
    EXPECT_EQ(b[0], 0.0f);
    expectError(weftGroupEnd(), weftInvalidUsage, nullptr, "without a matching weftGroupStart");
  });
}

// A blocking call made while a request is outstanding queues behind it: both complete with the
// right values, in order. (Under TSan this also guards the hand-off of finished requests to their
// waiters.)
TEST(Api, BlockingCallQueuesBehindRequests) {
  runRanks(3, [](int r, weftComm_t comm) {
    std::vector<float> a(1000, static_cast<float>(r + 1)), b(1000, 0.0f);
    weftRequest_t req = nullptr;
    ASSERT_EQ(weftIAllReduce(a.data(), b.data(), 1000, weftFloat32, weftSum, comm, nullptr, &req),
              weftSuccess);
    std::vector<float> c(10, 1.0f);
    ASSERT_EQ(weftAllReduce(c.data(), c.data(), 10, weftFloat32, weftSum, comm, nullptr),
              weftSuccess)
        << weftGetLastError(comm);
    ASSERT_EQ(weftWait(req), weftSuccess) << weftGetLastError(comm);
    for (float x : b)
      ASSERT_EQ(x, 6.0f);
    for (float x : c)
      ASSERT_EQ(x, 3.0f);
  });
}

TEST(Api, CorruptedUniqueId) {
  weftUniqueId id;
  std::memset(&id, 0x42, sizeof id);
  weftComm_t comm = nullptr;
  expectError(weftCommInitRank(&comm, 2, id, 0), weftInvalidArgument, nullptr, "unique id");
  EXPECT_EQ(comm, nullptr);
  expectError(weftCommInitRank(&comm, 0, id, 0), weftInvalidArgument, nullptr, "nranks 0");
  expectError(weftCommInitRank(&comm, 2, id, 2), weftInvalidArgument, nullptr, "rank 2");
}

// Send/receive between two of the ranks, as pipeline stages do, must not put the others' later
// collectives out of step (messages are numbered per pair of ranks, not per communicator).
TEST(Api, PointToPointBetweenSomeRanksLeavesCollectivesInStep) {
  runRanks(4, [](int r, weftComm_t comm) {
    std::vector<int32_t> buf(1000);
    for (int round = 0; round < 3; ++round) {
      if (r == 0) {
        for (size_t i = 0; i < buf.size(); ++i)
          buf[i] = static_cast<int32_t>(i) * (round + 1);
        ASSERT_EQ(weftSend(buf.data(), buf.size(), weftInt32, 1, comm, nullptr), weftSuccess)
            << weftGetLastError(comm);
      } else if (r == 1) {
        ASSERT_EQ(weftRecv(buf.data(), buf.size(), weftInt32, 0, comm, nullptr), weftSuccess)
            << weftGetLastError(comm);
        for (size_t i = 0; i < buf.size(); ++i)
          ASSERT_EQ(buf[i], static_cast<int32_t>(i) * (round + 1));
      }
      int64_t x = r + 1, sum = 0;
      ASSERT_EQ(weftAllReduce(&x, &sum, 1, weftInt64, weftSum, comm, nullptr), weftSuccess)
          << "rank " << r << ": " << weftGetLastError(comm);
      EXPECT_EQ(sum, 10);
    }
  });
}

TEST(Api, VersionAndErrorStrings) {
  int v = 0;
  EXPECT_EQ(weftGetVersion(&v), weftSuccess);
  EXPECT_EQ(v, WEFT_VERSION_CODE);
  for (int r = 0; r < weftNumResults; ++r)
    EXPECT_STRNE(weftGetErrorString(static_cast<weftResult_t>(r)), "unknown result code");
}

TEST(Config, BadValueNamesTheVariable) {
  {
    ScopedEnv e("WEFT_DEBUG", "LOUD");
    Status s = config::load();
    EXPECT_EQ(s.code(), weftInvalidArgument);
    EXPECT_NE(s.message().find("WEFT_DEBUG=\"LOUD\""), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("NONE|VERSION|WARN|INFO|TRACE"), std::string::npos) << s.message();
    weftUniqueId id{};
    weftComm_t comm = nullptr;
    expectError(weftGetUniqueId(&id), weftInvalidArgument, nullptr, "WEFT_DEBUG");
    expectError(weftCommInitRank(&comm, 1, id, 0), weftInvalidArgument, nullptr, "WEFT_DEBUG");
  }
  {
    ScopedEnv e("WEFT_CHUNK_SIZE", "12Q");
    EXPECT_NE(config::load().message().find("WEFT_CHUNK_SIZE"), std::string::npos);
  }
  {
    ScopedEnv e("WEFT_CHUNK_SIZE", "1G");
    EXPECT_NE(config::load().message().find("out of range"), std::string::npos);
  }
  {
    ScopedEnv e("WEFT_TIMEOUT", "-3");
    EXPECT_NE(config::load().message().find("WEFT_TIMEOUT"), std::string::npos);
  }
  {
    ScopedEnv e("WEFT_DEBUG_SUBSYS", "INIT,BOGUS");
    EXPECT_NE(config::load().message().find("BOGUS"), std::string::npos);
  }
  {
    ScopedEnv e("WEFT_ALGO", "allreduce:quantum");
    weftUniqueId id{};
    (void)id;
    auto r = parseAlgoOverride(config::stringValue("WEFT_ALGO"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("quantum"), std::string::npos);
    EXPECT_NE(r.status().message().find("ring"), std::string::npos) << "lists the accepted names";
  }
  EXPECT_TRUE(config::load().ok());
}

TEST(Config, Parsers) {
  EXPECT_EQ(*config::parseBytes("128K"), 128 * 1024);
  EXPECT_EQ(*config::parseBytes("64M"), 64LL << 20);
  EXPECT_EQ(*config::parseBytes("1GiB"), 1LL << 30);
  EXPECT_EQ(*config::parseBytes("17"), 17);
  EXPECT_FALSE(config::parseBytes("-1").ok());
  EXPECT_FALSE(config::parseBytes("3X").ok());
  EXPECT_DOUBLE_EQ(*config::parseSeconds("2.5"), 2.5);
  EXPECT_DOUBLE_EQ(*config::parseSeconds("250ms"), 0.25);
  EXPECT_DOUBLE_EQ(*config::parseSeconds("2m"), 120);
  EXPECT_FALSE(config::parseSeconds("soon").ok());
}

// docs/environment.md lists exactly the variables of the settings table.
TEST(Config, DocumentationMatchesTable) {
  FILE* f = std::fopen(WEFT_SOURCE_DIR "/docs/environment.md", "r");
  ASSERT_NE(f, nullptr) << "docs/environment.md is missing";
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    text.append(buf, n);
  std::fclose(f);
  for (const config::Param& p : config::params()) {
    EXPECT_NE(text.find(std::string("`") + p.name + "`"), std::string::npos)
        << p.name << " is not documented";
    if (p.defaultValue[0] != '\0') {
      const std::string row = std::string("| `") + p.name + "` | `" + p.defaultValue + "` |";
      EXPECT_NE(text.find(row), std::string::npos) << p.name << ": the documented default differs";
    }
  }
  // And nothing documented that the table lacks.
  size_t pos = 0;
  while ((pos = text.find("`WEFT_", pos)) != std::string::npos) {
    size_t end = text.find('`', pos + 1);
    std::string name = text.substr(pos + 1, end - pos - 1);
    name = name.substr(0, name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"));
    if (text[pos + 1 + name.size()] != '*') {
      EXPECT_NE(config::find(name), nullptr) << name << " is documented but not in the table";
    }
    pos = end + 1;
  }
}

// Only src/core/config.cc reads the environment.
TEST(Config, NoStrayGetenv) {
  const std::string cmd =
      std::string("grep -rn --include=*.cc --include=*.c --include=*.h -E '[^_a-z]getenv *\\(' ") +
      WEFT_SOURCE_DIR + "/src " + WEFT_SOURCE_DIR + "/algorithms " + WEFT_SOURCE_DIR +
      "/transports | grep -v 'src/core/config.cc'";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  pclose(p);
  EXPECT_EQ(out, "") << "getenv outside src/core/config.cc";
}

}  // namespace
}  // namespace weft::test
