#!/usr/bin/env bash
# Hierarchical against flat collectives across network namespaces, and the tuner's choice per size.
#
# Layouts: H namespaces ("nodes", scripts/netns.sh) with L ranks each, ranks numbered node by node
# (WEFT_HOST_ID tells the nodes apart, since namespaces share /dev/shm): 2x2 and 3x2 by default. Default
# transports: shared memory inside a namespace, ucx (tcp over the veths) between.
# First, per layout, weft-tune runs across the namespaces and writes a tuning file (both levels measured;
# kept as PREFIX-tune-HxL.txt). Then, for all-reduce and all-to-all, four runs of the nccl-tests style perf
# binary per layout and repetition:
#   flat   WEFT_ALGO=allreduce:ring / alltoall:pairwise
#   hier   WEFT_ALGO=allreduce:hier / alltoall:hier
#   auto   WEFT_ALGO unset: the tuner chooses per size with its built-in constants (its choice is the
#          binary's algorithm column)
#   tuned  the same with WEFT_TUNE_FILE = the layout's tuning file
# out of place, float32, time = mean over ranks (-a 0), busbw as nccl-tests defines it. The report gives,
# per size, the time and busbw of each run (medians over repetitions), flat/hier, and for auto and tuned the
# choice and whether it is right: the variant it chose (flat or hier) is within 5% of the faster of the two
# (a choice of another flat algorithm is judged by its own run's time).
# perf/plot_hier.py PREFIX-raw.csv > plot.svg draws flat/hier per size with the tuned choices.
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

for f in "$BUILD/perf/weft_all_reduce_perf" "$BUILD/perf/weft_all_to_all_perf" "$BUILD/libweft-transport-ucx.so" \
  "$BUILD/tools/weft-tune"; do
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
# shellcheck source=perf/netns_ranks.sh
. "$REPO/perf/netns_ranks.sh"

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
  local H=${lay%x*} L=${lay#*x} bin algo
  case $coll in
    allreduce) bin=$BUILD/perf/weft_all_reduce_perf; [ "$variant" = flat ] && algo=allreduce:ring ;;
    alltoall) bin=$BUILD/perf/weft_all_to_all_perf; [ "$variant" = flat ] && algo=alltoall:pairwise ;;
  esac
  [ "$variant" = hier ] && algo=$coll:hier
  local tune=""
  [ "$variant" = auto ] && algo=""
  [ "$variant" = tuned ] && algo="" && tune=$WORK/tune-$lay.txt
  PORT=$((PORT + 1))
  # shellcheck disable=SC2086 # SIZES is a list of flags
  netns_ranks $((H * L)) "$L" "$WORK/out" WEFT_ALGO="$algo" WEFT_TUNE_FILE="$tune" \
    timeout -k 5 600 "$bin" $SIZES -n 20 -w 4 -a 0 -c 1
  if ! grep -q "Out of bounds values : 0 OK" "$WORK/out.0"; then
    echo "hier_bench.sh: FAIL $lay $coll $variant rep $rep: $(cat "$WORK"/out.* | grep -v '^#' | tail -3 | tr '\n' ' ')" >&2
    return
  fi
  awk -v l="$lay" -v c="$coll" -v v="$variant" -v r="$rep" \
    '$1 ~ /^[0-9]+$/ && NF >= 14 {printf "%s,%s,%s,%s,%s,%s,%s,%s\n", l, c, v, $1, r, $6, $8, $14}' \
    "$WORK/out.0" >>"$RAW"
}

