#!/usr/bin/env bash
# How close 2-rank all-reduce with registered buffers (-R 1) comes to the bound this machine's memory
# bandwidth sets, both measured in one run, interleaved.
#
# Bound: an all-reduce of S bytes per rank over n ranks on one host must read every input once and
# write every output once: at least 2·n·S bytes through memory. With an aggregate bandwidth BW (all
# cores together, for a read+write mix) the time is at least 2·n·S/BW, so algbw = S/time ≤ BW/(2n)
# and busbw = algbw·2(n-1)/n. BW is membw's add_nt kernel (c = a + b with non-temporal stores: two
# reads and one write per element, all counted) on as many threads as ranks, arrays of S bytes.
#
# usage: perf/bound.sh [-r REPS] [-s BYTES] [-B weft_build_dir]   (defaults 3, 64M, build-release)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
REPS=3 SIZE=64M BUILD=$REPO/build-release NR=2
while getopts "r:s:B:h" o; do
  case $o in
    r) REPS=$OPTARG ;; s) SIZE=$OPTARG ;; B) BUILD=$OPTARG ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
  esac
done
BENCH=${WEFT_SHARED_BENCH:-$REPO/../shared/bench}
OUT=$BUILD/bound
mkdir -p "$OUT"
gcc -O3 -march=native -pthread "$BENCH/membw.c" -o "$OUT/membw" || exit 1
bytes=$(numfmt --from=iec "$SIZE")
for i in $(seq 1 "$REPS"); do
  bw=$("$OUT/membw" "$bytes" "$NR" 10 | awk '$1=="add_nt" {print $3}')
  for reg in 1 0; do
    # Registered buffers with the one-sided all-reduce; ordinary buffers with the tuner's choice.
    algo=""
    [ "$reg" = 1 ] && algo=allreduce:one_sided
    line=$(WEFT_ALGO=$algo "$BUILD/tools/weftrun" --bind-to core -n "$NR" "$BUILD/perf/weft_all_reduce_perf" \
      -b "$SIZE" -e "$SIZE" -n 20 -w 5 -c 1 -R "$reg" | awk '!/^#/ && NF > 8')
    # out-of-place algbw and busbw, then the algorithm column if present
    algbw=$(echo "$line" | awk '{print $7}')
    echo "rep $i R=$reg algo=$(echo "$line" | awk '{print $NF}') membw_add_nt=${bw}GB/s bound_algbw=$(awk -v b="$bw" -v n="$NR" 'BEGIN{printf "%.2f", b/(2*n)}') weft_algbw=$algbw fraction=$(awk -v a="$algbw" -v b="$bw" -v n="$NR" 'BEGIN{printf "%.2f", a/(b/(2*n))}')"
  done
done
