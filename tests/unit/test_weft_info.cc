// Tests of weft-info's node, layout and communicator views, run as a separate process: --topology
// from a topology file (text, JSON, a file that cannot be read), --explain with a layout over
// nodes (--nodes) and its errors, the --table of choices per collective and size, and --comm under
// weftrun on one host and on two hosts (ranks posing as two hosts through WEFT_HOST_ID). The
// candidate table of --explain itself is tested in test_tuner.cc.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "multiprocess.h"
#include "test_env.h"
#include "topology/node_topology.h"
#include "tuner/algo_override.h"

namespace weft::test {
namespace {

constexpr char kWeftInfo[] = WEFT_BINARY_DIR "/tools/weft-info";
constexpr char kWeftrun[] = WEFT_BINARY_DIR "/tools/weftrun";
constexpr char kFixture[] = WEFT_SOURCE_DIR "/tests/topology/two_numa_gpus_nic.xml";
// The settings that would change what weft-info prints, left out of every run.
constexpr char kCleanEnv[] =
    "env -u WEFT_ALGO -u WEFT_TUNE_FILE -u WEFT_TOPO_FILE -u WEFT_TRANSPORT -u WEFT_HOST_ID "
    "-u WEFT_RANK -u WEFT_WORLD_SIZE -u WEFT_ROOT -u RANK -u WORLD_SIZE -u OMPI_COMM_WORLD_RANK "
    "-u OMPI_COMM_WORLD_SIZE -u SLURM_PROCID -u SLURM_NTASKS ";

RunResult weftInfo(const std::string& args, const std::string& env = "") {
  return run(std::string(kCleanEnv) + env + " " + kWeftInfo + " " + args);
}

size_t occurrences(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t pos = s.find(part); pos != std::string::npos; pos = s.find(part, pos + 1))
    ++n;
  return n;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

// A strict little JSON reader that only says whether the text is one JSON value (RFC 8259).
class JsonCheck {
 public:
  explicit JsonCheck(const std::string& s) : s_(s) {}
  bool valid() {
    ws();
    if (!value()) return false;
    ws();
    return i_ == s_.size();
  }

