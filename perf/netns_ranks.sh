# Sourced by perf/net_bench.sh and perf/hier_bench.sh: starts one weft job across the namespaces that
# scripts/netns.sh made. Needs NAME (the namespaces' prefix), A0 (namespace 0's address), PORT, SHMD (a
# shared-memory directory) and BGPIDS (the caller kills what is listed there on exit).
#
# netns_ranks N L OUT [VAR=VALUE...] CMD...: runs CMD as ranks N-1..0, rank r in namespace ${NAME}_$((r / L))
# posing as host $((r / L)) (WEFT_HOST_ID; namespaces share /dev/shm), with the launcher variables, shared
# memory inside a namespace and ucx over the veth pairs between; rank 0 in the foreground, the others waited
# for; rank r's output in OUT.r.
netns_ranks() {
  local n=$1 L=$2 out=$3 r h pids=""
  shift 3
  for ((r = n - 1; r >= 0; r--)); do
    h=$((r / L))
    local cmd=(env "WEFT_RANK=$r" "WEFT_WORLD_SIZE=$n" WEFT_ROOT="$A0:$PORT" WEFT_SOCKET_IFNAME=veth
      WEFT_HOST_ID="$NAME-host$h" WEFT_SHM_DIR="$SHMD" UCX_TLS=tcp UCX_NET_DEVICES="veth$h" WEFT_TIMEOUT=120
      "$@")
    if [ "$r" = 0 ]; then
      ip netns exec "${NAME}_$h" "${cmd[@]}" >"$out.0" 2>&1
    else
      ip netns exec "${NAME}_$h" "${cmd[@]}" >"$out.$r" 2>&1 &
      pids="$pids $!"
      BGPIDS="$BGPIDS $!"
    fi
  done
  for r in $pids; do wait "$r" 2>/dev/null; done
}
