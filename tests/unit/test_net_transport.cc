// Network transports as weft uses them: the plugin loader's errors, whole communicators over a
// plugin (in this process with the example plugin; as processes over UCX and libfabric), the
// per-transport counters, WEFT_TRANSPORT's choices, and a rank killed in the middle of a transfer.
// Configurations whose plugin was not built here are skipped with the reason.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "coll_check.h"
#include "multiprocess.h"
#include "runner.h"
#include "transports/net/plugin_loader.h"

namespace weft::test {
namespace {

bool pluginBuilt(const std::string& name) {
  struct stat st;
  return stat(builtPluginPath(name).c_str(), &st) == 0;
}
#define SKIP_UNLESS_BUILT(name)                                     \
  if (!pluginBuilt(name))                                           \
  GTEST_SKIP() << builtPluginPath(name)                             \
               << " was not built (its library was not found when " \
                  "weft was configured)"

TEST(PluginLoader, MissingFileIsNamedWithTheLoadersReason) {
  auto r = loadTransportPlugin("/nonexistent/libweft-transport-nope.so");
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  EXPECT_TRUE(
      contains(m, "cannot load transport plugin \"/nonexistent/libweft-transport-nope.so\""))
      << m;
  EXPECT_TRUE(contains(m, "No such file")) << m;
}

TEST(PluginLoader, UnknownNameListsEveryPlaceTried) {
  auto r = loadTransportPlugin("nosuch");
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  EXPECT_TRUE(contains(m, std::string(WEFT_BINARY_DIR) + "/libweft-transport-nosuch.so")) << m;
  EXPECT_TRUE(contains(m, "\n  libweft-transport-nosuch.so: ")) << m;
}

TEST(PluginLoader, LibraryWithoutTheEntrySymbolIsRefused) {
  auto r = loadTransportPlugin(std::string(WEFT_BINARY_DIR) + "/libweft.so");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), weftInvalidUsage);
  EXPECT_TRUE(contains(r.status().message(), "libweft.so has no symbol weft_transport_v1"))
      << r.status().message();
}

TEST(PluginLoader, PluginOfAnotherAbiVersionIsRefusedNamingBoth) {
  const std::string path = std::string(WEFT_BINARY_DIR) + "/tests/libweft-transport-bad-version.so";
  auto r = loadTransportPlugin(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "transport plugin " + path +
                                      " implements plugin ABI version 99, but this weft supports "
                                      "version 1");
}

TEST(PluginLoader, ExampleLoadsByName) {
  SKIP_UNLESS_BUILT("example");
  auto r = loadTransportPlugin("example");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_STREQ(r->ops->name, "example");
  EXPECT_EQ(r->path, builtPluginPath("example"));
}

TEST(PluginLoader, VersionAndSizeAndMissingFunctionsAreChecked) {
  SKIP_UNLESS_BUILT("example");
  auto r = loadTransportPlugin("example");
  ASSERT_TRUE(r.ok()) << r.status().message();
  weft_transport_v1_t copy = *r->ops;
  copy.abi_version = 2;
  Status s = validatePlugin(&copy, "p.so");
  EXPECT_EQ(s.message(),
            "transport plugin p.so implements plugin ABI version 2, but this weft supports "
            "version 1");
  copy = *r->ops;
  copy.struct_size = 16;
  s = validatePlugin(&copy, "p.so");
  EXPECT_TRUE(contains(s.message(), "declares a 16-byte entry table")) << s.message();
  copy = *r->ops;
  copy.isend = nullptr;
  s = validatePlugin(&copy, "p.so");
  EXPECT_TRUE(contains(s.message(), "leaves a required function")) << s.message();
}

