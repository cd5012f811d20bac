#include "core/status.h"

#include <cstdio>
#include <cstring>

namespace weft {

const std::string& Status::empty() {
  static const std::string kEmpty;
  return kEmpty;
}

std::string vstrprintf(const char* fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  char small[256];
  int n = std::vsnprintf(small, sizeof small, fmt, copy);
  va_end(copy);
  if (n < 0) return fmt;
  if (static_cast<size_t>(n) < sizeof small) return std::string(small, static_cast<size_t>(n));
  std::string out(static_cast<size_t>(n), '\0');
  std::vsnprintf(out.data(), out.size() + 1, fmt, ap);
  return out;
}

std::string strprintf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vstrprintf(fmt, ap);
  va_end(ap);
  return s;
}

Status errorStatus(weftResult_t code, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vstrprintf(fmt, ap);
  va_end(ap);
  return Status(code, std::move(s));
}

Status sysError(int err, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string s = vstrprintf(fmt, ap);
  va_end(ap);
  char buf[128];
  const char* text = strerror_r(err, buf, sizeof buf);
  return Status(weftSystemError, strprintf("%s: %s (errno %d)", s.c_str(), text, err));
}

}  // namespace weft
