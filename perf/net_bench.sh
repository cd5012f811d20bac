#!/usr/bin/env bash
# weft over its network plugins against the raw tools of the same libraries, side by side in one run:
#
#  1. point to point, 2 ranks, at 8 B, 64 KiB, 1 MiB and 4 MiB, on two paths:
#       lo     both processes in this namespace, over loopback
#       netns  one process in each of two network namespaces joined by a bridge (scripts/netns.sh), over the veths
#     ucx: weft_p2p_perf (WEFT_TRANSPORT=ucx, UCX_TLS=tcp, UCX_NET_DEVICES=lo|veth<i>) vs ucx_perftest tag_lat
#          and tag_bw, once as UCX defaults them and once with -e (endpoints with peer-failure handling, which
#          weft's plugin enables so that a dead peer is named: UCX then uses other rendezvous protocols),
#          with the same UCX settings;
#     ofi: weft_p2p_perf (WEFT_TRANSPORT=ofi, WEFT_OFI_PROVIDER="tcp;ofi_rxm", FI_TCP_IFACE=lo|veth<i>) vs
#          fi_pingpong -p "tcp;ofi_rxm" -e rdm -m tagged -d lo|veth<i>.
#     Latency = half a round trip everywhere (weft: mean; ucx_perftest: "overall" mean; fi_pingpong: usec/xfer).
#     Streaming bandwidth: weft = windows of 16 grouped sends + 1-byte ack, all from one buffer into one
#     buffer (-S 1), as ucx_perftest tag_bw's own back-to-back stream does (16 distinct 4 MiB buffers
#     make a 64 MiB working set that no longer fits in cache, which costs ~15% here whatever moves it). libfabric has no streaming tool in Debian (no fabtests), so for ofi the only raw
#     rate is fi_pingpong's size / one-way time; it is compared with weft's ping-pong rate (size / lat_us).
#  2. all-reduce (float32 sum, out of place), 4 ranks, 2 per namespace: weft_all_reduce_perf (default
#     transports: shared memory inside a namespace, ucx tcp over the veths between) vs Open MPI
#     (mpi_coll_bench from the shared peer benchmarks; pml ob1, btl self,vader,tcp: vader inside, tcp over the
#     veths between). mpirun cannot ssh, so it runs in namespace 0 and starts its daemons through an rsh agent
#     (written to the work directory) that maps the host names nodea/nodeb to the namespaces; each namespace
#     gets its own vader backing directory and session directory (namespaces share /dev/shm, /tmp and the host
#     name); mpi_yield_when_idle=1 and --bind-to none because 4 busy-polling ranks share 2 cores. Both sides run
#     50 timed and 7 warm-up iterations per size and report the mean over ranks (weft -a 0).
#
# usage: perf/net_bench.sh [-B BUILD_DIR] [-o OUT_PREFIX] [-r REPS] [-s "SIZES"] [-a "ALLREDUCE SIZE FLAGS"]
#   -B  weft build directory (default <repo>/build; needs perf/weft_p2p_perf, perf/weft_all_reduce_perf and
#       the plugins libweft-transport-ucx.so / -ofi.so)
#   -o  output prefix (default <repo>/docs/results/issue5-net-bench): PREFIX.csv (medians), PREFIX-raw.csv
#       (every run), PREFIX.md (tables with ratios)
#   -r  repetitions, interleaved (default 3); the tables show medians
#   -s  point-to-point sizes in bytes (default "8 65536 1048576 4194304")
#   -a  all-reduce size flags for both sides (default "-b 8 -e 16M -f 8")
# Needs root for the namespaces (without it the netns rows are skipped, with a note). Missing tools
# (ucx_perftest: ucx-utils; fi_pingpong: libfabric-bin; mpirun/mpicc: openmpi-bin libopenmpi-dev) skip their
# rows, with a note. Numbers depend on the machine's load: the output records `uptime` before and after;
# run on a quiet machine.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=$REPO/build
PREFIX=$REPO/docs/results/issue5-net-bench
REPS=3
SIZES="8 65536 1048576 4194304"
AR_SIZES="-b 8 -e 16M -f 8"
SHARED=${WEFT_SHARED_BENCH:-$REPO/../shared/bench}
while getopts "B:o:r:s:a:h" opt; do
  case $opt in
    B) BUILD=$(cd "$OPTARG" && pwd) || exit 2 ;;
    o) PREFIX=$OPTARG ;;
    r) REPS=$OPTARG ;;
    s) SIZES=$OPTARG ;;
    a) AR_SIZES=$OPTARG ;;
    *) sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done

