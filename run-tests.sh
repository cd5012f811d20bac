#!/usr/bin/env bash
# Installs what is needed, builds weft with warnings as errors, and runs the whole test suite with ctest:
# unit tests, every algorithm for 1..33 and 64 ranks in one process, multi-process tests over shared memory
# (2, 3, 4, 8 ranks), fault tests, and a short run of every perf binary with its results checked.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure --timeout 900 "$@"