// N ranks as threads of this process, each with a real communicator (bootstrap included) over
// the transports WEFT_TRANSPORT names.
void runOverTransport(int n, const std::string& transport,
                      const std::function<void(int, weftComm_t)>& body) {
  ScopedEnv env("WEFT_TRANSPORT", transport);
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  std::vector<weftComm_t> comms(static_cast<size_t>(n), nullptr);
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      if (weftCommInitRank(&comms[static_cast<size_t>(r)], n, id, r) != weftSuccess)
        errors[static_cast<size_t>(r)] = weftGetLastError(nullptr);
    });
  for (auto& t : threads)
    t.join();
  threads.clear();
  for (int r = 0; r < n; ++r)
    ASSERT_TRUE(errors[static_cast<size_t>(r)].empty())
        << "rank " << r << ": " << errors[static_cast<size_t>(r)];
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] { body(r, comms[static_cast<size_t>(r)]); });
  for (auto& t : threads)
    t.join();
  for (weftComm_t c : comms)
    EXPECT_EQ(weftCommDestroy(c), weftSuccess);
}

std::vector<weftTransportStats_t> statsOf(weftComm_t comm) {
  int n = 0;
  EXPECT_EQ(weftCommTransportStats(comm, nullptr, &n), weftSuccess);
  std::vector<weftTransportStats_t> st(static_cast<size_t>(n));
  EXPECT_EQ(weftCommTransportStats(comm, st.data(), &n), weftSuccess);
  return st;
}

class OverExamplePlugin : public testing::TestWithParam<int> {};

TEST_P(OverExamplePlugin, CollectivesMatchTheReferenceAndTheCountersSeeThem) {
  SKIP_UNLESS_BUILT("example");
  const int n = GetParam();
  std::mutex mu;
  std::vector<std::string> failures;
  runOverTransport(n, "example", [&](int r, weftComm_t comm) {
    auto fail = [&](const std::string& what) {
      std::lock_guard<std::mutex> lock(mu);
      failures.push_back("rank " + std::to_string(r) + ": " + what);
    };
    // Sizes below, at and well above one slot (WEFT_CHUNK_SIZE, 128 KiB by default).
    for (uint64_t count : {uint64_t{0}, uint64_t{1}, uint64_t{1021}, uint64_t{100003}}) {
      std::vector<char> in = fillInput(weftSum, weftFloat32, n, r, count);
      std::vector<char> out(in.size(), 0), want(in.size(), 0);
      for (uint64_t i = 0; i < count; ++i)
        storeValue(weftFloat32, reduceRef(weftSum, weftFloat32, n, i), want.data() + i * 4);
      if (weftAllReduce(in.data(), out.data(), count, weftFloat32, weftSum, comm, nullptr) !=
          weftSuccess) {
        fail(weftGetLastError(comm));
        return;
      }
      std::string diff = compareElems(weftFloat32, out.data(), want.data(), count);
      if (!diff.empty()) fail("all-reduce of " + std::to_string(count) + ": " + diff);

      std::vector<int32_t> mine(count), all(count * static_cast<size_t>(n), -1);
      for (uint64_t i = 0; i < count; ++i)
        mine[i] = static_cast<int32_t>(r * 1000003 + static_cast<int>(i));
      if (weftAllGather(mine.data(), all.data(), count, weftInt32, comm, nullptr) != weftSuccess) {
        fail(weftGetLastError(comm));
        return;
      }
      for (int p = 0; p < n; ++p)
        for (uint64_t i = 0; i < count; ++i)
          if (all[static_cast<size_t>(p) * count + i] != p * 1000003 + static_cast<int>(i)) {
            fail("all-gather: block " + std::to_string(p) + " element " + std::to_string(i));
            p = n;
            break;
          }
    }
    std::vector<weftTransportStats_t> st = statsOf(comm);
    if (st.size() != 1 || std::string(st[0].name) != "example" || st[0].peers != n - 1 ||
        (n > 1 && (st[0].bytesSent == 0 || st[0].bytesReceived == 0)))
      fail("unexpected transport statistics");
  });
  for (const std::string& f : failures)
    ADD_FAILURE() << f;
}