P2P=$BUILD/perf/weft_p2p_perf
ARP=$BUILD/perf/weft_all_reduce_perf
for f in "$P2P" "$ARP"; do [ -x "$f" ] || { echo "net_bench.sh: $f is not built" >&2; exit 2; }; done
mkdir -p "$(dirname "$PREFIX")"
WORK=$(mktemp -d /tmp/weft-net-bench-XXXXXX)
SHMD=$(mktemp -d /dev/shm/weft-net-bench-XXXXXX)
NAME=nb$$
RAW=$PREFIX-raw.csv
NOTES=$WORK/notes
: >"$NOTES"
note() { echo "$*" | tee -a "$NOTES" >&2; }
PORT=$((30000 + RANDOM % 20000))
port() { PORT=$((PORT + 1)); }

BGPIDS=""
cleanup() {
  local p
  for p in $BGPIDS; do kill -KILL "$p" 2>/dev/null; done
  "$REPO/scripts/netns.sh" down "$NAME" >/dev/null 2>&1
  rm -rf "$SHMD" /dev/shm/"$NAME"-* "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

export UCX_WARN_UNUSED_ENV_VARS=n
# shellcheck source=perf/netns_ranks.sh
. "$HERE/netns_ranks.sh"
LOAD_BEFORE=$(uptime)
echo "# start: $LOAD_BEFORE" >&2

have() { command -v "$1" >/dev/null 2>&1; }
HAVE_UCX=0 HAVE_OFI=0 HAVE_PERFTEST=0 HAVE_PINGPONG=0 HAVE_MPI=0
[ -f "$BUILD/libweft-transport-ucx.so" ] && HAVE_UCX=1 || note "- weft's ucx plugin is not built: ucx rows skipped"
[ -f "$BUILD/libweft-transport-ofi.so" ] && HAVE_OFI=1 || note "- weft's ofi plugin is not built: ofi rows skipped"
have ucx_perftest && HAVE_PERFTEST=1 || note "- ucx_perftest missing (apt-get install ucx-utils): its rows skipped"
have fi_pingpong && HAVE_PINGPONG=1 || note "- fi_pingpong missing (apt-get install libfabric-bin): its rows skipped"
if have mpirun && have mpicc && [ -f "$SHARED/mpi_coll_bench.c" ]; then
  if mpicc -O2 "$SHARED/mpi_coll_bench.c" -o "$WORK/mpi_coll_bench" 2>"$WORK/mpicc.err"; then
    HAVE_MPI=1
  else
    note "- mpicc failed on mpi_coll_bench.c: $(head -1 "$WORK/mpicc.err")"
  fi
else
  note "- Open MPI (mpirun, mpicc) or $SHARED/mpi_coll_bench.c missing: the MPI all-reduce rows skipped"
fi

# The namespaces: 2 hosts.
HAVE_NS=0
if out=$("$REPO/scripts/netns.sh" up "$NAME" 2 2>&1); then
  HAVE_NS=1
  A0=$("$REPO/scripts/netns.sh" addr "$NAME" 0)
  SUBNET=${A0%.*}.0/24
else
  note "- no network namespaces ($(echo "$out" | tail -1)): netns rows skipped"
fi

echo "section,path,transport,tool,test,size,rep,lat_us,bw_GBps,extra" >"$RAW"
row() { echo "$*" >>"$RAW"; }

# Iterations per size: weft (lat and window loops), ucx_perftest lat / bw, fi_pingpong.
iters() {  # TOOL SIZE
  local s=$2
  case $1 in
    weft) if [ "$s" -le 65536 ]; then echo 1000; elif [ "$s" -le 1048576 ]; then echo 100; else echo 30; fi ;;
    tag_lat) if [ "$s" -le 65536 ]; then echo 10000; elif [ "$s" -le 1048576 ]; then echo 500; else echo 100; fi ;;
    tag_bw) if [ "$s" -le 4096 ]; then echo 100000; elif [ "$s" -le 65536 ]; then echo 10000; elif [ "$s" -le 1048576 ]; then echo 1000; else echo 300; fi ;;
    ping) if [ "$s" -le 65536 ]; then echo 5000; elif [ "$s" -le 1048576 ]; then echo 500; else echo 100; fi ;;
  esac
}

