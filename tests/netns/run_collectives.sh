#!/usr/bin/env bash
# Collectives between "hosts" that are network namespaces joined by a bridge (scripts/netns.sh), with the
# bytes between hosts forced onto the veths: the test worker (tests/integration/worker.cc, mode
# `transport NAMES`) runs every collective, checked bit for bit, then asserts from weftCommTransportStats that
# exactly the expected transports carried bytes; this script also asserts that every rank's network
# transport names its own namespace's veth as the device (not lo, not shared memory).
#
# usage: tests/netns/run_collectives.sh BUILD_DIR [CONFIG...]
#   CONFIG (default: all of them):
#     ucx_2x2 ucx_3x2          WEFT_TRANSPORT=ucx, UCX_TLS=tcp, UCX_NET_DEVICES=veth<host>: worker `transport ucx`
#     default_2x2 default_3x2  WEFT_TRANSPORT unset (shm inside a host, ucx tcp between): `transport shm,ucx`
#     ofi_2x2 ofi_3x2          WEFT_TRANSPORT=ofi, WEFT_OFI_PROVIDER="tcp;ofi_rxm", FI_TCP_IFACE=veth<host>
#     hier_2x2 hier_3x2        as default_*, with every collective that has one forced to its hierarchical
#                              algorithm (WEFT_ALGO=...:hier)
#     kill_2x1                 2 hosts x 1 rank over ucx tcp, worker `kill 1`: rank 0 prints
#                              "KILL DETECTED rank 0" within 60 s (WEFT_TIMEOUT is 100 s, so the transport,
#                              not the timeout, must notice)
#   (HxR = H hosts of R ranks each; ranks are numbered host by host.)
# env: NETNS_TEST_TIMEOUT (seconds per configuration, default 150), KEEP_LOGS=1 (keep the rank logs)
#
# Prints one line per configuration, "PASS name (..)", "FAIL name: reason" or "SKIP name: reason", then a
# summary. Exit status: 0 every configuration that ran passed; 1 one failed; 77 none could run (not root, no
# namespaces, plugins not built: the reason is on the SKIP lines and on stderr); 2 bad arguments.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
NETNS=$SRC/scripts/netns.sh
ALL_CONFIGS="ucx_2x2 default_2x2 ofi_2x2 ucx_3x2 default_3x2 ofi_3x2 hier_2x2 hier_3x2 kill_2x1"

[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [CONFIG...]  (CONFIG: $ALL_CONFIGS)" >&2; exit 2; }
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "$0: no build directory $1" >&2; exit 2; }
shift
CONFIGS=${*:-$ALL_CONFIGS}
for c in $CONFIGS; do
  case " $ALL_CONFIGS " in *" $c "*) ;; *) echo "$0: unknown configuration $c (known: $ALL_CONFIGS)" >&2; exit 2 ;; esac
done
WORKER=$BUILD/tests/integration/weft_test_worker
[ -x "$WORKER" ] || { echo "$0: $WORKER is not built" >&2; exit 2; }
LIMIT=${NETNS_TEST_TIMEOUT:-150}

NAME=wn$$            # namespaces wn<pid>_0.., wn<pid>_br
LOGS=$(mktemp -d /tmp/weft-netns-XXXXXX)
SHM=$(mktemp -d /dev/shm/weft-netns-XXXXXX)
PIDS=""

cleanup() {
  local p
  # Each rank runs under timeout, which leads a process group of its own (the rank in it): end the groups.
  for p in $PIDS; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
  for p in $PIDS; do wait "$p" 2>/dev/null; done
  "$NETNS" down "$NAME" >/dev/null 2>&1
  rm -rf "$SHM"
  if [ "${KEEP_LOGS:-0}" = 1 ]; then echo "logs kept in $LOGS" >&2; else rm -rf "$LOGS"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The largest topology any configuration needs.
NHOSTS=2
for c in $CONFIGS; do case $c in *_3x*) NHOSTS=3 ;; esac; done
up=$("$NETNS" up "$NAME" "$NHOSTS" 2>"$LOGS/netns.err")
rc=$?
if [ $rc -ne 0 ]; then
  reason=$(tail -1 "$LOGS/netns.err")
  for c in $CONFIGS; do echo "SKIP $c: $reason"; done
  echo "$reason" >&2
  [ $rc -eq 77 ] && exit 77
  echo "$0: setting up the namespaces failed" >&2
  exit 1
