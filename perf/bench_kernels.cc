// Micro-benchmarks of the reduction kernels beside memcpy: GB/s for every type x {sum, max} and
// every instruction set this CPU runs, at 256 KiB per buffer (in cache) and 64 MiB (memory). Also
// copies at 2 MiB (the last-level cache), and process_vm_readv from another process at 2 and
// 64 MiB, in one call and in weft's 128 KiB chunks: the kernel's single copy that Open MPI's vader
// makes for large messages, to set against the two user copies of a copy through a slot.
//
// Bytes moved: reduce 3 x n x size (two reads, one write), divide and copies 2 x bytes (one read,
// one write). The "GB/s" counter is 10^9 bytes per second; bytes_per_second is Google Benchmark's
// (2^30). Buffers are allocated and written once, before any timing. The whole run takes well under
// a minute:
//   weft_bench_kernels [--benchmark_filter=half]
#include <benchmark/benchmark.h>

#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/dtype.h"
#include "core/reduce.h"

namespace weft {
namespace {

constexpr size_t kSmallBytes = size_t{256} << 10;
constexpr size_t kMidBytes = size_t{2} << 20;
constexpr size_t kChunkBytes = size_t{128} << 10;  // WEFT_CHUNK_SIZE's default
constexpr size_t kLargeBytes = size_t{64} << 20;
constexpr double kMinTime = 0.05;
// process_vm_readv varies more from call to call (page pinning): a few more 64 MiB iterations.
constexpr double kSyscallMinTime = 0.3;

// Three page-aligned buffers of the largest size, pre-faulted. 0x3c in every byte is a normal,
// moderate value in every floating type (1.5 in f8e4m3, 1.0 in f8e5m2, about 1.06 in half), so no
// kernel meets subnormals, which would slow the float units down and measure something else.
struct Buffers {
  uint8_t* a;
  uint8_t* b;
  uint8_t* dst;
};

Buffers& buffers() {
  static Buffers bufs = [] {
    Buffers b{};
    for (uint8_t** p : {&b.a, &b.b, &b.dst}) {
      *p = static_cast<uint8_t*>(std::aligned_alloc(4096, kLargeBytes));
      if (*p == nullptr) std::abort();
      std::memset(*p, 0x3c, kLargeBytes);
    }
    return b;
  }();
  return bufs;
}

std::string sizeName(size_t bytes) {
  return bytes >= (size_t{1} << 20) ? std::to_string(bytes >> 20) + "MiB"
                                    : std::to_string(bytes >> 10) + "KiB";
}

void setRate(benchmark::State& state, size_t bytesPerIteration) {
  const double total =
      static_cast<double>(state.iterations()) * static_cast<double>(bytesPerIteration);
  state.SetBytesProcessed(static_cast<int64_t>(total));
  state.counters["GB/s"] = benchmark::Counter(total / 1e9, benchmark::Counter::kIsRate);
}

void benchReduce(benchmark::State& state, ReduceFn fn, size_t elemSize, size_t bytes) {
  Buffers& bufs = buffers();
  const size_t n = bytes / elemSize;
  for (auto _ : state) {
    fn(bufs.dst, bufs.a, bufs.b, n);
    benchmark::ClobberMemory();
  }
  setRate(state, 3 * n * elemSize);
}

void benchDivide(benchmark::State& state, weftDataType_t dt, size_t bytes) {
  Buffers& bufs = buffers();
  const size_t n = bytes / dtypeSize(dt);
  for (auto _ : state) {
    divide(bufs.dst, bufs.a, n, dt, 8);
    benchmark::ClobberMemory();
  }
  setRate(state, 2 * n * dtypeSize(dt));
}

void benchMemcpy(benchmark::State& state, size_t bytes) {
  Buffers& bufs = buffers();
  for (auto _ : state) {
    std::memcpy(bufs.dst, bufs.a, bytes);
    benchmark::ClobberMemory();
  }
  setRate(state, 2 * bytes);
}

void benchCopyBytes(benchmark::State& state, size_t bytes) {
  Buffers& bufs = buffers();
  for (auto _ : state) {
    copyBytes(bufs.dst, bufs.a, bytes);
    benchmark::ClobberMemory();
  }
  setRate(state, 2 * bytes);
}

// A child process holding its own pre-faulted buffer of kLargeBytes for process_vm_readv to read;
// it waits on a pipe and is ended at exit. pid is -1 where fork failed.
struct Peer {
  pid_t pid = -1;
  uint8_t* buf = nullptr;
};

Peer& peer() {
  static Peer p = [] {
    Peer q;
    q.buf = static_cast<uint8_t*>(std::aligned_alloc(4096, kLargeBytes));
    if (q.buf == nullptr) std::abort();
    int ready[2], hold[2];
    if (pipe(ready) != 0 || pipe(hold) != 0) return q;
    q.pid = fork();
    if (q.pid == 0) {
      std::memset(q.buf, 0x3c, kLargeBytes);  // the child's own pages, not the parent's
      char c = 1;
      if (write(ready[1], &c, 1) != 1) _exit(1);
      while (read(hold[0], &c, 1) < 0) {
      }
      _exit(0);
    }
    char c;
    if (q.pid < 0 || read(ready[0], &c, 1) != 1) q.pid = -1;
    std::atexit([] {
      if (peer().pid > 0) {
        kill(peer().pid, SIGKILL);
        waitpid(peer().pid, nullptr, 0);
      }
    });
    return q;
  }();
  return p;
}

void benchProcessVmReadv(benchmark::State& state, size_t bytes, size_t piece) {
  Buffers& bufs = buffers();
  Peer& from = peer();
  if (from.pid < 0) {
    state.SkipWithError("fork failed");
    return;
  }
  for (auto _ : state) {
    for (size_t off = 0; off < bytes; off += piece) {
      iovec local{bufs.dst + off, piece}, remote{from.buf + off, piece};
      if (process_vm_readv(from.pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(piece)) {
        state.SkipWithError("process_vm_readv refused (ptrace scope?)");
        return;
      }
    }
    benchmark::ClobberMemory();
  }
  setRate(state, 2 * bytes);
}

void registerAll() {
  benchmark::RegisterBenchmark(("memcpy/" + sizeName(kMidBytes)).c_str(), benchMemcpy, kMidBytes)
      ->MinTime(kMinTime);
  for (size_t bytes : {kMidBytes, kLargeBytes}) {
    for (size_t piece : {kChunkBytes, bytes}) {
      const std::string name = "processVmReadv/" + sizeName(bytes) + "/in_" + sizeName(piece);
      benchmark::RegisterBenchmark(name.c_str(), benchProcessVmReadv, bytes, piece)
          ->MinTime(kSyscallMinTime);
    }
  }
  for (size_t bytes : {kSmallBytes, kLargeBytes}) {
    const std::string size = sizeName(bytes);
    benchmark::RegisterBenchmark(("memcpy/" + size).c_str(), benchMemcpy, bytes)->MinTime(kMinTime);
    benchmark::RegisterBenchmark(("copyBytes/" + size).c_str(), benchCopyBytes, bytes)
        ->MinTime(kMinTime);
    for (KernelIsa isa : {KernelIsa::kAvx2, KernelIsa::kGeneric}) {
      if (!kernelIsaSupported(isa)) continue;
      for (int t = 0; t < weftNumTypes; ++t) {
        const auto dt = static_cast<weftDataType_t>(t);
        for (weftRedOp_t op : {weftSum, weftMax}) {
          const std::string name = std::string("reduce/") + kernelIsaName(isa) + "/" +
                                   dtypeName(dt) + "/" + opName(op) + "/" + size;
          benchmark::RegisterBenchmark(name.c_str(), benchReduce, reduceFnFor(isa, dt, op),
                                       dtypeSize(dt), bytes)
              ->MinTime(kMinTime);
        }
      }
    }
    for (weftDataType_t dt : {weftFloat32, weftFloat16, weftBfloat16, weftInt32}) {
      benchmark::RegisterBenchmark(("divide/" + std::string(dtypeName(dt)) + "/" + size).c_str(),
                                   benchDivide, dt, bytes)
          ->MinTime(kMinTime);
    }
  }
}

}  // namespace
}  // namespace weft

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("weft_kernel_isa", weft::kernelIsaName(weft::activeKernelIsa()));
  weft::buffers();  // allocate and pre-fault before any timing
  weft::registerAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