# in_ns PATH HOST CMD...: run CMD on host HOST of PATH (lo: here; netns: in namespace NAME_HOST).
in_ns() {
  local path=$1 h=$2
  shift 2
  if [ "$path" = lo ]; then "$@"; else ip netns exec "${NAME}_$h" "$@"; fi
}
iface() { if [ "$1" = lo ]; then echo lo; else echo "veth$2"; fi; }
addr0() { if [ "$1" = lo ]; then echo 127.0.0.1; else echo "$A0"; fi; }

# weft_p2p PATH TRANSPORT SIZE REP
weft_p2p() {
  local path=$1 tp=$2 s=$3 rep=$4 n h r out pid line
  n=$(iters weft "$s")
  port
  for r in 1 0; do
    h=$r
    local env=("WEFT_RANK=$r" WEFT_WORLD_SIZE=2 WEFT_ROOT="$(addr0 "$path"):$PORT" WEFT_HOST_ID="$NAME-$path-$h"
      WEFT_SHM_DIR="$SHMD" WEFT_TRANSPORT="$tp" WEFT_TIMEOUT=120)
    [ "$path" = netns ] && env+=(WEFT_SOCKET_IFNAME=veth)
    if [ "$tp" = ucx ]; then
      env+=(UCX_TLS=tcp UCX_NET_DEVICES="$(iface "$path" "$h")")
    else
      env+=("WEFT_OFI_PROVIDER=tcp;ofi_rxm" FI_TCP_IFACE="$(iface "$path" "$h")")
    fi
    if [ $r = 1 ]; then
      in_ns "$path" "$h" env "${env[@]}" timeout -k 5 300 "$P2P" -b "$s" -e "$s" -n "$n" -w $((n / 10 + 2)) -S 1 >"$WORK/p2p.1" 2>&1 &
      pid=$!
      BGPIDS="$BGPIDS $pid"
    else
      in_ns "$path" "$h" env "${env[@]}" timeout -k 5 300 "$P2P" -b "$s" -e "$s" -n "$n" -w $((n / 10 + 2)) -S 1 >"$WORK/p2p.0" 2>&1
    fi
  done
  wait "$pid" 2>/dev/null
  line=$(awk -v s="$s" '$1 == s && $4 == 0 {print $2 "," $3 "," $5}' "$WORK/p2p.0")
  if [ -z "$line" ]; then
    note "- FAIL weft_p2p_perf $path $tp $s rep $rep: $(grep -v '^#' "$WORK/p2p.0" "$WORK/p2p.1" | tail -2 | tr '\n' ' ')"
    row "p2p,$path,$tp,weft,p2p,$s,$rep,,,FAIL"
  else
    IFS=, read -r lat bw used <<<"$line"
    [ "$used" = "$tp" ] || note "- weft_p2p_perf $path $tp $s: the bytes went over \"$used\", not $tp"
    row "p2p,$path,$tp,weft,p2p,$s,$rep,$lat,$bw,$used"
  fi
}

