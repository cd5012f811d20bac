#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include <sys/syscall.h>

#include "core/config.h"

namespace weft::log {
namespace {

struct SubsysName {
  const char* name;
  uint32_t bit;
};
const SubsysName kSubsys[] = {
    {"INIT", kInit},
    {"COLL", kColl},
    {"P2P", kP2P},
    {"SHM", kShm},
    {"BOOTSTRAP", kBootstrap},
    {"ENV", kEnv},
    {"ALLOC", kAlloc},
    {"TUNING", kTuning},
    {"NET", kNet},
    {"GRAPH", kGraph},
    {"ALL", kAll},
};

std::atomic<int> gLevel{-1};  // -1: not yet configured
std::atomic<uint32_t> gMask{0};
std::mutex gMu;
FILE* gFile = nullptr;  // nullptr = stderr
char gHost[64] = "?";
__attribute__((tls_model("initial-exec"))) thread_local int tRank = -1;

const char* levelName(Level l) {
  switch (l) {
    case kWarn:
      return "WARN";
    case kInfo:
      return "INFO";
    case kTrace:
      return "TRACE";
    case kVersion:
      return "VERSION";
    default:
      return "";
  }
}

std::string expandPath(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size()) {
      char c = pattern[++i];
      if (c == 'h')
        out += gHost;
      else if (c == 'p')
        out += std::to_string(getpid());
      else if (c == '%')
        out += '%';
      else {
        out += '%';
        out += c;
      }
    } else {
      out += pattern[i];
    }
  }
  return out;
}

void configureLocked() {
  gethostname(gHost, sizeof gHost - 1);
  std::string level = config::stringValue("WEFT_DEBUG");
  int l = kWarn;
  if (level == "NONE")
    l = kNone;
  else if (level == "VERSION")
    l = kVersion;
  else if (level == "INFO")
    l = kInfo;
  else if (level == "TRACE")
    l = kTrace;
  uint32_t mask = 0;
  const char* bad = nullptr;
  int badLen = 0;
  if (!parseSubsys(config::stringValue("WEFT_DEBUG_SUBSYS").c_str(), &mask, &bad, &badLen))
    mask = kInit | kBootstrap | kEnv | kShm;
  if (gFile != nullptr) {
    std::fclose(gFile);
    gFile = nullptr;
  }
  std::string path = config::stringValue("WEFT_DEBUG_FILE");
  if (!path.empty()) {
    std::string p = expandPath(path);
    gFile = std::fopen(p.c_str(), "a");
    if (gFile == nullptr)
      std::fprintf(stderr, "weft: cannot open WEFT_DEBUG_FILE=%s (%s); logging to stderr\n",
                   p.c_str(), std::strerror(errno));
  }
  gMask.store(mask, std::memory_order_relaxed);
  gLevel.store(l, std::memory_order_release);
}

}  // namespace

bool parseSubsys(const char* text, uint32_t* mask, const char** badBegin, int* badLen) {
  bool invert = false;
  if (*text == '^') {
    invert = true;
    ++text;
  }
  uint32_t m = 0;
  const char* p = text;
  while (*p != '\0') {
    const char* end = std::strchr(p, ',');
    size_t len = end != nullptr ? static_cast<size_t>(end - p) : std::strlen(p);
    if (len > 0) {
      bool found = false;
      for (const SubsysName& s : kSubsys) {
        if (std::strlen(s.name) == len && strncasecmp(s.name, p, len) == 0) {
          m |= s.bit;
          found = true;
        }
      }
      if (!found) {
        *badBegin = p;
        *badLen = static_cast<int>(len);
        return false;
      }
    }
    p += len;
    if (*p == ',') ++p;
  }
  *mask = invert ? ~m : m;
  return true;
}

bool enabled(Level level, Subsys subsys) {
  int l = gLevel.load(std::memory_order_acquire);
  if (l < 0) {
    std::lock_guard<std::mutex> lock(gMu);
    if (gLevel.load(std::memory_order_relaxed) < 0) configureLocked();
    l = gLevel.load(std::memory_order_relaxed);
  }
  if (level == kVersion) return l == kVersion || l >= kInfo;
  if (level > l) return false;
  if (level <= kWarn) return true;
  return (gMask.load(std::memory_order_relaxed) & subsys) != 0;
}

void write(Level level, Subsys /*subsys*/, const char* file, int line, const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char rank[24] = "";
  if (tRank >= 0) std::snprintf(rank, sizeof rank, " [%d]", tRank);
  const char* base = std::strrchr(file, '/');
  base = base != nullptr ? base + 1 : file;
  std::lock_guard<std::mutex> lock(gMu);
  FILE* out = gFile != nullptr ? gFile : stderr;
  if (level == kTrace)
    std::fprintf(out, "%s:%d:%ld%s WEFT %s %s:%d %s\n", gHost, getpid(),
                 static_cast<long>(syscall(SYS_gettid)), rank, levelName(level), base, line, msg);
  else
    std::fprintf(out, "%s:%d:%ld%s WEFT %s %s\n", gHost, getpid(),
                 static_cast<long>(syscall(SYS_gettid)), rank, levelName(level), msg);
  std::fflush(out);
}

void setThreadRank(int rank) {
  tRank = rank;
}
int threadRank() {
  return tRank;
}

void reconfigure() {
  std::lock_guard<std::mutex> lock(gMu);
  configureLocked();
}

}  // namespace weft::log