INSTANTIATE_TEST_SUITE_P(Ranks, OverExamplePlugin, testing::Values(1, 2, 3, 4));

TEST(NetTransport, MissingPluginFailsEveryRankNamingIt) {
  ScopedEnv env("WEFT_TRANSPORT", "/nonexistent/plugin.so");
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  weftComm_t c0 = nullptr, c1 = nullptr;
  weftResult_t r0 = weftSuccess, r1 = weftSuccess;
  std::string m0, m1;
  std::thread t([&] {
    r1 = weftCommInitRank(&c1, 2, id, 1);
    m1 = weftGetLastError(nullptr);
  });
  r0 = weftCommInitRank(&c0, 2, id, 0);
  m0 = weftGetLastError(nullptr);
  t.join();
  EXPECT_NE(r0, weftSuccess);
  EXPECT_NE(r1, weftSuccess);
  EXPECT_EQ(c0, nullptr);
  EXPECT_EQ(c1, nullptr);
  for (const std::string& m : {m0, m1}) {
    EXPECT_TRUE(contains(m, "WEFT_TRANSPORT=/nonexistent/plugin.so: no transport could be set up"))
        << m;
    EXPECT_TRUE(contains(m, "cannot load transport plugin \"/nonexistent/plugin.so\"")) << m;
    EXPECT_TRUE(contains(m, "failed on rank 0")) << m;
  }
}

// ---- Processes over the network plugins ----

struct NetCase {
  std::string label;
  std::string plugin;
  std::string env;  // extra variables for weftrun's environment
  int nranks;
};

void PrintTo(const NetCase& c, std::ostream* os) {
  *os << c.label << " x" << c.nranks;
}

std::string netCaseName(const testing::TestParamInfo<NetCase>& info) {
  return info.param.label + "_" + std::to_string(info.param.nranks);
}

std::vector<NetCase> netCases() {
  std::vector<NetCase> out;
  for (int n : {2, 3, 4}) {
    out.push_back({"ucx_tcp", "ucx", "UCX_TLS=tcp UCX_NET_DEVICES=lo", n});
    out.push_back({"ucx_default", "ucx", "", n});
    out.push_back({"ofi_tcp_rxm", "ofi", "WEFT_OFI_PROVIDER='tcp;ofi_rxm' FI_TCP_IFACE=lo", n});
    out.push_back({"ofi_shm", "ofi", "WEFT_OFI_PROVIDER=shm", n});
  }
  // Whole transfers for nearly every step (4 KiB and up: reductions read them from staging,
  // receives get them in place), and none at all (every byte through slots).
  for (int n : {2, 3}) {
    out.push_back(
        {"ucx_whole", "ucx", "UCX_TLS=tcp UCX_NET_DEVICES=lo WEFT_NET_DIRECT_BYTES=4K", n});
    out.push_back({"ofi_whole", "ofi",
                   "WEFT_OFI_PROVIDER='tcp;ofi_rxm' FI_TCP_IFACE=lo WEFT_NET_DIRECT_BYTES=4K", n});
    out.push_back(
        {"ucx_slots", "ucx", "UCX_TLS=tcp UCX_NET_DEVICES=lo WEFT_NET_DIRECT_BYTES=0", n});
    out.push_back(
        {"ucx_peer", "ucx", "UCX_TLS=tcp UCX_NET_DEVICES=lo WEFT_UCX_ERROR_MODE=peer", n});
    // Three channels per peer: a ucx endpoint each, or one ofi endpoint shared, told apart by
    // tag; slices as whole transfers (64 KiB and up) and through slots.
    out.push_back({"ucx_channels", "ucx",
                   "UCX_TLS=tcp UCX_NET_DEVICES=lo WEFT_NCHANNELS=3 WEFT_NET_DIRECT_BYTES=64K", n});
    out.push_back({"ofi_channels", "ofi",
                   "WEFT_OFI_PROVIDER='tcp;ofi_rxm' FI_TCP_IFACE=lo WEFT_NCHANNELS=3", n});
  }
  return out;
}