fi
echo "# namespaces:"
echo "$up" | sed 's/^/#   /'
ROOT_ADDR=$("$NETNS" addr "$NAME" 0)

npass=0 nfail=0 nskip=0
port=29400

# run_ranks CONFIG HOSTS PER_HOST WORKER_ARGS... (variables of the configuration in the array ENVV):
# starts every rank in its host's namespace and waits; sets RCS (exit status per rank) and ELAPSED.
run_ranks() {
  local cfg=$1 hosts=$2 per=$3
  shift 3
  local n=$((hosts * per)) r h start
  port=$((port + 1))
  PIDS=""
  start=$(date +%s.%N)
  for ((r = 0; r < n; r++)); do
    h=$((r / per))
    # ${ENVV[@]} may contain @H@, replaced by this rank's host index.
    local e=() v
    for v in "${ENVV[@]}"; do e+=("${v//@H@/$h}"); done
    env WEFT_RANK=$r WEFT_WORLD_SIZE=$n WEFT_ROOT="$ROOT_ADDR:$port" WEFT_SOCKET_IFNAME=veth \
      WEFT_HOST_ID="$NAME-host$h" WEFT_SHM_DIR="$SHM" UCX_WARN_UNUSED_ENV_VARS=n "${e[@]}" \
      timeout -k 5 "$LIMIT" "$NETNS" exec "$NAME" "$h" "$WORKER" "$@" >"$LOGS/$cfg.$r" 2>&1 &
    PIDS="$PIDS $!"
  done
  RCS=()
  for r in $PIDS; do
    wait "$r" 2>/dev/null
    RCS+=($?)
  done
  PIDS=""
  ELAPSED=$(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN{printf "%.1f", a - b}')
}

fail() {  # CONFIG REASON
  echo "FAIL $1: $2"
  nfail=$((nfail + 1))
  local f
  for f in "$LOGS/$1".*; do
    [ -f "$f" ] || continue
    echo "#   --- ${f##*/} (last 15 lines)"
    tail -15 "$f" | sed 's/^/#   /'
  done
}

# check_transport CONFIG HOSTS PER_HOST EXPECTED NETNAME: statuses, WORKER OK, and each rank's NETNAME line
# naming its veth. Prints PASS or FAIL.
check_transport() {
  local cfg=$1 hosts=$2 per=$3 expect=$4 net=$5
  local n=$((hosts * per)) r h line dev devs="" bad=""
  for ((r = 0; r < n; r++)); do
    case ${RCS[$r]} in
      0) ;;
      124 | 137) bad="rank $r timed out after $LIMIT s"; break ;;
      *) bad="rank $r exited with status ${RCS[$r]}"; break ;;
    esac
  done
  if [ -z "$bad" ] && ! grep -q "WORKER OK" "$LOGS/$cfg.0"; then bad="rank 0 did not print WORKER OK"; fi
  if [ -z "$bad" ]; then
    for ((r = 0; r < n; r++)); do
      h=$((r / per))
      line=$(grep "^rank $r: transport $net device " "$LOGS/$cfg.$r" | head -1)
      if [ -z "$line" ]; then bad="rank $r printed no stats line for $net"; break; fi
      dev=$(echo "$line" | sed 's/.* device "\(.*\)" peers.*/\1/')
      # The device must name this host's veth (ucx: "tcp/veth<h>"; ofi: "<provider>:veth<h> <peer address>").
      if ! echo "$dev" | grep -Eq "(^|[/:])veth$h([^0-9]|\$)"; then
        bad="rank $r: $net device \"$dev\" does not name veth$h"
        break
      fi
      case $dev in *"/lo"* | *":lo "* | *":lo") bad="rank $r: $net device \"$dev\" names lo"; break ;; esac
      # The summary shows the first entry of a per-peer list (ofi lists every peer; weft cuts it at 95 bytes).
      local shown=${dev%%,*}
      [ "$shown" = "$dev" ] || shown="$shown,..."
      case " $devs " in *" \"$shown\""*) ;; *) devs="$devs \"$shown\"" ;; esac
    done
  fi
  if [ -z "$bad" ] && [ -n "$(ls -A "$SHM")" ]; then bad="shared-memory files left in $SHM: $(ls "$SHM" | head -3 | tr '\n' ' ')"; fi
  if [ -n "$bad" ]; then
    fail "$cfg" "$bad"
  else
    echo "PASS $cfg (${ELAPSED}s; carried by $expect; $net devices:$devs)"
    npass=$((npass + 1))
  fi
}

