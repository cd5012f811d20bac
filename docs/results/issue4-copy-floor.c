// The floor of an all-gather or all-to-all on ordinary buffers: N processes (rank r on CPU
// r % CPUs), each copying its own block into its output with memcpy and every peer's block
// straight from the peer's private memory with one process_vm_readv per peer, a barrier per
// iteration. That is what an MPI library with CMA single copy does at its best, and what weft's
// one-sided algorithms do, with nothing else: no library can make fewer copies of private memory.
// busbw as nccl-tests counts it (SIZE = the output bytes per rank; x (N-1)/N).
//
// Build and run (docs/performance.md quotes it):
//   gcc -O2 -o floor docs/results/issue4-copy-floor.c
//   ./floor ag|a2a RANKS SIZE [CHUNK]    CHUNK: read each peer in calls of CHUNK bytes
// With more ranks than CPUs a waiting rank yields its CPU, as weft and Open MPI do then.
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { kMaxRanks = 64 };

struct Shared {
  _Atomic long arrived;
  pid_t pid[kMaxRanks];
  char* in[kMaxRanks];
};

static double nowUs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

// Generation-counted barrier; spins where every rank has a CPU, yields otherwise.
static void barrier(struct Shared* sh, int nranks, long* gen, int yield) {
  const long target = ++*gen * nranks;
  atomic_fetch_add(&sh->arrived, 1);
  while (atomic_load(&sh->arrived) < target)
    if (yield) sched_yield();
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s ag|a2a RANKS SIZE [CHUNK]\n", argv[0]);
    return 2;
  }
  const int a2a = strcmp(argv[1], "a2a") == 0;
  const int nranks = atoi(argv[2]);
  const size_t size = (size_t)atol(argv[3]);
  const size_t chunk = argc > 4 ? (size_t)atol(argv[4]) : 0;
  if (nranks < 2 || nranks > kMaxRanks || size % (size_t)nranks != 0) {
    fprintf(stderr, "RANKS must be 2..%d and divide SIZE\n", kMaxRanks);
    return 2;
  }
  alarm(600);  // a rank that failed leaves the others in the barrier: end them all
  const size_t block = size / (size_t)nranks;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  const int yield = nranks > cpus;
  struct Shared* sh =
      mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int rank = 0;
  for (int r = 1; r < nranks; ++r)
    if (fork() == 0) {
      rank = r;
      break;
    }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(rank % cpus, &set);
  sched_setaffinity(0, sizeof set, &set);
  const size_t inBytes = a2a ? size : block;
  char* in = aligned_alloc(4096, inBytes);
  char* out = aligned_alloc(4096, size);
  memset(in, rank + 1, inBytes);
  memset(out, 0, size);
  sh->pid[rank] = getpid();
  sh->in[rank] = in;
  long gen = 0;
  barrier(sh, nranks, &gen, yield);
  const int iters = size > (4u << 20) ? 20 : 200;
  double best = 1e300;
  for (int rep = 0; rep < 7; ++rep) {
    barrier(sh, nranks, &gen, yield);
    const double t0 = nowUs();
    for (int i = 0; i < iters; ++i) {
      memcpy(out + (size_t)rank * block, in + (a2a ? (size_t)rank * block : 0), block);
      for (int k = 1; k < nranks; ++k) {
        const int q = (rank + k) % nranks;
        char* from = sh->in[q] + (a2a ? (size_t)rank * block : 0);
        const size_t step = chunk != 0 ? chunk : block;
        for (size_t off = 0; off < block; off += step) {
          const size_t n = block - off < step ? block - off : step;
          struct iovec local = {out + (size_t)q * block + off, n};
          struct iovec remote = {from + off, n};
          if (process_vm_readv(sh->pid[q], &local, 1, &remote, 1, 0) != (ssize_t)n) {
            perror("process_vm_readv");
            return 1;
          }
        }
      }
      barrier(sh, nranks, &gen, yield);
    }
    const double t = (nowUs() - t0) / iters;
    if (t < best) best = t;
  }
  if (rank == 0) {
    const double busbw = (double)size / best / 1e3 * (nranks - 1) / nranks;
    printf("%s ranks=%d size=%zu chunk=%zu: %.1f us, busbw %.2f GB/s\n", a2a ? "a2a" : "ag", nranks,
           size, chunk, best, busbw);
    for (int r = 1; r < nranks; ++r)
      wait(NULL);
  }
  return 0;
}
