// Tests of the bootstrap (src/bootstrap/): the unique id and its corruption checks,
// WEFT_SOCKET_IFNAME matching, the root's rendezvous and its errors (missing, duplicate,
// inconsistent ranks; stray connections), and Bootstrap's ring allgather/barrier with N ranks as
// threads of this process.
//
// Every test checks that it leaves no file descriptor open and no root thread running. Timeouts are
// set small (WEFT_CONNECT_TIMEOUT through setenv + config::reload) where a test waits for one, so
// the whole suite runs in a few seconds.
#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bootstrap/bootstrap.h"
#include "bootstrap/ifaces.h"
#include "bootstrap/root.h"
#include "bootstrap/socket.h"
#include "bootstrap/unique_id.h"
#include "core/config.h"

extern char** environ;

namespace weft::bootstrap {
namespace {

using namespace std::chrono_literals;

::testing::AssertionResult isOk(const Status& s) {
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s.message();
}
#define EXPECT_OK(expr) EXPECT_TRUE(isOk(expr))
#define ASSERT_OK(expr) ASSERT_TRUE(isOk(expr))

::testing::AssertionResult hasText(const std::string& message, const std::string& part) {
  if (message.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << message << "\" does not contain \"" << part << "\"";
}

int countFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr)
    ++n;
  closedir(d);
  return n;
}

// Sets an environment variable for one test and re-reads the settings; restores both afterwards.
// Must not be created or destroyed while other threads of the test are running.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    size_t len = std::strlen(name);
    for (char** e = environ; e != nullptr && *e != nullptr; ++e)
      if (std::strncmp(*e, name, len) == 0 && (*e)[len] == '=') old_ = std::string(*e + len + 1);
    setenv(name, value, 1);
    EXPECT_OK(config::reload());
  }
  ~ScopedEnv() {
    (void)(old_ ? setenv(name_.c_str(), old_->c_str(), 1) : unsetenv(name_.c_str()));
    EXPECT_OK(config::reload());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// Runs body(rank) for each listed rank (default: 0..n-1) in its own thread; returns their results
// in the same order.
std::vector<Status> runRanks(int n, const std::function<Status(int)>& body,
                             std::vector<int> ranks = {}) {
  for (int r = 0; ranks.size() < static_cast<size_t>(n); ++r)
    ranks.push_back(r);
  std::vector<Status> results(ranks.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ranks.size(); ++i)
    threads.emplace_back([&, i] { results[i] = body(ranks[i]); });
  for (std::thread& t : threads)
    t.join();
  return results;
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A root on loopback and the id that leads to it.
weftUniqueId loopbackRoot(Secret* secretOut = nullptr, SocketAddress* boundOut = nullptr) {
  Secret secret = randomSecret().value();
  SocketAddress bound;
  EXPECT_OK(startRoot(SocketAddress::loopback(AF_INET, 0), secret, &bound));
  weftUniqueId id;
  EXPECT_OK(encodeUniqueId(bound, secret, &id));
  if (secretOut != nullptr) *secretOut = secret;
  if (boundOut != nullptr) *boundOut = bound;
  return id;
}

// A port on loopback with nothing listening (bound, then closed).
SocketAddress deadLoopbackAddress() {
  SocketAddress bound;
  auto s = Socket::listen(SocketAddress::loopback(AF_INET, 0), &bound);
  EXPECT_TRUE(s.ok());
  return bound;
}

// A hand-made rank registration, for driving the root directly.
Socket rawHello(const SocketAddress& root, const Secret& secret, int rank, int nranks) {
  auto s = Socket::connect(root, deadlineIn(5));
  EXPECT_TRUE(s.ok()) << s.status().message();
  uint8_t hello[kRankHelloBytes];
  encodeRankHello(RankHello{secret, rank, nranks, SocketAddress::loopback(AF_INET, 9)}, hello);
  EXPECT_OK(s->sendAll(hello, sizeof hello, deadlineIn(5)));
  return std::move(*s);
}

// The root's error text on a raw connection ("" if it sent something else).
std::string rootErrorText(Socket& s) {
  uint8_t head[kRootReplyHeaderBytes];
  RootReplyHeader h;
  if (!s.recvAll(head, sizeof head, deadlineIn(5)).ok() || !decodeRootReplyHeader(head, &h).ok() ||
      h.kind != kReplyError)
    return "";
  std::string text(h.length, '\0');
  if (!s.recvAll(text.data(), text.size(), deadlineIn(5)).ok()) return "";
  return text;
}

// Every Bootstrap test: no descriptor or root thread may outlive it. (Compared with what was there
// before, so that roots left by other suites of the same binary do not count.)
class BootstrapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    roots_ = liveRootThreads();
    fds_ = countFds();
  }
  void TearDown() override {
    auto start = Clock::now();
    while (liveRootThreads() > roots_ && secondsSince(start) < 10)
      std::this_thread::sleep_for(5ms);
    EXPECT_LE(liveRootThreads(), roots_) << "a bootstrap root thread is still running";
    EXPECT_LE(countFds(), fds_) << "file descriptors leaked";
  }
  int roots_ = 0;
  int fds_ = 0;
};

