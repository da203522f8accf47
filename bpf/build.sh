#!/bin/sh
# Builds every bpf/*.c into build/bpf/<name>.o (paths relative to the repo root).
set -eu
cd "$(dirname "$0")/.."

if command -v clang-19 >/dev/null 2>&1; then
	CLANG=clang-19
elif command -v clang >/dev/null 2>&1; then
	CLANG=clang
else
	echo "build.sh: clang not found (install clang-19 or clang)" >&2
	exit 1
fi

# Debian keeps asm/types.h under the multiarch dir, which -target bpf does not search.
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
INC="-I bpf/include"
[ -d "/usr/include/$MULTIARCH" ] && INC="$INC -I/usr/include/$MULTIARCH"

mkdir -p build/bpf
# Each program twice: NAME.o for tcx (6.6+), NAME_tc.o for clsact + cls_bpf on older kernels.
for src in bpf/*.c; do
	for variant in "" _tc; do
		obj="build/bpf/$(basename "$src" .c)$variant.o"
		flags=""
		[ -n "$variant" ] && flags="-DDPL_TC"
		echo "  CLANG $src -> $obj"
		# shellcheck disable=SC2086
		"$CLANG" -O2 -g -target bpf -Wall -Werror $INC $flags -c "$src" -o "$obj"
	done
done

# nkctl: netkit attach/detach/query (bpftool cannot attach netkit); static, for guests too.
echo "  CC    bpf/user/nkctl.c -> build/bpf/nkctl"
gcc -O2 -Wall -Werror -static bpf/user/nkctl.c -o build/bpf/nkctl


# nsconf: configures every pod namespace of a node from one process (setns + rtnetlink); static, for guests too.
echo "  CC    bpf/user/nsconf.c -> build/bpf/nsconf"
gcc -O2 -Wall -Werror -static bpf/user/nsconf.c -o build/bpf/nsconf

# svcprobe: the service checks' client and server (connect/sendto timing, errno, getpeername); static, for guests too.
echo "  CC    bpf/user/svcprobe.c -> build/bpf/svcprobe"
gcc -O2 -Wall -Werror -static bpf/user/svcprobe.c -o build/bpf/svcprobe

# xlctl: writes the XDP load balancer's Maglev tables (bpftool cannot carry 64 KB values); static, for guests too.
echo "  CC    bpf/user/xlctl.c -> build/bpf/xlctl"
gcc -O2 -Wall -Werror -static bpf/user/xlctl.c -o build/bpf/xlctl

# xdpgen: a packet generator from an XDP program in live-frame mode (bench/xdp-lb-pps.ts); static.
echo "  CC    bpf/user/xdpgen.c -> build/bpf/xdpgen"
gcc -O2 -Wall -Werror -static bpf/user/xdpgen.c -o build/bpf/xdpgen