 private:
  void ws() {
    while (i_ < s_.size() && std::strchr(" \t\r\n", s_[i_]) != nullptr)
      ++i_;
  }
  bool lit(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  bool digits() {
    const size_t start = i_;
    while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])))
      ++i_;
    return i_ > start;
  }
  bool number() {
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    if (!digits()) return false;
    if (i_ < s_.size() && s_[i_] == '.' && (++i_, !digits())) return false;
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) return false;
    }
    return true;
  }
  bool string() {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    for (++i_; i_ < s_.size(); ++i_) {
      const unsigned char c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (++i_ >= s_.size()) return false;
        if (s_[i_] == 'u') {
          for (int k = 0; k < 4; ++k)
            if (++i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_])))
              return false;
        } else if (std::strchr("\"\\/bfnrt", s_[i_]) == nullptr) {
          return false;
        }
      }
    }
    return false;
  }
  // Members of an object (keyed) or elements of an array, up to the closing bracket.
  bool members(char close, bool keyed) {
    ++i_;
    ws();
    if (i_ < s_.size() && s_[i_] == close) return ++i_, true;
    for (;;) {
      ws();
      if (keyed) {
        if (!string()) return false;
        ws();
        if (i_ >= s_.size() || s_[i_++] != ':') return false;
        ws();
      }
      if (!value()) return false;
      ws();
      if (i_ >= s_.size()) return false;
      const char c = s_[i_++];
      if (c == close) return true;
      if (c != ',') return false;
    }
  }
  bool value() {
    if (i_ >= s_.size()) return false;
    switch (s_[i_]) {
      case '{':
        return members('}', true);
      case '[':
        return members(']', false);
      case '"':
        return string();
      case 't':
        return lit("true");
      case 'f':
        return lit("false");
      case 'n':
        return lit("null");
      default:
        return number();
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

bool validJson(const std::string& s) {
  return JsonCheck(s).valid();
}

TEST(WeftInfo, JsonCheckerAcceptsJsonAndRejectsTheRest) {
  EXPECT_TRUE(validJson("{\n  \"a\": [1, -2.5e3, \"x\\n\", true, null, {}],\n  \"b\": []\n}\n"));
  EXPECT_FALSE(validJson("{\"a\": 1,}"));
  EXPECT_FALSE(validJson("{\"a\" 1}"));
  EXPECT_FALSE(validJson("[1, 2"));
  EXPECT_FALSE(validJson("{} {}"));
}

// ---- --topology ----

TEST(WeftInfo, TopologyFromAFileShowsItsNumaNodesAndDevices) {
  if (!topo::haveHwloc()) GTEST_SKIP() << "WEFT_TOPO_FILE needs hwloc, which this build lacks";
  const std::string env = std::string("WEFT_TOPO_FILE=") + kFixture;
  RunResult c = weftInfo("--topology", env);
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(contains(c.output, "\nTopology")) << c.output;
  EXPECT_TRUE(contains(c.output, std::string("(WEFT_TOPO_FILE=") + kFixture + ")")) << c.output;
  EXPECT_TRUE(contains(c.output, "2 NUMA nodes")) << c.output;
  EXPECT_TRUE(contains(c.output, "NUMA 0: cpus 0-3")) << c.output;
  EXPECT_TRUE(contains(c.output, "NUMA 1: cpus 4-7")) << c.output;
  EXPECT_TRUE(contains(c.output, "gpu 0000:17:00.0")) << c.output;
  EXPECT_TRUE(contains(c.output, "gpu 0000:b1:00.0")) << c.output;
  EXPECT_TRUE(contains(c.output, "nic 0000:ca:00.0")) << c.output;
  EXPECT_TRUE(contains(c.output, "mlx5_0")) << c.output;
  EXPECT_FALSE(contains(c.output, "\nSettings")) << "only the section asked for";

  // JSON: the topology object sits under its key, indented as the rest of the document.
  c = weftInfo("--json --version --topology", env);
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_TRUE(contains(c.output, "\n  \"topology\": {\n    \"source\": \"WEFT_TOPO_FILE="))
      << c.output;
  EXPECT_EQ(occurrences(c.output, "\"os_index\""), 2u) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"kind\": \"gpu\""), 2u) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"kind\": \"nic\""), 1u) << c.output;
  EXPECT_TRUE(c.output.ends_with("\n  }\n}\n")) << c.output;

  // Every section, with the topology among them, is still one document.
  c = weftInfo("--json", env);
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_TRUE(contains(c.output, "\"topology\": {")) << c.output;
}

TEST(WeftInfo, TopologyFileThatCannotBeReadIsNamed) {
  const std::string path = ::testing::TempDir() + "weft_info_no_such_topology.xml";
  std::remove(path.c_str());
  const std::string env = "WEFT_TOPO_FILE=" + path;
  RunResult c = weftInfo("--topology", env);
  EXPECT_EQ(c.status, 1) << c.output;
  EXPECT_TRUE(contains(c.output, "error: WEFT_TOPO_FILE=" + path)) << c.output;

  c = weftInfo("--json --topology", env);
  EXPECT_EQ(c.status, 1) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_TRUE(contains(c.output, "\"error\": \"WEFT_TOPO_FILE=" + path)) << c.output;

  // The other sections still print, and the error still sets the exit status.
  c = weftInfo("--version --topology", env);
  EXPECT_EQ(c.status, 1) << c.output;
  EXPECT_TRUE(contains(c.output, "weft 0.")) << c.output;
}

// ---- --explain --nodes ----