// ---- Unique id ----

class BootstrapUniqueId : public BootstrapTest {
 protected:
  // Rewrites the checksum after a deliberate change, so that a later check is reached.
  static void reseal(weftUniqueId* id) {
    putBE<uint64_t>(reinterpret_cast<uint8_t*>(id->internal) + offsetof(UniqueIdLayout, checksum),
                    uniqueIdChecksum(*id));
  }
  weftUniqueId valid() {
    weftUniqueId id;
    EXPECT_OK(encodeUniqueId(SocketAddress::parse("10.1.2.3:4000").value(), secret_, &id));
    return id;
  }
  Secret secret_ = deriveSecret("test");
};

TEST_F(BootstrapUniqueId, RoundTripIPv4AndIPv6) {
  for (const char* text : {"10.1.2.3:4000", "[fd00::17]:65535", "127.0.0.1:1"}) {
    SocketAddress addr = SocketAddress::parse(text).value();
    Secret secret = randomSecret().value(), gotSecret;
    weftUniqueId id;
    ASSERT_OK(encodeUniqueId(addr, secret, &id));
    EXPECT_EQ(std::memcmp(id.internal, "WEFTID01", 8), 0);
    SocketAddress got;
    ASSERT_OK(decodeUniqueId(id, &got, &gotSecret));
    EXPECT_EQ(got.toString(), text);
    EXPECT_TRUE(got == addr);
    EXPECT_TRUE(gotSecret == secret);
  }
}

TEST_F(BootstrapUniqueId, EveryCorruptionIsNamed) {
  SocketAddress root;
  Secret secret;
  struct Case {
    const char* name;
    std::function<void(weftUniqueId*)> corrupt;
    const char* expected;
  };
  std::vector<Case> cases = {
      {"magic", [](weftUniqueId* id) { id->internal[0] = 'X'; }, "bad magic"},
      {"zeroed", [](weftUniqueId* id) { std::memset(id->internal, 0, sizeof id->internal); },
       "bad magic"},
      {"version", [](weftUniqueId* id) { id->internal[8] = 2; }, "version 2"},
      {"checksum", [](weftUniqueId* id) { id->internal[60] ^= 1; }, "checksum mismatch"},
      {"secret bit", [](weftUniqueId* id) { id->internal[40] ^= 0x80; }, "checksum mismatch"},
      {"family",
       [](weftUniqueId* id) {
         id->internal[offsetof(UniqueIdLayout, root)] = 5;
         reseal(id);
       },
       "unknown address family 5"},
      {"port 0",
       [](weftUniqueId* id) {
         std::memset(id->internal + offsetof(UniqueIdLayout, root) + 2, 0, 2);
         reseal(id);
       },
       "root port is 0"},
  };
  for (const Case& c : cases) {
    weftUniqueId id = valid();
    c.corrupt(&id);
    Status s = decodeUniqueId(id, &root, &secret);
    EXPECT_EQ(s.code(), weftInvalidArgument) << c.name;
    EXPECT_TRUE(hasText(s.message(), "unique id is corrupted")) << c.name;
    EXPECT_TRUE(hasText(s.message(), c.expected)) << c.name;
    EXPECT_TRUE(hasText(s.message(), "pass the 128 bytes from weftGetUniqueId unchanged"))
        << c.name;
  }
}

