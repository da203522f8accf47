#!/bin/bash
# Floors for bench/pods.ts: the kernel operations `lab up` / `lab down` issue for a
# one-node lab with N veth pods and a peer behind a 200mbit uplink (ipv4+ipv6, hostRouting
# bpf, bigTcp on), done two ways with plain tools.
#
# tools (default): the fastest script a person could write with iproute2's batch mode.
#   up:   1 `ip -batch` (netns add x(N+2) and one probe veth pair), 1 `ip -d -j link show`
#         (the probe's tso_max_size: TSO probing once per driver kind), 1 `ip -n NODE -batch`
#         (probe deleted; every pair created inside its namespaces with its BIG TCP sizes)
#         1 `ip -n NODE -batch`, then in parallel: sysctl (nsenter), `tc -n NODE -batch`, `ip -n PEER -batch`
#         N `ip -n POD -batch FILE`, 4 at a time (iproute2 has no way to configure several
#         namespaces from one process: one process per pod is its floor)
#         1 `ip -d -j link show` in the node (ifindexes), `bpftool prog loadall`,
#         1 `nsenter ... bpftool batch file -` (endpoint map updates + tcx attaches)
#   down: 1 `ip -force -batch` of `netns del` lines, `rm -r` of the pin dir.
# floor: the kernel-only floor: the namespaces and sized veth pairs in one `ip -batch`,
#   nothing configured in them; down as above.
# Prints one parseable line:  BASELINE|FLOOR n=N up_s=SECONDS down_s=SECONDS
# Usage: bench/baseline.sh N [tools|floor]   (root; names bench-N.* cannot clash with the lab's dpl-*)
set -euo pipefail

N=${1:?usage: baseline.sh N [tools|floor]}
MODE=${2:-tools}
[[ $N =~ ^[0-9]+$ ]] && ((N >= 1 && N <= 1000)) || { echo "baseline.sh: N must be 1..1000" >&2; exit 2; }
[[ $MODE == tools || $MODE == floor ]] || { echo "baseline.sh: mode must be tools or floor" >&2; exit 2; }
P=4
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OBJ=$ROOT/build/bpf/host_routing.o
[[ -f $OBJ ]] || { echo "baseline.sh: $OBJ missing (run bpf/build.sh)" >&2; exit 2; }

PFX=bench-$N
NODE=$PFX.node
PEER=$PFX.peer
PIN=/sys/fs/bpf/bench-$N
PROGS=$PIN/node/prog
MAPS=$PIN/node/maps
BIG=196608
TMP=$(mktemp -d /dev/shm/bench-baseline.XXXXXX)

namespaces=("$NODE")
for ((i = 1; i <= N; i++)); do namespaces+=("$PFX.p$i"); done
namespaces+=("$PEER")

down() {
	local b=""
	for ns in "${namespaces[@]}"; do [[ -e /run/netns/$ns ]] && b+="netns del $ns"$'\n'; done
	[[ -n $b ]] && ip -force -batch - <<<"$b" >/dev/null 2>&1 || true
	rm -r "$PIN" 2>/dev/null || true
}
cleanup_on_error() {
	echo "baseline.sh: failed at line $1; cleaning up" >&2
	down
	rm -rf "$TMP"
	exit 1
}
trap 'cleanup_on_error $LINENO' ERR

# BASELINE_TRACE=1: time of each step on stderr
step() { [[ ${BASELINE_TRACE:-} == 1 ]] && echo "  $(date +%s.%N) $*" >&2 || true; }

if [[ ${BASELINE_DOWN:-} == 1 ]]; then down; rm -rf "$TMP"; exit 0; fi

t_up0=$(date +%s.%N)

# Pod h (2..N+1) of 10.244.0.0/22 and fd00:244:1::/64; the gateway is .1 / ::1.
v4() { printf -v a '10.244.%d.%d' $(($1 >> 8)) $(($1 & 255)); }
v6() { printf -v a 'fd00:244:1::%x' "$1"; }

