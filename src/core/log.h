// Logging: levels and subsystems as NCCL's (WEFT_DEBUG=WARN|INFO|TRACE,
// WEFT_DEBUG_SUBSYS=INIT,COLL,..., ^ to exclude), written to stderr or WEFT_DEBUG_FILE (%h host, %p
// pid). Every line carries host, pid and the rank that the calling thread is working for. TRACE is
// compiled out of release builds.
#pragma once

#include <cstdint>

namespace weft::log {

enum Level : int { kNone = 0, kVersion = 1, kWarn = 2, kInfo = 3, kTrace = 4 };

enum Subsys : uint32_t {
  kInit = 1u << 0,
  kColl = 1u << 1,
  kP2P = 1u << 2,
  kShm = 1u << 3,
  kBootstrap = 1u << 4,
  kEnv = 1u << 5,
  kAlloc = 1u << 6,
  kTuning = 1u << 7,
  kNet = 1u << 8,
  kGraph = 1u << 9,
  kAll = ~0u,
};

// True when a message of this level and subsystem would be written.
bool enabled(Level level, Subsys subsys);
void write(Level level, Subsys subsys, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 5, 6)));

// The rank printed on this thread's lines (-1 = none). The API sets it on entry.
void setThreadRank(int rank);
int threadRank();

// Re-reads WEFT_DEBUG, WEFT_DEBUG_SUBSYS and WEFT_DEBUG_FILE (after config::reload()).
void reconfigure();

// Parses a WEFT_DEBUG_SUBSYS value into a mask; false (and the bad word in *bad) on an unknown
// name.
bool parseSubsys(const char* text, uint32_t* mask, const char** badBegin, int* badLen);

}  // namespace weft::log

#define WEFT_LOG(level, subsys, ...)                                      \
  do {                                                                    \
    if (::weft::log::enabled(level, subsys))                              \
      ::weft::log::write(level, subsys, __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define WEFT_WARN(subsys, ...) WEFT_LOG(::weft::log::kWarn, ::weft::log::subsys, __VA_ARGS__)
#define WEFT_INFO(subsys, ...) WEFT_LOG(::weft::log::kInfo, ::weft::log::subsys, __VA_ARGS__)
#if defined(WEFT_ENABLE_TRACE)
#define WEFT_TRACE(subsys, ...) WEFT_LOG(::weft::log::kTrace, ::weft::log::subsys, __VA_ARGS__)
#else
#define WEFT_TRACE(subsys, ...) \
  do {                          \
  } while (0)
#endif
