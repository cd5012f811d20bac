// Loads network transport plugins (include/weft/transport.h) by name or path.
//
// A name ("ucx") means libweft-transport-<name>.so, looked for beside the library that holds weft
// (found with dladdr, so an installed weft finds its installed plugins), then in weft's install and
// build directories, then through the dynamic loader's own search (LD_LIBRARY_PATH). A name with a
// '/' is a path. The plugin's entry symbol must exist, declare ABI version 1 and be large enough
// to hold every required function; anything else is an error that says what was tried and why it
// failed.
//
// Plugins are loaded once per process and never unloaded: communicators come and go, and the
// libraries behind plugins (UCX, libfabric) do not all survive being unloaded.
#pragma once

#include <string>

#include "core/status.h"
#include "weft/transport.h"

namespace weft {

struct LoadedPlugin {
  const weft_transport_v1_t* ops = nullptr;
  std::string path;  // the file loaded
};

Result<LoadedPlugin> loadTransportPlugin(const std::string& nameOrPath);

// Checks an entry structure as the loader does (exposed for tests).
Status validatePlugin(const weft_transport_v1_t* ops, const std::string& path);

}  // namespace weft