TEST_F(BootstrapUniqueId, EncodeRefusesAnAddressWithoutPort) {
  weftUniqueId id;
  EXPECT_FALSE(encodeUniqueId(SocketAddress::loopback(AF_INET, 0), secret_, &id).ok());
  EXPECT_FALSE(encodeUniqueId(SocketAddress::wildcard(AF_INET, 80), secret_, &id).ok());
  EXPECT_FALSE(encodeUniqueId(SocketAddress(), secret_, &id).ok());
}

TEST_F(BootstrapUniqueId, Secrets) {
  EXPECT_TRUE(deriveSecret("10.0.0.1:29500/8") == deriveSecret("10.0.0.1:29500/8"));
  EXPECT_FALSE(deriveSecret("10.0.0.1:29500/8") == deriveSecret("10.0.0.1:29500/9"));
  Secret a = randomSecret().value(), b = randomSecret().value();
  EXPECT_FALSE(a == b);
  EXPECT_FALSE(a == Secret{});
}

// ---- Addresses and interfaces ----

class BootstrapAddress : public BootstrapTest {};

TEST_F(BootstrapAddress, ParseAndPrint) {
  EXPECT_EQ(SocketAddress::parse("1.2.3.4:5")->toString(), "1.2.3.4:5");
  EXPECT_EQ(SocketAddress::parse("[::1]:5")->toString(), "[::1]:5");
  EXPECT_EQ(SocketAddress::parse("127.0.0.1:0")->port(), 0);
  auto local = SocketAddress::parse("localhost:80");
  ASSERT_TRUE(local.ok()) << local.status().message();
  EXPECT_TRUE(local->isLoopback());
  EXPECT_EQ(local->port(), 80);
  for (const char* bad : {"", "1.2.3.4", "1.2.3.4:", ":80", "1.2.3.4:65536", "1.2.3.4:x", "[::1",
                          "[::1]", "::1:80", "no-such-host.invalid:80"}) {
    auto r = SocketAddress::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), weftInvalidArgument) << bad;
  }
}

TEST_F(BootstrapAddress, DescribeRanks) {
  EXPECT_EQ(describeRanks({2}), "rank 2");
  EXPECT_EQ(describeRanks({3, 5}), "ranks 3, 5");
  EXPECT_EQ(describeRanks({4, 5}), "ranks 4, 5");
  EXPECT_EQ(describeRanks({0, 1, 2, 7}), "ranks 0-2, 7");
  std::vector<int> many;
  for (int r = 0; r < 40; ++r)
    many.push_back(2 * r);
  EXPECT_TRUE(hasText(describeRanks(many), "28, 30 and 24 more"));
}

class BootstrapIfname : public BootstrapTest {
 protected:
  static Interface iface(const char* name, bool up, std::vector<const char*> addrs,
                         bool loop = false) {
    Interface i{name, up, loop, {}};
    for (const char* a : addrs)
      i.addresses.push_back(SocketAddress::parse(a).value());
    return i;
  }
  std::string pick(const std::string& spec) {
    auto r = pickLocalAddress(spec, ifaces_);
    return r.ok() ? r->hostString() : "error: " + r.status().message();
  }
  std::vector<Interface> ifaces_ = {
      iface("lo", true, {"127.0.0.1:0", "[::1]:0"}, true),
      iface("docker0", true, {"172.17.0.1:0"}),
      iface("eth0", true, {"10.0.0.2:0", "[fe80::2]:0"}),
      iface("eth1", true, {"10.0.1.2:0"}),
      iface("ib0", true, {"[fe80::5]:0", "[fd00::5]:0"}),
      iface("virbr0", false, {"192.168.122.1:0"}),
  };
};