# ucx_test PATH TEST SIZE REP [-e]: with -e, endpoints with peer-failure handling (what weft's ucx plugin
# asks for, to name a dead peer), recorded as tool ucx_perftest-e.
ucx_test() {
  local path=$1 t=$2 s=$3 rep=$4 e=${5:-} n pid line tool=ucx_perftest
  [ -n "$e" ] && tool=ucx_perftest-e
  n=$(iters "$t" "$s")
  port
  in_ns "$path" 0 env UCX_TLS=tcp UCX_NET_DEVICES="$(iface "$path" 0)" timeout 300 ucx_perftest -p "$PORT" $e >/dev/null 2>&1 &
  pid=$!
  BGPIDS="$BGPIDS $pid"
  sleep 0.5
  in_ns "$path" 1 env UCX_TLS=tcp UCX_NET_DEVICES="$(iface "$path" 1)" timeout 300 ucx_perftest "$(addr0 "$path")" \
    -p "$PORT" -t "$t" -s "$s" -n "$n" -w $((n / 10 + 2)) $e >"$WORK/ucx.out" 2>&1
  wait "$pid" 2>/dev/null
  # Final: iters p50 avg overall bw_avg bw_overall(MiB/s) mr_avg mr_overall
  line=$(grep '^Final:' "$WORK/ucx.out" | tail -1)
  if [ -z "$line" ]; then
    note "- FAIL $tool $path $t $s: $(tail -2 "$WORK/ucx.out" | tr '\n' ' ')"
    row "p2p,$path,ucx,$tool,$t,$s,$rep,,,FAIL"
  elif [ "$t" = tag_lat ]; then
    row "$(echo "$line" | awk -v p="$path" -v s="$s" -v r="$rep" -v tool="$tool" '{printf "p2p,%s,ucx,%s,tag_lat,%s,%s,%s,%.4f,p50=%s", p, tool, s, r, $5, s / $5 / 1e3, $3}')"
  else
    row "$(echo "$line" | awk -v p="$path" -v s="$s" -v r="$rep" -v tool="$tool" '{printf "p2p,%s,ucx,%s,tag_bw,%s,%s,,%.4f,", p, tool, s, r, $7 * 1048576 / 1e9}')"
  fi
}

# fi_test PATH SIZE REP
fi_test() {
  local path=$1 s=$2 rep=$3 n pid line
  n=$(iters ping "$s")
  port
  in_ns "$path" 0 timeout 300 fi_pingpong -p "tcp;ofi_rxm" -e rdm -m tagged -d "$(iface "$path" 0)" -B "$PORT" -I "$n" -S "$s" \
    >/dev/null 2>&1 &
  pid=$!
  BGPIDS="$BGPIDS $pid"
  sleep 0.5
  in_ns "$path" 1 timeout 300 fi_pingpong -p "tcp;ofi_rxm" -e rdm -m tagged -d "$(iface "$path" 1)" -P "$PORT" -I "$n" -S "$s" \
    "$(addr0 "$path")" >"$WORK/fi.out" 2>&1
  wait "$pid" 2>/dev/null
  # bytes #sent #ack total time MB/sec usec/xfer Mxfers/sec
  line=$(awk 'f {print; exit} /usec\/xfer/ {f = 1}' "$WORK/fi.out")
  if [ -z "$line" ]; then
    note "- FAIL fi_pingpong $path $s: $(tail -2 "$WORK/fi.out" | tr '\n' ' ')"
    row "p2p,$path,ofi,fi_pingpong,pingpong,$s,$rep,,,FAIL"
  else
    row "$(echo "$line" | awk -v p="$path" -v s="$s" -v r="$rep" '{printf "p2p,%s,ofi,fi_pingpong,pingpong,%s,%s,%s,%.4f,", p, s, r, $7, s / $7 / 1e3}')"
  fi
}

