// The in-memory runner: N ranks as threads of this process, each with a communicator over the
// in-memory transport, running the same test body. Failures inside a rank are gtest failures as
// usual.
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "api/comm.h"
#include "bootstrap/bootstrap.h"
#include "test_env.h"
#include "transports/mem/mem_transport.h"

namespace weft::test {

struct RunnerOptions {
  size_t slotBytes = 4096;  // small slots exercise chunking and FIFO wrap-around
  int nslots = 4;
  double timeoutSec = 60;
  std::string algo;                               // WEFT_ALGO grammar, e.g. "allreduce:ring"
  MemPeerAccess access = MemPeerAccess::kDirect;  // how one-sided steps reach peers' memory
  CommLayout layout;  // the ranks' nodes (CommLayout::blocks({4, 4}), ...); empty: one node
  int channels = 1;   // WEFT_NCHANNELS
};

// 1..33 ranks and 64: odd, prime and power-of-two sizes for every algorithm test.
inline std::vector<int> testRankCounts() {
  std::vector<int> n;
  for (int i = 1; i <= 33; ++i)
    n.push_back(i);
  n.push_back(64);
  return n;
}

// A call's result code, and that its error message mentions `mentions` (an argument's name).
inline void expectError(weftResult_t got, weftResult_t want, weftComm_t comm,
                        const std::string& mentions) {
  EXPECT_EQ(got, want) << weftGetErrorString(got);
  const std::string msg = weftGetLastError(comm);
  EXPECT_NE(msg.find(mentions), std::string::npos)
      << "message \"" << msg << "\" does not mention \"" << mentions << "\"";
}

inline void runRanks(int nranks, const std::function<void(int rank, weftComm_t comm)>& body,
                     RunnerOptions opt = {}) {
  MemFabric fabric(nranks, opt.slotBytes, opt.nslots, opt.access, opt.channels);
  std::vector<weftComm_t> comms(static_cast<size_t>(nranks));
  CommOptions co;
  co.chunkBytes = opt.slotBytes;
  co.wait.timeoutSec = opt.timeoutSec;
  co.wait.spinUs = 20;
  co.wait.yieldUs = 100;
  co.layout = opt.layout;
  for (int r = 0; r < nranks; ++r) {
    auto c = createComm(r, nranks, fabric.transportFor(r), nullptr, co);
    ASSERT_TRUE(c.ok()) << c.status().message();
    comms[static_cast<size_t>(r)] = c.value();
    if (!opt.algo.empty()) {
      auto ov = parseAlgoOverride(opt.algo);
      ASSERT_TRUE(ov.ok()) << ov.status().message();
      c.value()->tuner = Tuner(ov.value());
      c.value()->tuner.setInterNode(c.value()->layout.nnodes() > 1);
    }
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] { body(r, comms[static_cast<size_t>(r)]); });
  for (auto& t : threads)
    t.join();
  for (weftComm_t c : comms)
    weftCommDestroy(c);
}

}  // namespace weft::test
