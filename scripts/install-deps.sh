#!/usr/bin/env bash
# Installs the Debian 12 packages weft needs to build, test and benchmark. Skips apt when everything is there.
set -euo pipefail
packages=(g++ gcc cmake ninja-build pkg-config libgtest-dev libbenchmark-dev libhwloc-dev hwloc-nox iproute2 procps
  libucx-dev libfabric-dev)
if [ "${1:-}" = "--peers" ]; then
  # Peers for the side-by-side comparison (perf/compare_mpi.sh).
  packages+=(openmpi-bin libopenmpi-dev ucx-utils libfabric-bin)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
