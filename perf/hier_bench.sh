#!/usr/bin/env bash
# Hierarchical against flat collectives across network namespaces, and the tuner's choice per size.
#
# Layouts: H namespaces ("nodes", scripts/netns.sh) with L ranks each, ranks numbered node by node
# (WEFT_HOST_ID tells the nodes apart, since namespaces share /dev/shm): 2x2 and 3x2 by default. Default
# transports: shared memory inside a namespace, ucx (tcp over the veths) between.
# For all-reduce and all-to-all, three runs of the nccl-tests style perf binary per layout and repetition:
#   flat   WEFT_ALGO=allreduce:ring / alltoall:pairwise
#   hier   WEFT_ALGO=allreduce:hier / alltoall:hier
#   auto   WEFT_ALGO unset: the tuner chooses per size (its choice is the binary's algorithm column)
# out of place, float32, time = mean over ranks (-a 0), busbw as nccl-tests defines it. The report gives,
# per size, the busbw of each run (medians over repetitions), hier/flat, the tuner's choice and whether
# the auto run is within 5% of the faster of flat and hier.
#
# usage: perf/hier_bench.sh [-B BUILD_DIR] [-o OUT_PREFIX] [-r REPS] [-l "LAYOUTS"] [-s "SIZE FLAGS"]
#   -B  weft build directory (default <repo>/build: perf binaries and libweft-transport-ucx.so)
#   -o  output prefix (default <repo>/docs/results/issue6-hier-bench): PREFIX.md, PREFIX.csv, PREFIX-raw.csv
#   -r  repetitions, interleaved (default 3)
#   -l  layouts, HxL (default "2x2 3x2")
#   -s  size flags of the perf binaries (default "-b 8 -e 16M -f 8")
# Needs root for the namespaces (exits 77 with the reason otherwise).
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
PREFIX=$REPO/docs/results/issue6-hier-bench
REPS=3
LAYOUTS="2x2 3x2"
SIZES="-b 8 -e 16M -f 8"
while getopts "B:o:r:l:s:h" opt; do
  case $opt in
    B) BUILD=$(cd "$OPTARG" && pwd) || exit 2 ;;
    o) PREFIX=$OPTARG ;;
    r) REPS=$OPTARG ;;
    l) LAYOUTS=$OPTARG ;;
    s) SIZES=$OPTARG ;;
    *) sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

for f in "$BUILD/perf/weft_all_reduce_perf" "$BUILD/perf/weft_all_to_all_perf" "$BUILD/libweft-transport-ucx.so"; do
  [ -e "$f" ] || { echo "hier_bench.sh: $f is not built" >&2; exit 2; }
done
mkdir -p "$(dirname "$PREFIX")"
WORK=$(mktemp -d /tmp/weft-hier-bench-XXXXXX)
SHMD=$(mktemp -d /dev/shm/weft-hier-bench-XXXXXX)
NAME=hb$$
RAW=$PREFIX-raw.csv
PORT=$((30000 + RANDOM % 20000))
BGPIDS=""
cleanup() {
  local p
  for p in $BGPIDS; do kill -KILL "$p" 2>/dev/null; done
  "$REPO/scripts/netns.sh" down "$NAME" >/dev/null 2>&1
  rm -rf "$SHMD" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
export UCX_WARN_UNUSED_ENV_VARS=n

MAXH=0
for lay in $LAYOUTS; do
  h=${lay%x*}
  [ "$h" -gt "$MAXH" ] && MAXH=$h
done
if ! out=$("$REPO/scripts/netns.sh" up "$NAME" "$MAXH" 2>&1); then
  echo "hier_bench.sh: no network namespaces: $(echo "$out" | tail -1)" >&2
  exit 77
fi
A0=$("$REPO/scripts/netns.sh" addr "$NAME" 0)
LOAD_BEFORE=$(uptime)
echo "layout,coll,variant,size,rep,time_us,busbw_GBps,algo" >"$RAW"

# run LAYOUT COLL VARIANT REP: one perf run, its rows appended to RAW.
run() {
  local lay=$1 coll=$2 variant=$3 rep=$4
  local H=${lay%x*} L=${lay#*x} n r h bin algo pids=""
  n=$((H * L))
  case $coll in
    allreduce) bin=$BUILD/perf/weft_all_reduce_perf; [ "$variant" = flat ] && algo=allreduce:ring ;;
    alltoall) bin=$BUILD/perf/weft_all_to_all_perf; [ "$variant" = flat ] && algo=alltoall:pairwise ;;
  esac
  [ "$variant" = hier ] && algo=$coll:hier
  [ "$variant" = auto ] && algo=""
  PORT=$((PORT + 1))
  for ((r = n - 1; r >= 0; r--)); do
    h=$((r / L))
    # shellcheck disable=SC2206 # SIZES is a list of flags
    local cmd=(env "WEFT_RANK=$r" "WEFT_WORLD_SIZE=$n" WEFT_ROOT="$A0:$PORT" WEFT_SOCKET_IFNAME=veth
      WEFT_HOST_ID="$NAME-host$h" WEFT_SHM_DIR="$SHMD" UCX_TLS=tcp UCX_NET_DEVICES="veth$h" WEFT_TIMEOUT=120
      WEFT_ALGO="$algo" timeout -k 5 600 "$bin" $SIZES -n 20 -w 4 -a 0 -c 1)
    if [ "$r" = 0 ]; then
      ip netns exec "${NAME}_$h" "${cmd[@]}" >"$WORK/out.0" 2>&1
    else
      ip netns exec "${NAME}_$h" "${cmd[@]}" >"$WORK/out.$r" 2>&1 &
      pids="$pids $!"
      BGPIDS="$BGPIDS $!"
    fi
  done
  for r in $pids; do wait "$r" 2>/dev/null; done
  if ! grep -q "Out of bounds values : 0 OK" "$WORK/out.0"; then
    echo "hier_bench.sh: FAIL $lay $coll $variant rep $rep: $(cat "$WORK"/out.* | grep -v '^#' | tail -3 | tr '\n' ' ')" >&2
    return
  fi
  awk -v l="$lay" -v c="$coll" -v v="$variant" -v r="$rep" \
    '$1 ~ /^[0-9]+$/ && NF >= 14 {printf "%s,%s,%s,%s,%s,%s,%s,%s\n", l, c, v, $1, r, $6, $8, $14}' \
    "$WORK/out.0" >>"$RAW"
}

