import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LabError } from '../../errors.js';
import { runArgv } from '../../exec/exec.js';
import { cacheRoot } from '../../kernels/cache.js';

/** The kernel tree tcp_mmap comes from (Debian bookworm's, with tools/testing/selftests/net/tcp_mmap.c). */
export const TCP_MMAP_SOURCE_PKG = 'linux-source-6.12';
const SOURCE = 'tools/testing/selftests/net/tcp_mmap.c';

export const tcpMmapPath = () => join(cacheRoot(), 'tools', 'tcp_mmap');

/**
 * tcp_mmap, built statically (so that it runs on any target whatever its libc) from the
 * kernel selftest in Debian's kernel source package: apt-get download (no install), the one
 * file taken out of the tree's tarball, gcc -static with libcrypto (it hashes what it
 * receives with EVP_sha256). Its stdout is made line-buffered (a constructor linked beside it):
 * the receiver keeps listening after each connection, and a killed process would lose a
 * buffered report. Cached; returns the binary's path.
 */
export async function buildTcpMmap(progress: (m: string) => void, signal?: AbortSignal): Promise<string> {
  const out = tcpMmapPath();
  if (existsSync(out)) return out;
  for (const [f, pkg] of [
    ['/usr/bin/gcc', 'gcc'],
    ['/usr/lib/x86_64-linux-gnu/libc.a', 'libc6-dev'],
    ['/usr/lib/x86_64-linux-gnu/libcrypto.a', 'libssl-dev'],
  ])
    if (!existsSync(f)) throw new LabError('E_REQUIREMENT', `${f} is missing (tcp_mmap is built statically)`, `apt-get install ${pkg}`);
  const dir = join(cacheRoot(), 'tools', 'src');
  mkdirSync(dir, { recursive: true });
  if (!readdirSync(dir).some((f) => f.startsWith(`${TCP_MMAP_SOURCE_PKG}_`))) {
    progress(`downloading ${TCP_MMAP_SOURCE_PKG} (about 150 MB) for ${SOURCE}`);
    await runArgv(['sh', '-c', 'cd "$1" && apt-get download "$2"', 'sh', dir, TCP_MMAP_SOURCE_PKG], { signal });
  }
  progress(`building tcp_mmap statically from ${SOURCE}`);
  const script = `set -e
cd "$1"
deb=$(ls "$2"_*.deb | head -n1)
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - --wildcards "./usr/src/$2.tar.xz" | xz -dc | tar -xf - --wildcards "*/$3"
printf '#include <stdio.h>\n__attribute__((constructor)) static void dpl_linebuf(void) { setvbuf(stdout, NULL, _IOLBF, 0); }\n' > linebuf.c
gcc -static -O2 -o "$4.tmp" "$2/$3" linebuf.c -lcrypto -lpthread 2>/dev/null
mv "$4.tmp" "$4"`;
  await runArgv(['sh', '-c', script, 'sh', dir, TCP_MMAP_SOURCE_PKG, SOURCE, out], { signal });
  return out;
}

/** What tcp_mmap's receiver prints per connection (tcp_mmap.c, child_thread: "received ... Gbit", "cpu usage ..."). */
export interface TcpMmapResult {
  mb: number;
  /** Share of the bytes received through mmap() (TCP_ZEROCOPY_RECEIVE). */
  mmapPct: number;
  seconds: number;
  gbps: number;
  /** CPU the receiver spent per MB received (user + sys), microseconds. */
  usecPerMb?: number;
  /** The receiving socket's tcpi_rcv_mss: the payload of the segments it got (page-filling at the seed's MTU). */
  rcvMss?: number;
}

/** The receiver's report lines (pure: unit-tested). undefined when it printed none. */
export function parseTcpMmap(out: string): TcpMmapResult | undefined {
  const m = /received ([\d.e+]+) MB \(([\d.e+]+) % mmap'ed\) in ([\d.e+]+) s, ([\d.e+]+) Gbit/.exec(out);
  if (!m) return undefined;
  const cpu = /([\d.e+]+) usec per MB/.exec(out);
  const mss = /rcv_mss (\d+)/.exec(out);
  return {
    mb: Number(m[1]),
    mmapPct: Number(m[2]),
    seconds: Number(m[3]),
    gbps: Number(m[4]),
    usecPerMb: cpu ? Number(cpu[1]) : undefined,
    ...(mss ? { rcvMss: Number(mss[1]) } : {}),
  };
}

/** CPU seconds per GB from tcp_mmap's usec per MB (1 GB = 1024 MB, as tcp_mmap counts MB in 2^20 bytes). */
export const cpuSecondsPerGb = (usecPerMb: number) => (usecPerMb * 1024) / 1e6;
