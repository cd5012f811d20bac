#!/usr/bin/env bash
# Side-by-side comparison of weft's perf binaries with Open MPI's collectives (mpi_coll_bench from the shared
# peer benchmarks) on this machine: REPS repetitions, interleaved in one run (the order alternates from one
# repetition to the next), float32 sum, out of place, results checked on both sides. Prints one markdown table
# per collective and rank count: busbw medians, the ratio weft/MPI and the spreads (min-max over repetitions).
#
# usage: perf/compare_mpi.sh [-r REPS] [-n "2 4"] [-c allreduce,allgather,reducescatter,broadcast,alltoall]
#                            [-o outdir] [-m "vader vader_nofree"] [-i ITERS] [-s "-b 8 -e 64M -f 4"] [-B weft_build_dir]
#                            [-p core|none]
#   -r REPS   repetitions (default 3)
#   -n LIST   rank counts (default "2 4"); --oversubscribe is added where ranks > cores
#   -c LIST   collectives (default allreduce). mpi_coll_bench has no broadcast: broadcast is weft only.
#             alltoall: size = one rank's send buffer (count*n*4) on both sides, busbw factor (n-1)/n.
#   -o DIR    output directory (default <repo>/build/compare): raw/ tables, weft.csv, mpi.csv, ratios.md
#   -m LIST   Open MPI configurations (default "vader vader_nofree"):
#               vader        pml ob1 + btl self,vader (shared memory), coll tuned
#               vader_nofree the same with glibc told never to unmap or trim (MALLOC_MMAP_MAX_=0,
#                            MALLOC_TRIM_THRESHOLD_ huge): Open MPI's per-call temporary buffers stay faulted in
#   -i ITERS  timed iterations for every size on both sides (default: mpi_coll_bench's own schedule,
#             clamp(1 GiB / size, 5, 1000), with warm-up iters/10+2; weft is run with the same counts, one
#             launch per group of sizes sharing a count)
#   -s SIZES  size flags for both benchmarks (default "-b 8 -e 64M -f 4")
#   -B DIR    weft build directory holding tools/weftrun and perf/weft_*_perf (default <repo>/build; built
#             with cmake if the binaries are missing)
#   -p BIND   where ranks run, alike on both sides (default core): core binds rank r to the (r mod n)-th
#             CPU (weftrun --bind-to core; mpirun --bind-to core --map-by core, with :overload-allowed
#             where ranks outnumber cores, where Open MPI would otherwise not bind); none binds nothing
#             (weftrun's default; mpirun --bind-to none). Unbound, 4 ranks on 2 CPUs are placed anew by
#             every run: a 16-byte all-gather took 1.8 or 2.7 us (weft), 2.0 or 3.1 us (Open MPI)
# env: WEFT_SHARED_BENCH (default <repo>/../shared/bench), MPI_EXTRA (more mpirun flags, e.g. "--bind-to none"),
#      WEFT_EXTRA (more weft perf flags), RUN_TIMEOUT (seconds per launch, default 1800).
# Time on both sides is the mean over ranks of the time per iteration (weft: -a 0), the way mpi_coll_bench
# reports it.
set -u
set -o pipefail

die() {
  echo "compare_mpi.sh: $*" >&2
  exit 2
}
usage() {
  sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null) || REPO=$(cd "$HERE/.." && pwd)
SHARED=${WEFT_SHARED_BENCH:-$REPO/../shared/bench}
REPS=3
NPS="2 4"
COLLS=allreduce
OUTDIR=$REPO/build/compare
MPICFGS="vader vader_nofree"
ITERS=auto
SIZES="-b 8 -e 64M -f 4"
BUILD=$REPO/build
TMO=${RUN_TIMEOUT:-1800}
BIND=core

