// Status and Result<T>: the one error model inside weft.
//
// Every fallible internal function returns Status (or Result<T> when it also yields a value). A
// Status carries a weftResult_t code and a message that says what failed, where, and what to do;
// the C API turns it into the return code and weftGetLastError's text. No exception crosses the C
// ABI or a thread boundary.
#pragma once

#include <cstdarg>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "weft/weft.h"

namespace weft {

// printf-style formatting into a std::string (g++ 12 has no <format>).
std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vstrprintf(const char* fmt, va_list ap);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(weftResult_t code, std::string message)
      : code_(code), rep_(std::make_unique<Rep>(Rep{std::move(message), {}})) {}
  Status(const Status& o)
      : code_(o.code_), rep_(o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr) {}
  Status& operator=(const Status& o) {
    if (this != &o) {
      code_ = o.code_;
      rep_ = o.rep_ ? std::make_unique<Rep>(*o.rep_) : nullptr;
    }
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == weftSuccess; }
  weftResult_t code() const { return code_; }
  const std::string& message() const { return rep_ ? rep_->message : empty(); }

  // The original failure when this error only relays one (a peer that died, seen through another
  // rank): what a rank publishes to its peers, so that failures do not nest as they spread. Empty:
  // the message is itself the root cause.
  const std::string& cause() const {
    return rep_ && !rep_->cause.empty() ? rep_->cause : message();
  }
  Status withCause(std::string cause) const {
    Status s(code_, message());
    s.rep_->cause = std::move(cause);
    return s;
  }

  // Prepends context: "while X: <message>".
  Status withContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message()).withCause(rep_ ? rep_->cause : std::string());
  }

 private:
  // The text lives behind one pointer, so that an ok Status (every call's common case) costs a
  // word to build, move and destroy.
  struct Rep {
    std::string message;
    std::string cause;
  };
  static const std::string& empty();
  weftResult_t code_ = weftSuccess;
  std::unique_ptr<Rep> rep_;
};

// Builds an error Status with a formatted message.
Status errorStatus(weftResult_t code, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// An error Status for a failed system call: "<what>: <strerror(err)> (errno <err>)".
Status sysError(int err, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  T& operator*() & { return std::get<T>(v_); }
  const T& operator*() const& { return std::get<T>(v_); }
  T&& operator*() && { return std::get<T>(std::move(v_)); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace weft

// Returns early from the enclosing function with the error, if expr yields one.
#define WEFT_TRY(expr)                                   \
  do {                                                   \
    ::weft::Status weft_try_status_ = (expr);            \
    if (!weft_try_status_.ok()) return weft_try_status_; \
  } while (0)

// Declares `decl` from a Result-returning expression, returning early with its error.
#define WEFT_CONCAT_INNER(a, b) a##b
#define WEFT_CONCAT(a, b) WEFT_CONCAT_INNER(a, b)
#define WEFT_ASSIGN_OR_RETURN(decl, expr)                \
  auto WEFT_CONCAT(weft_result_, __LINE__) = (expr);     \
  if (!WEFT_CONCAT(weft_result_, __LINE__).ok())         \
    return WEFT_CONCAT(weft_result_, __LINE__).status(); \
  decl = std::move(WEFT_CONCAT(weft_result_, __LINE__)).value()