# tune LAYOUT: weft-tune across the layout's namespaces, the file in $WORK/tune-LAYOUT.txt and beside the
# report.
tune() {
  local lay=$1
  local H=${lay%x*} L=${lay#*x}
  PORT=$((PORT + 1))
  netns_ranks $((H * L)) "$L" "$WORK/tune" timeout -k 5 600 "$BUILD/tools/weft-tune" -o "$WORK/tune-$lay.txt"
  if [ ! -s "$WORK/tune-$lay.txt" ]; then
    echo "hier_bench.sh: weft-tune failed on $lay: $(cat "$WORK"/tune.* | tail -3 | tr '\n' ' ')" >&2
    exit 1
  fi
  cp "$WORK/tune-$lay.txt" "$PREFIX-tune-$lay.txt"
}
for lay in $LAYOUTS; do
  echo "# weft-tune $lay" >&2
  tune "$lay"
done

for ((rep = 1; rep <= REPS; rep++)); do
  for lay in $LAYOUTS; do
    for coll in allreduce alltoall; do
      # Interleaved, the order turned around every repetition, so that drift in the machine's load
      # does not favour one variant.
      if [ $((rep % 2)) = 1 ]; then order="flat hier auto tuned"; else order="tuned auto hier flat"; fi
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
    if r["variant"] in ("auto", "tuned"):
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
           "choice with its built-in constants, tuned = its choice with the tuning file weft-tune measured across "
           "the same namespaces (below). Times are medians in µs; busbw in GB/s, out of place, float32. "
           "flat/hier > 1 means hier is faster. A choice is right (✓) when the variant it chose is within 5%% of "
           "the faster of flat and hier (a choice of another algorithm is judged by its own run). Below ~32 KiB "
           "the times are dominated by the scheduler (4-6 busy-polling ranks on 2 CPUs) and vary by 2-4x from "
           "run to run.\n" % reps)
out.append("- before: `%s`\n- after: `%s`\n" % (before.strip(), after.strip()))
import glob, os
tally = {}
for lay in sorted({k[0] for k in med}):
    tf = "%s-tune-%s.txt" % (prefix, lay)
    if os.path.exists(tf):
        keys = [l.strip() for l in open(tf) if l.startswith(("intra.", "inter."))]
        out.append("\n### weft-tune on %s (`%s`)\n" % (lay, os.path.basename(tf)))
        out.append("```\n" + "\n".join(keys) + "\n```")
    for coll in ("allreduce", "alltoall"):
        sizes = sorted({k[3] for k in med if k[0] == lay and k[1] == coll})
        if not sizes:
            continue
        out.append("\n## %s, %s\n" % (coll, lay))
        out.append("| size (B) | flat µs | hier µs | flat/hier | auto µs | auto's choice | right? | tuned µs | tuned's choice | right? | hier busbw |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for s in sizes:
            g = lambda d, v: statistics.median(d[(lay, coll, v, s)]) if (lay, coll, v, s) in d else None
            fl, hi, au, tu = g(tmed, "flat"), g(tmed, "hier"), g(tmed, "auto"), g(tmed, "tuned")
            ratio = "%.2f" % (fl / hi) if fl and hi else "–"
            best = min(x for x in (fl, hi) if x is not None) if (fl or hi) else None
            flatname = "ring" if coll == "allreduce" else "pairwise"
            def judge(variant, own):
                ch = sorted(set(algos.get((lay, coll, variant, s), [])))
                if not ch or best is None:
                    return "–", "–"
                if ch == ["hier"]:
                    t = hi
                elif ch == [flatname]:
                    t = fl
                else:
                    t = own
                ok = t is not None and t <= 1.05 * best
                tally.setdefault(variant, [0, 0])
                tally[variant][0] += ok
                tally[variant][1] += 1
                return ",".join(ch), ("✓" if ok else "✗ %.2f" % (t / best))
            ach, aok = judge("auto", au)
            tch, tok = judge("tuned", tu)
            f = lambda x, p: ("%%.%df" % p) % x if x is not None else "–"
            out.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                s, f(fl, 1), f(hi, 1), ratio, f(au, 1), ach, aok, f(tu, 1), tch, tok, f(g(med, "hier"), 3)))
out.append("\n## Choices\n")
for v in ("auto", "tuned"):
    if v in tally:
        out.append("- %s: right at %d of %d sizes" % (v, tally[v][0], tally[v][1]))
open(prefix + ".md", "w").write("\n".join(out) + "\n")
print("wrote %s.md, %s.csv, %s" % (prefix, prefix, raw))
EOF
