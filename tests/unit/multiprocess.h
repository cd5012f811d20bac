// Helpers for tests that run ranks as processes: weftrun launching the test worker, the command's
// status and output, and a private directory for shared-memory segments, so that a check that
// nothing was left behind neither sees nor disturbs the other multi-process tests ctest -j runs
// beside it.
#pragma once

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace weft::test {

// A segment directory on /dev/shm of its own, removed at the end; leftovers() lists its files.
class ShmDir {
 public:
  ShmDir() {
    char tmpl[] = "/dev/shm/weft-test-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~ShmDir() {
    for (const std::string& f : leftovers())
      unlink((path_ + "/" + f).c_str());
    if (!path_.empty()) rmdir(path_.c_str());
  }
  ShmDir(const ShmDir&) = delete;
  ShmDir& operator=(const ShmDir&) = delete;
  const std::string& path() const { return path_; }
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') out.push_back(e->d_name);
      closedir(d);
    }
    return out;
  }

 private:
  std::string path_;
};

struct RunResult {
  int status = -1;
  std::string output;
  double seconds = 0;
};

inline RunResult run(const std::string& cmd) {
  RunResult r;
  const auto start = std::chrono::steady_clock::now();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// weftrun -n N <extra> weft_test_worker (the mode and its arguments follow).
inline std::string launcher(int n, const std::string& extra = "") {
  return std::string(WEFT_BINARY_DIR) + "/tools/weftrun -n " + std::to_string(n) + " " + extra +
         " " + WEFT_BINARY_DIR + "/tests/integration/weft_test_worker";
}

}  // namespace weft::test
