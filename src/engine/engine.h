// The engine runs calls on one communicator rank: it turns each call (or a group of calls) into a
// compiled plan — built by the chosen algorithm, cached by the call's signature — finds the
// endpoints, sizes the scratch pool, and hands everything to the executor. Blocking; the API layer
// adds non-blocking requests.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "algorithms/registry.h"
#include "core/coll.h"
#include "core/status.h"
#include "engine/executor.h"
#include "engine/plan.h"
#include "engine/transport.h"

namespace weft {

struct OpCall {
  CollDesc desc;
  const AlgorithmInfo* algo = nullptr;
  const void* send = nullptr;
  void* recv = nullptr;
};

// Memory allocated once, pre-faulted, grown when a call needs more, released with the engine.
class ScratchPool {
 public:
  // shared: allocate from allocShared, where peers can map it (PeerMemory::mapsShared).
  explicit ScratchPool(bool shared = false) : shared_(shared) {}
  ~ScratchPool();
  ScratchPool(const ScratchPool&) = delete;
  ScratchPool& operator=(const ScratchPool&) = delete;
  Result<char*> get(uint64_t bytes);
  uint64_t capacity() const { return bytes_; }

 private:
  void release();
  bool shared_;
  char* base_ = nullptr;
  uint64_t bytes_ = 0;
};

class Engine {
 public:
  Engine(int rank, int nranks, Transport* transport, uint64_t chunkBytes, WaitPolicy wait);
  // Runs one call, or the calls of a group together. Every rank must make matching calls in the
  // same order.
  Status run(std::span<const OpCall> calls);
  uint32_t opCount() const { return opSeq_; }
  size_t cachedPlans() const { return cache_.size(); }

 private:
  int rank_, nranks_;
  Transport* transport_;
  uint64_t chunkBytes_;
  WaitPolicy wait_;
  uint32_t opSeq_ = 0;
  std::vector<uint32_t> pairSeq_;    // per rank: operations that exchanged messages with it
  std::vector<uint32_t> pairStamp_;  // per rank: the last operation (opSeq) that counted it
  Executor executor_;
  ScratchPool scratch_;
  struct Cached {
    std::unique_ptr<Plan> plan;
    std::vector<uint64_t> scratchOffsets;
    std::vector<PartContext> parts;  // what the executor needs per call, computed once per plan
    // One-sided plans: the window protocol's layout, this rank's table (filled per call) and the
    // room its peers' tables arrive in.
    std::unique_ptr<WindowLayout> window;
    std::vector<uint64_t> table;  // WindowLayout::tableBytes, 8-byte aligned
    std::vector<char> peerTables;
    // Per Plan::peers entry, the endpoint: looked up when the plan is built (a transport keeps
    // its endpoints for its whole life).
    std::vector<Endpoint*> endpoints;
  };
  Status fillWindowTable(std::span<const OpCall> calls, Cached* c);
  Result<Cached*> planFor(std::span<const OpCall> calls);
  std::unordered_map<std::string, Cached> cache_;
  std::string lastKey_;
  std::string key_;  // reused, so that a warm call allocates nothing
  Cached* last_ = nullptr;
  // The last plan's call when it ran alone: a repeated single call (a training loop's) is matched
  // field by field, without building its key.
  OpCall lastSingle_;
  bool lastWasSingle_ = false;
  ExecArgs args_;
};

}  // namespace weft