step "provision"
# --- provision: namespaces, then every veth pair created directly inside its namespaces with
# its BIG TCP sizes: min(196608, tso_max_size), tso_max_size read once from a probe pair.
b=""
for ns in "${namespaces[@]}"; do b+="netns add $ns"$'\n'; done
sized() { local s=$BIG; ((TSO > 0 && TSO < BIG)) && s=$TSO; echo "gso_max_size $s gro_max_size $s gso_ipv4_max_size $s gro_ipv4_max_size $s"; }
pairs() {
	local sz i
	sz=$(sized)
	for ((i = 1; i <= N; i++)); do echo "link add lxc-p$i netns $NODE $sz type veth peer name eth0 netns $PFX.p$i $sz"; done
	echo "link add uplink netns $NODE $sz type veth peer name eth0 netns $PEER $sz"
}
if [[ $MODE == floor ]]; then
	TSO=0
	ip -batch - <<<"$b$(pairs)"
	t_up1=$(date +%s.%N)
	t_down0=$t_up1
	down
	t_down1=$(date +%s.%N)
	trap - ERR
	rm -rf "$TMP"
	awk -v n="$N" -v a="$t_up0" -v b="$t_up1" -v c="$t_down0" -v d="$t_down1" 'BEGIN { printf "FLOOR n=%d up_s=%.4f down_s=%.4f\n", n, b - a, d - c }'
	exit 0