skip() {
  echo "SKIP $1: $2"
  nskip=$((nskip + 1))
}

plugin() { [ -f "$BUILD/libweft-transport-$1.so" ]; }

for cfg in $CONFIGS; do
  rm -rf "${SHM:?}"/* 2>/dev/null
  shape=${cfg#*_}
  hosts=${shape%x*} per=${shape#*x}
  case $cfg in
    ucx_*)
      plugin ucx || { skip "$cfg" "$BUILD/libweft-transport-ucx.so was not built"; continue; }
      ENVV=(WEFT_TRANSPORT=ucx UCX_TLS=tcp UCX_NET_DEVICES=veth@H@ WEFT_TIMEOUT=120)
      run_ranks "$cfg" "$hosts" "$per" transport ucx
      check_transport "$cfg" "$hosts" "$per" ucx ucx
      ;;
    default_*)
      plugin ucx || { skip "$cfg" "$BUILD/libweft-transport-ucx.so was not built"; continue; }
      ENVV=(UCX_TLS=tcp UCX_NET_DEVICES=veth@H@ WEFT_TIMEOUT=120)
      run_ranks "$cfg" "$hosts" "$per" transport shm,ucx
      check_transport "$cfg" "$hosts" "$per" shm,ucx ucx
      ;;
    hier_*)
      plugin ucx || { skip "$cfg" "$BUILD/libweft-transport-ucx.so was not built"; continue; }
      ENVV=(UCX_TLS=tcp UCX_NET_DEVICES=veth@H@ WEFT_TIMEOUT=120
        "WEFT_ALGO=allreduce:hier;allgather:hier;reducescatter:hier;broadcast:hier;reduce:hier;alltoall:hier")
      run_ranks "$cfg" "$hosts" "$per" transport shm,ucx
      check_transport "$cfg" "$hosts" "$per" shm,ucx ucx
      ;;
    ofi_*)
      plugin ofi || { skip "$cfg" "$BUILD/libweft-transport-ofi.so was not built"; continue; }
      ENVV=(WEFT_TRANSPORT=ofi "WEFT_OFI_PROVIDER=tcp;ofi_rxm" FI_TCP_IFACE=veth@H@ WEFT_TIMEOUT=120)
      run_ranks "$cfg" "$hosts" "$per" transport ofi
      check_transport "$cfg" "$hosts" "$per" ofi ofi
      ;;
    kill_*)
      plugin ucx || { skip "$cfg" "$BUILD/libweft-transport-ucx.so was not built"; continue; }
      ENVV=(WEFT_TRANSPORT=ucx UCX_TLS=tcp UCX_NET_DEVICES=veth@H@ WEFT_TIMEOUT=100)
      run_ranks "$cfg" "$hosts" "$per" kill 1
      if ! grep -q "KILL DETECTED rank 0" "$LOGS/$cfg.0"; then
        fail "$cfg" "rank 0 did not print KILL DETECTED rank 0 (status ${RCS[0]}, ${ELAPSED}s)"
      elif [ "$(echo "$ELAPSED" | awk '{print ($1 < 60)}')" != 1 ]; then
        fail "$cfg" "rank 0 took ${ELAPSED}s to notice (limit 60s)"
      elif [ "${RCS[0]}" = 124 ] || [ "${RCS[0]}" = 137 ]; then
        fail "$cfg" "rank 0 printed KILL DETECTED but did not exit within $LIMIT s"
      else
        msg=$(grep -m1 "^rank 0: call" "$LOGS/$cfg.0" | cut -c1-200)
        echo "PASS $cfg (${ELAPSED}s; $msg)"
        npass=$((npass + 1))
      fi
      ;;
  esac
done

echo "# summary: $npass passed, $nfail failed, $nskip skipped"
[ $nfail -gt 0 ] && exit 1
[ $npass -eq 0 ] && exit 77
exit 0