TEST_F(BootstrapIfname, Grammar) {
  struct {
    const char* spec;
    const char* name;
    bool match;
  } cases[] = {
      {"", "anything", true},    {"eth", "eth0", true},        {"eth", "ib0", false},
      {"eth,ib", "ib1", true},   {"eth,,", "eth3", true},      {"=eth0", "eth0", true},
      {"=eth0", "eth01", false}, {"=eth0,eth1", "eth1", true}, {"^docker", "docker0", false},
      {"^docker", "eth0", true}, {"^docker,lo", "lo", false},  {"^=eth0", "eth0", false},
      {"^=eth0", "eth00", true}};
  for (const auto& c : cases)
    EXPECT_EQ(matchIfname(c.spec, c.name), c.match) << c.spec << " " << c.name;
}

TEST_F(BootstrapIfname, Choice) {
  EXPECT_EQ(pick(""), "10.0.0.2");  // skips lo and docker0
  EXPECT_EQ(pick("eth"), "10.0.0.2");
  EXPECT_EQ(pick("=eth1"), "10.0.1.2");
  EXPECT_EQ(pick("^docker,lo"), "10.0.0.2");
  EXPECT_EQ(pick("^=eth0,docker0"), "10.0.1.2");
  EXPECT_EQ(pick("^eth"), "172.17.0.1");  // the user's list alone decides; non-loopback first
  EXPECT_EQ(pick("ib"), "fd00::5");       // IPv6, not link-local
  EXPECT_EQ(pick("lo"), "127.0.0.1");     // loopback when asked for
}

TEST_F(BootstrapIfname, NoMatchListsInterfaces) {
  for (const char* spec : {"=eth", "wlan", "^eth,ib,lo,docker,virbr"}) {
    auto r = pickLocalAddress(spec, ifaces_);
    ASSERT_FALSE(r.ok()) << spec;
    EXPECT_EQ(r.status().code(), weftInvalidArgument);
    EXPECT_TRUE(hasText(r.status().message(), "matches no network interface")) << spec;
    EXPECT_TRUE(hasText(r.status().message(), "eth0 (10.0.0.2, fe80::2)"));
    EXPECT_TRUE(hasText(r.status().message(), "virbr0 (down, 192.168.122.1)"));
  }
  auto down = pickLocalAddress("virbr", ifaces_);
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(hasText(down.status().message(), "matches no interface that is up"));
}

TEST_F(BootstrapIfname, DefaultFallsBackToLoopback) {
  std::vector<Interface> only = {iface("lo", true, {"127.0.0.1:0"}, true),
                                 iface("docker0", true, {"172.17.0.1:0"}),
                                 iface("eth0", false, {"10.0.0.2:0"})};
  auto r = pickLocalAddress("", only);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->hostString(), "127.0.0.1");
}

TEST_F(BootstrapIfname, ThisHost) {
  auto ifaces = listInterfaces();
  ASSERT_TRUE(ifaces.ok()) << ifaces.status().message();
  {
    ScopedEnv env("WEFT_SOCKET_IFNAME", "=lo");
    auto r = pickLocalAddress();
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_TRUE(r->isLoopback());
  }
  {
    ScopedEnv env("WEFT_SOCKET_IFNAME", "=no-such-if9");
    auto r = pickLocalAddress();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), weftInvalidArgument);
    EXPECT_TRUE(hasText(r.status().message(), "lo ("));
  }
  auto chosen = pickLocalAddress();  // unset: whatever this host has, loopback at worst
  ASSERT_TRUE(chosen.ok()) << chosen.status().message();
  EXPECT_TRUE(isLocalAddress(*chosen));
  EXPECT_FALSE(isLocalAddress(SocketAddress::parse("192.0.2.254:1").value()));
}