for ((rep = 1; rep <= REPS; rep++)); do
  for lay in $LAYOUTS; do
    for coll in allreduce alltoall; do
      # Interleaved, the order turned around every repetition, so that drift in the machine's load
      # does not favour one variant.
      if [ $((rep % 2)) = 1 ]; then order="flat hier auto"; else order="auto hier flat"; fi
      for v in $order; do
        echo "# rep $rep $lay $coll $v" >&2
        run "$lay" "$coll" "$v" "$rep"
      done
    done
  done
done
LOAD_AFTER=$(uptime)

python3 - "$RAW" "$PREFIX" "$LOAD_BEFORE" "$LOAD_AFTER" "$REPS" <<'EOF'
import csv, statistics, sys
raw, prefix, before, after, reps = sys.argv[1:6]
rows = list(csv.DictReader(open(raw)))
med = {}
tmed = {}
algos = {}
for r in rows:
    k = (r["layout"], r["coll"], r["variant"], int(r["size"]))
    med.setdefault(k, []).append(float(r["busbw_GBps"]))
    tmed.setdefault(k, []).append(float(r["time_us"]))
    if r["variant"] == "auto":
        algos.setdefault(k, []).append(r["algo"])
with open(prefix + ".csv", "w") as f:
    f.write("layout,coll,variant,size,busbw_GBps_median,runs\n")
    for k in sorted(med):
        f.write("%s,%s,%s,%d,%.4f,%d\n" % (k + (statistics.median(med[k]), len(med[k]))))
out = []
out.append("# Issue 6: hierarchical vs flat collectives across network namespaces\n")
out.append("Produced by `perf/hier_bench.sh` (medians of %s repetitions, interleaved; 2 CPUs for every rank). "
           "Ranks numbered node by node; shared memory inside a namespace, ucx (tcp over the veths) between. "
           "flat = ring all-reduce / pairwise all-to-all, hier = the hierarchical algorithm, auto = the tuner's "
           "choice (default cost model). busbw in GB/s, out of place, float32. Ratios are of times (medians, "
           "µs): flat/hier > 1 means hier is faster; auto/best > 1 means the tuner's run was slower than the "
           "faster of flat and hier. Below ~32 KiB the times are dominated by the scheduler (4-6 busy-polling "
           "ranks on 2 CPUs) and vary by 2-4x from run to run.\n" % reps)
out.append("- before: `%s`\n- after: `%s`\n" % (before.strip(), after.strip()))
for lay in sorted({k[0] for k in med}):
    for coll in ("allreduce", "alltoall"):
        sizes = sorted({k[3] for k in med if k[0] == lay and k[1] == coll})
        if not sizes:
            continue
        out.append("\n## %s, %s\n" % (coll, lay))
        out.append("| size (B) | flat µs | hier µs | auto µs | flat busbw | hier busbw | auto busbw | flat/hier | tuner's choice | auto/best |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for s in sizes:
            g = lambda d, v: statistics.median(d[(lay, coll, v, s)]) if (lay, coll, v, s) in d else None
            fl, hi, au = g(tmed, "flat"), g(tmed, "hier"), g(tmed, "auto")
            bf, bh, ba = g(med, "flat"), g(med, "hier"), g(med, "auto")
            ratio = "%.2f" % (fl / hi) if fl and hi else "–"
            best = min(x for x in (fl, hi) if x is not None) if (fl or hi) else None
            vs = "%.2f" % (au / best) if au is not None and best else "–"
            ch = ",".join(sorted(set(algos.get((lay, coll, "auto", s), [])))) or "–"
            f = lambda x, p: ("%%.%df" % p) % x if x is not None else "–"
            out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s, f(fl, 1), f(hi, 1), f(au, 1), f(bf, 3), f(bh, 3), f(ba, 3), ratio, ch, vs))
open(prefix + ".md", "w").write("\n".join(out) + "\n")
print("wrote %s.md, %s.csv, %s" % (prefix, prefix, raw))
EOF
