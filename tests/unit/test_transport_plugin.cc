// Conformance tests for weft's transport plugins: every libweft-transport-<name>.so built here is
// loaded with dlopen (not through weft's loader) and held to the contract that
// include/weft/transport.h spells out: ABI fields, wire-up, tag matching per (sender, tag), sizes,
// truncation, RMA, a peer that dies, and finalize with requests still pending.
//
// Each configuration is a plugin and the environment it runs under (UCX_*, FI_*, or WEFT_*
// settings, which reach the plugin through init_args.get_param). A plugin that is not built here,
// or whose init says WEFT_TP_ERR_UNAVAILABLE, is skipped with the reason.
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>
#include <gtest/gtest.h>

#include "test_env.h"
#include "weft/transport.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kWaitLimit = seconds(10);       // any single transfer in these tests
constexpr auto kPeerDeathLimit = seconds(15);  // a killed peer must be noticed within this
constexpr auto kFinalizeLimit = seconds(5);
constexpr size_t kGuard = 64;  // bytes past every receive buffer that must stay untouched
constexpr uint8_t kFill = 0xEE;

// ---- configurations ----

struct PluginConfig {
  std::string plugin;  // libweft-transport-<plugin>.so
  std::string label;   // the test-name suffix
  std::vector<std::pair<std::string, std::optional<std::string>>> env;  // nullopt: unset
  const char* dependency;  // what the plugin needs at configure time ("UCX"), nullptr: nothing
  const char* found_var;   // its CMakeCache variable
  bool network;            // ranks may be separate processes (the peer-death test)
};

void PrintTo(const PluginConfig& c, std::ostream* os) {
  *os << c.label;
}

const std::vector<PluginConfig>& Configs() {
  static const std::vector<PluginConfig> configs = {
      {"example", "example", {}, nullptr, nullptr, false},
      {"ucx",
       "ucx_tcp",
       {{"UCX_TLS", "tcp"}, {"UCX_NET_DEVICES", "lo"}, {"WEFT_UCX_ERROR_MODE", std::nullopt}},
       "UCX",
       "UCX_FOUND",
       true},
      // Data endpoints with UCX's own peer error handling instead of guard endpoints.
      {"ucx",
       "ucx_tcp_peer",
       {{"UCX_TLS", "tcp"}, {"UCX_NET_DEVICES", "lo"}, {"WEFT_UCX_ERROR_MODE", "peer"}},
       "UCX",
       "UCX_FOUND",
       true},
      {"ucx",
       "ucx_default",
       {{"UCX_TLS", std::nullopt},
        {"UCX_NET_DEVICES", std::nullopt},
        {"WEFT_UCX_ERROR_MODE", std::nullopt}},
       "UCX",
       "UCX_FOUND",
       true},
      {"ofi",
       "ofi_tcp_rxm",
       {{"WEFT_OFI_PROVIDER", "tcp;ofi_rxm"},
        {"WEFT_OFI_DOMAIN", "lo"},  // the plugin's choice of interface...
        {"FI_TCP_IFACE", "lo"},     // ...and the tcp provider's own
        {"FI_PROVIDER", std::nullopt}},
       "libfabric",
       "LIBFABRIC_FOUND",
       true},
      {"ofi",
       "ofi_shm",
       {{"WEFT_OFI_PROVIDER", "shm"}, {"FI_PROVIDER", std::nullopt}},
       "libfabric",
       "LIBFABRIC_FOUND",
       true},
  };
  return configs;
}

bool FoundAtConfigure(const char* var) {
  std::ifstream cache(std::string(WEFT_BINARY_DIR) + "/CMakeCache.txt");
  std::string line, want = std::string(var) + ":INTERNAL=1";
  while (std::getline(cache, line))
    if (line == want) return true;
  return false;
}

// Loads a plugin once per process and keeps it loaded (UCX and libfabric do not like being
// unloaded and loaded again). nullptr with *why set when it cannot be loaded.
const weft_transport_v1_t* LoadPlugin(const std::string& path, std::string* why) {
  static std::mutex mu;
  static std::map<std::string, const weft_transport_v1_t*> loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = loaded.find(path); it != loaded.end()) return it->second;
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *why = std::string("dlopen: ") + dlerror();
    return nullptr;
  }
  auto* tp = static_cast<const weft_transport_v1_t*>(dlsym(h, WEFT_TRANSPORT_SYMBOL));
  if (!tp) {
    *why = path + " does not export " WEFT_TRANSPORT_SYMBOL;
    return nullptr;
  }
  loaded[path] = tp;
  return tp;
}

// What the plugin reads through init_args: settings from the environment, log lines to stderr.
const char* EnvParam(void*, const char* name) {
  return getenv(name);
}

void LogToStderr(void* tag, int level, const char* msg) {
  if (level <= WEFT_TP_LOG_WARN || getenv("WEFT_TP_TEST_VERBOSE"))
    fprintf(stderr, "[%s log %d] %s\n", static_cast<const char*>(tag), level, msg);
}

weft_transport_init_args_t InitArgs(int rank, int nranks, uint64_t comm_id, const char* tag) {
  weft_transport_init_args_t a{};
  a.struct_size = sizeof a;
  a.abi_version = WEFT_TRANSPORT_ABI_VERSION;
  a.rank = rank;
  a.nranks = nranks;
  a.comm_id = comm_id;
  a.log = LogToStderr;
  a.log_ctx = const_cast<char*>(tag);
  a.get_param = EnvParam;
  a.param_ctx = nullptr;
  return a;
}

uint64_t RandomCommId() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(getpid());
}

// ---- data ----

uint8_t PatternByte(size_t i, uint32_t seed) {
  uint32_t x = static_cast<uint32_t>(i) * 2654435761u + seed * 40503u;
  return static_cast<uint8_t>((x >> 13) ^ (i >> 12) ^ seed);
}

void Fill(uint8_t* p, size_t len, uint32_t seed) {
  for (size_t i = 0; i < len; ++i)
    p[i] = PatternByte(i, seed);
}

// "" when p holds the pattern, else where it first differs.
std::string CheckPattern(const uint8_t* p, size_t len, uint32_t seed) {
  for (size_t i = 0; i < len; ++i)
    if (p[i] != PatternByte(i, seed)) {
      std::ostringstream os;
      os << "byte " << i << " of " << len << " is " << int(p[i]) << ", expected "
         << int(PatternByte(i, seed));
      return os.str();
    }
  return "";
}