// ---- The ring: N ranks as threads ----

class BootstrapRing : public BootstrapTest, public ::testing::WithParamInterface<int> {};

uint8_t pattern(int rank, size_t i) {
  return static_cast<uint8_t>(i * 131 + (i >> 8) + rank * 29 + 1);
}

TEST_P(BootstrapRing, AllgatherAndBarrier) {
  const int n = GetParam();
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer checks every byte that recv() and memcmp() touch; a smaller large size keeps it
  // quick.
  const std::vector<size_t> sizes = {8, 13, size_t{256} << 10};
#else
  const std::vector<size_t> sizes = {8, 13, size_t{1} << 20};
#endif
  // What each rank's slot must hold, per size (computed once, compared with memcmp).
  std::vector<std::vector<std::vector<uint8_t>>> expected(sizes.size());
  for (size_t k = 0; k < sizes.size(); ++k)
    for (int r = 0; r < n; ++r) {
      expected[k].emplace_back(sizes[k]);
      for (size_t i = 0; i < sizes[k]; ++i)
        expected[k].back()[i] = pattern(r, i);
    }
  weftUniqueId id;
  ASSERT_OK(createUniqueId(&id));
  auto results = runRanks(n, [&](int rank) -> Status {
    WEFT_ASSIGN_OR_RETURN(std::unique_ptr<Bootstrap> b, Bootstrap::create(id, rank, n));
    if (b->rank() != rank || b->nranks() != n || b->addresses().size() != static_cast<size_t>(n))
      return errorStatus(weftInternalError, "rank %d: wrong identity", rank);
    for (size_t k = 0; k < sizes.size(); ++k) {
      const size_t bytes = sizes[k];
      std::vector<uint8_t> buf(bytes * static_cast<size_t>(n), 0xEE);
      std::memcpy(buf.data() + static_cast<size_t>(rank) * bytes, expected[k][rank].data(), bytes);
      WEFT_TRY(b->allgather(buf.data(), bytes));
      for (int r = 0; r < n; ++r)
        if (std::memcmp(buf.data() + static_cast<size_t>(r) * bytes, expected[k][r].data(),
                        bytes) != 0)
          return errorStatus(weftInternalError, "rank %d: rank %d's %zu-byte slot is wrong", rank,
                             r, bytes);
      WEFT_TRY(b->barrier());
    }
    WEFT_TRY(b->allgather(nullptr, 0));
    return b->barrier();
  });
  for (int r = 0; r < n; ++r)
    EXPECT_TRUE(results[static_cast<size_t>(r)].ok()) << results[r].message();
}

INSTANTIATE_TEST_SUITE_P(, BootstrapRing, ::testing::Values(1, 2, 3, 5, 8, 16),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "ranks";
                         });

class BootstrapErrors : public BootstrapTest {};

TEST_F(BootstrapErrors, StrayConnectionsAreIgnored) {
  Secret secret;
  SocketAddress bound;
  weftUniqueId id = loopbackRoot(&secret, &bound);
  // Before any rank: one that never speaks, one with a wrong secret claiming rank 0, one sending
  // garbage, one that closes at once.
  auto silent = Socket::connect(bound, deadlineIn(5));
  ASSERT_TRUE(silent.ok());
  Socket wrong = rawHello(bound, randomSecret().value(), 0, 3);
  auto garbage = Socket::connect(bound, deadlineIn(5));
  ASSERT_TRUE(garbage.ok());
  std::vector<uint8_t> junk(kRankHelloBytes, 'x');
  ASSERT_OK(garbage->sendAll(junk.data(), junk.size(), deadlineIn(5)));
  { auto closed = Socket::connect(bound, deadlineIn(5)); }
  auto results = runRanks(3, [&](int rank) -> Status {
    WEFT_ASSIGN_OR_RETURN(std::unique_ptr<Bootstrap> b, Bootstrap::create(id, rank, 3));
    return b->barrier();
  });
  for (const Status& s : results)
    EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(rootErrorText(wrong), "");  // dropped without an answer
}

