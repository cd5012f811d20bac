// Micro-benchmarks of the reduction kernels beside memcpy: GB/s for every type x {sum, max} and
// every instruction set this CPU runs, at 256 KiB per buffer (in cache) and 64 MiB (memory).
//
// Bytes moved: reduce 3 x n x size (two reads, one write), divide and copies 2 x bytes (one read,
// one write). The "GB/s" counter is 10^9 bytes per second; bytes_per_second is Google Benchmark's
// (2^30). Buffers are allocated and written once, before any timing. The whole run takes well under
// a minute:
//   weft_bench_kernels [--benchmark_filter=half]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/dtype.h"
#include "core/reduce.h"

namespace weft {
namespace {

constexpr size_t kSmallBytes = size_t{256} << 10;
constexpr size_t kLargeBytes = size_t{64} << 20;
constexpr double kMinTime = 0.05;

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

void registerAll() {
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
