#include "api/comm.h"

#include <chrono>

#include "bootstrap/bootstrap.h"
#include "core/config.h"
#include "core/dtype.h"
#include "core/log.h"

weftComm::~weftComm() {
  {
    std::lock_guard<std::mutex> lock(queueMu);
    stopProgress = true;
  }
  queueCv.notify_all();
  if (progress.joinable()) progress.join();
  engine.reset();
  transport.reset();
  bootstrap.reset();
}

namespace weft {

bool sendBufferUsed(CollType type, int rank, int root) {
  return type != CollType::kRecv && !(type == CollType::kBroadcast && rank != root) &&
         !(type == CollType::kScatter && rank != root);
}

bool recvBufferUsed(CollType type, int rank, int root) {
  return type != CollType::kSend && !(type == CollType::kReduce && rank != root) &&
         !(type == CollType::kGather && rank != root);
}

}  // namespace weft

bool weftComm::buffersMapped(const void* a, size_t aBytes, const void* b, size_t bBytes) {
  if (sharedRegistrations.load(std::memory_order_acquire) == 0) return false;
  const bool useA = a != nullptr && aBytes > 0, useB = b != nullptr && bBytes > 0;
  if (!useA && !useB) return false;
  std::lock_guard<std::mutex> lock(regMu);
  auto covered = [&](const void* p, size_t n) {
    const auto lo = reinterpret_cast<uintptr_t>(p);
    for (const auto& r : registrations) {
      const auto base = reinterpret_cast<uintptr_t>(r->base);
      if (r->shared && lo >= base && n <= r->bytes && lo - base <= r->bytes - n) return true;
    }
    return false;
  };
  return (!useA || covered(a, aBytes)) && (!useB || covered(b, bBytes));
}

void weftComm::describeFor(weft::CollType type, weft::CollDesc* d) const {
  d->rank = rank;
  d->nranks = nranks;
  d->peerAccess = peerAccess;
  d->peerAccessNet = peerAccessNet;
  d->scratchShared = scratchShared;
  d->topo = &layout;
  d->chooser = tuner.chooserFor(type);
}