// The ring hello as bootstrap.cc writes it: "WFG1", secret[16], rank u32, nranks u32.
std::vector<uint8_t> ringHello(const Secret& secret, int rank, int nranks) {
  std::vector<uint8_t> h(28);
  std::memcpy(h.data(), "WFG1", 4);
  std::memcpy(h.data() + 4, secret.bytes.data(), 16);
  putBE<uint32_t>(h.data() + 20, static_cast<uint32_t>(rank));
  putBE<uint32_t>(h.data() + 24, static_cast<uint32_t>(nranks));
  return h;
}

TEST_F(BootstrapErrors, StrayRingConnectionsAreIgnored) {
  Secret secret;
  SocketAddress rootAddr;
  weftUniqueId id = loopbackRoot(&secret, &rootAddr);
  Status s0;
  std::thread rank0([&] { s0 = Bootstrap::create(id, 0, 2).status(); });
  // This thread plays rank 1 by hand: it registers, learns rank 0's listen address, takes rank 0's
  // ring connection, then sends strays to rank 0 before the real greeting.
  SocketAddress mine;
  auto listener = Socket::listen(SocketAddress::loopback(AF_INET, 0), &mine);
  ASSERT_TRUE(listener.ok());
  auto root = Socket::connect(rootAddr, deadlineIn(5));
  ASSERT_TRUE(root.ok());
  uint8_t hello[kRankHelloBytes];
  encodeRankHello(RankHello{secret, 1, 2, mine}, hello);
  ASSERT_OK(root->sendAll(hello, sizeof hello, deadlineIn(5)));
  uint8_t reply[kRootReplyHeaderBytes + 2 * sizeof(PackedAddress)];
  ASSERT_OK(root->recvAll(reply, sizeof reply, deadlineIn(5)));
  PackedAddress packed;
  std::memcpy(&packed, reply + kRootReplyHeaderBytes, sizeof packed);
  SocketAddress rank0Addr = SocketAddress::unpack(packed).value();
  auto fromRank0 = listener->accept(deadlineIn(5));
  ASSERT_TRUE(fromRank0.ok());
  std::vector<uint8_t> got(28);
  ASSERT_OK(fromRank0->recvAll(got.data(), got.size(), deadlineIn(5)));
  EXPECT_TRUE(got == ringHello(secret, 0, 2));
  auto greet = [&](const std::vector<uint8_t>& bytes) {
    Socket s = std::move(Socket::connect(rank0Addr, deadlineIn(5)).value());
    EXPECT_OK(s.sendAll(bytes.data(), bytes.size(), deadlineIn(5)));
    return s;
  };
  Socket wrongSecret = greet(ringHello(randomSecret().value(), 1, 2));
  Socket wrongRank = greet(ringHello(secret, 0, 2));
  Socket silent = greet({});
  Socket real = greet(ringHello(secret, 1, 2));
  rank0.join();
  EXPECT_OK(s0);
  uint8_t byte;
  EXPECT_EQ(wrongSecret.recvAll(&byte, 1, deadlineIn(5)).code(), weftRemoteError);  // closed
  EXPECT_EQ(wrongRank.recvAll(&byte, 1, deadlineIn(5)).code(), weftRemoteError);
}

TEST_F(BootstrapErrors, MissingRankIsNamedWithinTheTimeout) {
  ScopedEnv env("WEFT_CONNECT_TIMEOUT", "1");
  weftUniqueId id = loopbackRoot();
  auto start = Clock::now();
  auto create = [&](int rank) { return Bootstrap::create(id, rank, 4).status(); };
  auto results = runRanks(3, create, {0, 1, 3});
  EXPECT_LT(secondsSince(start), 2.5);
  for (const Status& s : results) {
    EXPECT_EQ(s.code(), weftTimeout) << s.message();
    EXPECT_TRUE(hasText(s.message(), "rank 2 of 4 did not join within 1 s"));
    EXPECT_TRUE(hasText(s.message(), "WEFT_CONNECT_TIMEOUT"));
  }
}