class OverNetwork : public testing::TestWithParam<NetCase> {};

TEST_P(OverNetwork, EveryCollectiveAndOnlyThePluginCarriesBytes) {
  const NetCase c = GetParam();
  SKIP_UNLESS_BUILT(c.plugin);
  ShmDir shm;
  const std::string cmd = "env WEFT_SHM_DIR=" + shm.path() + " WEFT_TRANSPORT=" + c.plugin + " " +
                          c.env + " " + launcher(c.nranks, "--timeout 240") + " transport " +
                          c.plugin;
  RunResult r = run(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "WORKER OK")) << r.output;
  EXPECT_TRUE(shm.leftovers().empty());
}

INSTANTIATE_TEST_SUITE_P(Plugins, OverNetwork, testing::ValuesIn(netCases()), netCaseName);

// One-sided algorithms forced for every collective that has one: steps that reach a peer on
// another host (or any peer, with the plugin alone) go through the plugin's RMA, put and get on
// buffers registered for the call, and every result is checked as usual. The worker's counters
// show the bytes that RMA moved.
struct RmaCase {
  const char* label;
  const char* plugin;  // what must have carried the RMA bytes
  const char* env;
  const char* worker;  // the worker's transport argument
  int nranks;
  bool twoHosts;  // ranks 0..n/2-1 on one host, the rest on another
};
class OneSidedOverRma : public testing::TestWithParam<RmaCase> {};

TEST_P(OneSidedOverRma, EveryOneSidedCollectiveMatchesTheReference) {
  const RmaCase c = GetParam();
  SKIP_UNLESS_BUILT(c.plugin);
  ShmDir shm;
  const std::string algo =
      "'WEFT_ALGO=allreduce:one_sided;allgather:one_sided;reducescatter:one_sided;"
      "broadcast:one_sided;alltoall:one_sided'";
  const std::string worker =
      std::string(WEFT_BINARY_DIR) + "/tests/integration/weft_test_worker transport " + c.worker;
  const std::string host = "WEFT_HOST_ID=host$((WEFT_RANK / " + std::to_string(c.nranks / 2) + "))";
  const std::string cmd = "env WEFT_SHM_DIR=" + shm.path() + " WEFT_TIMEOUT=120 " + c.env + " " +
                          algo + " " + WEFT_BINARY_DIR + "/tools/weftrun -n " +
                          std::to_string(c.nranks) + " --timeout 240 " +
                          (c.twoHosts ? "sh -c '" + host + " exec " + worker + "'" : worker);
  RunResult r = run(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "WORKER OK")) << r.output;
  // Every rank put and got bytes through the plugin.
  const std::regex line("rank [0-9]+: transport " + std::string(c.plugin) +
                        " .* put ([0-9]+) B, got ([0-9]+) B");
  int ranks = 0;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), line), end; it != end; ++it) {
    ++ranks;
    EXPECT_GT(std::stoull((*it)[1]), 0u) << it->str();
    EXPECT_GT(std::stoull((*it)[2]), 0u) << it->str();
  }
  EXPECT_EQ(ranks, c.nranks) << r.output;
  EXPECT_TRUE(shm.leftovers().empty());
}

INSTANTIATE_TEST_SUITE_P(
    Plugins, OneSidedOverRma,
    testing::Values(
        RmaCase{"ucx_tcp", "ucx", "WEFT_TRANSPORT=ucx UCX_TLS=tcp UCX_NET_DEVICES=lo", "ucx", 3,
                false},
        RmaCase{"ofi_tcp_rxm", "ofi",
                "WEFT_TRANSPORT=ofi WEFT_OFI_PROVIDER='tcp;ofi_rxm' FI_TCP_IFACE=lo", "ofi", 3,
                false},
        RmaCase{"ofi_shm", "ofi", "WEFT_TRANSPORT=ofi WEFT_OFI_PROVIDER=shm", "ofi", 2, false},
        RmaCase{"shm_ucx_2x2", "ucx", "UCX_TLS=tcp UCX_NET_DEVICES=lo", "shm,ucx", 4, true}),
    [](const testing::TestParamInfo<RmaCase>& info) { return std::string(info.param.label); });