fi
b+="link add probe0 netns $NODE type veth peer name probe1 netns $NODE"$'\n'
mkdir -p "$PIN"
ip -batch - <<<"$b"
probe=$(ip -n "$NODE" -d -j link show probe0)
TSO=0
[[ $probe =~ \"tso_max_size\":([0-9]+) ]] && TSO=${BASH_REMATCH[1]}
ip -n "$NODE" -batch - <<<"link del probe0
$(pairs)"

step "node batch"
# --- wire the node (same lines as wiring.ts nodeBatch)
b="link set lo up"$'\n'
for ((i = 1; i <= N; i++)); do
	v4 $((i + 1)); p4=$a
	v6 $((i + 1))
	b+="link set lxc-p$i addrgenmode none
addr add 10.244.0.1/32 dev lxc-p$i
addr add fd00:244:1::1/128 dev lxc-p$i nodad
addr add fe80::1/64 dev lxc-p$i nodad
link set lxc-p$i up
route add $p4/32 dev lxc-p$i
route add $a/128 dev lxc-p$i
"
done
b+="link set uplink addrgenmode none
addr add 10.255.1.1/30 dev uplink
addr add fd00:255:1::1/64 dev uplink nodad
addr add fe80::1/64 dev uplink nodad
link set uplink up
route add default via 10.255.1.2 dev uplink
route add ::/0 via fd00:255:1::2 dev uplink
"
ip -n "$NODE" -batch - <<<"$b"

step "sysctl/tc/peer"
# --- sysctl, tbf and the peer, in parallel (as wireNode does)
nsenter --net=/run/netns/"$NODE" -- sysctl -q -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 &
j1=$!
tc -n "$NODE" -batch - <<<"qdisc add dev uplink root tbf rate 200mbit burst 64kb latency 50ms" &
j2=$!
ip -n "$PEER" -batch - <<<"link set lo up
link set eth0 addrgenmode none
addr add 10.255.1.2/30 dev eth0
addr add fd00:255:1::2/64 dev eth0 nodad
addr add fe80::2/64 dev eth0 nodad
link set eth0 up
route add 10.244.0.0/22 via 10.255.1.1 dev eth0
route add fd00:244:1::/64 via fd00:255:1::1 dev eth0" &
j3=$!
wait $j1 && wait $j2 && wait $j3

step "pods"
# --- pods: one ip -batch each, 4 at a time (same lines as wiring.ts podBatch)
for ((i = 1; i <= N; i++)); do
	v4 $((i + 1)); p4=$a
	v6 $((i + 1))
	printf '%s\n' "link set lo up" "link set eth0 addrgenmode none" \
		"addr add $p4/32 dev eth0" "addr add $a/128 dev eth0 nodad" \
		"link set eth0 up" "route add 10.244.0.1 dev eth0 scope link" "route add default via 10.244.0.1 dev eth0" \
		"route add fd00:244:1::1 dev eth0" "route add ::/0 via fd00:244:1::1 dev eth0" >"$TMP/p$i"
	echo "-n $PFX.p$i -batch $TMP/p$i"
done | xargs -P$P -L1 ip

# --- deploy: host routing. `ip -d -j link show` -> "ifindex ifname tso_max_size" lines, parsed in bash.
links() { # $1: JSON of ip -d -j link show
	local s=${1//\"ifindex\":/$'\n'} line
	while IFS= read -r line; do
		[[ $line =~ ^([0-9]+), ]] || continue
		local idx=${BASH_REMATCH[1]} dev tso=0
		[[ $line =~ \"ifname\":\"([^\"]+)\" ]] || continue
		dev=${BASH_REMATCH[1]}
		[[ $dev == lo ]] && continue
		[[ $line =~ \"tso_max_size\":([0-9]+) ]] && tso=${BASH_REMATCH[1]}
		echo "$idx $dev $tso"
	done <<<"$s"
}
step "host routing: read node links"
nodelinks=$(links "$(ip -n "$NODE" -d -j link show)")
mkdir -p "$PIN/node"
step "bpftool loadall"
bpftool prog loadall "$OBJ" "$PROGS" pinmaps "$MAPS"
declare -A ifindex
while read -r idx dev tso; do ifindex[$dev]=$idx; done <<<"$nodelinks"
# no $(...) in these loops: each command substitution is a fork
# struct endpoint { u32 ifindex; u32 flags; u8 mac[6]; u8 node_mac[6]; } (bpf/include/host_routing.h):
# EP_F_NO_L2 and no MACs, so the script reads no pod's MAC (the lab reads one per pod).
le32() { printf -v v '%02x %02x %02x %02x 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)); }
b=""
for ((i = 1; i <= N; i++)); do
	printf -v hi %02x $(((i + 1) >> 8))
	printf -v lo %02x $(((i + 1) & 255))
	le32 "${ifindex[lxc-p$i]}"
	# struct ep_key { u8 family; u8 pad[3]; u8 addr[16]; } (bpf/host_routing.c)
	b+="map update pinned $MAPS/endpoints key hex 04 00 00 00 0a f4 $hi $lo 00 00 00 00 00 00 00 00 00 00 00 00 value hex $v"$'\n'
	b+="map update pinned $MAPS/endpoints key hex 06 00 00 00 fd 00 02 44 00 01 00 00 00 00 00 00 00 00 $hi $lo value hex $v"$'\n'
done
for ((i = 1; i <= N; i++)); do b+="net attach tcx_ingress pinned $PROGS/from_pod dev lxc-p$i"$'\n'; done
b+="net attach tcx_ingress pinned $PROGS/from_netdev dev uplink"$'\n'
step "bpftool batch"
nsenter --net=/run/netns/"$NODE" -- bpftool batch file - <<<"$b" >/dev/null

step "up done"
t_up1=$(date +%s.%N)
if [[ ${BASELINE_KEEP:-} == 1 ]]; then # leave it up for inspection; remove with BASELINE_DOWN=1
	trap - ERR; rm -rf "$TMP"; echo "BASELINE n=$N up_only"; exit 0
fi

# --- down
t_down0=$(date +%s.%N)
b=""
for ns in "${namespaces[@]}"; do b+="netns del $ns"$'\n'; done
ip -force -batch - <<<"$b"
rm -r "$PIN"
t_down1=$(date +%s.%N)

trap - ERR
rm -rf "$TMP"
awk -v n="$N" -v a="$t_up0" -v b="$t_up1" -v c="$t_down0" -v d="$t_down1" 'BEGIN { printf "BASELINE n=%d up_s=%.4f down_s=%.4f\n", n, b - a, d - c }'
