#!/usr/bin/env bash
# Several "hosts" on one machine: network namespaces joined by a Linux bridge.
#
#   scripts/netns.sh up NAME NHOSTS   create namespaces NAME_0 .. NAME_<NHOSTS-1>, each with loopback up and
#                                     one interface veth<I> (10.X.Y.<I+1>/24), whose peer end h<I> is a port
#                                     of bridge br0 in a third namespace, NAME_br; prints one line per host:
#                                     "NAME_I vethI 10.X.Y.Z/24"
#   scripts/netns.sh down NAME        delete every namespace of NAME (the veths and the bridge go with them)
#   scripts/netns.sh exec NAME I CMD...  run CMD in host I's namespace
#   scripts/netns.sh addr NAME I      print host I's address (no prefix length)
#   scripts/netns.sh ifname NAME I    print host I's interface name (veth<I>)
#
# X and Y are derived from NAME, so two harnesses with different names use different subnets (their
# namespaces are separate anyway: nothing is created in the caller's namespace). Interface names are the
# same in every harness (veth0, veth1, ...: names are per namespace), so WEFT_SOCKET_IFNAME=veth,
# UCX_NET_DEVICES=veth<I> and FI_TCP_IFACE=veth<I> select them.
#
# `up` first removes leftovers of an earlier harness of the same NAME, and removes everything it made if it
# fails or is interrupted; callers still run `down NAME` from an EXIT trap. Namespaces hide neither /dev/shm
# nor the PID space nor the host name: ranks in different namespaces must be told apart (WEFT_HOST_ID) and
# libraries forced onto the network.
#
# Exit status: 0 done; 77 not root, or namespaces / veths / bridges not permitted here (one line on stderr
# says why); 1 any other failure; 2 bad arguments.
set -u

prog=netns.sh
die() { echo "$prog: $*" >&2; exit 1; }
skip() { echo "$prog: SKIP: $*" >&2; exit 77; }
usage() {
  echo "usage: $prog up NAME NHOSTS | down NAME | exec NAME I CMD... | addr NAME I | ifname NAME I" >&2
  exit 2
}

check_name() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$ ]] || { echo "$prog: bad NAME '$1' (1-16 of [A-Za-z0-9_-])" >&2; exit 2; }
}
check_index() {
  [[ $1 =~ ^[0-9]+$ ]] || { echo "$prog: bad host index '$1'" >&2; exit 2; }
}
need_root() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (running as uid $(id -u))"
  command -v ip >/dev/null 2>&1 || skip "the ip command (iproute2) is not installed"
}

# The namespaces of harness NAME (hosts and bridge).
list_ns() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$1_([0-9]+|br)\$"
}

do_down() {
  local ns rc=0
  for ns in $(list_ns "$1"); do
    ip netns del "$ns" 2>/dev/null || { sleep 0.2; ip netns del "$ns" 2>/dev/null; } || rc=1
  done
  [ $rc -eq 0 ] || echo "$prog: could not delete every namespace of $1 (still there: $(list_ns "$1" | tr '\n' ' '))" >&2
  return $rc
}

# 10.X.Y from NAME: X in 100..199, Y in 0..255.
subnet() {
  local h
  h=$(printf %s "$1" | cksum | cut -d' ' -f1)
  echo "10.$((100 + h % 100)).$(((h / 100) % 256))"
}

do_up() {
  local name=$1 n=$2 i out net br=$1_br
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 250 ] || { echo "$prog: bad NHOSTS '$n' (1..250)" >&2; exit 2; }
  need_root
  do_down "$name" 2>/dev/null
  # From here on, any way out but success removes what was made.
  trap 'do_down "$name" 2>/dev/null' EXIT
  trap 'exit 130' INT TERM HUP
  if ! out=$(ip netns add "$br" 2>&1); then
    skip "network namespaces are not permitted here: ip netns add $br: $out"
  fi
  ip -n "$br" link set lo up || die "cannot bring lo up in $br"
  if ! out=$(ip -n "$br" link add br0 type bridge 2>&1); then
    skip "cannot create a bridge in a namespace: $out"
  fi
  ip -n "$br" link set br0 up || die "cannot bring br0 up in $br"
  net=$(subnet "$name")
  for ((i = 0; i < n; i++)); do
    local ns=${name}_$i
    out=$(ip netns add "$ns" 2>&1) || skip "network namespaces are not permitted here: ip netns add $ns: $out"
    if ! out=$(ip -n "$ns" link add "veth$i" type veth peer name "h$i" netns "$br" 2>&1); then
      skip "cannot create a veth pair between namespaces: $out"
    fi
    # IPv6 off, so that libraries see one (IPv4) address on the interface.
    ip netns exec "$ns" sh -c 'for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > "$f"; done' 2>/dev/null
    ip -n "$ns" link set lo up &&
      ip -n "$ns" addr add "$net.$((i + 1))/24" dev "veth$i" &&
      ip -n "$ns" link set "veth$i" up &&
      ip -n "$br" link set "h$i" master br0 &&
      ip -n "$br" link set "h$i" up || die "cannot configure host $i ($ns)"
  done
  # Reachability: host 0 connects to a closed port of every other host; "refused" (an RST) means the
  # packets went both ways. Bridge ports forward at once (no STP), but give carriers a moment.
  for ((i = 1; i < n; i++)); do
    local ok=0 _try
    for _try in 1 2 3 4 5 6 7 8 9 10; do
      out=$(timeout 2 ip netns exec "${name}_0" bash -c "exec 3<>/dev/tcp/$net.$((i + 1))/9" 2>&1)
      case $out in *refused*) ok=1; break ;; esac
      sleep 0.2
    done
    [ $ok -eq 1 ] || die "host $i ($net.$((i + 1))) is not reachable from host 0: $out"
  done
  trap - EXIT INT TERM HUP
  for ((i = 0; i < n; i++)); do
    echo "${name}_$i veth$i $net.$((i + 1))/24"
  done
}

[ $# -ge 2 ] || usage
cmd=$1 name=$2
check_name "$name"
case $cmd in
  up)
    [ $# -eq 3 ] || usage
    do_up "$name" "$3"
    ;;
  down)
    [ $# -eq 2 ] || usage
    need_root
    do_down "$name"
    ;;
  exec)
    [ $# -ge 4 ] || usage
    check_index "$3"
    need_root
    ns=${name}_$3
    shift 3
    exec ip netns exec "$ns" "$@"
    ;;
  addr)
    [ $# -eq 3 ] || usage
    check_index "$3"
    a=$(ip -n "${name}_$3" -4 -o addr show dev "veth$3" 2>/dev/null | awk '{print $4}')
    [ -n "$a" ] || die "no address for host $3 of $name (is it up?)"
    echo "${a%/*}"
    ;;
  ifname)
    [ $# -eq 3 ] || usage
    check_index "$3"
    echo "veth$3"
    ;;
  *) usage ;;
esac
