/* A stand-in for the CUDA driver for test_memory_kind.cc: built as libcuda.so.1 (file name and
 * soname) in a directory no loader searches, loaded by its full path. cuPointerGetAttribute(s)
 * claim three ranges of its own and nothing else: "device" memory, reserved with no access so that
 * reading it on the CPU faults as a real device pointer does; managed memory (readable, as real
 * managed memory is); and pinned host memory. Every other pointer is unknown to it, as host memory
 * is to the real driver. Values as in cuda.h. */
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#define FAKE_API __attribute__((visibility("default")))

enum { kRangeBytes = 1 << 16 };
enum { kSuccess = 0, kErrorInvalidValue = 1 };
enum { kAttrMemoryType = 2, kAttrIsManaged = 8 };
enum { kMemoryTypeHost = 1, kMemoryTypeDevice = 2 };

static char* gDevice;
static char gManaged[kRangeBytes] __attribute__((aligned(64)));
static char gPinned[kRangeBytes] __attribute__((aligned(64)));
static unsigned long long gQueries;
static int gFailWith;

/* Set by the constructor on the thread that loads the fake, read by every thread that queries it.
 * The loader orders the two (dlopen, NOLOAD too, waits for constructors under its lock), but
 * ThreadSanitizer does not see that lock: the release store and acquire loads say it to it. */
__attribute__((constructor)) static void reserveDeviceRange(void) {
  void* p = mmap(NULL, kRangeBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  __atomic_store_n(&gDevice, p == MAP_FAILED ? NULL : (char*)p, __ATOMIC_RELEASE);
}

static char* deviceRange(void) {
  return __atomic_load_n(&gDevice, __ATOMIC_ACQUIRE);
}

static int within(unsigned long long ptr, const char* base) {
  const uintptr_t b = (uintptr_t)base;
  return base != NULL && ptr >= b && ptr < b + kRangeBytes;
}

/* 0: unknown to CUDA. */
static unsigned memoryType(unsigned long long ptr) {
  if (within(ptr, deviceRange()) || within(ptr, gManaged)) return kMemoryTypeDevice;
  if (within(ptr, gPinned)) return kMemoryTypeHost;
  return 0;
}

/* Writes one attribute; 0 when the attribute is not one the fake knows. */
static int fill(int attribute, void* data, unsigned long long ptr) {
  switch (attribute) {
    case kAttrMemoryType:
      *(unsigned*)data = memoryType(ptr);
      return 1;
    case kAttrIsManaged:
      *(unsigned char*)data = within(ptr, gManaged) ? 1 : 0; /* a one-byte boolean */
      return 1;
    default:
      return 0;
  }
}

FAKE_API int cuPointerGetAttributes(unsigned numAttributes, int* attributes, void** data,
                                    unsigned long long ptr) {
  __atomic_fetch_add(&gQueries, 1, __ATOMIC_RELAXED);
  const int fail = __atomic_load_n(&gFailWith, __ATOMIC_RELAXED);
  if (fail != 0) return fail;
  for (unsigned i = 0; i < numAttributes; ++i)
    if (!fill(attributes[i], data[i], ptr)) return kErrorInvalidValue;
  return kSuccess;
}

FAKE_API int cuPointerGetAttribute(void* data, int attribute, unsigned long long ptr) {
  __atomic_fetch_add(&gQueries, 1, __ATOMIC_RELAXED);
  const int fail = __atomic_load_n(&gFailWith, __ATOMIC_RELAXED);
  if (fail != 0) return fail;
  if (memoryType(ptr) == 0) return kErrorInvalidValue; /* as the real one, for unknown pointers */
  return fill(attribute, data, ptr) ? kSuccess : kErrorInvalidValue;
}

/* For the test: the three ranges, each kRangeBytes long. */
FAKE_API void fakeCudaRanges(void** device, void** managed, void** pinned, size_t* bytes) {
  *device = deviceRange();
  *managed = gManaged;
  *pinned = gPinned;
  *bytes = kRangeBytes;
}
FAKE_API unsigned long long fakeCudaQueries(void) {
  return __atomic_load_n(&gQueries, __ATOMIC_RELAXED);
}
/* Every query fails with `result` from now on (0: answer again). */
FAKE_API void fakeCudaFailWith(int result) {
  __atomic_store_n(&gFailWith, result, __ATOMIC_RELAXED);
}