// A buffer with kGuard bytes of kFill after its len bytes, optionally registered with a context.
class Buffer {
 public:
  explicit Buffer(size_t len) : len_(len), mem_(len + kGuard, kFill) {}
  ~Buffer() {
    if (mr_) tp_->dereg_mem(ctx_, mr_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  uint8_t* data() { return mem_.data(); }
  size_t size() const { return len_; }
  void* mr() const { return mr_; }
  bool GuardIntact() const {
    return std::all_of(mem_.begin() + len_, mem_.end(), [](uint8_t b) { return b == kFill; });
  }
  // Registers the whole allocation (never empty, so 0-byte messages have a buffer too).
  int Register(const weft_transport_v1_t* tp, void* ctx) {
    tp_ = tp;
    ctx_ = ctx;
    return tp->reg_mem(ctx, mem_.data(), mem_.size(), WEFT_TP_MEM_HOST, &mr_);
  }
  // For a context finalized with the registration in place: finalize released it.
  void Forget() { mr_ = nullptr; }

 private:
  size_t len_;
  std::vector<uint8_t> mem_;
  const weft_transport_v1_t* tp_ = nullptr;
  void* ctx_ = nullptr;
  void* mr_ = nullptr;
};

// ---- requests ----

struct Op {
  explicit Op(void* c = nullptr, std::string w = {}) : ctx(c), what(std::move(w)) {}
  void* ctx;
  void* req = nullptr;
  std::string what;
  bool done = false;
  int rc = -1;
  size_t bytes = 0;
  std::string error;  // last_error() right after test() reported a failure
  Clock::duration took{};
};

// Tests op once; true when it has finished (well or not).
bool TestOnce(const weft_transport_v1_t* tp, Op& op, Clock::time_point start) {
  if (op.done) return true;
  int done = 0;
  size_t bytes = 0;
  int rc = tp->test(op.ctx, op.req, &done, &bytes);
  if (rc == WEFT_TP_SUCCESS && !done) return false;
  op.done = true;
  op.rc = rc;
  op.bytes = bytes;
  op.took = Clock::now() - start;
  if (rc != WEFT_TP_SUCCESS) op.error = tp->last_error(op.ctx);
  return true;
}

// Drives every context in ctxs and tests every op until all have finished (true) or limit has
// passed (false).
bool Drive(const weft_transport_v1_t* tp, const std::vector<void*>& ctxs,
           const std::vector<Op*>& ops, Clock::duration limit) {
  const auto start = Clock::now();
  for (;;) {
    for (void* c : ctxs)
      tp->progress(c);
    bool all = true;
    for (Op* op : ops)
      all = TestOnce(tp, *op, start) && all;
    if (all) return true;
    if (Clock::now() - start > limit) return false;
    std::this_thread::yield();
  }
}

// Drive, failing the test (naming what is still pending) when limit passes: no test hangs.
bool WaitAll(const weft_transport_v1_t* tp, const std::vector<void*>& ctxs,
             const std::vector<Op*>& ops, Clock::duration limit = kWaitLimit) {
  if (Drive(tp, ctxs, ops, limit)) return true;
  std::string pending;
  for (Op* op : ops)
    if (!op->done) pending += " [" + op->what + "]";
  ADD_FAILURE() << "still pending after " << std::chrono::duration_cast<milliseconds>(limit).count()
                << " ms:" << pending;
  return false;
}

// ---- the child process of the peer-death test (the same binary, run again) ----

bool WriteFrame(int fd, const void* data, uint32_t len) {
  std::vector<uint8_t> b(sizeof len + len);
  memcpy(b.data(), &len, sizeof len);
  if (len) memcpy(b.data() + sizeof len, data, len);
  size_t off = 0;
  while (off < b.size()) {
    ssize_t n = write(fd, b.data() + off, b.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool ReadFull(int fd, void* p, size_t len, Clock::time_point deadline) {
  size_t off = 0;
  while (off < len) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    ssize_t n = read(fd, static_cast<uint8_t*>(p) + off, len - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool ReadFrame(int fd, std::string* out, Clock::duration limit = kWaitLimit) {
  const auto deadline = Clock::now() + limit;
  uint32_t len = 0;
  if (!ReadFull(fd, &len, sizeof len, deadline) || len > (1u << 20)) return false;
  out->resize(len);
  return ReadFull(fd, out->data(), len, deadline);
}

constexpr uint64_t kChildTag = 0x1234567890ull;  // the child's one message to the parent
constexpr size_t kChildBytes = 4096;
constexpr uint32_t kChildSeed = 77;

// Rank 1 of 2: connects to the parent, sends it one message, then keeps progressing until it is
// killed. Reports through frames on fd: "ok" or "unavailable: ..." or "error: ...", its address,
// then "sent".
[[noreturn]] void PeerDeathChild(const std::string& plugin_path, int fd, uint64_t comm_id) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  alarm(120);  // never outlive a parent that forgot us
  auto fail = [&](const std::string& msg) {
    WriteFrame(fd, msg.data(), static_cast<uint32_t>(msg.size()));
    fprintf(stderr, "[peer-death child] %s\n", msg.c_str());
    _exit(1);
  };
  std::string why;
  const weft_transport_v1_t* tp = LoadPlugin(plugin_path, &why);
  if (!tp) fail("error: " + why);
  auto args = InitArgs(1, 2, comm_id, "child");
  char err[512] = "";
  void* ctx = nullptr;
  int rc = tp->init(&args, &ctx, err, sizeof err);
  if (rc == WEFT_TP_ERR_UNAVAILABLE) fail(std::string("unavailable: ") + err);
  if (rc != WEFT_TP_SUCCESS) fail("error: init: " + std::string(err));
  weft_transport_caps_t caps{};
  tp->get_caps(ctx, &caps);
  std::vector<char> addr(caps.max_address_bytes);
  size_t len = addr.size();
  if (tp->get_address(ctx, addr.data(), &len) != WEFT_TP_SUCCESS)
    fail("error: get_address: " + std::string(tp->last_error(ctx)));
  WriteFrame(fd, "ok", 2);
  WriteFrame(fd, addr.data(), static_cast<uint32_t>(len));
  std::string parent_addr;
  if (!ReadFrame(fd, &parent_addr)) fail("error: no address from the parent");
  void* ep = nullptr;
  if (tp->connect(ctx, 0, parent_addr.data(), parent_addr.size(), &ep) != WEFT_TP_SUCCESS)
    fail("error: connect: " + std::string(tp->last_error(ctx)));
  std::vector<uint8_t> msg(kChildBytes);
  Fill(msg.data(), msg.size(), kChildSeed);
  void* mr = nullptr;
  if ((caps.flags & WEFT_TP_CAP_MR_LOCAL) &&
      tp->reg_mem(ctx, msg.data(), msg.size(), WEFT_TP_MEM_HOST, &mr) != WEFT_TP_SUCCESS)
    fail("error: reg_mem: " + std::string(tp->last_error(ctx)));
  Op send{ctx, "child's send"};
  if (tp->isend(ctx, ep, msg.data(), msg.size(), mr, kChildTag, &send.req) != WEFT_TP_SUCCESS)
    fail("error: isend: " + std::string(tp->last_error(ctx)));
  const auto start = Clock::now();
  while (!TestOnce(tp, send, start)) {
    tp->progress(ctx);
    if (Clock::now() - start > kWaitLimit) fail("error: the send to the parent never completed");
  }
  if (send.rc != WEFT_TP_SUCCESS) fail("error: send: " + send.error);
  WriteFrame(fd, "sent", 4);
  for (;;) {  // serve the connection until SIGKILL
    tp->progress(ctx);
    usleep(200);
  }
}

// KilledPeerFailsPendingRequests runs this binary again with WEFT_TP_TEST_CHILD set: the child
// half then runs before main (and gtest) and never returns.
[[maybe_unused]] const bool kIsPeerDeathChild = [] {
  const char* spec = getenv("WEFT_TP_TEST_CHILD");
  if (!spec) return false;
  const std::string s = spec;  // "<plugin path>|<comm id>"
  const size_t bar = s.rfind('|');
  PeerDeathChild(s.substr(0, bar), 3, std::stoull(s.substr(bar + 1)));
}();

// ---- the fixture ----

class TransportPluginTest : public ::testing::TestWithParam<PluginConfig> {
 protected:
  void SetUp() override {
    const PluginConfig& cfg = GetParam();
    for (const auto& [name, value] : cfg.env)
      env_.push_back(std::make_unique<weft::test::ScopedEnv>(name, value));
    const std::string path = weft::test::builtPluginPath(cfg.plugin);
    if (access(path.c_str(), F_OK) != 0) {
      const std::string so = "libweft-transport-" + cfg.plugin + ".so";
      if (!cfg.dependency) FAIL() << so << " not built: build target weft-transport-" << cfg.plugin;
      if (!FoundAtConfigure(cfg.found_var))
        GTEST_SKIP() << so << " not built: " << cfg.dependency << " not found at configure time";
      GTEST_SKIP() << so << " not built (" << cfg.dependency
                   << " was found at configure time: build target weft-transport-" << cfg.plugin
                   << ")";
    }
    std::string why;
    tp_ = LoadPlugin(path, &why);
    ASSERT_NE(tp_, nullptr) << why;
  }

  // Finalizes the contexts left, each on its own thread, as separate processes would: a plugin
  // may wait a little in finalize for its peers to answer.
  void TearDown() override {
    std::vector<std::thread> threads;
    std::vector<int> rcs(ctxs_.size(), WEFT_TP_SUCCESS);
    for (size_t i = 0; i < ctxs_.size(); ++i)
      if (ctxs_[i]) threads.emplace_back([this, i, &rcs] { rcs[i] = tp_->finalize(ctxs_[i]); });
    for (auto& t : threads)
      t.join();
    for (size_t i = 0; i < ctxs_.size(); ++i)
      EXPECT_EQ(rcs[i], WEFT_TP_SUCCESS) << "finalize rank " << i;
    ctxs_.clear();
    env_.clear();
  }

  // Creates the context of one rank (*out stays NULL on failure); skips the test if the plugin
  // says it is unavailable here.
  void InitRank(int rank, int nranks, uint64_t comm_id, void** out) {
    auto args = InitArgs(rank, nranks, comm_id, GetParam().label.c_str());
    char err[512] = "";
    void* ctx = nullptr;
    *out = nullptr;
    int rc = tp_->init(&args, &ctx, err, sizeof err);
    if (rc == WEFT_TP_ERR_UNAVAILABLE)
      GTEST_SKIP() << GetParam().label << ": plugin unavailable here: " << err;
    ASSERT_EQ(rc, WEFT_TP_SUCCESS) << "init rank " << rank << ": " << err;
    ASSERT_NE(ctx, nullptr);
    ctxs_.push_back(ctx);
    *out = ctx;
  }

  // n ranks in this process, every one connected to every other: ctxs_[r], eps_[r][peer].
  void MakeRanks(int n) {
    const uint64_t comm_id = RandomCommId();
    for (int r = 0; r < n; ++r) {
      void* ctx;
      InitRank(r, n, comm_id, &ctx);
      if (!ctx) return;
    }
    // Each rank's address fits its own caps.max_address_bytes (weft gathers them and sizes its
    // records by the largest).
    std::vector<std::vector<char>> addrs(n);
    for (int r = 0; r < n; ++r) {
      weft_transport_caps_t caps{};
      ASSERT_EQ(tp_->get_caps(ctxs_[r], &caps), WEFT_TP_SUCCESS) << tp_->last_error(ctxs_[r]);
      if (r == 0) caps_ = caps;
      EXPECT_EQ(caps.flags, caps_.flags) << "rank " << r << " differs from rank 0";
      addrs[r].resize(caps.max_address_bytes);
      size_t len = addrs[r].size();
      ASSERT_EQ(tp_->get_address(ctxs_[r], addrs[r].data(), &len), WEFT_TP_SUCCESS)
          << tp_->last_error(ctxs_[r]);
      ASSERT_GT(len, 0u);
      ASSERT_LE(len, caps.max_address_bytes);
      addrs[r].resize(len);
    }
    eps_.assign(n, std::vector<void*>(n, nullptr));
    for (int r = 0; r < n; ++r)
      for (int p = 0; p < n; ++p)
        if (p != r) {
          ASSERT_EQ(tp_->connect(ctxs_[r], p, addrs[p].data(), addrs[p].size(), &eps_[r][p]),
                    WEFT_TP_SUCCESS)
              << "rank " << r << " to " << p << ": " << tp_->last_error(ctxs_[r]);
        }
  }

  bool MrLocal() const { return caps_.flags & WEFT_TP_CAP_MR_LOCAL; }

  // Registers b with rank r's context when the plugin needs it (or when asked to).
  void MaybeRegister(Buffer& b, int r, bool always = false) {
    if (always || MrLocal()) {
      ASSERT_EQ(b.Register(tp_, ctxs_[r]), WEFT_TP_SUCCESS) << tp_->last_error(ctxs_[r]);
    }
  }

  // Posts a send from rank `from` to `to` (or a receive on rank `from` from `to`).
  Op Send(int from, int to, Buffer& b, size_t len, uint64_t tag) {
    Op op{ctxs_[from], Describe("send", from, to, tag, len)};
    int rc = tp_->isend(ctxs_[from], eps_[from][to], b.data(), len, b.mr(), tag, &op.req);
    EXPECT_EQ(rc, WEFT_TP_SUCCESS) << op.what << ": " << tp_->last_error(ctxs_[from]);
    if (rc != WEFT_TP_SUCCESS) op.done = true, op.rc = rc;
    return op;
  }
  Op Recv(int at, int from, Buffer& b, size_t len, uint64_t tag) {
    Op op{ctxs_[at], Describe("recv", at, from, tag, len)};
    int rc = tp_->irecv(ctxs_[at], eps_[at][from], b.data(), len, b.mr(), tag, &op.req);
    EXPECT_EQ(rc, WEFT_TP_SUCCESS) << op.what << ": " << tp_->last_error(ctxs_[at]);
    if (rc != WEFT_TP_SUCCESS) op.done = true, op.rc = rc;
    return op;
  }
  static std::string Describe(const char* kind, int a, int b, uint64_t tag, size_t len) {
    char s[128];
    snprintf(s, sizeof s, "%s %d%s%d tag %#llx, %zu bytes", kind, a, kind[0] == 's' ? "->" : "<-",
             b, static_cast<unsigned long long>(tag), len);
    return s;
  }

  std::vector<void*> Live() const {
    std::vector<void*> live;
    for (void* c : ctxs_)
      if (c) live.push_back(c);
    return live;
  }
  // Waits for ops, driving every live context; a failure past the limit.
  bool Wait(const std::vector<Op*>& ops, Clock::duration limit = kWaitLimit) {
    return WaitAll(tp_, Live(), ops, limit);
  }
  // Drives every live context for a while (or until ops finish), with no verdict.
  bool Settle(const std::vector<Op*>& ops, Clock::duration limit) {
    return Drive(tp_, Live(), ops, limit);
  }

  // Finalizes rank r now, checking that it returns promptly; returns how long it took.
  Clock::duration Finalize(int r) {
    const auto t0 = Clock::now();
    EXPECT_EQ(tp_->finalize(ctxs_[r]), WEFT_TP_SUCCESS) << "finalize rank " << r;
    ctxs_[r] = nullptr;
    return Clock::now() - t0;
  }

  void CheckTruncation(bool recv_first);

  std::vector<std::unique_ptr<weft::test::ScopedEnv>> env_;
  const weft_transport_v1_t* tp_ = nullptr;
  std::vector<void*> ctxs_;
  std::vector<std::vector<void*>> eps_;
  weft_transport_caps_t caps_{};
};

#define MAKE_RANKS(n)                             \
  do {                                            \
    MakeRanks(n);                                 \
    if (IsSkipped() || HasFatalFailure()) return; \
  } while (0)

// A line of the test's own output (kept in order with the plugins' stderr).
__attribute__((format(printf, 1, 2))) void Note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// ---- 1. the exported object ----

TEST_P(TransportPluginTest, AbiFields) {
  ASSERT_EQ(tp_->abi_version, static_cast<uint32_t>(WEFT_TRANSPORT_ABI_VERSION));
  ASSERT_GE(tp_->struct_size, sizeof(weft_transport_v1_t));
  ASSERT_NE(tp_->name, nullptr);
  EXPECT_STREQ(tp_->name, GetParam().plugin.c_str());
  EXPECT_NE(tp_->init, nullptr);
  EXPECT_NE(tp_->finalize, nullptr);
  EXPECT_NE(tp_->last_error, nullptr);
  EXPECT_NE(tp_->get_caps, nullptr);
  EXPECT_NE(tp_->get_address, nullptr);
  EXPECT_NE(tp_->connect, nullptr);
  EXPECT_NE(tp_->reg_mem, nullptr);
  EXPECT_NE(tp_->dereg_mem, nullptr);
  EXPECT_NE(tp_->isend, nullptr);
  EXPECT_NE(tp_->irecv, nullptr);
  EXPECT_NE(tp_->test, nullptr);
  EXPECT_NE(tp_->progress, nullptr);

  void* ctx;
  InitRank(0, 1, RandomCommId(), &ctx);
  if (!ctx) return;
  weft_transport_caps_t caps;
  memset(&caps, 0x5A, sizeof caps);
  ASSERT_EQ(tp_->get_caps(ctx, &caps), WEFT_TP_SUCCESS) << tp_->last_error(ctx);
  EXPECT_TRUE(caps.flags & WEFT_TP_CAP_TAGGED) << "TAGGED is required of every plugin";
  EXPECT_TRUE(caps.mem_kinds & WEFT_TP_MEM_HOST) << "host memory at least";
  EXPECT_GT(caps.max_message_bytes, 0u);
  EXPECT_GT(caps.max_address_bytes, 0u);
  EXPECT_LT(caps.max_address_bytes, 1u << 20) << "an address is sent to every rank";
  EXPECT_NE(memchr(caps.device, '\0', sizeof caps.device), nullptr) << "device is terminated";
  EXPECT_GT(strnlen(caps.device, sizeof caps.device), 0u) << "device names something";
  const bool rma = caps.flags & WEFT_TP_CAP_RMA;
  for (auto [fn, name] : {std::pair<bool, const char*>{tp_->pack_rkey != nullptr, "pack_rkey"},
                          {tp_->unpack_rkey != nullptr, "unpack_rkey"},
                          {tp_->release_rkey != nullptr, "release_rkey"},
                          {tp_->put != nullptr, "put"},
                          {tp_->get != nullptr, "get"},
                          {tp_->flush != nullptr, "flush"}})
    EXPECT_EQ(fn, rma) << name
                       << (rma ? " is NULL though caps has WEFT_TP_CAP_RMA"
                               : " is set though caps lacks WEFT_TP_CAP_RMA");
  EXPECT_EQ(caps.max_rkey_bytes > 0, rma) << "max_rkey_bytes: " << caps.max_rkey_bytes;
  std::vector<char> addr(caps.max_address_bytes);
  size_t len = addr.size();
  ASSERT_EQ(tp_->get_address(ctx, addr.data(), &len), WEFT_TP_SUCCESS) << tp_->last_error(ctx);
  EXPECT_GT(len, 0u);
  EXPECT_LE(len, caps.max_address_bytes);
  Note("[ %s ] device \"%s\", flags %#x, max message %llu, address %zu bytes, %.2f us, %.1f GB/s\n",
       GetParam().label.c_str(), caps.device, caps.flags,
       static_cast<unsigned long long>(caps.max_message_bytes), len, caps.latency_us,
       caps.bandwidth_gbps);
}

// ---- 2. two contexts, connected both ways ----

TEST_P(TransportPluginTest, TwoContextsExchangeBothWays) {
  MAKE_RANKS(2);
  for (int from = 0; from < 2; ++from) {
    const int to = 1 - from;
    Buffer s(256), r(256);
    MaybeRegister(s, from);
    MaybeRegister(r, to);
    Fill(s.data(), 256, 10 + from);
    Op send = Send(from, to, s, 256, 5);
    Op recv = Recv(to, from, r, 256, 5);
    ASSERT_TRUE(Wait({&send, &recv}));
    ASSERT_EQ(send.rc, WEFT_TP_SUCCESS) << send.error;
    ASSERT_EQ(recv.rc, WEFT_TP_SUCCESS) << recv.error;
    EXPECT_EQ(send.bytes, 256u);
    EXPECT_EQ(recv.bytes, 256u);
    EXPECT_EQ(CheckPattern(r.data(), 256, 10 + from), "");
  }
  if (tp_->describe_ep) {
    char desc[128] = "";
    ASSERT_EQ(tp_->describe_ep(ctxs_[0], eps_[0][1], desc, sizeof desc), WEFT_TP_SUCCESS)
        << tp_->last_error(ctxs_[0]);
    EXPECT_GT(strlen(desc), 0u);
    Note("[ %s ] endpoint 0->1: %s\n", GetParam().label.c_str(), desc);
  }
}

// ---- 3. tag matching ----

TEST_P(TransportPluginTest, TagsMatchWhateverTheOrder) {
  MAKE_RANKS(2);
  constexpr int kMessages = 16;
  std::mt19937 rng(2024);
  for (int from = 0; from < 2; ++from) {
    const int to = 1 - from;
    std::vector<uint64_t> tags(kMessages);
    std::vector<size_t> sizes(kMessages);
    std::vector<std::unique_ptr<Buffer>> sbuf, rbuf;
    for (int k = 0; k < kMessages; ++k) {
      // All 40 bits: bit 39 always, the top bits varying, one tag with every bit set.
      tags[k] =
          k % 2 ? ((1ull << WEFT_TP_TAG_BITS) - 1 - k) : ((1ull << 39) | (uint64_t(k) << 30) | k);
      sizes[k] = 100 + 37 * k;
      sbuf.push_back(std::make_unique<Buffer>(sizes[k]));
      rbuf.push_back(std::make_unique<Buffer>(1024));
      MaybeRegister(*sbuf[k], from);
      MaybeRegister(*rbuf[k], to);
      Fill(sbuf[k]->data(), sizes[k], 1000 * from + k);
    }
    std::vector<int> order(kMessages);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<Op> sends, recvs(kMessages);
    for (int i = 0; i < kMessages / 2; ++i)  // half the receives before any send...
      recvs[order[i]] = Recv(to, from, *rbuf[order[i]], 1024, tags[order[i]]);
    for (int k = 0; k < kMessages; ++k)
      sends.push_back(Send(from, to, *sbuf[k], sizes[k], tags[k]));
    for (int i = kMessages / 2; i < kMessages; ++i)  // ...and half after
      recvs[order[i]] = Recv(to, from, *rbuf[order[i]], 1024, tags[order[i]]);
    std::vector<Op*> all;
    for (auto& op : sends)
      all.push_back(&op);
    for (auto& op : recvs)
      all.push_back(&op);
    ASSERT_TRUE(Wait(all));
    for (int k = 0; k < kMessages; ++k) {
      SCOPED_TRACE(recvs[k].what);
      EXPECT_EQ(sends[k].rc, WEFT_TP_SUCCESS) << sends[k].error;
      EXPECT_EQ(sends[k].bytes, sizes[k]);
      ASSERT_EQ(recvs[k].rc, WEFT_TP_SUCCESS) << recvs[k].error;
      EXPECT_EQ(recvs[k].bytes, sizes[k]);
      EXPECT_EQ(CheckPattern(rbuf[k]->data(), sizes[k], 1000 * from + k), "");
      EXPECT_EQ(rbuf[k]->data()[sizes[k]], kFill) << "written past the message";
    }
  }
}

// ---- 4. sizes ----

TEST_P(TransportPluginTest, SizesArriveByteExact) {
  MAKE_RANKS(2);
  const size_t sizes[] = {0, 1, 8, 4097, 64 << 10, 4 << 20};
  for (int registered = 1; registered >= 0; --registered) {
    if (!registered && MrLocal()) {
      Note("[ %s ] MR_LOCAL: unregistered buffers not tried\n", GetParam().label.c_str());
      continue;
    }
    int i = 0;
    for (size_t len : sizes) {
      ++i;
      if (len > caps_.max_message_bytes) continue;
      SCOPED_TRACE(testing::Message()
                   << len << " bytes, " << (registered ? "" : "un") << "registered");
      const uint32_t seed = static_cast<uint32_t>(len * 3 + registered);
      const uint64_t tag = (uint64_t(registered) << 38) | i;
      Buffer s(len), r(len);
      if (registered) {
        ASSERT_EQ(s.Register(tp_, ctxs_[0]), WEFT_TP_SUCCESS) << tp_->last_error(ctxs_[0]);
        ASSERT_EQ(r.Register(tp_, ctxs_[1]), WEFT_TP_SUCCESS) << tp_->last_error(ctxs_[1]);
      }
      Fill(s.data(), len, seed);
      Op send, recv;
      if (i % 2) {  // the receive first, then the other way round
        recv = Recv(1, 0, r, len, tag);
        send = Send(0, 1, s, len, tag);
      } else {
        send = Send(0, 1, s, len, tag);
        recv = Recv(1, 0, r, len, tag);
      }
      ASSERT_TRUE(Wait({&send, &recv}));
      ASSERT_EQ(send.rc, WEFT_TP_SUCCESS) << send.error;
      ASSERT_EQ(recv.rc, WEFT_TP_SUCCESS) << recv.error;
      EXPECT_EQ(send.bytes, len);
      EXPECT_EQ(recv.bytes, len);
      EXPECT_EQ(CheckPattern(r.data(), len, seed), "");
      EXPECT_TRUE(r.GuardIntact()) << "written past the receive buffer";
    }
  }
}

// ---- 5. truncation ----

// A 1 KiB message into a 512-byte receive, posted before or after the message arrives.
void TransportPluginTest::CheckTruncation(bool recv_first) {
  MAKE_RANKS(2);
  const uint64_t tag = 0x4000 + recv_first;
  Buffer s(1024), r(512);
  MaybeRegister(s, 0);
  MaybeRegister(r, 1);
  Fill(s.data(), 1024, 5);
  Op send, recv;
  if (recv_first) {
    recv = Recv(1, 0, r, 512, tag);
    send = Send(0, 1, s, 1024, tag);
  } else {
    send = Send(0, 1, s, 1024, tag);
    Settle({&send}, milliseconds(200));  // let it arrive unexpected
    recv = Recv(1, 0, r, 512, tag);
  }
  ASSERT_TRUE(Wait({&send, &recv}));
  EXPECT_EQ(recv.rc, WEFT_TP_ERR_TRUNCATED) << recv.error;
  EXPECT_FALSE(recv.error.empty()) << "last_error explains the truncation";
  Note("[ %s ] truncated receive: \"%s\"; the send: rc %d%s%s\n", GetParam().label.c_str(),
       recv.error.c_str(), send.rc, send.error.empty() ? "" : " ", send.error.c_str());
  EXPECT_TRUE(r.GuardIntact()) << "a truncated receive wrote past its buffer";

  // Whether the pair still works afterwards is not in the contract (weft fails the operation
  // anyway); it is reported, not required.
  Buffer s2(100), r2(100);
  MaybeRegister(s2, 0);
  MaybeRegister(r2, 1);
  Fill(s2.data(), 100, 6);
  Op send2 = Send(0, 1, s2, 100, tag + 0x100);
  Op recv2 = Recv(1, 0, r2, 100, tag + 0x100);
  const bool ok = Settle({&send2, &recv2}, seconds(3)) && recv2.rc == WEFT_TP_SUCCESS &&
                  recv2.bytes == 100 && CheckPattern(r2.data(), 100, 6).empty();
  Note("[ %s ] after the truncation the pair %s\n", GetParam().label.c_str(),
       ok ? "still works"
          : ("is broken: send " + std::to_string(send2.rc) + " " + send2.error + ", receive " +
             (recv2.done ? std::to_string(recv2.rc) + " " + recv2.error : "pending"))
                .c_str());
}

TEST_P(TransportPluginTest, TruncationReceivePostedFirst) {
  CheckTruncation(true);
}
TEST_P(TransportPluginTest, TruncationMessageArrivedFirst) {
  CheckTruncation(false);
}

// ---- 6. matching by sender ----

TEST_P(TransportPluginTest, SameTagFromTwoSendersMatchesByEndpoint) {
  MAKE_RANKS(3);
  const uint64_t tag = 0xABCDE;
  Buffer s1(300), s2(500), r1(1024), r2(1024);
  MaybeRegister(s1, 1);
  MaybeRegister(s2, 2);
  MaybeRegister(r1, 0);
  MaybeRegister(r2, 0);
  Fill(s1.data(), 300, 1);
  Fill(s2.data(), 500, 2);
  Op recv2 = Recv(0, 2, r2, 1024, tag);  // posted before either send
  Op send1 = Send(1, 0, s1, 300, tag);   // rank 1 first: it must not land in recv2
  Op send2 = Send(2, 0, s2, 500, tag);
  Settle({&send1}, milliseconds(200));
  Op recv1 = Recv(0, 1, r1, 1024, tag);
  ASSERT_TRUE(Wait({&send1, &send2, &recv1, &recv2}));
  ASSERT_EQ(recv1.rc, WEFT_TP_SUCCESS) << recv1.error;
  ASSERT_EQ(recv2.rc, WEFT_TP_SUCCESS) << recv2.error;
  EXPECT_EQ(recv1.bytes, 300u);
  EXPECT_EQ(recv2.bytes, 500u);
  EXPECT_EQ(CheckPattern(r1.data(), 300, 1), "") << "rank 1's message";
  EXPECT_EQ(CheckPattern(r2.data(), 500, 2), "") << "rank 2's message";
}

// ---- 7. RMA ----

TEST_P(TransportPluginTest, RmaPutFlushGet) {
  MAKE_RANKS(2);
  if (!(caps_.flags & WEFT_TP_CAP_RMA)) GTEST_SKIP() << GetParam().label << " declares no RMA";
  constexpr size_t kTarget = 64 << 10;
  Buffer target(kTarget), local(kTarget);
  ASSERT_EQ(target.Register(tp_, ctxs_[1]), WEFT_TP_SUCCESS) << tp_->last_error(ctxs_[1]);
  ASSERT_EQ(local.Register(tp_, ctxs_[0]), WEFT_TP_SUCCESS) << tp_->last_error(ctxs_[0]);
  memset(target.data(), 0x11, kTarget);
  std::vector<char> blob(caps_.max_rkey_bytes);
  size_t len = blob.size();
  ASSERT_EQ(tp_->pack_rkey(ctxs_[1], target.mr(), blob.data(), &len), WEFT_TP_SUCCESS)
      << tp_->last_error(ctxs_[1]);
  ASSERT_GT(len, 0u);
  ASSERT_LE(len, caps_.max_rkey_bytes);
  void* rkey = nullptr;
  ASSERT_EQ(tp_->unpack_rkey(ctxs_[0], eps_[0][1], blob.data(), len, &rkey), WEFT_TP_SUCCESS)
      << tp_->last_error(ctxs_[0]);
  const uint64_t base = reinterpret_cast<uintptr_t>(target.data());

  // put 5000 bytes at offset 100, then flush: visible at the target.
  Fill(local.data(), 5000, 31);
  Op put{ctxs_[0], "put"}, flush{ctxs_[0], "flush"};
  ASSERT_EQ(
      tp_->put(ctxs_[0], eps_[0][1], local.data(), 5000, local.mr(), base + 100, rkey, &put.req),
      WEFT_TP_SUCCESS)
      << tp_->last_error(ctxs_[0]);
  ASSERT_TRUE(Wait({&put}));
  ASSERT_EQ(put.rc, WEFT_TP_SUCCESS) << put.error;
  ASSERT_EQ(tp_->flush(ctxs_[0], eps_[0][1], &flush.req), WEFT_TP_SUCCESS)
      << tp_->last_error(ctxs_[0]);
  ASSERT_TRUE(Wait({&flush}));
  ASSERT_EQ(flush.rc, WEFT_TP_SUCCESS) << flush.error;
  EXPECT_EQ(CheckPattern(target.data() + 100, 5000, 31), "");
  EXPECT_EQ(target.data()[99], 0x11);
  EXPECT_EQ(target.data()[5100], 0x11);

  // get 7000 bytes from offset 20000 into local+8000.
  Fill(target.data() + 20000, 7000, 32);
  Op get{ctxs_[0], "get"};
  ASSERT_EQ(tp_->get(ctxs_[0], eps_[0][1], local.data() + 8000, 7000, local.mr(), base + 20000,
                     rkey, &get.req),
            WEFT_TP_SUCCESS)
      << tp_->last_error(ctxs_[0]);
  ASSERT_TRUE(Wait({&get}));
  ASSERT_EQ(get.rc, WEFT_TP_SUCCESS) << get.error;
  EXPECT_EQ(CheckPattern(local.data() + 8000, 7000, 32), "");
  EXPECT_EQ(tp_->release_rkey(ctxs_[0], rkey), WEFT_TP_SUCCESS);
}

// ---- 8. a peer that dies ----

TEST_P(TransportPluginTest, KilledPeerFailsPendingRequests) {
  const PluginConfig& cfg = GetParam();
  if (!cfg.network)
    GTEST_SKIP() << cfg.label << " joins threads of one process only (see "
                 << "TransportPluginExample.FinalizedPeerFailsPendingAndLaterRequests)";
  const uint64_t comm_id = RandomCommId();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  // Everything the child needs is prepared before fork; the child only dup2s and execs this binary
  // (a fresh process, so UCX or libfabric state here cannot leak into it).
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(n, 0);
  self[n] = '\0';
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e)
    if (strncmp(*e, "GTEST_", 6) != 0 && strncmp(*e, "WEFT_TP_TEST_CHILD", 18) != 0)
      env_strings.push_back(*e);
  env_strings.push_back("WEFT_TP_TEST_CHILD=" + weft::test::builtPluginPath(cfg.plugin) + "|" +
                        std::to_string(comm_id));
  std::vector<char*> envp;
  for (auto& s : env_strings)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string list = "--gtest_list_tests";  // harmless, should the child half not take over
  char* argv[] = {self, list.data(), nullptr};
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (sv[1] == 3)  // the child's end, as fd 3, open across exec
      fcntl(3, F_SETFD, 0);
    else
      dup2(sv[1], 3);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, 1);  // errors go to stderr
    execve(self, argv, envp.data());
    _exit(127);
  }
  close(sv[1]);
  const int fd = sv[0];
  bool reaped = false;
  auto reap = [&] {
    if (reaped) return;
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    reaped = true;
    // A killed process cannot remove its files: libfabric's shm provider names its segments
    // after the pid ("<pid>:0:<n>" in /dev/shm).
    if (DIR* d = opendir("/dev/shm")) {
      const std::string prefix = std::to_string(child) + ":";
      while (dirent* e = readdir(d))
        if (std::string(e->d_name).rfind(prefix, 0) == 0)
          unlink(("/dev/shm/" + std::string(e->d_name)).c_str());
      closedir(d);
    }
  };
  struct Cleanup {
    std::function<void()> f;
    ~Cleanup() { f(); }
  } cleanup{[&] {
    reap();
    close(fd);
  }};

  void* ctx;
  InitRank(0, 2, comm_id, &ctx);  // the parent's context exists only after fork
  if (!ctx) return;
  std::string status, child_addr;
  ASSERT_TRUE(ReadFrame(fd, &status)) << "no word from the child";
  if (status.rfind("unavailable", 0) == 0) GTEST_SKIP() << "child: " << status;
  ASSERT_EQ(status, "ok") << "child: " << status;
  ASSERT_TRUE(ReadFrame(fd, &child_addr));
  ASSERT_EQ(tp_->get_caps(ctx, &caps_), WEFT_TP_SUCCESS);
  std::vector<char> addr(caps_.max_address_bytes);
  size_t len = addr.size();
  ASSERT_EQ(tp_->get_address(ctx, addr.data(), &len), WEFT_TP_SUCCESS) << tp_->last_error(ctx);
  ASSERT_TRUE(WriteFrame(fd, addr.data(), static_cast<uint32_t>(len)));
  eps_.assign(2, std::vector<void*>(2, nullptr));
  ASSERT_EQ(tp_->connect(ctx, 1, child_addr.data(), child_addr.size(), &eps_[0][1]),
            WEFT_TP_SUCCESS)
      << tp_->last_error(ctx);

  // The child's message arrives.
  Buffer first(kChildBytes), pending_recv(1024), big(4 << 20), later(8);
  MaybeRegister(first, 0);
  MaybeRegister(pending_recv, 0);
  MaybeRegister(big, 0);
  MaybeRegister(later, 0);
  Op recv0 = Recv(0, 1, first, kChildBytes, kChildTag);
  ASSERT_TRUE(Wait({&recv0}));
  ASSERT_EQ(recv0.rc, WEFT_TP_SUCCESS) << recv0.error;
  EXPECT_EQ(recv0.bytes, kChildBytes);
  EXPECT_EQ(CheckPattern(first.data(), kChildBytes, kChildSeed), "");
  ASSERT_TRUE(ReadFrame(fd, &status));
  ASSERT_EQ(status, "sent") << "child: " << status;

  // A receive the child will never match and a send it will never receive, then the kill.
  Op recv = Recv(0, 1, pending_recv, 1024, 2);
  Fill(big.data(), big.size(), 3);
  Op send = Send(0, 1, big, big.size(), 3);
  Settle({&recv, &send}, milliseconds(200));
  ASSERT_FALSE(recv.done) << "a receive nobody sent to finished: rc " << recv.rc << " "
                          << recv.error;
  const bool send_done_before = send.done;
  reap();  // SIGKILL, and the child is gone once waitpid returns: the clock starts here
  recv.took = send.took = {};
  Settle({&recv, &send}, kPeerDeathLimit);
  if (!recv.done) {
    RecordProperty("peer_death", "not detected");
    FAIL() << cfg.label << " did not report the killed peer within " << kPeerDeathLimit.count()
           << " s: the receive from it is still pending, the send "
           << (send.done ? "ended with rc " + std::to_string(send.rc) + " " + send.error : "too");
  }
  // A later send to the dead peer fails too, at once or from test().
  Op late{ctx, "later send 0->1"};
  if (int rc = tp_->isend(ctx, eps_[0][1], later.data(), 8, later.mr(), 4, &late.req)) {
    late.done = true;  // refused at once: as good as failing from test()
    late.rc = rc;
    late.error = tp_->last_error(ctx);
  } else {
    Settle({&late}, kPeerDeathLimit);
  }

  auto show = [](const Op& op) {
    std::ostringstream os;
    os << (op.done ? "" : "NOT DONE ") << "rc " << op.rc << " after " << std::fixed
       << std::setprecision(1) << Ms(op.took) << " ms"
       << (op.error.empty() ? "" : " (" + op.error + ")");
    return os.str();
  };
  Note("[ %s ] peer death: receive %s; send %s%s; later send %s\n", cfg.label.c_str(),
       show(recv).c_str(), send_done_before ? "(finished before the kill) " : "",
       show(send).c_str(), show(late).c_str());
  ::testing::Test::RecordProperty("peer_death_recv_ms", std::to_string(Ms(recv.took)));
  ::testing::Test::RecordProperty("peer_death_recv_rc", std::to_string(recv.rc));
  ::testing::Test::RecordProperty("peer_death_send_rc", std::to_string(send.rc));
  ::testing::Test::RecordProperty("peer_death_later_send_rc", std::to_string(late.rc));
  EXPECT_NE(recv.rc, WEFT_TP_SUCCESS);
  EXPECT_FALSE(recv.error.empty()) << "last_error explains the failure";
  if (!send_done_before) {
    EXPECT_TRUE(send.done) << "the send to the dead peer is still pending";
    EXPECT_NE(send.rc, WEFT_TP_SUCCESS) << "the send to the dead peer";
  }
  EXPECT_TRUE(late.done) << "a send after the peer's death";
  EXPECT_NE(late.rc, WEFT_TP_SUCCESS) << "a send after the peer's death";
  if (recv.rc != WEFT_TP_ERR_PEER)
    Note("[ %s ] NOTE: the spec expects WEFT_TP_ERR_PEER (%d), got %d\n", cfg.label.c_str(),
         WEFT_TP_ERR_PEER, recv.rc);
  first.Forget();  // finalize releases the registrations
  pending_recv.Forget();
  big.Forget();
  later.Forget();
  const auto fin = Finalize(0);
  EXPECT_LT(fin, kFinalizeLimit) << "finalize after a peer died";
  RecordProperty("finalize_ms", std::to_string(Ms(fin)));
}

// ---- 9. finalize with requests pending ----

TEST_P(TransportPluginTest, FinalizeWithPendingRequestsIsPrompt) {
  MAKE_RANKS(2);
  Buffer r0(1024), r1(1024), big(4 << 20);
  MaybeRegister(r0, 0);
  MaybeRegister(r1, 1);
  MaybeRegister(big, 0, /*always=*/true);  // finalize must release a live registration too
  Fill(big.data(), big.size(), 9);
  Op recv1 = Recv(1, 0, r1, 1024, 77);        // never sent
  Op recv0 = Recv(0, 1, r0, 1024, 78);        // never sent
  Op send = Send(0, 1, big, big.size(), 79);  // never received
  Settle({&recv0, &recv1, &send}, milliseconds(100));
  EXPECT_FALSE(recv0.done);
  EXPECT_FALSE(recv1.done);
  // The registrations go with the contexts.
  r0.Forget();
  r1.Forget();
  big.Forget();
  const auto f0 = Finalize(0);
  const auto f1 = Finalize(1);
  Note("[ %s ] finalize with pending requests: %.1f ms, %.1f ms\n", GetParam().label.c_str(),
       Ms(f0), Ms(f1));
  EXPECT_LT(f0, kFinalizeLimit);
  EXPECT_LT(f1, kFinalizeLimit);
}

INSTANTIATE_TEST_SUITE_P(Plugins, TransportPluginTest, ::testing::ValuesIn(Configs()),
                         [](const auto& info) { return info.param.label; });

// ---- the ucx plugin's WEFT_UCX_ERROR_MODE ----

// weft validates the setting before it loads a plugin, but a plugin may be driven by another
// loader: a bad value, or a mode that needs a network transport where UCX opened none, fails init
// with a message that names the variable.
TEST(TransportPluginUcx, ErrorModeIsValidated) {
  if (!FoundAtConfigure("UCX_FOUND")) GTEST_SKIP() << "weft was built without UCX";
  std::string why;
  const weft_transport_v1_t* tp = LoadPlugin(weft::test::builtPluginPath("ucx"), &why);
  ASSERT_NE(tp, nullptr) << why;
  struct Case {
    const char* mode;
    const char* tls;
    const char* expect;
  };
  for (const Case& k :
       {Case{"bogus", "tcp", "WEFT_UCX_ERROR_MODE=\"bogus\": expected auto, peer or guard"},
        Case{"guard", "sm", "WEFT_UCX_ERROR_MODE=guard needs a network transport"},
        Case{"peer", "sm", "WEFT_UCX_ERROR_MODE=peer needs a network transport"}}) {
    weft::test::ScopedEnv mode("WEFT_UCX_ERROR_MODE", k.mode), tls("UCX_TLS", k.tls),
        dev("UCX_NET_DEVICES", std::nullopt);
    auto args = InitArgs(0, 2, RandomCommId(), "ucx");
    void* ctx = nullptr;
    char err[512] = "";
    EXPECT_EQ(tp->init(&args, &ctx, err, sizeof err), WEFT_TP_ERR_INVALID) << k.mode;
    EXPECT_EQ(ctx, nullptr);
    EXPECT_NE(std::string(err).find(k.expect), std::string::npos) << err;
  }
}

// ---- the example plugin as a real multi-rank transport ----

class TransportPluginExample : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    tp_ = LoadPlugin(weft::test::builtPluginPath("example"), &why);
    ASSERT_NE(tp_, nullptr) << why;
  }
  const weft_transport_v1_t* tp_ = nullptr;
};

// Four threads, one rank each, every rank sending several messages to every other, three rounds.
TEST_F(TransportPluginExample, AllToAllFourThreads) {
  constexpr int kRanks = 4, kRounds = 3, kPerPeer = 4;
  const uint64_t comm_id = RandomCommId();
  std::vector<std::vector<char>> addrs(kRanks);
  std::barrier sync(kRanks);
  auto size_of = [](int src, int dst, int round, int k) {
    return static_cast<size_t>(1 + ((src * 7919 + dst * 104729 + round * 31 + k * 1543) % 70000));
  };
  auto seed_of = [](int src, int dst, int round, int k) {
    return static_cast<uint32_t>(src << 24 | dst << 16 | round << 8 | k);
  };
  auto rank_main = [&](int rank) {
    auto args = InitArgs(rank, kRanks, comm_id, "example");
    char err[256] = "";
    void* ctx = nullptr;
    EXPECT_EQ(tp_->init(&args, &ctx, err, sizeof err), WEFT_TP_SUCCESS) << err;
    weft_transport_caps_t caps{};
    tp_->get_caps(ctx, &caps);
    addrs[rank].resize(caps.max_address_bytes);
    size_t len = addrs[rank].size();
    EXPECT_EQ(tp_->get_address(ctx, addrs[rank].data(), &len), WEFT_TP_SUCCESS);
    addrs[rank].resize(len);
    sync.arrive_and_wait();  // the "bootstrap": every address is known
    std::vector<void*> eps(kRanks, nullptr);
    for (int p = 0; p < kRanks; ++p)
      if (p != rank) {
        EXPECT_EQ(tp_->connect(ctx, p, addrs[p].data(), addrs[p].size(), &eps[p]), WEFT_TP_SUCCESS)
            << tp_->last_error(ctx);
      }
    std::mt19937 rng(rank);
    for (int round = 0; round < kRounds; ++round) {
      std::vector<std::vector<uint8_t>> in, out;
      std::vector<Op> ops;
      std::vector<std::pair<int, int>> recvs;  // (src, k), in a shuffled order
      for (int p = 0; p < kRanks; ++p)
        for (int k = 0; k < kPerPeer && p != rank; ++k)
          recvs.emplace_back(p, k);
      std::shuffle(recvs.begin(), recvs.end(), rng);
      in.resize(recvs.size());
      out.reserve(recvs.size());
      ops.reserve(2 * recvs.size());
      for (size_t i = 0; i < recvs.size() / 2; ++i) {  // half the receives before the sends
        auto [p, k] = recvs[i];
        in[i].assign(size_of(p, rank, round, k) + 16, kFill);
        ops.emplace_back(ctx, "recv");
        EXPECT_EQ(tp_->irecv(ctx, eps[p], in[i].data(), in[i].size(), nullptr,
                             uint64_t(round) << 8 | k, &ops.back().req),
                  WEFT_TP_SUCCESS);
      }
      for (int p = 0; p < kRanks; ++p)
        for (int k = 0; k < kPerPeer && p != rank; ++k) {
          out.emplace_back(size_of(rank, p, round, k));
          Fill(out.back().data(), out.back().size(), seed_of(rank, p, round, k));
          ops.emplace_back(ctx, "send");
          EXPECT_EQ(tp_->isend(ctx, eps[p], out.back().data(), out.back().size(), nullptr,
                               uint64_t(round) << 8 | k, &ops.back().req),
                    WEFT_TP_SUCCESS);
        }
      for (size_t i = recvs.size() / 2; i < recvs.size(); ++i) {
        auto [p, k] = recvs[i];
        in[i].assign(size_of(p, rank, round, k) + 16, kFill);
        ops.emplace_back(ctx, "recv");
        EXPECT_EQ(tp_->irecv(ctx, eps[p], in[i].data(), in[i].size(), nullptr,
                             uint64_t(round) << 8 | k, &ops.back().req),
                  WEFT_TP_SUCCESS);
      }
      std::vector<Op*> all;
      for (auto& op : ops)
        all.push_back(&op);
      EXPECT_TRUE(WaitAll(tp_, {ctx}, all));
      for (auto& op : ops)
        EXPECT_EQ(op.rc, WEFT_TP_SUCCESS) << op.error;
      for (size_t i = 0; i < recvs.size(); ++i) {
        auto [p, k] = recvs[i];
        const size_t want = size_of(p, rank, round, k);
        const Op& op = ops[i < recvs.size() / 2 ? i : i + out.size()];
        EXPECT_EQ(op.bytes, want) << "rank " << rank << " from " << p;
        EXPECT_EQ(CheckPattern(in[i].data(), want, seed_of(p, rank, round, k)), "")
            << "rank " << rank << " from " << p << " round " << round << " message " << k;
        EXPECT_EQ(in[i][want], kFill);
      }
    }
    sync.arrive_and_wait();
    EXPECT_EQ(tp_->finalize(ctx), WEFT_TP_SUCCESS);
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back(rank_main, r);
  for (auto& t : threads)
    t.join();
}

// In-process stand-in for the peer-death test: a finalized rank fails receives posted from it, yet
// what it sent before finalizing is still delivered; the other ranks carry on.
TEST_F(TransportPluginExample, FinalizedPeerFailsPendingAndLaterRequests) {
  const uint64_t comm_id = RandomCommId();
  void* ctx[3] = {};
  std::vector<char> addr[3];
  for (int r = 0; r < 3; ++r) {
    auto args = InitArgs(r, 3, comm_id, "example");
    char err[256] = "";
    ASSERT_EQ(tp_->init(&args, &ctx[r], err, sizeof err), WEFT_TP_SUCCESS) << err;
    addr[r].resize(64);
    size_t len = 64;
    ASSERT_EQ(tp_->get_address(ctx[r], addr[r].data(), &len), WEFT_TP_SUCCESS);
    addr[r].resize(len);
  }
  // Two contexts for one rank are an error.
  {
    auto args = InitArgs(1, 3, comm_id, "example");
    char err[256] = "";
    void* dup = nullptr;
    EXPECT_EQ(tp_->init(&args, &dup, err, sizeof err), WEFT_TP_ERR_INVALID);
    EXPECT_GT(strlen(err), 0u);
  }
  void *e10, *e12, *e21, *e01;
  ASSERT_EQ(tp_->connect(ctx[1], 0, addr[0].data(), addr[0].size(), &e10), WEFT_TP_SUCCESS);
  ASSERT_EQ(tp_->connect(ctx[1], 2, addr[2].data(), addr[2].size(), &e12), WEFT_TP_SUCCESS);
  ASSERT_EQ(tp_->connect(ctx[2], 1, addr[1].data(), addr[1].size(), &e21), WEFT_TP_SUCCESS);
  ASSERT_EQ(tp_->connect(ctx[0], 1, addr[1].data(), addr[1].size(), &e01), WEFT_TP_SUCCESS);
  // A wrong address is refused.
  void* bad = nullptr;
  EXPECT_EQ(tp_->connect(ctx[1], 2, addr[0].data(), addr[0].size(), &bad), WEFT_TP_ERR_INVALID);
  EXPECT_GT(strlen(tp_->last_error(ctx[1])), 0u);

  char before[32] = "sent before finalize", in[64] = "", in2[64] = "", out[8] = "x";
  Op sent{ctx[0], "send 0->1"}, pending{ctx[1], "pending recv 1<-0"};
  ASSERT_EQ(tp_->isend(ctx[0], e01, before, sizeof before, nullptr, 6, &sent.req), 0);
  ASSERT_EQ(tp_->irecv(ctx[1], e10, in, sizeof in, nullptr, 5, &pending.req), 0);
  ASSERT_TRUE(WaitAll(tp_, {ctx[0]}, {&sent}));
  EXPECT_EQ(sent.rc, WEFT_TP_SUCCESS);
  ASSERT_EQ(tp_->finalize(ctx[0]), WEFT_TP_SUCCESS);

  ASSERT_TRUE(WaitAll(tp_, {ctx[1]}, {&pending}));
  EXPECT_EQ(pending.rc, WEFT_TP_ERR_PEER);
  EXPECT_NE(pending.error.find("rank 0"), std::string::npos) << pending.error;
  Op delivered{ctx[1], "recv 1<-0 of what was sent before"};
  ASSERT_EQ(tp_->irecv(ctx[1], e10, in2, sizeof in2, nullptr, 6, &delivered.req), 0);
  ASSERT_TRUE(WaitAll(tp_, {ctx[1]}, {&delivered}));
  EXPECT_EQ(delivered.rc, WEFT_TP_SUCCESS);
  EXPECT_EQ(delivered.bytes, sizeof before);
  EXPECT_STREQ(in2, before);
  Op later{ctx[1], "later recv 1<-0"};
  ASSERT_EQ(tp_->irecv(ctx[1], e10, in, sizeof in, nullptr, 7, &later.req), 0);
  ASSERT_TRUE(WaitAll(tp_, {ctx[1]}, {&later}));
  EXPECT_EQ(later.rc, WEFT_TP_ERR_PEER);
  void* req = nullptr;
  EXPECT_EQ(tp_->isend(ctx[1], e10, out, 1, nullptr, 8, &req), WEFT_TP_ERR_PEER);

  // Ranks 1 and 2 carry on.
  Op s{ctx[2], "send 2->1"}, r{ctx[1], "recv 1<-2"};
  ASSERT_EQ(tp_->irecv(ctx[1], e12, in, sizeof in, nullptr, 9, &r.req), 0);
  ASSERT_EQ(tp_->isend(ctx[2], e21, "alive", 6, nullptr, 9, &s.req), 0);
  ASSERT_TRUE(WaitAll(tp_, {ctx[1], ctx[2]}, {&s, &r}));
  EXPECT_EQ(r.rc, WEFT_TP_SUCCESS);
  EXPECT_STREQ(in, "alive");
  EXPECT_EQ(tp_->finalize(ctx[1]), WEFT_TP_SUCCESS);
  EXPECT_EQ(tp_->finalize(ctx[2]), WEFT_TP_SUCCESS);
}

}  // namespace