TEST(WeftInfo, ExplainWithNodesNamesTheLayoutAndUsesInterNodeCosts) {
  RunResult c = weftInfo("--explain allreduce 16M --nodes 2x4");
  ASSERT_EQ(c.status, 0) << c.output;
  const std::string header = lines(c.output).at(0);
  EXPECT_TRUE(contains(header, "on 8 ranks as 2 nodes x 4 ranks")) << header;
  EXPECT_TRUE(contains(header, "inter-node costs")) << header;
  EXPECT_FALSE(contains(header, "peers' memory reachable")) << "ranks on two nodes: " << header;
  EXPECT_TRUE(contains(c.output, "  choice: ")) << c.output;

  c = weftInfo("--explain allreduce 16M --nodes 3+2+4");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(contains(lines(c.output).at(0), "on 9 ranks as 3 nodes (3+2+4 ranks)")) << c.output;

  // One node: intra-node costs, as without --nodes.
  c = weftInfo("--explain broadcast 1M --nodes 1x4 --nranks 4");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(contains(lines(c.output).at(0), "on 4 ranks as 1 node x 4 ranks")) << c.output;
  EXPECT_TRUE(contains(lines(c.output).at(0), "intra-node costs")) << c.output;

  // Without --nodes the header is as it was.
  c = weftInfo("--explain allreduce 16M");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(contains(lines(c.output).at(0), "on 8 ranks, peers' memory reachable: intra-node"))
      << c.output;

  c = weftInfo("--json --explain allreduce 16M --nodes 2x4");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_TRUE(contains(c.output, "\"nranks\": 8,")) << c.output;
  EXPECT_TRUE(contains(c.output, "\"layout\": \"2 nodes x 4 ranks\"")) << c.output;
  EXPECT_TRUE(contains(c.output, "\"level\": \"inter\"")) << c.output;
}

TEST(WeftInfo, MalformedNodesAreRefusedNamingTheAcceptedForms) {
  for (const char* bad :
       {"bad", "2x", "x4", "0x4", "2x0", "2x4x2", "3++2", "+3", "3+", "3+0", "-2x4", "2.5x4", ""}) {
    RunResult c = weftInfo(std::string("--explain allreduce 1M --nodes '") + bad + "'");
    EXPECT_EQ(c.status, 2) << bad << ": " << c.output;
    EXPECT_TRUE(contains(c.output, std::string("--nodes \"") + bad + "\" is not a layout"))
        << c.output;
    EXPECT_TRUE(contains(c.output, "NxL")) << c.output;
    EXPECT_TRUE(contains(c.output, "3+2+4")) << c.output;
  }
  RunResult c = weftInfo("--explain allreduce 16M --nodes 2x4 --nranks 7");
  EXPECT_EQ(c.status, 2) << c.output;
  EXPECT_TRUE(contains(c.output, "--nodes 2x4 makes 8 ranks but --nranks is 7")) << c.output;
  // Order does not matter, and agreeing values are fine.
  c = weftInfo("--nranks 7 --explain allreduce 16M --nodes 2x4");
  EXPECT_EQ(c.status, 2) << c.output;
  EXPECT_EQ(weftInfo("--nranks 8 --explain allreduce 16M --nodes 2x4").status, 0);
  // --nodes means nothing to the sections.
  c = weftInfo("--version --nodes 2x4");
  EXPECT_EQ(c.status, 2) << c.output;
  EXPECT_TRUE(contains(c.output, "--nodes applies to --explain and --table")) << c.output;
}

// ---- --table ----

std::vector<std::string> defaultTableSizes() {
  std::vector<std::string> out;
  for (uint64_t s = 8; s <= (uint64_t{256} << 20); s *= 4)
    out.push_back(formatSize(s));
  return out;
}