TEST_F(BootstrapErrors, NoRoot) {
  ScopedEnv env("WEFT_CONNECT_TIMEOUT", "0.3");
  SocketAddress dead = deadLoopbackAddress();
  weftUniqueId id;
  ASSERT_OK(encodeUniqueId(dead, randomSecret().value(), &id));
  auto start = Clock::now();
  auto r = Bootstrap::create(id, 2, 4);
  EXPECT_LT(secondsSince(start), 1.5);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), weftTimeout);
  EXPECT_TRUE(hasText(r.status().message(), "rank 2: no bootstrap root at " + dead.toString() +
                                                " after 0.3 s; is rank 0 running?"));
}

TEST_F(BootstrapErrors, DuplicateRank) {
  ScopedEnv env("WEFT_CONNECT_TIMEOUT", "2");
  Secret secret;
  SocketAddress bound;
  weftUniqueId id = loopbackRoot(&secret, &bound);
  Socket r0 = rawHello(bound, secret, 0, 3);
  Socket r1 = rawHello(bound, secret, 1, 3);
  auto dup = Bootstrap::create(id, 1, 3);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), weftInvalidUsage);
  EXPECT_TRUE(hasText(dup.status().message(), "rank 1 joined twice"));
  EXPECT_TRUE(hasText(rootErrorText(r0), "rank 1 joined twice"));
  EXPECT_TRUE(hasText(rootErrorText(r1), "rank 1 joined twice"));
}

TEST_F(BootstrapErrors, NranksMismatch) {
  ScopedEnv env("WEFT_CONNECT_TIMEOUT", "2");
  Secret secret;
  SocketAddress bound;
  weftUniqueId id = loopbackRoot(&secret, &bound);
  Socket r0 = rawHello(bound, secret, 0, 3);
  auto other = Bootstrap::create(id, 1, 2);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), weftInvalidUsage);
  EXPECT_TRUE(hasText(other.status().message(),
                      "rank 1 was started with nranks=2 but rank 0 with nranks=3"));
  EXPECT_TRUE(hasText(rootErrorText(r0), "nranks=2"));
}

TEST_F(BootstrapErrors, BadArguments) {
  weftUniqueId id;
  std::memset(&id, 0x5A, sizeof id);
  auto r = Bootstrap::create(id, 0, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), weftInvalidArgument);
  EXPECT_TRUE(hasText(r.status().message(), "rank 0: unique id is corrupted: bad magic"));
  EXPECT_EQ(Bootstrap::create(id, 2, 2).status().code(), weftInvalidArgument);
  EXPECT_EQ(Bootstrap::create(id, -1, 2).status().code(), weftInvalidArgument);
  EXPECT_EQ(Bootstrap::create(id, 0, 0).status().code(), weftInvalidArgument);
}

// n Bootstraps created from one id by n threads (empty on failure, with the first error in
// *status).
std::vector<std::unique_ptr<Bootstrap>> joinAll(const weftUniqueId& id, int n, Status* status) {
  std::vector<std::unique_ptr<Bootstrap>> b(static_cast<size_t>(n));
  auto results = runRanks(n, [&](int rank) -> Status {
    WEFT_ASSIGN_OR_RETURN(b[static_cast<size_t>(rank)], Bootstrap::create(id, rank, n));
    return Status::Ok();
  });
  for (const Status& s : results)
    if (!s.ok()) {
      *status = s;
      return {};
    }
  return b;
}

