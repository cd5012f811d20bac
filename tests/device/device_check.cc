// The device-memory check on a real GPU: what weft does with CUDA buffers while its device paths
// are not built. Built twice (tests/device/CMakeLists.txt): weft_device_check links the CUDA
// runtime statically, as nvcc does by default (no libcudart.so is ever loaded, only the driver,
// libcuda.so.1), and weft_device_check_shared links libcudart.so. Run as one rank, or as several
// under weftrun (each rank on GPU local_rank % count).
//
// In order: a host all-reduce before the first CUDA call (so weft looked for the driver before it
// was loaded); then cudaMalloc'd buffers refused by all-reduce, all-gather, broadcast, send/recv
// and weftCommRegister with weftInvalidUsage (weftInvalidArgument for the registration) and a
// message naming the argument and "cuda", from the main thread and from a thread that never made a
// CUDA call, the device bytes untouched and no CUDA error left behind; stream-ordered
// (cudaMallocAsync) memory refused too; pinned memory (cudaMallocHost, cudaHostRegister, mapped
// cudaHostAlloc) moved by the collectives, every element checked; managed memory
// (cudaMallocManaged) refused, naming "cuda managed". Prints one PASS or FAIL line per check and
// exits 1 on any failure, 77 (skipped) where the machine has no NVIDIA device. With
// WEFT_DEVICE_CHECK_CUDA_FIRST=1, CUDA is initialised before weft's first call instead.
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>
#include <weft/weft.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

int gRank = 0;
int gNranks = 1;
int gFailures = 0;

