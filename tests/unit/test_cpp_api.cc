// The header-only C++ layer: RAII, spans, exceptions carrying the code and message.
#include <gtest/gtest.h>

#include <vector>

#include "runner.h"
#include "weft/weft.hpp"

namespace weft::test {
namespace {

TEST(CppApi, ErrorsBecomeExceptionsWithCodeAndMessage) {
  try {
    check(weftAllReduce(nullptr, nullptr, 1, weftFloat32, weftSum, nullptr, nullptr));
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), weftInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("comm is NULL"), std::string::npos) << e.what();
  }
}

TEST(CppApi, GroupScopeRunsSendRecv) {
  runRanks(3, [](int r, weftComm_t comm) {
    std::vector<int32_t> out(5, r), in(5, -1);
    const int next = (r + 1) % 3, prev = (r + 2) % 3;
    {
      Group g;
      check(weftSend(out.data(), 5, dataTypeOf<int32_t>(), next, comm, nullptr), comm);
      check(weftRecv(in.data(), 5, dataTypeOf<int32_t>(), prev, comm, nullptr), comm);
    }
    EXPECT_EQ(in, std::vector<int32_t>(5, prev));
  });
}

static_assert(dataTypeOf<double>() == weftFloat64);
static_assert(dataTypeOf<uint8_t>() == weftUint8);

}  // namespace
}  // namespace weft::test
