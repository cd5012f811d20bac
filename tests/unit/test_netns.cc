// Collectives between "hosts" that are network namespaces joined by a bridge: one test per
// configuration of tests/netns/run_collectives.sh (which builds the namespaces with
// scripts/netns.sh, starts the ranks of the test worker in them and checks that the network
// plugins, over the veths, carried the bytes). Skipped, with the script's reason, where it cannot
// run: not root, namespaces not permitted, the plugin not built.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "multiprocess.h"

namespace weft::test {
namespace {

// The text after "SKIP <config>: " in the script's output, or a generic reason.
std::string skipReason(const std::string& out, const std::string& config) {
  const std::string tag = "SKIP " + config + ": ";
  const size_t at = out.find(tag);
  if (at == std::string::npos) return "tests/netns/run_collectives.sh skipped: " + out;
  const size_t from = at + tag.size();
  return out.substr(from, out.find('\n', from) - from);
}

class Netns : public testing::TestWithParam<std::string> {};

TEST_P(Netns, CollectivesOverTheVeths) {
  const std::string config = GetParam();
  const std::string cmd = std::string(WEFT_SOURCE_DIR) + "/tests/netns/run_collectives.sh " +
                          WEFT_BINARY_DIR + " " + config;
  const RunResult r = run(cmd);
  if (r.status == 77) GTEST_SKIP() << skipReason(r.output, config);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.output;
  EXPECT_NE(r.output.find("PASS " + config), std::string::npos) << cmd << "\n" << r.output;
  // The PASS line names the devices that carried the bytes (e.g. "tcp/veth0"): keep it in the log.
  const size_t at = r.output.find("PASS " + config);
  if (at != std::string::npos)
    std::printf("%s\n", r.output.substr(at, r.output.find('\n', at) - at).c_str());
}

const std::vector<std::string> kConfigs = {"ucx_2x2",  "default_2x2", "ofi_2x2",
                                           "ucx_3x2",  "default_3x2", "ofi_3x2",
                                           "hier_2x2", "hier_3x2",    "kill_2x1"};

INSTANTIATE_TEST_SUITE_P(Configs, Netns, testing::ValuesIn(kConfigs),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace weft::test