# weft all-reduce, 4 ranks, 2 per namespace, default transports.
weft_allreduce() {
  local rep=$1
  port
  local iters=50
  # shellcheck disable=SC2086 # AR_SIZES is a list of flags
  netns_ranks 4 2 "$WORK/ar" timeout -k 5 600 "$ARP" $AR_SIZES -n "$iters" -w $((iters / 10 + 2)) -a 0 -c 1
  if ! grep -q "Out of bounds values : 0 OK" "$WORK/ar.0"; then
    note "- FAIL weft_all_reduce_perf netns rep $rep: $(cat "$WORK"/ar.* | grep -v '^#' | tail -3 | tr '\n' ' ')"
  fi
  awk -v r="$rep" '$1 ~ /^[0-9]+$/ && NF >= 14 {printf "allreduce,netns-2x2,shm+ucx-tcp,weft,all_reduce_perf,%s,%s,%s,%s,algo=%s wrong=%s\n", $1, r, $6, $8, $14, $9}' \
    "$WORK/ar.0" >>"$RAW"
  cp "$WORK/ar.0" "$WORK/ar.rep$rep.txt"
}

mpi_allreduce() {
  local rep=$1 agent=$WORK/rsh-agent.sh
  cat >"$agent" <<EOF
#!/bin/bash
# mpirun's rsh agent: "HOST CMD..." runs CMD in HOST's namespace (nodea = ${NAME}_0, nodeb = ${NAME}_1).
h=\$1; shift
case \$h in nodea) ns=${NAME}_0 ;; nodeb) ns=${NAME}_1 ;; *) echo "unknown host \$h" >&2; exit 1 ;; esac
mkdir -p /dev/shm/$NAME-\$ns $WORK/tmp-\$ns
export OMPI_MCA_btl_vader_backing_directory=/dev/shm/$NAME-\$ns OMPI_MCA_orte_tmpdir_base=$WORK/tmp-\$ns
exec ip netns exec "\$ns" /bin/sh -c "\$*"
EOF
  chmod +x "$agent"
  printf 'nodea slots=2\nnodeb slots=2\n' >"$WORK/hosts"
  # shellcheck disable=SC2086
  timeout 600 ip netns exec "${NAME}_0" mpirun --allow-run-as-root -np 4 --hostfile "$WORK/hosts" --bind-to none \
    --mca plm_rsh_agent "$agent" --mca oob_tcp_if_include "$SUBNET" --mca pml ob1 --mca btl self,vader,tcp \
    --mca btl_tcp_if_include "$SUBNET" --mca mpi_yield_when_idle 1 -x PATH \
    "$WORK/mpi_coll_bench" $AR_SIZES -o allreduce -n 50 -N 50 >"$WORK/mpi.out" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || note "- FAIL mpirun across namespaces rep $rep (status $rc): $(grep -v '^#' "$WORK/mpi.out" | tail -3 | tr '\n' ' ')"
  awk -v r="$rep" '$1 ~ /^[0-9]+$/ && NF == 8 {printf "allreduce,netns-2x2,vader+tcp,openmpi,mpi_coll_bench,%s,%s,%s,%s,wrong=%s\n", $1, r, $4, $7, $8}' \
    "$WORK/mpi.out" >>"$RAW"
  cp "$WORK/mpi.out" "$WORK/mpi.rep$rep.txt"
}

PATHS="lo"
[ $HAVE_NS = 1 ] && PATHS="lo netns"
for rep in $(seq 1 "$REPS"); do
  echo "# repetition $rep of $REPS: $(uptime)" >&2
  for path in $PATHS; do
    for s in $SIZES; do
      if [ $HAVE_UCX = 1 ]; then
        weft_p2p "$path" ucx "$s" "$rep"
        if [ $HAVE_PERFTEST = 1 ]; then
          ucx_test "$path" tag_lat "$s" "$rep"
          ucx_test "$path" tag_bw "$s" "$rep"
          ucx_test "$path" tag_lat "$s" "$rep" -e
          ucx_test "$path" tag_bw "$s" "$rep" -e
        fi
      fi
      if [ $HAVE_OFI = 1 ]; then
        weft_p2p "$path" ofi "$s" "$rep"
        [ $HAVE_PINGPONG = 1 ] && fi_test "$path" "$s" "$rep"
      fi
    done
  done
  if [ $HAVE_NS = 1 ]; then
    # Alternate which side goes first from one repetition to the next.
    if [ $((rep % 2)) = 1 ]; then
      [ $HAVE_UCX = 1 ] && weft_allreduce "$rep"
      [ $HAVE_MPI = 1 ] && mpi_allreduce "$rep"
    else
      [ $HAVE_MPI = 1 ] && mpi_allreduce "$rep"
      [ $HAVE_UCX = 1 ] && weft_allreduce "$rep"
    fi
  fi