namespace weft {

void ExecLock::lockSlow() {
  for (int i = 0;; ++i) {
    if (!held_.load(std::memory_order_relaxed) && !held_.exchange(true, std::memory_order_acquire))
      return;
    // The holder runs a whole collective: give it the CPU, then stop polling often.
    if (i < 1024) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

namespace {

__attribute__((tls_model("initial-exec"))) thread_local std::string tLastError;

void poisonComm(weftComm* comm, const Status& s) {
  std::lock_guard<std::mutex> lock(comm->errorMu);
  if (comm->asyncError.load() != weftSuccess) return;
  comm->asyncMessage = s.message();
  comm->asyncError.store(s.code());
  comm->transport->poison(Status(s.code(), s.cause()));
}

Status runNow(weftComm* comm, std::span<const OpCall> calls) {
  std::lock_guard<ExecLock> lock(comm->execMu);
  if (comm->asyncError.load() != weftSuccess) {
    std::lock_guard<std::mutex> elock(comm->errorMu);
    return Status(static_cast<weftResult_t>(comm->asyncError.load()),
                  "communicator is unusable after an earlier failure: " + comm->asyncMessage);
  }
  log::setThreadRank(comm->rank);
  Status s = comm->engine->run(calls);
  if (!s.ok()) poisonComm(comm, s);
  return s;
}

void progressLoop(weftComm* comm) {
  for (;;) {
    weftRequest* req = nullptr;
    {
      std::unique_lock<std::mutex> lock(comm->queueMu);
      comm->queueCv.wait(lock, [&] { return comm->stopProgress || !comm->queue.empty(); });
      if (comm->queue.empty()) return;
      req = comm->queue.front();
      comm->queue.pop_front();
    }
    Status s = comm->cancel.load() ? Status(weftRemoteError, "the communicator was aborted")
                                   : runNow(comm, req->calls);
    comm->pending.fetch_sub(1);
    // Notify while holding the lock: once it is released the waiter may free the request (weftWait
    // deletes it; commExecute's lives on its stack), so this thread must not touch it afterwards.
    std::lock_guard<std::mutex> lock(req->mu);
    req->result = s;
    req->done = true;
    req->cv.notify_all();
  }
}

}  // namespace

CommOptions commOptionsFromConfig() {
  CommOptions o;
  o.chunkBytes = static_cast<uint64_t>(config::intValue("WEFT_CHUNK_SIZE"));
  o.wait.timeoutSec = config::secondsValue("WEFT_TIMEOUT");
  o.wait.spinUs = static_cast<int>(config::intValue("WEFT_SPIN_US"));
  o.wait.yieldUs = static_cast<int>(config::intValue("WEFT_YIELD_US"));
  return o;
}

Result<weftComm*> createComm(int rank, int nranks, std::unique_ptr<Transport> transport,
                             std::unique_ptr<bootstrap::Bootstrap> bootstrap,
                             const CommOptions& options) {
  WEFT_ASSIGN_OR_RETURN(Tuner tuner, tunerFromConfig());
  if (options.layout.nranks() != 0 && options.layout.nranks() != nranks)
    return errorStatus(weftInternalError, "the layout describes %d ranks, the communicator has %d",
                       options.layout.nranks(), nranks);
  auto comm = std::make_unique<weftComm>();
  comm->rank = rank;
  comm->nranks = nranks;
  comm->bootstrap = std::move(bootstrap);
  comm->transport = std::move(transport);
  if (PeerMemory* pm = comm->transport->peerMemory()) {
    comm->peerAccess = true;
    comm->peerAccessNet = pm->overNetwork();
    comm->scratchShared = pm->mapsShared();
  }
  comm->tuner = std::move(tuner);
  comm->tuner.setChunkBytes(options.chunkBytes);
  comm->tuner.calibrateKernelCopy(options.kernelCopy);
  comm->layout = options.layout.nranks() != 0 ? options.layout : CommLayout::flat(nranks);
  comm->tuner.setInterNode(comm->layout.nnodes() > 1);
  comm->places = options.places;
  WaitPolicy wait = options.wait;
  wait.cancel = &comm->cancel;
  comm->engine =
      std::make_unique<Engine>(rank, nranks, comm->transport.get(), options.chunkBytes, wait);
  return comm.release();
}

Status commExecute(weftComm* comm, std::span<const OpCall> calls) {
  if (comm->pending.load() == 0) return runNow(comm, calls);
  // Requests are outstanding: queue behind them to keep the order every rank sees.
  weftRequest req;
  req.comm = comm;
  req.calls.assign(calls.begin(), calls.end());
  WEFT_TRY(commPost(comm, &req));
  std::unique_lock<std::mutex> lock(req.mu);
  req.cv.wait(lock, [&] { return req.done; });
  return req.result;
}

namespace {

// A 1-element all-reduce described as the API describes it, for commExecute, which runs it
// straight on the engine: never queued in a group the caller may have open around its init. It is
// chosen once, so that calibrateSync times what a repeated call costs (the API keeps the last
// call's choice), not the tuner's choice.
Result<OpCall> oneElementAllReduce(weftComm* comm, const void* send, void* recv,
                                   weftDataType_t dtype, weftRedOp_t op) {
  OpCall call;
  call.desc.type = CollType::kAllReduce;
  call.desc.count = 1;
  call.desc.dtype = dtype;
  call.desc.op = op;
  comm->describeFor(CollType::kAllReduce, &call.desc);
  call.desc.elemSize = dtypeSize(dtype);
  WEFT_ASSIGN_OR_RETURN(call.algo, comm->tuner.choose(call.desc));
  call.send = send;
  call.recv = recv;
  return call;
}

}  // namespace

Status calibrateSync(weftComm* comm) {
  // About 110 calls of a few microseconds: well under a millisecond where each rank has a CPU.
  constexpr int kWarmUp = 20, kReps = 3, kIters = 30;
  float one = 1, sum = 0;
  WEFT_ASSIGN_OR_RETURN(const OpCall timed,
                        oneElementAllReduce(comm, &one, &sum, weftFloat32, weftSum));
  const std::span<const OpCall> calls(&timed, 1);
  for (int i = 0; i < kWarmUp; ++i)
    WEFT_TRY(commExecute(comm, calls));
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < kReps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kIters; ++i)
      WEFT_TRY(commExecute(comm, calls));
    const std::chrono::duration<double, std::micro> us = std::chrono::steady_clock::now() - t0;
    best = std::min(best, us.count() / kIters);
  }
  double agreed = 0;
  WEFT_ASSIGN_OR_RETURN(const OpCall maxCall,
                        oneElementAllReduce(comm, &best, &agreed, weftFloat64, weftMax));
  WEFT_TRY(commExecute(comm, std::span<const OpCall>(&maxCall, 1)));
  comm->tuner.calibrateSync(agreed);
  return Status::Ok();
}

Status commPost(weftComm* comm, weftRequest* req) {
  std::lock_guard<std::mutex> lock(comm->queueMu);
  if (!comm->progress.joinable()) comm->progress = std::thread(progressLoop, comm);
  comm->pending.fetch_add(1);
  comm->queue.push_back(req);
  comm->queueCv.notify_one();
  return Status::Ok();
}

weftResult_t reportError(weftComm* comm, const Status& status) {
  if (status.ok()) return weftSuccess;
  WEFT_WARN(kColl, "%s", status.message().c_str());
  tLastError = status.message();
  if (comm != nullptr) {
    std::lock_guard<std::mutex> lock(comm->errorMu);
    comm->lastError = status.message();
  }
  return status.code();
}

const char* lastErrorFor(weftComm* comm) {
  if (comm == nullptr) return tLastError.c_str();
  std::lock_guard<std::mutex> lock(comm->errorMu);
  return comm->lastError.c_str();
}

}  // namespace weft
