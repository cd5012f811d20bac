// The communicator behind weftComm_t, and the internal entry points the API and the tests share.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "core/layout.h"
#include "core/status.h"
#include "engine/engine.h"
#include "engine/transport.h"
#include "tuner/tuner.h"

namespace weft {
// The lock that serialises a communicator's execution between the calling thread and the progress
// thread. It is taken once per call and is almost never contended (a waiter is either the other
// of those two threads or a statistics query), so it is built for the uncontended path: one atomic
// exchange to lock and a release store to unlock, inline, where std::mutex pays two library calls
// and two read-modify-writes. A waiter yields, then sleeps 50 us at a time; the holder wakes
// nobody.
class ExecLock {
 public:
  void lock() {
    if (!held_.exchange(true, std::memory_order_acquire)) return;
    lockSlow();
  }
  void unlock() { held_.store(false, std::memory_order_release); }

 private:
  void lockSlow();
  std::atomic<bool> held_{false};
};

// Which buffers a call of `type` uses on `rank` (`root` where it has one): those the API checks,
// and those a registered call must have registered.
bool sendBufferUsed(CollType type, int rank, int root);
bool recvBufferUsed(CollType type, int rank, int root);

// Where one rank runs, as it said at init (weft-info --comm prints them).
struct RankPlace {
  std::string host;
  int numa = -1;
  std::string binding;  // cpulist
  std::string nic;      // nearest NIC's name
  std::string accel;    // nearest accelerator
};

}  // namespace weft

struct weftRequest {
  weftComm* comm = nullptr;
  std::vector<weft::OpCall> calls;
  // An all-to-all-v's arrays, copied: the caller may reuse its own once the call returns.
  std::vector<size_t> layoutCopy;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  weft::Status result;
};

struct weftComm {
  int rank = 0;
  int nranks = 1;
  std::unique_ptr<weft::bootstrap::Bootstrap> bootstrap;
  std::unique_ptr<weft::Transport> transport;
  // Whether the transport reaches every peer's memory (one-sided steps), and some of it over a
  // network: fixed with the transport, read by every call's description.
  bool peerAccess = false;
  bool peerAccessNet = false;
  bool scratchShared = false;  // CollDesc::scratchShared
  std::unique_ptr<weft::Engine> engine;
  weft::Tuner tuner;
  // Where the ranks are: nodes, local ranks, rails (one node when nothing else is known).
  weft::CommLayout layout;
  std::vector<weft::RankPlace> places;
  // The tuner's last answer: a training loop repeats the same call, so the estimate is made once.
  weft::CollDesc lastDesc;
  const weft::AlgorithmInfo* lastAlgo = nullptr;
  std::atomic<bool> cancel{false};
  // weftCommRegister's records, released by weftCommDeregister or with the communicator.
  struct Registration {
    void* base;
    size_t bytes;
    bool shared;  // inside a weftMemAlloc segment
  };
  std::mutex regMu;
  std::vector<std::unique_ptr<Registration>> registrations;
  // How many of them lie in weftMemAlloc memory: while 0, a call's buffers are not looked up.
  std::atomic<int> sharedRegistrations{0};
  // Whether every buffer given (nullptr or 0 bytes: not used by the call) lies inside one
  // registration of weftMemAlloc memory, at least one being given: peers then map the call's
  // buffers (CollDesc::mapped).
  bool buffersMapped(const void* a, size_t aBytes, const void* b, size_t bBytes);

  // Errors: the last message, and the failure that poisoned the communicator (weftSuccess if none).
  std::mutex errorMu;
  std::string lastError;
  std::atomic<int> asyncError{weftSuccess};
  std::string asyncMessage;

  // Serialises execution between the calling thread and the progress thread.
  weft::ExecLock execMu;
  // Non-blocking requests, run in order by one progress thread started on first use.
  std::mutex queueMu;
  std::condition_variable queueCv;
  std::deque<weftRequest*> queue;
  std::atomic<int> pending{0};
  bool stopProgress = false;
  std::thread progress;

  // What every call of type `type` on this communicator tells the tuner and the algorithms about
  // where it runs: rank, size, layout, the tuner's level chooser, and whether one-sided steps can
  // reach every peer's memory (and whether some of it over a network). The API's calls,
  // weftCommGetAlgorithm and weft-info --comm all describe calls this way.
  void describeFor(weft::CollType type, weft::CollDesc* d) const;

  ~weftComm();
};

namespace weft {

struct CommOptions {
  uint64_t chunkBytes = 128 * 1024;
  WaitPolicy wait;
  // The ranks' layout over nodes; empty: all on one node.
  CommLayout layout;
  std::vector<RankPlace> places;  // per rank; may be empty (the in-memory runner)
  // The kernel's copy on the ranks' machines (0: unknown): Tuner::calibrateKernelCopy.
  KernelCopyTimes kernelCopy;
};
CommOptions commOptionsFromConfig();

// Builds a communicator over a ready transport (the in-memory runner uses this; init uses it after
// the bootstrap and transport set-up).
Result<weftComm*> createComm(int rank, int nranks, std::unique_ptr<Transport> transport,
                             std::unique_ptr<bootstrap::Bootstrap> bootstrap,
                             const CommOptions& options);

// Runs calls on the communicator in order with any outstanding requests. Poisons it on failure.
Status commExecute(weftComm* comm, std::span<const OpCall> calls);

// Measures one synchronisation of the communicator's ranks, a 1-element all-reduce (the least of a
// few timed runs, the largest over the ranks, so that every rank prices alike), and gives it to
// the tuner as the intra-node sync_us (Tuner::calibrateSync). Collective: every rank calls it,
// right after createComm, before the communicator is handed out.
Status calibrateSync(weftComm* comm);

// Queues a non-blocking request; the progress thread runs it.
Status commPost(weftComm* comm, weftRequest* req);
const char* lastErrorFor(weftComm* comm);

// Records an error for weftGetLastError (thread and, if given, communicator) and returns its code.
weftResult_t reportError(weftComm* comm, const Status& status);

// Runs the body of a C entry point: records its error (weftGetLastError) and turns a C++ exception
// (allocation failure, a bug) into an error code instead of letting it cross the C ABI.
template <typename F>
inline __attribute__((always_inline)) weftResult_t guarded(weftComm* comm, F&& body) {
  try {
    return reportError(comm, body());
  } catch (const std::bad_alloc&) {
    return reportError(comm, Status(weftSystemError, "out of memory"));
  } catch (const std::exception& e) {
    return reportError(comm, errorStatus(weftInternalError, "internal error: %s", e.what()));
  }
}

}  // namespace weft
