#!/usr/bin/env bash
# The main job: installs what is needed, builds weft (Release), and runs the perf binaries for all-reduce,
# all-gather, reduce-scatter, broadcast and all-to-all on 4 local ranks over shared memory, 8 B to 64 MiB, every result
# checked. Extra arguments go to every perf binary (e.g. -d all -o all). NRANKS overrides the rank count. Rank r
# runs on the (r mod n)-th CPU (weftrun --bind-to core), as mpirun binds its ranks.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)"
n="${NRANKS:-4}"
status=0
for coll in all_reduce all_gather reduce_scatter broadcast all_to_all; do
  echo
  echo "### weft_${coll}_perf on ${n} ranks"
  build-release/tools/weftrun --bind-to core -n "$n" build-release/perf/weft_${coll}_perf -b 8 -e 64M -f 4 "$@" || status=1
done
exit $status