void report(bool ok, const std::string& what) {
  std::printf("[rank %d] %s: %s\n", gRank, ok ? "PASS" : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++gFailures;
}

void info(const std::string& what) {
  std::printf("[rank %d] INFO: %s\n", gRank, what.c_str());
  std::fflush(stdout);
}

bool loaded(const char* soname) {
  void* h = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
  if (h == nullptr) {
    (void)dlerror();
    return false;
  }
  dlclose(h);
  return true;
}

double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// A call that weft must refuse: the code, and a message that contains `mentions`.
void expectRefused(const std::string& what, weftResult_t got, weftResult_t want, weftComm_t comm,
                   const std::string& mentions) {
  const std::string msg = weftGetLastError(comm);
  report(got == want && msg.find(mentions) != std::string::npos,
         what + " -> " + weftGetErrorString(got) + ": \"" + msg + "\"");
}

// The runtime's C functions take void**.
template <class T>
void** voidp(T** p) {
  return reinterpret_cast<void**>(p);
}

bool cudaOk(cudaError_t e, const char* what) {
  if (e != cudaSuccess) report(false, std::string(what) + ": " + cudaGetErrorString(e));
  return e == cudaSuccess;
}

// Rank r contributes (r + 1) * (i % 7 + 1) at element i: every sum is exact in float.
float contribution(int rank, size_t i) {
  return static_cast<float>((rank + 1) * (i % 7 + 1));
}

// All-reduce, all-gather and broadcast on host-visible buffers (pinned or not), every element
// checked.
void collectivesMove(const char* kind, float* send, float* recv, size_t count, weftComm_t comm) {
  for (size_t i = 0; i < count; ++i)
    send[i] = contribution(gRank, i);
  weftResult_t r = weftAllReduce(send, recv, count, weftFloat32, weftSum, comm, nullptr);
  bool ok = r == weftSuccess;
  const float ranksSum = static_cast<float>(gNranks * (gNranks + 1) / 2);
  size_t bad = 0;
  for (size_t i = 0; ok && i < count; ++i)
    bad += recv[i] != ranksSum * static_cast<float>(i % 7 + 1);
  report(ok && bad == 0,
         std::string("weftAllReduce on ") + kind + " memory (" + std::to_string(count) +
             " floats): " +
             (r == weftSuccess ? std::to_string(bad) + " wrong elements" : weftGetLastError(comm)));

  const size_t part = count / static_cast<size_t>(gNranks);
  r = weftAllGather(send, recv, part, weftFloat32, comm, nullptr);
  ok = r == weftSuccess;
  bad = 0;
  for (int q = 0; ok && q < gNranks; ++q)
    for (size_t i = 0; i < part; ++i)
      bad += recv[static_cast<size_t>(q) * part + i] != contribution(q, i);
  report(ok && bad == 0,
         std::string("weftAllGather on ") + kind + " memory: " +
             (r == weftSuccess ? std::to_string(bad) + " wrong elements" : weftGetLastError(comm)));

  const int root = gNranks - 1;
  for (size_t i = 0; i < count; ++i)
    recv[i] = -1.0f;
  r = weftBroadcast(send, recv, count, weftFloat32, root, comm, nullptr);
  ok = r == weftSuccess;
  bad = 0;
  for (size_t i = 0; ok && i < count; ++i)
    bad += recv[i] != contribution(root, i);
  report(ok && bad == 0,
         std::string("weftBroadcast on ") + kind + " memory from rank " + std::to_string(root) +
             ": " +
             (r == weftSuccess ? std::to_string(bad) + " wrong elements" : weftGetLastError(comm)));
}

// Every call on CUDA buffers: refused on every rank alike (so no rank waits for another). `kind`
// is weft's name for the memory: "cuda" or "cuda managed".
void deviceRefused(const char* alloc, const char* kind, void* dsend, void* drecv, float* host,
                   size_t count, weftComm_t comm) {
  const std::string a = alloc;
  const std::string sendIs = std::string("sendbuff is ") + kind + " device memory";
  const std::string recvIs = std::string("recvbuff is ") + kind + " device memory";
  expectRefused(a + " sendbuff: weftAllReduce",
                weftAllReduce(dsend, host, count, weftFloat32, weftSum, comm, nullptr),
                weftInvalidUsage, comm, sendIs);
  expectRefused(a + " recvbuff: weftAllReduce",
                weftAllReduce(host, drecv, count, weftFloat32, weftSum, comm, nullptr),
                weftInvalidUsage, comm, recvIs);
  expectRefused(a + " in place: weftAllReduce",
                weftAllReduce(drecv, drecv, count, weftFloat32, weftSum, comm, nullptr),
                weftInvalidUsage, comm, sendIs);
  const size_t part = count / static_cast<size_t>(gNranks);
  expectRefused(a + " sendbuff: weftAllGather",
                weftAllGather(dsend, host, part, weftFloat32, comm, nullptr), weftInvalidUsage,
                comm, sendIs);
  expectRefused(a + " recvbuff: weftAllGather",
                weftAllGather(host, drecv, part, weftFloat32, comm, nullptr), weftInvalidUsage,
                comm, recvIs);
  // Root 0 checks its sendbuff first; the other ranks use only their recvbuff.
  expectRefused(a + " both: weftBroadcast",
                weftBroadcast(dsend, drecv, count, weftFloat32, 0, comm, nullptr), weftInvalidUsage,
                comm, gRank == 0 ? sendIs : recvIs);
  expectRefused(a + " recvbuff: weftBroadcast",
                weftBroadcast(host, drecv, count, weftFloat32, 0, comm, nullptr), weftInvalidUsage,
                comm, recvIs);
  const int peer = (gRank + 1) % gNranks, from = (gRank + gNranks - 1) % gNranks;
  expectRefused(a + " sendbuff: weftSend", weftSend(dsend, count, weftFloat32, peer, comm, nullptr),
                weftInvalidUsage, comm, sendIs);
  expectRefused(a + " recvbuff: weftRecv", weftRecv(drecv, count, weftFloat32, from, comm, nullptr),
                weftInvalidUsage, comm, recvIs);
  void* handle = nullptr;
  expectRefused(a + ": weftCommRegister",
                weftCommRegister(comm, dsend, count * sizeof(float), &handle), weftInvalidArgument,
                comm, std::string(kind) + " memory");
}

int run() {
  if (access("/dev/nvidiactl", F_OK) != 0) {
    std::printf("SKIP: no NVIDIA device here (/dev/nvidiactl is missing)\n");
    return 77;
  }
  const bool sharedRuntime = WEFT_DEVICE_CHECK_SHARED_RUNTIME != 0;
  // WEFT_DEVICE_CHECK_CUDA_FIRST=1: CUDA is initialised before weft's first call instead.
  const char* cudaFirstEnv = std::getenv("WEFT_DEVICE_CHECK_CUDA_FIRST");
  const bool cudaFirst = cudaFirstEnv != nullptr && std::strcmp(cudaFirstEnv, "1") == 0;
  if (cudaFirst && cudaFree(nullptr) != cudaSuccess) {
    std::printf("FAIL: cudaFree(NULL) to initialise CUDA\n");
    return 1;
  }
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  // 1. weft first: the communicator and a host all-reduce, before any CUDA call.
  weftComm_t comm = nullptr;
  weftResult_t r;
  if (std::getenv("WEFT_WORLD_SIZE") != nullptr) {
    r = weftCommInitFromEnv(&comm);
  } else {
    weftUniqueId id;
    r = weftGetUniqueId(&id);
    if (r == weftSuccess) r = weftCommInitRank(&comm, 1, id, 0);
  }
  if (r != weftSuccess) {
    std::printf("FAIL: communicator: %s\n", weftGetLastError(nullptr));
    return 1;
  }
  weftCommUserRank(comm, &gRank);
  weftCommCount(comm, &gNranks);
  info(std::string("runtime linked ") + (sharedRuntime ? "shared (libcudart.so)" : "statically") +
       ", " + std::to_string(gNranks) + " rank(s)");
  if (cudaFirst)
    info("CUDA initialised before weft's first call (WEFT_DEVICE_CHECK_CUDA_FIRST=1)");
  else
    report(!loaded("libcuda.so.1"), "no CUDA driver loaded before the first host call");
  const size_t count = 3 * 1024 + 6;  // a multiple of 1..3 ranks and of 2 x 3
  std::vector<float> hsend(count), hrecv(count);
  collectivesMove("host (before CUDA)", hsend.data(), hrecv.data(), count, comm);
  auto timeAllReduce = [&]() {
    float a[2] = {1, 2}, b[2];
    const int n = 100000;
    const auto t = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i)
      weftAllReduce(a, b, 2, weftFloat32, weftSum, comm, nullptr);
    return msSince(t) * 1e6 / n;
  };
  if (gNranks == 1)
    info("8-byte host all-reduce before CUDA: " + std::to_string(timeAllReduce()) + " ns");

  // 2. CUDA now: a thread notes when the driver appears, to measure how long it takes from
  // there to the first device pointer (weft's once-per-tick check relies on it being long).
  std::atomic<bool> stop{false};
  std::atomic<int64_t> driverSeenNs{0};
  std::thread watcher([&] {
    while (!stop.load() && !loaded("libcuda.so.1"))
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    driverSeenNs.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now().time_since_epoch())
                           .count());
  });
  int ndev = 0;
  const auto cudaStart = std::chrono::steady_clock::now();
  if (!cudaOk(cudaGetDeviceCount(&ndev), "cudaGetDeviceCount") || ndev == 0) {
    stop.store(true);
    watcher.join();
    return 1;
  }
  const char* local = std::getenv("WEFT_LOCAL_RANK");
  const int device = (local != nullptr ? std::atoi(local) : 0) % ndev;
  cudaOk(cudaSetDevice(device), "cudaSetDevice");
  float* dsend = nullptr;
  float* drecv = nullptr;
  if (!cudaOk(cudaMalloc(voidp(&dsend), count * sizeof(float)), "cudaMalloc") ||
      !cudaOk(cudaMalloc(voidp(&drecv), count * sizeof(float)), "cudaMalloc"))
    return 1;
  const auto firstAlloc = std::chrono::steady_clock::now();
  stop.store(true);
  watcher.join();
  const double loadToAlloc =
      (std::chrono::duration_cast<std::chrono::nanoseconds>(firstAlloc.time_since_epoch()).count() -
       driverSeenNs.load()) /
      1e6;
  timespec res{};
  clock_getres(CLOCK_MONOTONIC_COARSE, &res);
  const double firstCalls =
      std::chrono::duration<double, std::milli>(firstAlloc - cudaStart).count();
  info(
      "first CUDA call to the first cudaMalloc returned: " + std::to_string(firstCalls) +
      " ms; libcuda.so.1 seen loaded to first cudaMalloc returned: " + std::to_string(loadToAlloc) +
      " ms; CLOCK_MONOTONIC_COARSE tick: " + std::to_string(res.tv_nsec / 1e6) + " ms");
  if (!cudaFirst)
    report(loadToAlloc > res.tv_nsec / 1e6,
           "the first device pointer came more than one coarse tick after the driver loaded");
  report(loaded("libcuda.so.1"), "libcuda.so.1 loaded by the runtime");
  const bool cudart =
      loaded("libcudart.so") || loaded("libcudart.so.12") || loaded("libcudart.so.13");
  report(cudart == sharedRuntime, std::string("libcudart.so ") + (cudart ? "is" : "is not") +
                                      " loaded, as the " + (sharedRuntime ? "shared" : "static") +
                                      " runtime implies");

  // 3. Device memory: refused, untouched, no CUDA error left.
  cudaOk(cudaMemset(dsend, 0x5a, count * sizeof(float)), "cudaMemset");
  cudaOk(cudaMemset(drecv, 0x3c, count * sizeof(float)), "cudaMemset");
  cudaOk(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  deviceRefused("cudaMalloc", "cuda", dsend, drecv, hsend.data(), count, comm);
  std::thread noContext([&] {
    expectRefused("cudaMalloc sendbuff from a thread without a CUDA context: weftAllReduce",
                  weftAllReduce(dsend, hrecv.data(), count, weftFloat32, weftSum, comm, nullptr),
                  weftInvalidUsage, comm, "sendbuff is cuda device memory");
  });
  noContext.join();
  std::vector<unsigned char> back(count * sizeof(float));
  cudaOk(cudaMemcpy(back.data(), drecv, back.size(), cudaMemcpyDeviceToHost), "cudaMemcpy");
  size_t changed = 0;
  for (unsigned char b : back)
    changed += b != 0x3c;
  report(changed == 0, "device recvbuff untouched: " + std::to_string(changed) + " bytes changed");
  const cudaError_t leftover = cudaPeekAtLastError();
  report(leftover == cudaSuccess,
         std::string("no CUDA error left for the application: ") + cudaGetErrorName(leftover));

  cudaStream_t stream = nullptr;
  void* dasync = nullptr;
  if (cudaOk(cudaStreamCreate(&stream), "cudaStreamCreate") &&
      cudaOk(cudaMallocAsync(&dasync, count * sizeof(float), stream), "cudaMallocAsync") &&
      cudaOk(cudaStreamSynchronize(stream), "cudaStreamSynchronize")) {
    expectRefused("cudaMallocAsync sendbuff: weftAllReduce",
                  weftAllReduce(dasync, hrecv.data(), count, weftFloat32, weftSum, comm, nullptr),
                  weftInvalidUsage, comm, "sendbuff is cuda device memory");
    cudaFreeAsync(dasync, stream);
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
  }

  // 4. Pinned host memory: host, moved.
  float* psend = nullptr;
  float* precv = nullptr;
  if (cudaOk(cudaMallocHost(voidp(&psend), count * sizeof(float)), "cudaMallocHost") &&
      cudaOk(cudaMallocHost(voidp(&precv), count * sizeof(float)), "cudaMallocHost")) {
    collectivesMove("cudaMallocHost", psend, precv, count, comm);
    cudaFreeHost(psend);
    cudaFreeHost(precv);
  }
  std::vector<float> rsend(count), rrecv(count);
  if (cudaOk(cudaHostRegister(rsend.data(), count * sizeof(float), cudaHostRegisterDefault),
             "cudaHostRegister") &&
      cudaOk(cudaHostRegister(rrecv.data(), count * sizeof(float), cudaHostRegisterDefault),
             "cudaHostRegister")) {
    collectivesMove("cudaHostRegister", rsend.data(), rrecv.data(), count, comm);
    cudaHostUnregister(rsend.data());
    cudaHostUnregister(rrecv.data());
  }
  float* msend = nullptr;
  float* mrecv = nullptr;
  if (cudaOk(cudaHostAlloc(voidp(&msend), count * sizeof(float), cudaHostAllocMapped),
             "cudaHostAlloc") &&
      cudaOk(cudaHostAlloc(voidp(&mrecv), count * sizeof(float), cudaHostAllocMapped),
             "cudaHostAlloc")) {
    collectivesMove("cudaHostAlloc(mapped)", msend, mrecv, count, comm);
    cudaFreeHost(msend);
    cudaFreeHost(mrecv);
  }

  // 5. Managed memory: refused (weft cannot order its CPU reads after the application's kernels).
  float* usend = nullptr;
  float* urecv = nullptr;
  if (cudaOk(cudaMallocManaged(voidp(&usend), count * sizeof(float)), "cudaMallocManaged") &&
      cudaOk(cudaMallocManaged(voidp(&urecv), count * sizeof(float)), "cudaMallocManaged")) {
    deviceRefused("cudaMallocManaged", "cuda managed", usend, urecv, hsend.data(), count, comm);
    cudaFree(usend);
    cudaFree(urecv);
  }

  // 6. Still a working communicator, no CUDA error left, and what detection costs now.
  collectivesMove("host (after CUDA)", hsend.data(), hrecv.data(), count, comm);
  if (gNranks == 1)
    info("8-byte host all-reduce with the driver loaded: " + std::to_string(timeAllReduce()) +
         " ns");
  const cudaError_t last = cudaGetLastError();
  report(last == cudaSuccess,
         std::string("cudaGetLastError at the end: ") + cudaGetErrorName(last));
  cudaFree(dsend);
  cudaFree(drecv);
  r = weftCommDestroy(comm);
  report(r == weftSuccess, "weftCommDestroy");
  info("total " + std::to_string(msSince(start)) + " ms");
  std::printf("[rank %d] %s: %d failure(s)\n", gRank, gFailures == 0 ? "PASS" : "FAIL", gFailures);
  return gFailures == 0 ? 0 : 1;
}

}  // namespace

int main() {
  return run();
}