while getopts "r:n:c:o:m:i:s:B:p:h" opt; do
  case $opt in
    r) REPS=$OPTARG ;;
    n) NPS=$OPTARG ;;
    c) COLLS=$OPTARG ;;
    o) OUTDIR=$OPTARG ;;
    m) MPICFGS=$OPTARG ;;
    i) ITERS=$OPTARG ;;
    s) SIZES=$OPTARG ;;
    B) BUILD=$OPTARG ;;
    p) BIND=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "-r wants a positive number"
[[ $ITERS == auto || $ITERS =~ ^[1-9][0-9]*$ ]] || die "-i wants a positive number"
for np in $NPS; do [[ $np =~ ^[1-9][0-9]*$ ]] || die "-n wants rank counts"; done
[[ $BIND == core || $BIND == none ]] || die "-p wants core or none"
for cfg in $MPICFGS; do
  case $cfg in vader | vader_nofree) ;; *) die "unknown Open MPI configuration $cfg" ;; esac
done
[ -f "$SHARED/mpi_coll_bench.c" ] || die "no mpi_coll_bench.c in $SHARED (set WEFT_SHARED_BENCH)"
mkdir -p "$OUTDIR/raw" "$OUTDIR/build" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

# ---- collectives: weft binary and mpi_coll_bench op ----
weft_name() {
  case $1 in
    allreduce) echo all_reduce ;;
    allgather) echo all_gather ;;
    reducescatter | reduce_scatter) echo reduce_scatter ;;
    broadcast) echo broadcast ;;
    alltoall | all_to_all) echo all_to_all ;;
    *) return 1 ;;
  esac
}
mpi_name() {
  case $1 in
    allreduce) echo allreduce ;;
    allgather) echo allgather ;;
    reducescatter | reduce_scatter) echo reduce_scatter ;;
    alltoall | all_to_all) echo alltoall ;;
    *) echo "" ;;  # no MPI counterpart in mpi_coll_bench
  esac
}
COLLS=${COLLS//,/ }
for c in $COLLS; do weft_name "$c" >/dev/null || die "unknown collective $c"; done

# ---- sizes: the same sequence as both benchmarks (min, min*f or min+i, ..., and max itself) ----
to_bytes() {
  local v=$1 n mult=1
  case $v in
    *[kK]) mult=1024 ;;
    *[mM]) mult=$((1024 * 1024)) ;;
    *[gG]) mult=$((1024 * 1024 * 1024)) ;;
  esac
  n=${v%[kKmMgG]}
  [[ $n =~ ^[0-9]+$ ]] || die "bad size $v"
  echo $((n * mult))
}
MINB=8 MAXB=$((64 << 20)) FACTOR=4
# shellcheck disable=SC2086  # word splitting wanted
set -- $SIZES
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "bad -s \"$SIZES\""
  case $1 in
    -b) MINB=$(to_bytes "$2") ;;
    -e) MAXB=$(to_bytes "$2") ;;
    -f) FACTOR=$2 ;;
    *) die "-s takes -b, -e and -f only" ;;
  esac
  shift 2
done
if [ "$MINB" -lt 1 ] || [ "$MAXB" -lt "$MINB" ]; then die "bad sizes \"$SIZES\""; fi
if ! [[ $FACTOR =~ ^[0-9]+$ ]] || [ "$FACTOR" -lt 2 ]; then
  die "-s: mpi_coll_bench only steps by a factor: use -f >= 2"
fi
SIZE_LIST=()
for ((s = MINB; s <= MAXB; s *= FACTOR)); do SIZE_LIST+=("$s"); done
[ "${SIZE_LIST[-1]}" -eq "$MAXB" ] || SIZE_LIST+=("$MAXB")

# iterations per size: mpi_coll_bench's schedule, or -i for every size
iters_for() {
  if [ "$ITERS" != auto ]; then
    echo "$ITERS"
    return
  fi
  local it=$(((1 << 30) / $1))
  ((it > 1000)) && it=1000
  ((it < 5)) && it=5
  echo $it
}