TEST(WeftInfo, TableHasARowPerSizeAndAColumnPerCollective) {
  RunResult c = weftInfo("--table --nranks 8");
  ASSERT_EQ(c.status, 0) << c.output;
  const std::vector<std::string> ls = lines(c.output);
  ASSERT_GE(ls.size(), 2u) << c.output;
  EXPECT_TRUE(contains(ls[0], "8 ranks")) << ls[0];
  const std::vector<std::string> head = words(ls[1]);
  const std::vector<std::string> colls = {"bytes",     "allreduce", "allgather", "reducescatter",
                                          "broadcast", "reduce",    "alltoall"};
  EXPECT_EQ(head, colls) << ls[1];
  const std::vector<std::string> sizes = defaultTableSizes();
  ASSERT_EQ(sizes.size(), 13u);  // 8 B, 32 B, ... 128M
  ASSERT_EQ(ls.size(), 2 + sizes.size()) << c.output;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const std::vector<std::string> row = words(ls[2 + i]);
    ASSERT_EQ(row.size(), 1 + 2 * 6) << "a name and an estimate per collective: " << ls[2 + i];
    EXPECT_EQ(row[0], sizes[i]) << ls[2 + i];
    for (size_t k = 2; k < row.size(); k += 2)
      EXPECT_GT(std::stod(row[k]), 0) << ls[2 + i];
  }

  c = weftInfo("--json --table --nranks 8");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"collective\": "), 13u * 6u) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"estimate_us\": "), 13u * 6u) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"algorithm\": \""), 13u * 6u) << c.output;
  EXPECT_TRUE(contains(c.output, "\"collective\": \"alltoall\",\n        \"bytes\": 134217728,"))
      << c.output;
}

TEST(WeftInfo, TableSizesAndCollectivesCanBeChosen) {
  // float64: 4 B holds no element (left out), 16 and 64 are whole; 256 is past the range.
  RunResult c = weftInfo(
      "--table --nodes 2x2 --dtype float64 --collectives allreduce,broadcast "
      "--sizes 4-100");
  ASSERT_EQ(c.status, 0) << c.output;
  std::vector<std::string> ls = lines(c.output);
  ASSERT_EQ(ls.size(), 4u) << c.output;
  EXPECT_TRUE(contains(ls[0], "4 ranks as 2 nodes x 2 ranks")) << ls[0];
  EXPECT_TRUE(contains(ls[0], "inter-node costs")) << ls[0];
  EXPECT_EQ(words(ls[1]), (std::vector<std::string>{"bytes", "allreduce", "broadcast"}));
  EXPECT_EQ(words(ls[2]).at(0), "16");
  EXPECT_EQ(words(ls[3]).at(0), "64");

  // Sizes that are not multiples of the element size are rounded down.
  c = weftInfo("--json --table --nranks 3 --dtype float64 --collectives reduce --sizes 12-200");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"collective\": \"reduce\""), 3u) << c.output;
  for (const char* b : {"\"bytes\": 8,", "\"bytes\": 48,", "\"bytes\": 192,"})
    EXPECT_TRUE(contains(c.output, b)) << b << "\n" << c.output;

  for (const char* bad : {"--sizes 5-2", "--sizes x-1M", "--sizes 0-8"}) {
    c = weftInfo(std::string("--table ") + bad);
    EXPECT_EQ(c.status, 2) << bad << ": " << c.output;
    EXPECT_TRUE(contains(c.output, "is not a size range")) << c.output;
  }
  c = weftInfo("--table --collectives allreduce,allreduc");
  EXPECT_EQ(c.status, 2) << c.output;
  EXPECT_TRUE(contains(c.output, "--collectives: unknown collective \"allreduc\"")) << c.output;
  c = weftInfo("--table --nodes 2x2 --nranks 5");
  EXPECT_EQ(c.status, 2) << c.output;
  c = weftInfo("--sizes 1K-1M --version");
  EXPECT_EQ(c.status, 2) << c.output;
  c = weftInfo("--table --explain allreduce 1M");
  EXPECT_EQ(c.status, 2) << c.output;
}

// ---- --comm ----

TEST(WeftInfo, CommWithoutALauncherSaysToUseOne) {
  RunResult c = weftInfo("--comm");
  EXPECT_EQ(c.status, 2) << c.output;
  EXPECT_TRUE(contains(c.output, "run it under a launcher, e.g. weftrun -n 4 weft-info --comm"))
      << c.output;
  c = run(std::string(kCleanEnv) + kWeftrun + " -n 2 --timeout 60 " + kWeftInfo +
          " --comm --nodes 2x1");
  EXPECT_NE(c.status, 0) << c.output;
  EXPECT_TRUE(contains(c.output, "--nodes and --nranks do not apply")) << c.output;
}