done
LOAD_AFTER=$(uptime)
echo "# end: $LOAD_AFTER" >&2

# Medians and the tables.
python3 - "$RAW" "$PREFIX" "$NOTES" "$LOAD_BEFORE" "$LOAD_AFTER" "$REPS" "$(nproc)" <<'EOF'
import csv, statistics, sys
raw, prefix, notes, before, after, reps, ncpu = sys.argv[1:]
rows = list(csv.DictReader(open(raw)))
def med(vals):
    v = [float(x) for x in vals if x not in ("", None)]
    return statistics.median(v) if v else None
groups = {}
for r in rows:
    key = (r["section"], r["path"], r["transport"], r["tool"], r["test"], int(r["size"]))
    groups.setdefault(key, []).append(r)
with open(prefix + ".csv", "w") as f:
    w = csv.writer(f)
    w.writerow(["section", "path", "transport", "tool", "test", "size", "runs", "lat_us_median", "bw_GBps_median",
                "lat_us_min", "lat_us_max", "bw_GBps_min", "bw_GBps_max"])
    M = {}
    for key in sorted(groups):
        g = groups[key]
        lats = [float(x["lat_us"]) for x in g if x["lat_us"]]
        bws = [float(x["bw_GBps"]) for x in g if x["bw_GBps"]]
        lm, bm = med(lats), med(bws)
        M[key] = (lm, bm)
        w.writerow(list(key) + [len(g), "" if lm is None else "%.3f" % lm, "" if bm is None else "%.4f" % bm,
                                "%.3f" % min(lats) if lats else "", "%.3f" % max(lats) if lats else "",
                                "%.4f" % min(bws) if bws else "", "%.4f" % max(bws) if bws else ""])
def g(*key):
    return M.get(key, (None, None))
def fmt(x, p=2):
    return "–" if x is None else ("%.*f" % (p, x))
def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else "%.2f" % (a / b)
def diff(a, b):
    return "–" if a is None or b is None else "%+.1f" % (a - b)
sizes = sorted({k[5] for k in M if k[0] == "p2p"})
paths = [p for p in ("lo", "netns") if any(k[1] == p for k in M)]
out = []
out.append("# Issue 5: weft over its network plugins vs the raw tools (loopback and two network namespaces)\n")
out.append("Produced by `perf/net_bench.sh` (medians of %s repetitions, interleaved; %s CPUs). Machine load:\n" % (reps, ncpu))
out.append("- before: `%s`\n- after: `%s`\n" % (before.strip(), after.strip()))
out.append("With a load average above the CPU count, every ping-pong pays for the scheduler (busy-polling processes "
           "share 2 cores with other work): treat loaded numbers as noisy and re-run on a quiet machine.\n")