# ---- binaries ----
MPIBIN=$OUTDIR/build/mpi_coll_bench
if [ ! -x "$MPIBIN" ] || [ "$SHARED/mpi_coll_bench.c" -nt "$MPIBIN" ]; then
  make -s -C "$SHARED" B="$OUTDIR/build" "$MPIBIN" >&2 || die "cannot build mpi_coll_bench"
fi
WEFTRUN=$BUILD/tools/weftrun
need=(weftrun)
for c in $COLLS; do need+=("weft_$(weft_name "$c")_perf"); done
missing=0
[ -x "$WEFTRUN" ] || missing=1
for c in $COLLS; do [ -x "$BUILD/perf/weft_$(weft_name "$c")_perf" ] || missing=1; done
if [ $missing -eq 1 ]; then
  echo "building weft in $BUILD" >&2
  if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >&2 || die "cmake failed"
  fi
  cmake --build "$BUILD" --target "${need[@]}" >&2 || die "building weft failed"
fi

# ---- the runs ----
# keep Open MPI's own TCP traffic on loopback (as run_mpi.sh does)
export OMPI_MCA_oob_tcp_if_include=lo OMPI_MCA_btl_tcp_if_include=lo
CORES=$(nproc)
NOFREE=(-x MALLOC_MMAP_MAX_=0 -x MALLOC_TRIM_THRESHOLD_=68719476736)
FAILS=0

stamp() {  # first line of a raw file: what ran, and how busy the CPUs were just before
  local busy=""
  [ -x "$SHARED/bg_busy.sh" ] && busy=$("$SHARED/bg_busy.sh" 0.5)
  echo "# impl=$1 coll=$2 np=$3 rep=$4 bg_busy_pct_before=$busy date=$(date -u +%FT%TZ)"
}