TEST_F(BootstrapErrors, PeerGoneIsNamed) {
  weftUniqueId id = loopbackRoot();
  Status s;
  auto b = joinAll(id, 3, &s);
  ASSERT_EQ(b.size(), 3u) << s.message();
  b[2].reset();  // rank 2 leaves: its sockets close
  uint64_t v[3] = {0, 0, 0};
  s = b[0]->allgather(v, sizeof v[0]);  // rank 0 receives from rank 2
  EXPECT_EQ(s.code(), weftRemoteError) << s.message();
  EXPECT_TRUE(hasText(s.message(), "rank 0: bootstrap allgather #1"));
  EXPECT_TRUE(hasText(s.message(), "by rank 2 (127.0.0.1:"));
  Status again = b[0]->barrier();
  EXPECT_EQ(again.code(), weftRemoteError);
  EXPECT_TRUE(hasText(again.message(), "failed earlier"));
}

TEST_F(BootstrapErrors, SilentPeerTimesOut) {
  ScopedEnv env("WEFT_CONNECT_TIMEOUT", "0.3");
  weftUniqueId id = loopbackRoot();
  Status s;
  auto b = joinAll(id, 2, &s);
  ASSERT_EQ(b.size(), 2u) << s.message();
  auto start = Clock::now();
  s = b[0]->barrier();  // rank 1 never calls it
  EXPECT_LT(secondsSince(start), 1.5);
  EXPECT_EQ(s.code(), weftTimeout);
  EXPECT_TRUE(
      hasText(s.message(), "rank 0: bootstrap allgather #1: rank 1 did not answer within 0.3 s"));
}

TEST_F(BootstrapErrors, MismatchedCallsAreDetected) {
  weftUniqueId id = loopbackRoot();
  Status s;
  auto b = joinAll(id, 2, &s);
  ASSERT_EQ(b.size(), 2u) << s.message();
  std::vector<uint8_t> small(2 * 8), large(2 * 16);
  Status s1;
  std::thread t([&] { s1 = b[1]->allgather(large.data(), 16); });
  Status s0 = b[0]->allgather(small.data(), 8);
  t.join();
  EXPECT_EQ(s0.code(), weftInvalidUsage);
  EXPECT_TRUE(hasText(s0.message(),
                      "has 8 bytes per rank, but rank 1 is in bootstrap allgather #1 with 16"));
  EXPECT_EQ(s1.code(), weftInvalidUsage);
}

TEST_F(BootstrapErrors, SharedRootAddress) {
  // weftCommInitFromEnv: every rank knows only host:port and the world size; rank 0 serves the
  // root.
  const std::string hostPort = deadLoopbackAddress().toString();
  const int n = 3;
  std::vector<weftUniqueId> ids(n);
  for (int r = 0; r < n; ++r)
    ASSERT_OK(uniqueIdFromRoot(hostPort, n, r == 0, &ids[r]));
  for (int r = 1; r < n; ++r)
    EXPECT_EQ(std::memcmp(&ids[0], &ids[r], sizeof ids[0]), 0);
  auto results = runRanks(n, [&](int rank) -> Status {
    WEFT_ASSIGN_OR_RETURN(std::unique_ptr<Bootstrap> b, Bootstrap::create(ids[rank], rank, n));
    int32_t v[n] = {};
    v[rank] = 100 + rank;
    WEFT_TRY(b->allgather(v, sizeof v[0]));
    for (int r = 0; r < n; ++r)
      if (v[r] != 100 + r) return errorStatus(weftInternalError, "wrong value from rank %d", r);
    return Status::Ok();
  });
  for (const Status& s : results)
    EXPECT_TRUE(s.ok()) << s.message();
  weftUniqueId id;
  EXPECT_EQ(uniqueIdFromRoot("nonsense", n, true, &id).code(), weftInvalidArgument);
  EXPECT_EQ(uniqueIdFromRoot("127.0.0.1:0", n, true, &id).code(), weftInvalidArgument);
}

}  // namespace
}  // namespace weft::bootstrap
