// compilePlan's channels (WEFT_NCHANNELS): how a step is split into slices, which channel carries
// each, the message order per channel and the dependencies between slices. The collectives
// themselves run over several channels in test_collectives.cc and test_alltoall.cc.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "engine/plan.h"

namespace weft {
namespace {

// A send of the send buffer's first `bytes` to `peer`, or a receive of as many into the output.
Step messageStep(bool send, int peer, uint64_t bytes) {
  Step s;
  s.kind = send ? StepKind::kSend : StepKind::kRecv;
  (send ? s.sendPeer : s.recvPeer) = peer;
  (send ? s.src : s.dst) = Region{send ? kSendBuf : kRecvBuf, 0, bytes};
  return s;
}
Step sendStep(int peer, uint64_t bytes) {
  return messageStep(true, peer, bytes);
}
Step recvStep(int peer, uint64_t bytes) {
  return messageStep(false, peer, bytes);
}

TEST(PlanChannels, SliceCountFollowsChunksChannelsAndAlignment) {
  EXPECT_EQ(sliceCount(0, 4096, 4, 4), 1u);           // one empty chunk
  EXPECT_EQ(sliceCount(4096, 4096, 4, 4), 1u);        // one chunk: one slice
  EXPECT_EQ(sliceCount(8191, 4096, 4, 4), 1u);        // under two chunks
  EXPECT_EQ(sliceCount(8192, 4096, 4, 4), 1u);        // two chunks: one slice
  EXPECT_EQ(sliceCount(4 * 4096, 4096, 4, 4), 2u);    // two slices of two chunks
  EXPECT_EQ(sliceCount(10 * 4096, 4096, 4, 4), 4u);   // as many as there are channels
  EXPECT_EQ(sliceCount(10 * 4096, 4096, 4, 1), 1u);   // one channel
  EXPECT_EQ(sliceCount(100, 16, 4, 8), 1u);           // fewer 64-byte units than channels
  EXPECT_EQ(sliceCount(3 * 64, 16, 4, 8), 3u);        // one 64-byte unit each
  EXPECT_EQ(sliceCount(3 * 7 * 5, 7, 3 * 7, 8), 5u);  // odd element size: units of one element
  EXPECT_EQ(sliceOffset(10 * 4096, 4, 4, 0), 0u);
  EXPECT_EQ(sliceOffset(10 * 4096, 4, 4, 4), 10u * 4096);  // k = n: the end
  for (uint32_t k = 0; k <= 3; ++k) {
    EXPECT_EQ(sliceOffset(10 * 4096 + 12, 4, 3, k) % 64, k == 3 ? 12u : 0u) << k;
    EXPECT_EQ(sliceOffset(35, 7, 5, k) % 7, 0u) << k;
  }
}

TEST(PlanChannels, LargeStepSplitsIntoContiguousSlicesOnePerChannel) {
  Schedule s;
  s.elemSize = 4;
  const uint64_t bytes = 10 * 4096 + 8;  // 11 chunks
  s.add(sendStep(1, bytes));
  auto plan = compilePlan(s, 4096, 3);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Plan& p = *plan;
  EXPECT_EQ(p.channels, 3);
  EXPECT_EQ(p.nslices, 3u);
  ASSERT_EQ(p.peers.size(), 3u);
  uint64_t next = 0;  // the slices follow each other through the buffer, channel by channel
  for (int c = 0; c < 3; ++c) {
    const PeerQueues& q = p.peers[static_cast<size_t>(c)];
    EXPECT_EQ(q.rank, 1);
    EXPECT_EQ(q.channel, c);
    EXPECT_TRUE(q.recvs.empty());
    ASSERT_FALSE(q.sends.empty());
    uint64_t sliceBytes = 0;
    for (size_t i = 0; i < q.sends.size(); ++i) {
      const PlanOp& op = p.ops[q.sends[i]];
      EXPECT_EQ(op.channel, c);
      EXPECT_EQ(op.sendIndex, i);  // message numbers count per channel
      EXPECT_EQ(op.chunk, i);
      EXPECT_EQ(op.src.offset, next) << "channel " << c << " message " << i;
      EXPECT_LE(op.bytes, 4096u);
      next += op.bytes;
      sliceBytes += op.bytes;
    }
    for (uint32_t id : q.sends)
      EXPECT_EQ(p.ops[id].msgBytes, sliceBytes);  // tags carry the slice's size
    EXPECT_EQ(p.ops[q.sends.front()].src.offset % 64, 0u);
  }
  EXPECT_EQ(next, bytes);
}

TEST(PlanChannels, SmallAndEmptyStepsGoOnChannelZero) {
  Schedule s;
  s.elemSize = 4;
  s.add(sendStep(1, 4096));
  s.add(recvStep(2, 0));
  s.add(sendStep(2, 4 * 4096));  // four chunks: two channels
  auto plan = compilePlan(s, 4096, 4);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  std::vector<int> perChannel(4, 0);
  for (const PlanOp& op : plan->ops)
    ++perChannel[op.channel];
  EXPECT_EQ(perChannel, (std::vector<int>{4, 2, 0, 0}));
  for (const PeerQueues& q : plan->peers)
    if (q.rank == 2 && q.channel == 0) {
      ASSERT_EQ(q.recvs.size(), 1u);
      EXPECT_EQ(plan->ops[q.recvs[0]].bytes, 0u);
    }
}

TEST(PlanChannels, EqualStepsDependSliceBySliceOthersOnTheWholeStep) {
  Schedule s;
  s.elemSize = 4;
  const uint64_t bytes = 8 * 4096;
  const StepId in = s.add(recvStep(0, bytes));
  Step fwd = sendStep(2, bytes);
  fwd.src = Region{kRecvBuf, 0, bytes};
  s.add(fwd, {in});
  Step half = sendStep(3, bytes / 2);
  half.src = Region{kRecvBuf, 0, bytes / 2};
  s.add(half, {in});
  auto plan = compilePlan(s, 4096, 2);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const Plan& p = *plan;
  size_t recvOps = 0;
  for (uint32_t id = 0; id < p.ops.size(); ++id) {
    const PlanOp& op = p.ops[id];
    if (op.step == 0) {
      ++recvOps;
      continue;
    }
    if (op.step == 1) {
      // The forwarded chunk waits for exactly the received chunk at the same place.
      EXPECT_EQ(p.initialDeps[id], 1u) << id;
      bool found = false;
      for (uint32_t d = 0; d < p.ops.size(); ++d) {
        const PlanOp& r = p.ops[d];
        if (r.step != 0) continue;
        for (uint32_t k = 0; k < r.succCount; ++k)
          if (p.succ[r.succBegin + k] == id) {
            found = true;
            EXPECT_EQ(r.channel, op.channel);
            EXPECT_EQ(r.dst.offset, op.src.offset);
          }
      }
      EXPECT_TRUE(found) << id;
    } else {
      EXPECT_EQ(p.initialDeps[id], recvOps) << "a step of another size waits for all of it";
    }
  }
  EXPECT_EQ(recvOps, 8u);
}

}  // namespace
}  // namespace weft