// Four ranks posing as two hosts: shared memory inside each, the network plugin between them.
TEST(NetTransport, TwoHostsUseShmInsideAndTheNetworkBetween) {
  SKIP_UNLESS_BUILT("ucx");
  ShmDir shm;
  const std::string cmd = "env WEFT_SHM_DIR=" + shm.path() + " UCX_TLS=tcp UCX_NET_DEVICES=lo " +
                          std::string(WEFT_BINARY_DIR) +
                          "/tools/weftrun -n 4 --timeout 240 sh -c " +
                          "'WEFT_HOST_ID=host$((WEFT_RANK / 2)) exec " + WEFT_BINARY_DIR +
                          "/tests/integration/weft_test_worker transport shm,ucx'";
  RunResult r = run(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "WORKER OK")) << r.output;
  EXPECT_TRUE(contains(r.output, "transport shm device")) << r.output;
}

// The same over two channels per peer, with the hierarchical algorithms forced: shared memory's
// channels inside each host and ucx's (a connection each) between, through one routed transport.
TEST(NetTransport, TwoHostsOverTwoChannels) {
  SKIP_UNLESS_BUILT("ucx");
  ShmDir shm;
  const std::string cmd =
      "env WEFT_SHM_DIR=" + shm.path() + " UCX_TLS=tcp UCX_NET_DEVICES=lo WEFT_NCHANNELS=2 " +
      "'WEFT_ALGO=allreduce:hier;allgather:hier;reducescatter:hier;broadcast:hier;reduce:hier' " +
      std::string(WEFT_BINARY_DIR) + "/tools/weftrun -n 4 --timeout 240 sh -c " +
      "'WEFT_HOST_ID=host$((WEFT_RANK / 2)) exec " + WEFT_BINARY_DIR +
      "/tests/integration/weft_test_worker transport shm,ucx'";
  RunResult r = run(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "WORKER OK")) << r.output;
  EXPECT_TRUE(shm.leftovers().empty());
}

// Ranks that disagree on WEFT_NCHANNELS would split steps differently: set-up refuses, naming the
// variable and both ranks' values.
TEST(NetTransport, ChannelCountsMustAgree) {
  ShmDir shm;
  const std::string cmd = "env WEFT_SHM_DIR=" + shm.path() + " " + std::string(WEFT_BINARY_DIR) +
                          "/tools/weftrun -n 2 --timeout 60 sh -c " +
                          "'WEFT_NCHANNELS=$((WEFT_RANK + 1)) exec " + WEFT_BINARY_DIR +
                          "/tests/integration/weft_test_worker cpp'";
  RunResult r = run(cmd);
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "WEFT_NCHANNELS is 2 on rank 1 but 1 on rank 0") ||
              contains(r.output, "WEFT_NCHANNELS is 1 on rank 0 but 2 on rank 1"))
      << r.output;
  EXPECT_TRUE(shm.leftovers().empty());
}

// Ranks posing as 2 or 3 hosts (WEFT_HOST_ID, ranks host by host or interleaved), every collective
// that has one forced to its hierarchical algorithm: shared memory inside a host, ucx between.
struct HostsCase {
  int nranks;
  const char* hostOf;  // shell arithmetic on WEFT_RANK
  const char* name;
};
class HierOverHosts : public testing::TestWithParam<HostsCase> {};