run_weft() {  # coll np rep
  local c=$1 np=$2 r=$3 f bin rc=0 i=0 lo hi it
  f=$OUTDIR/raw/weft_${c}_np${np}_rep${r}.txt
  bin=$BUILD/perf/weft_$(weft_name "$c")_perf
  stamp weft "$c" "$np" "$r" >"$f"
  # one launch per run of consecutive sizes that share an iteration count
  while [ $i -lt ${#SIZE_LIST[@]} ]; do
    lo=${SIZE_LIST[$i]}
    it=$(iters_for "$lo")
    while [ $((i + 1)) -lt ${#SIZE_LIST[@]} ] && [ "$(iters_for "${SIZE_LIST[$((i + 1))]}")" -eq "$it" ]; do
      i=$((i + 1))
    done
    hi=${SIZE_LIST[$i]}
    i=$((i + 1))
    # shellcheck disable=SC2086
    timeout "$TMO" "$WEFTRUN" --bind-to "$BIND" -n "$np" "$bin" -b "$lo" -e "$hi" -f "$FACTOR" -d float -o sum -a 0 \
      -n "$it" -w $((it / 10 + 2)) -c 1 -T 600 ${WEFT_EXTRA:-} >>"$f" 2>&1 || rc=$?
    [ $rc -ne 0 ] && break
  done
  echo "# rc=$rc" >>"$f"
  if [ $rc -ne 0 ]; then
    echo "FAIL weft $c np=$np rep=$r rc=$rc (see $f)" >&2
    FAILS=$((FAILS + 1))
  fi
}

run_mpi() {  # cfg coll np rep
  local cfg=$1 c=$2 np=$3 r=$4 f rc=0 op args=() iargs=()
  op=$(mpi_name "$c")
  [ -n "$op" ] || return 0
  f=$OUTDIR/raw/mpi-${cfg}_${c}_np${np}_rep${r}.txt
  args=(--allow-run-as-root -np "$np" --mca pml ob1 --mca btl "self,vader")
  [ "$np" -gt "$CORES" ] && args+=(--oversubscribe)
  if [ "$BIND" = none ]; then
    args+=(--bind-to none)
  elif [ "$np" -gt "$CORES" ]; then
    args+=(--bind-to core:overload-allowed --map-by core)
  else
    args+=(--bind-to core --map-by core)
  fi
  [ "$cfg" = vader_nofree ] && args+=("${NOFREE[@]}")
  if [ "$ITERS" = auto ]; then
    iargs=()
  else
    iargs=(-n "$ITERS" -N "$ITERS")
  fi
  stamp "mpi-$cfg" "$c" "$np" "$r" >"$f"
  # shellcheck disable=SC2086
  timeout "$TMO" mpirun "${args[@]}" ${MPI_EXTRA:-} "$MPIBIN" $SIZES -o "$op" "${iargs[@]}" >>"$f" 2>&1 || rc=$?
  echo "# rc=$rc" >>"$f"
  if [ $rc -ne 0 ]; then
    echo "FAIL mpi-$cfg $c np=$np rep=$r rc=$rc (see $f)" >&2
    FAILS=$((FAILS + 1))
  fi
}

IMPLS=(weft)
for cfg in $MPICFGS; do IMPLS+=("mpi-$cfg"); done
echo "compare_mpi.sh: reps=$REPS nranks=\"$NPS\" colls=\"$COLLS\" mpi=\"$MPICFGS\" sizes=\"$SIZES\"" \
  "iters=$ITERS out=$OUTDIR" >&2
for ((r = 1; r <= REPS; r++)); do
  # alternate the order from one repetition to the next so that drift does not favour one side
  order=("${IMPLS[@]}")
  if ((r % 2 == 0)); then
    order=()
    for ((k = ${#IMPLS[@]} - 1; k >= 0; k--)); do order+=("${IMPLS[$k]}"); done
  fi
  for np in $NPS; do
    for c in $COLLS; do
      for impl in "${order[@]}"; do
        echo "  rep $r np $np $c $impl" >&2
        case $impl in
          weft) run_weft "$c" "$np" "$r" ;;
          mpi-*) run_mpi "${impl#mpi-}" "$c" "$np" "$r" ;;
        esac
      done
    done
  done
done

# ---- tables -> CSV -> ratios ----
# mpi_coll_bench's tables go through the shared parse_tables.py; weft's (14 columns, two placements) through
# ratios.py --parse-weft, which writes the same CSV columns.
echo "label,rep,op,size,count,iters,time_us,max_t_us,algbw,busbw,wrong" >"$OUTDIR/mpi.csv"
echo "label,rep,op,size,count,iters,time_us,max_t_us,algbw,busbw,wrong" >"$OUTDIR/weft.csv"
for np in $NPS; do
  for c in $COLLS; do
    files=()
    for ((r = 1; r <= REPS; r++)); do files+=("$OUTDIR/raw/weft_${c}_np${np}_rep${r}.txt"); done
    python3 "$HERE/ratios.py" --parse-weft --label "weft-np$np" "${files[@]}" >>"$OUTDIR/weft.csv"
    [ -n "$(mpi_name "$c")" ] || continue
    for cfg in $MPICFGS; do
      files=()
      for ((r = 1; r <= REPS; r++)); do files+=("$OUTDIR/raw/mpi-${cfg}_${c}_np${np}_rep${r}.txt"); done
      python3 "$SHARED/parse_tables.py" --label "mpi-$cfg-np$np" "${files[@]}" >>"$OUTDIR/mpi.csv"
    done
  done
done
python3 "$HERE/ratios.py" "$OUTDIR/weft.csv" "$OUTDIR/mpi.csv" | tee "$OUTDIR/ratios.md"
echo "compare_mpi.sh: raw tables in $OUTDIR/raw, CSV in $OUTDIR/{weft,mpi}.csv, tables in $OUTDIR/ratios.md" >&2
[ $FAILS -eq 0 ] || {
  echo "compare_mpi.sh: $FAILS runs failed" >&2
  exit 1
}
