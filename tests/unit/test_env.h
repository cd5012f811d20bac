// Test helpers for the environment: a variable set (or unset) for one test, and where the build
// puts the transport plugins.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

#include "core/config.h"

namespace weft::test {

// Sets a variable (or unsets it, for nullopt) for one test and restores it, and weft's settings,
// afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name.c_str())) old_ = old;
    if (value)
      setenv(name.c_str(), value->c_str(), 1);
    else
      unsetenv(name.c_str());
    (void)config::reload();
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
    (void)config::reload();
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// libweft-transport-<name>.so as this build made it.
inline std::string builtPluginPath(const std::string& name) {
  return std::string(WEFT_BINARY_DIR) + "/libweft-transport-" + name + ".so";
}

}  // namespace weft::test