TEST_P(HierOverHosts, EveryCollectiveMatchesTheReference) {
  SKIP_UNLESS_BUILT("ucx");
  const HostsCase c = GetParam();
  ShmDir shm;
  const std::string cmd =
      "env WEFT_SHM_DIR=" + shm.path() + " UCX_TLS=tcp UCX_NET_DEVICES=lo WEFT_TIMEOUT=120 " +
      "'WEFT_ALGO=allreduce:hier;allgather:hier;reducescatter:hier;broadcast:hier;reduce:hier' " +
      std::string(WEFT_BINARY_DIR) + "/tools/weftrun -n " + std::to_string(c.nranks) +
      " --timeout 300 sh -c 'WEFT_HOST_ID=host$((" + c.hostOf + ")) exec " + WEFT_BINARY_DIR +
      "/tests/integration/weft_test_worker transport shm,ucx'";
  RunResult r = run(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  EXPECT_TRUE(contains(r.output, "WORKER OK")) << r.output;
  EXPECT_TRUE(shm.leftovers().empty());
}

INSTANTIATE_TEST_SUITE_P(Layouts, HierOverHosts,
                         testing::Values(HostsCase{4, "WEFT_RANK / 2", "4as2x2"},
                                         HostsCase{6, "WEFT_RANK / 3", "6as2x3"},
                                         HostsCase{6, "WEFT_RANK / 2", "6as3x2"},
                                         HostsCase{5, "WEFT_RANK % 2", "5as3plus2interleaved"}),
                         [](const testing::TestParamInfo<HostsCase>& i) { return i.param.name; });

TEST(NetTransport, ShmAloneRefusesSeveralHosts) {
  ShmDir shm;
  const std::string cmd = "env WEFT_SHM_DIR=" + shm.path() + " WEFT_TRANSPORT=shm " +
                          std::string(WEFT_BINARY_DIR) + "/tools/weftrun -n 2 --timeout 60 sh -c " +
                          "'WEFT_HOST_ID=host$WEFT_RANK exec " + WEFT_BINARY_DIR +
                          "/tests/integration/weft_test_worker all'";
  RunResult r = run(cmd);
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "but WEFT_TRANSPORT=shm allows only shared memory")) << r.output;
}

class NetFaults : public testing::TestWithParam<NetCase> {};

TEST_P(NetFaults, KilledRankIsNamedByEveryOtherRank) {
  const NetCase c = GetParam();
  SKIP_UNLESS_BUILT(c.plugin);
  ShmDir shm;
  const int victim = c.nranks - 1;
  const std::string cmd = "env WEFT_SHM_DIR=" + shm.path() +
                          " WEFT_TIMEOUT=60 WEFT_TRANSPORT=" + c.plugin + " " + c.env + " " +
                          launcher(c.nranks, "--timeout 120") + " kill " + std::to_string(victim);
  RunResult r = run(cmd);
  EXPECT_NE(r.status, 0) << r.output;
  for (int k = 0; k < c.nranks; ++k) {
    if (k == victim) continue;
    EXPECT_TRUE(contains(r.output, "KILL DETECTED rank " + std::to_string(k))) << r.output;
  }
  EXPECT_LT(r.seconds, 60.0) << "the survivors waited for their timeout";
}

std::vector<NetCase> faultCases() {
  return {{"ucx_tcp", "ucx", "UCX_TLS=tcp UCX_NET_DEVICES=lo", 3},
          {"ucx_peer", "ucx", "UCX_TLS=tcp UCX_NET_DEVICES=lo WEFT_UCX_ERROR_MODE=peer", 3},
          {"ofi_tcp_rxm", "ofi", "WEFT_OFI_PROVIDER='tcp;ofi_rxm' FI_TCP_IFACE=lo", 3}};
}

INSTANTIATE_TEST_SUITE_P(Plugins, NetFaults, testing::ValuesIn(faultCases()), netCaseName);

}  // namespace
}  // namespace weft::test
