#include "transports/net/plugin_loader.h"

#include <dlfcn.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

namespace weft {
namespace {

// The directory of the object this code was linked into (libweft.so, or a test executable).
std::string selfDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&selfDir), &info) == 0 || info.dli_fname == nullptr) return "";
  std::string p = info.dli_fname;
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

std::vector<std::string> candidates(const std::string& nameOrPath) {
  if (nameOrPath.find('/') != std::string::npos) return {nameOrPath};
  const std::string file = "libweft-transport-" + nameOrPath + ".so";
  std::vector<std::string> out;
  auto add = [&](const std::string& dir) {
    if (dir.empty()) return;
    std::string p = dir + "/" + file;
    for (const std::string& q : out)
      if (q == p) return;
    out.push_back(p);
  };
  add(selfDir());
#ifdef WEFT_PLUGIN_INSTALL_DIR
  add(WEFT_PLUGIN_INSTALL_DIR);
#endif
#ifdef WEFT_PLUGIN_BUILD_DIR
  add(WEFT_PLUGIN_BUILD_DIR);
#endif
  out.push_back(file);  // the dynamic loader's search path
  return out;
}

}  // namespace

Status validatePlugin(const weft_transport_v1_t* ops, const std::string& path) {
  if (ops->abi_version != WEFT_TRANSPORT_ABI_VERSION)
    return errorStatus(weftInvalidUsage,
                       "transport plugin %s implements plugin ABI version %u, but this weft "
                       "supports version %d",
                       path.c_str(), ops->abi_version, WEFT_TRANSPORT_ABI_VERSION);
  // Every required entry lies before the optional RMA block.
  const size_t required = offsetof(weft_transport_v1_t, pack_rkey);
  if (ops->struct_size < required)
    return errorStatus(weftInvalidUsage,
                       "transport plugin %s declares a %u-byte entry table, smaller than the %zu "
                       "bytes of ABI version %d's required functions",
                       path.c_str(), ops->struct_size, required, WEFT_TRANSPORT_ABI_VERSION);
  if (ops->name == nullptr || ops->init == nullptr || ops->finalize == nullptr ||
      ops->last_error == nullptr || ops->get_caps == nullptr || ops->get_address == nullptr ||
      ops->connect == nullptr || ops->reg_mem == nullptr || ops->dereg_mem == nullptr ||
      ops->isend == nullptr || ops->irecv == nullptr || ops->test == nullptr ||
      ops->progress == nullptr)
    return errorStatus(weftInvalidUsage,
                       "transport plugin %s leaves a required function (or its name) NULL",
                       path.c_str());
  return Status::Ok();
}

Result<LoadedPlugin> loadTransportPlugin(const std::string& nameOrPath) {
  static std::mutex mu;
  static std::map<std::string, LoadedPlugin> loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = loaded.find(nameOrPath); it != loaded.end()) return it->second;

  std::string tried;
  for (const std::string& path : candidates(nameOrPath)) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      tried += strprintf("\n  %s: %s", path.c_str(), why != nullptr ? why : "dlopen failed");
      continue;
    }
    dlerror();
    void* sym = dlsym(handle, WEFT_TRANSPORT_SYMBOL);
    if (sym == nullptr) {
      dlclose(handle);
      return errorStatus(weftInvalidUsage,
                         "%s has no symbol %s: it is not a weft transport plugin (a plugin exports "
                         "one weft_transport_v1_t named so; see docs/transports.md)",
                         path.c_str(), WEFT_TRANSPORT_SYMBOL);
    }
    LoadedPlugin p;
    p.ops = static_cast<const weft_transport_v1_t*>(sym);
    p.path = path;
    Status ok = validatePlugin(p.ops, path);
    if (!ok.ok()) {
      dlclose(handle);
      return ok;
    }
    loaded[nameOrPath] = p;
    return p;
  }
  if (nameOrPath.find('/') != std::string::npos)  // one candidate: dlerror names the file
    return errorStatus(weftSystemError, "cannot load transport plugin \"%s\": %s",
                       nameOrPath.c_str(), tried.substr(tried.find(": ") + 2).c_str());
  return errorStatus(weftSystemError, "cannot load transport plugin \"%s\"; tried:%s",
                     nameOrPath.c_str(), tried.c_str());
}

}  // namespace weft
