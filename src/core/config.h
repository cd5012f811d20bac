// Settings: every WEFT_* variable is declared once, in the table in config.cc (name, type, default,
// accepted values, help). Nothing else in weft reads the environment: the launcher variables that
// weft honours (torchrun's, mpirun's, srun's) are read through launcherEnv(), which also checks a
// list. A test greps the tree for stray environment reads and checks docs/environment.md against
// the table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace weft::config {

enum class Type { kInt, kBytes, kSeconds, kBool, kEnum, kString };

struct Param {
  const char* name;
  Type type;
  const char* defaultValue;  // as it would be written in the environment; "" = unset
  const char*
      accepted;  // kEnum: "A|B|C"; kInt: "min..max"; otherwise a short description of the form
  const char* help;
};

// The whole table, in documentation order.
const std::vector<Param>& params();
// The entry for a name, or nullptr.
const Param* find(const std::string& name);

// Reads and validates every WEFT_* variable. Called lazily by the accessors; returns the first bad
// value as weftInvalidArgument naming the variable, its value and what is accepted. Cheap after the
// first call.
Status load();
// Re-reads the environment (tests change variables between cases).
Status reload();

// Effective values. The name must be in the table (a programming error otherwise: it aborts with a
// message).
int64_t intValue(const char* name);     // kInt, kBytes (bytes), kBool (0/1)
double secondsValue(const char* name);  // kSeconds
std::string stringValue(
    const char* name);         // kEnum (upper-cased), kString; "" when unset and no default
bool isSet(const char* name);  // set in the environment (to anything)

// Parsers, exposed for the tests and for values that arrive from elsewhere (weftrun flags).
Result<int64_t> parseBytes(const std::string& text);   // 123, 4K, 64M, 1G, 1KiB... (powers of 1024)
Result<double> parseSeconds(const std::string& text);  // 30, 0.5, 100ms, 2s, 1m

// The non-WEFT variables weft honours, read from the environment here and nowhere else: RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, OMPI_COMM_WORLD_RANK,
// OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_SIZE, SLURM_PROCID,
// SLURM_NTASKS, SLURM_LOCALID. Returns nullptr when unset; aborts on a name not in that list.
const char* launcherEnv(const char* name);

// Lines "NAME=value (default X)" for every variable that is set; logged at INFO by the first init.
std::vector<std::string> describeNonDefault();

}  // namespace weft::config
