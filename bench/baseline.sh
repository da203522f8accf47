#!/bin/bash
# Baseline for bench/pods.ts: the same kernel operations `lab up` / `lab down` issue
# for a one-node lab with N veth pods and a peer behind a 200mbit uplink (ipv4+ipv6,
# hostRouting bpf, bigTcp on), done as cheaply as plain tools allow:
#   up:   1 `ip -batch` (netns add x(N+2), link add ... netns X type veth peer ... netns Y)
#         1 `ip -n NODE -batch`, then in parallel: sysctl (nsenter), `tc -n NODE -batch`, `ip -n PEER -batch`
#         N `ip -n POD -batch FILE`, 4 at a time (xargs -P4, like the lab's pool of 4)
#         1 `ip -d -j link show` in the node (ifindexes), `bpftool prog loadall`,
#         1 `nsenter ... bpftool batch file -` (endpoint map updates + tcx attaches)
#         BIG TCP: per namespace (N+2) one `ip -d -j link show` and one `ip -n NS -batch -`
#         setting min(196608, tso_max_size) on every device, 4 namespaces at a time
#         (the node's read is reused from the step above instead of being repeated).
#   down: 1 `ip -force -batch` of `netns del` lines, `rm -r` of the pin dir.
# Prints one parseable line:  BASELINE n=N up_s=SECONDS down_s=SECONDS
# Usage: bench/baseline.sh N        (root; names bench-N.* cannot clash with the lab's dpl-*)
set -euo pipefail

N=${1:?usage: baseline.sh N}
[[ $N =~ ^[0-9]+$ ]] && ((N >= 1 && N <= 250)) || { echo "baseline.sh: N must be 1..250" >&2; exit 2; }
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

step "provision"
# --- provision: namespaces and veth pairs created directly inside them
b=""
for ns in "${namespaces[@]}"; do b+="netns add $ns"$'\n'; done
for ((i = 1; i <= N; i++)); do b+="link add lxc-p$i netns $NODE type veth peer name eth0 netns $PFX.p$i"$'\n'; done
b+="link add uplink netns $NODE type veth peer name eth0 netns $PEER"$'\n'
mkdir -p "$PIN"
ip -batch - <<<"$b"

step "node batch"
# --- wire the node (same lines as wiring.ts nodeBatch)
b="link set lo up"$'\n'
for ((i = 1; i <= N; i++)); do
	h=$((i + 1))
	printf -v x %x $h
	b+="link set lxc-p$i addrgenmode none
addr add 10.244.1.1/32 dev lxc-p$i
addr add fd00:244:1::1/128 dev lxc-p$i nodad
addr add fe80::1/64 dev lxc-p$i nodad
link set lxc-p$i up
route add 10.244.1.$h/32 dev lxc-p$i
route add fd00:244:1::$x/128 dev lxc-p$i
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
route add 10.244.1.0/24 via 10.255.1.1 dev eth0
route add fd00:244:1::/64 via fd00:255:1::1 dev eth0" &
j3=$!
wait $j1 && wait $j2 && wait $j3

step "pods"
# --- pods: one ip -batch each, 4 at a time (same lines as wiring.ts podBatch)
for ((i = 1; i <= N; i++)); do
	h=$((i + 1))
	printf -v x %x $h
	printf '%s\n' "link set lo up" "link set eth0 addrgenmode none" \
		"addr add 10.244.1.$h/32 dev eth0" "addr add fd00:244:1::$x/128 dev eth0 nodad" \
		"link set eth0 up" "route add 10.244.1.1 dev eth0 scope link" "route add default via 10.244.1.1 dev eth0" \
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
# set the four BIG TCP sizes on every device of one namespace, given its link lines
setsizes() { # $1 netns, $2 link lines
	local b="" idx dev tso size
	while read -r idx dev tso; do
		[[ -n $dev ]] || continue
		size=$BIG
		((tso > 0 && tso < BIG)) && size=$tso
		b+="link set dev $dev gso_max_size $size gro_max_size $size gso_ipv4_max_size $size gro_ipv4_max_size $size"$'\n'
	done <<<"$2"
	[[ -n $b ]] && ip -n "$1" -batch - <<<"$b"
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
	printf -v h %02x $((i + 1))
	le32 "${ifindex[lxc-p$i]}"
	# struct ep_key { u8 family; u8 pad[3]; u8 addr[16]; } (bpf/host_routing.c)
	b+="map update pinned $MAPS/endpoints key hex 04 00 00 00 0a f4 01 $h 00 00 00 00 00 00 00 00 00 00 00 00 value hex $v"$'\n'
	b+="map update pinned $MAPS/endpoints key hex 06 00 00 00 fd 00 02 44 00 01 00 00 00 00 00 00 00 00 00 $h value hex $v"$'\n'
done
for ((i = 1; i <= N; i++)); do b+="net attach tcx_ingress pinned $PROGS/from_pod dev lxc-p$i"$'\n'; done
b+="net attach tcx_ingress pinned $PROGS/from_netdev dev uplink"$'\n'
step "bpftool batch"
nsenter --net=/run/netns/"$NODE" -- bpftool batch file - <<<"$b" >/dev/null

step "bigtcp"
# --- BIG TCP: node (links already read), then pods and peer, 4 namespaces at a time
setsizes "$NODE" "$nodelinks"
others=("${namespaces[@]:1}")
for ((w = 0; w < P; w++)); do
	(
		for ((k = w; k < ${#others[@]}; k += P)); do
			ns=${others[k]}
			setsizes "$ns" "$(links "$(ip -n "$ns" -d -j link show)")"
		done
	) &
	pids[w]=$!
done
for pid in "${pids[@]}"; do wait "$pid"; done

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