// A directory for the shared-memory segments of one job, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "weft_info_XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(WeftInfo, CommOnOneHostShowsItsLayoutPlacesTransportsAndTable) {
  TempDir shm;
  const std::string job = std::string(kCleanEnv) + "WEFT_SHM_DIR=" + shm.path() + " " + kWeftrun +
                          " -n 4 --timeout 120 " + kWeftInfo + " --comm";
  RunResult c = run(job);
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_EQ(occurrences(c.output, "Communicator: "), 1u) << "rank 0 alone prints\n" << c.output;
  EXPECT_TRUE(contains(c.output, "Communicator: 4 ranks, 1 node x 4 ranks, transport shm"))
      << c.output;
  EXPECT_TRUE(contains(c.output, "  node 0: ranks 0-3, leader 0")) << c.output;
  for (int r = 0; r < 4; ++r)
    EXPECT_TRUE(contains(c.output, "  rail " + std::to_string(r) + ": ranks " + std::to_string(r)))
        << c.output;
  EXPECT_TRUE(contains(c.output, "\nRanks")) << c.output;
  EXPECT_EQ(occurrences(c.output, "shm        3 "), 4u) << "every rank reaches 3 peers\n"
                                                        << c.output;
  EXPECT_TRUE(contains(c.output,
                       "Tuner's choice and estimate (us) per collective and size: 4 ranks "
                       "as 1 node x 4 ranks"))
      << c.output;
  for (const std::string& s : defaultTableSizes())
    EXPECT_TRUE(contains(c.output, "\n  " + s + " ")) << s << "\n" << c.output;

  c = run(job + " --json --collectives allreduce --sizes 1K-4K");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_TRUE(contains(c.output, "\"layout\": \"1 node x 4 ranks\"")) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"name\": \"shm\""), 4u) << c.output;
  EXPECT_EQ(occurrences(c.output, "\"collective\": \"allreduce\""), 2u) << c.output;
}

TEST(WeftInfo, CommOnTwoHostsShowsBothNodesAndTheNetworkTransport) {
  if (!std::filesystem::exists(builtPluginPath("ucx")))
    GTEST_SKIP() << builtPluginPath("ucx")
                 << " was not built, and shared memory alone cannot join two hosts";
  TempDir shm;
  const std::string job = std::string(kCleanEnv) + "WEFT_SHM_DIR=" + shm.path() +
                          " UCX_TLS=tcp UCX_NET_DEVICES=lo " + kWeftrun +
                          " -n 4 --timeout 120 sh -c 'WEFT_HOST_ID=host$((WEFT_RANK / 2)) exec " +
                          kWeftInfo + " --comm --collectives allreduce,broadcast --sizes 8-8K";
  RunResult c = run(job + "'");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(contains(c.output, "Communicator: 4 ranks, 2 nodes x 2 ranks, transport "))
      << c.output;
  EXPECT_TRUE(contains(c.output, "  node 0: ranks 0-1, leader 0")) << c.output;
  EXPECT_TRUE(contains(c.output, "  node 1: ranks 2-3, leader 2")) << c.output;
  EXPECT_TRUE(contains(c.output, "  rail 0: ranks 0,2")) << c.output;
  EXPECT_TRUE(contains(c.output, "  rail 1: ranks 1,3")) << c.output;
  EXPECT_EQ(occurrences(c.output, "shm        1 "), 4u) << "one peer on the same host\n"
                                                        << c.output;
  EXPECT_TRUE(contains(c.output, "ucx        2 ")) << "two peers on the other host\n" << c.output;
  EXPECT_TRUE(contains(c.output, "4 ranks as 2 nodes x 2 ranks")) << c.output;
  EXPECT_TRUE(contains(c.output, "inter-node costs")) << c.output;

  c = run(job + " --json'");
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_TRUE(validJson(c.output)) << c.output;
  EXPECT_TRUE(contains(c.output, "\"layout\": \"2 nodes x 2 ranks\"")) << c.output;
  EXPECT_TRUE(contains(c.output, "\"name\": \"ucx\"")) << c.output;
}

}  // namespace
}  // namespace weft::test