out.append("## Headline ratios\n")
big, small = (max(sizes), min(sizes)) if sizes else (0, 0)
out.append("| path | transport | weft bw / raw bw @%d B | weft lat − raw lat @%d B (µs) |" % (big, small))
out.append("|---|---|---|---|")
for p in paths:
    wl, wb = g("p2p", p, "ucx", "weft", "p2p", big)
    _, rb = g("p2p", p, "ucx", "ucx_perftest", "tag_bw", big)
    wl8, _ = g("p2p", p, "ucx", "weft", "p2p", small)
    rl8, _ = g("p2p", p, "ucx", "ucx_perftest", "tag_lat", small)
    out.append("| %s | ucx tcp (vs ucx_perftest tag_bw / tag_lat) | %s | %s |" % (p, ratio(wb, rb), diff(wl8, rl8)))
    _, rbe = g("p2p", p, "ucx", "ucx_perftest-e", "tag_bw", big)
    rl8e, _ = g("p2p", p, "ucx", "ucx_perftest-e", "tag_lat", small)
    out.append("| %s | ucx tcp (vs ucx_perftest -e: the same peer-failure handling) | %s | %s |" % (p, ratio(wb, rbe), diff(wl8, rl8e)))
    wl, _ = g("p2p", p, "ofi", "weft", "p2p", big)
    rl, _ = g("p2p", p, "ofi", "fi_pingpong", "pingpong", big)
    wl8, _ = g("p2p", p, "ofi", "weft", "p2p", small)
    rl8, _ = g("p2p", p, "ofi", "fi_pingpong", "pingpong", small)
    # libfabric has no streaming tool here: the ping-pong rates (size / one-way time) are compared.
    out.append("| %s | ofi tcp;ofi_rxm (ping-pong rate, vs fi_pingpong) | %s | %s |" % (p, ratio(rl, wl), diff(wl8, rl8)))
out.append("\n## Point to point, 2 ranks\n")
out.append("lat = half a round trip (µs); stream = GB/s (1e9 B/s) of a one-way stream (weft: windows of 16 grouped "
           "sends + 1-byte ack, from one buffer into one, -S 1; ucx_perftest tag_bw, the same way); pp = size / lat, the ping-pong rate (GB/s).\n")
out.append("| path | transport | size (B) | weft lat | raw lat | Δlat | weft stream | raw stream | stream ratio | weft pp | raw pp | pp ratio |")
out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
for p in paths:
    for tp, label, raw_lat, raw_bw in (
            ("ucx", "ucx", ("ucx_perftest", "tag_lat"), ("ucx_perftest", "tag_bw")),
            ("ucx", "ucx (raw -e)", ("ucx_perftest-e", "tag_lat"), ("ucx_perftest-e", "tag_bw")),
            ("ofi", "ofi", ("fi_pingpong", "pingpong"), None)):
        for s in sizes:
            wl, wb = g("p2p", p, tp, "weft", "p2p", s)
            rl, _ = g("p2p", p, tp, raw_lat[0], raw_lat[1], s)
            rb = g("p2p", p, tp, raw_bw[0], raw_bw[1], s)[1] if raw_bw else None
            if wl is None and rl is None:
                continue
            wpp = s / wl / 1e3 if wl else None
            rpp = s / rl / 1e3 if rl else None
            out.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                p, label, s, fmt(wl), fmt(rl), diff(wl, rl), fmt(wb, 4), fmt(rb, 4), ratio(wb, rb),
                fmt(wpp, 4), fmt(rpp, 4), ratio(wpp, rpp)))
ar = sorted({k[5] for k in M if k[0] == "allreduce"})
if ar:
    out.append("\n## All-reduce, 4 ranks, 2 per namespace (float32 sum, out of place)\n")
    out.append("weft: shared memory inside a namespace, ucx tcp over the veths between (default transports). "
               "Open MPI 4.1: pml ob1, btl self,vader,tcp (vader inside, tcp between), launched across the "
               "namespaces through an rsh agent. time = mean over ranks (µs), busbw in GB/s.\n")
    out.append("| size (B) | weft time | MPI time | weft busbw | MPI busbw | busbw ratio weft/MPI |")
    out.append("|---|---|---|---|---|---|")
    for s in ar:
        wt, wb = g("allreduce", "netns-2x2", "shm+ucx-tcp", "weft", "all_reduce_perf", s)
        mt, mb = g("allreduce", "netns-2x2", "vader+tcp", "openmpi", "mpi_coll_bench", s)
        out.append("| %d | %s | %s | %s | %s | %s |" % (s, fmt(wt, 1), fmt(mt, 1), fmt(wb, 3), fmt(mb, 3), ratio(wb, mb)))
n = open(notes).read().strip()
if n:
    out.append("\n## Notes from the run\n")
    out.append(n)
open(prefix + ".md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
echo "wrote $PREFIX.md, $PREFIX.csv, $RAW" >&2
