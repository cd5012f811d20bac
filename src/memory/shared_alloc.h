// Host memory that peers on the same host can map: what weftMemAlloc returns (as ncclMemAlloc
// returns memory that NVLink peers can map). Each allocation is its own memfd segment, mapped
// shared and populated up front; a peer maps it through /proc/<pid>/fd/<fd> when a one-sided step
// first touches it, and then loads and stores straight into it: no copy through the kernel. Memory
// from anywhere else still works with one-sided steps, one copy at a time (process_vm_readv).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace weft {

struct SharedSegment {
  uint64_t id = 0;  // unique per allocation in this process's lifetime, never 0
  char* base = nullptr;
  uint64_t bytes = 0;
  int fd = -1;
};

Result<void*> allocShared(size_t bytes);
// An error naming the pointer if it did not come from allocShared (or was freed already).
Status freeShared(void* ptr);
// The segment holding [ptr, ptr+bytes), if that range lies in one.
bool findShared(const void* ptr, uint64_t bytes, SharedSegment* out);

}  // namespace weft
