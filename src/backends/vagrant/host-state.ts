import { readFileSync } from 'node:fs';
import type { Exec } from '../../exec/exec.js';
/**
 * What libvirt and vagrant-libvirt change on the host besides the domains Vagrant destroys:
 * storage pools and the base box volume, the management network, iptables chains
 * (libvirt's network driver, src/network/bridge_driver_linux.c: LIBVIRT_INP, LIBVIRT_OUT,
 * LIBVIRT_FWI, LIBVIRT_FWO, LIBVIRT_FWX in filter, LIBVIRT_PRT in nat and mangle) and
 * net.ipv4.ip_forward (set to 1 when a NAT network starts). The lab journals a snapshot
 * before `vagrant up` and, after destroy, removes what is new and puts back the sysctl.
 */
export interface HostSnapshot {
  /** net.ipv4.ip_forward before the lab ('0' or '1'). */
  ipForward: string;
  /** `table/chain` of every LIBVIRT_* chain, per family. */
  chains: { v4: string[]; v6: string[] };
  networks: string[];
  pools: string[];
  /** Volumes as `pool/name`. */
  volumes: string[];
  domains: string[];
}

/** LIBVIRT_* chains and the rules that jump to them, from `iptables-save` output. */
export interface LibvirtChains {
  /** `table/chain`. */
  chains: string[];
  /** Rules in the host's own chains that jump into a LIBVIRT_* chain: [table, `CHAIN -j LIBVIRT_X`]. */
  jumps: [string, string][];
}

export function parseIptablesSave(text: string): LibvirtChains {
  const chains: string[] = [];
  const jumps: [string, string][] = [];
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    const c = /^:(LIBVIRT_\w+)\s/.exec(line);
    if (c) chains.push(`${table}/${c[1]}`);
    // libvirt's jumps are bare (`-A INPUT -j LIBVIRT_INP`); a rule with more matches is not libvirt's.
    const j = /^-A (\S+) -j (LIBVIRT_\w+)$/.exec(line.trim());
    if (j && !j[1].startsWith('LIBVIRT_')) jumps.push([table, `${j[1]} -j ${j[2]}`]);
  }
  return { chains, jumps };
}

/** Names from `virsh ...-list --all --name` (one per line, blank lines between). */
export const parseNames = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

/** One command that puts the host back, and what it removes (for the "left behind" message when it fails). */
export interface RestoreStep {
  what: string;
  argv: string[];
}

/**
 * Steps from `after` back to `before`: new domains, volumes, pools and networks undefined
 * (a pool's directory stays: libvirt may not have created it), libvirt's new chains emptied
 * and deleted after the jumps into them, and ip_forward put back if it changed.
 */
export function restorePlan(
  before: HostSnapshot,
  after: HostSnapshot,
  iptables: { v4: LibvirtChains; v6: LibvirtChains },
  ipForwardNow: string,
): RestoreStep[] {
  const fresh = (now: string[], then: string[]) => now.filter((x) => !then.includes(x));
  const steps: RestoreStep[] = [];
  for (const d of fresh(after.domains, before.domains))
    steps.push(
      { what: `libvirt domain ${d}`, argv: ['virsh', 'destroy', d] },
      { what: `libvirt domain ${d}`, argv: ['virsh', 'undefine', d] },
    );
  for (const v of fresh(after.volumes, before.volumes)) {
    const [pool, ...rest] = v.split('/');
    steps.push({ what: `libvirt volume ${v}`, argv: ['virsh', 'vol-delete', '--pool', pool, rest.join('/')] });
  }
  for (const p of fresh(after.pools, before.pools))
    steps.push(
      { what: `libvirt pool ${p}`, argv: ['virsh', 'pool-destroy', p] },
      { what: `libvirt pool ${p}`, argv: ['virsh', 'pool-undefine', p] },
    );
  for (const n of fresh(after.networks, before.networks))
    steps.push(
      { what: `libvirt network ${n}`, argv: ['virsh', 'net-destroy', n] },
      { what: `libvirt network ${n}`, argv: ['virsh', 'net-undefine', n] },
    );
  for (const fam of ['v4', 'v6'] as const) {
    const bin = fam === 'v4' ? 'iptables' : 'ip6tables';
    const added = fresh(iptables[fam].chains, before.chains[fam]);
    for (const [table, rule] of iptables[fam].jumps)
      if (added.some((c) => c === `${table}/${/-j (LIBVIRT_\w+)/.exec(rule)![1]}`))
        steps.push({ what: `${bin} rule -t ${table} -A ${rule}`, argv: [bin, '-w', '-t', table, '-D', ...rule.split(' ')] });
    for (const c of added) {
      const [table, chain] = c.split('/');
      steps.push(
        { what: `${bin} chain ${c}`, argv: [bin, '-w', '-t', table, '-F', chain] },
        { what: `${bin} chain ${c}`, argv: [bin, '-w', '-t', table, '-X', chain] },
      );
    }
  }
  if (ipForwardNow !== before.ipForward)
    steps.push({ what: `net.ipv4.ip_forward=${ipForwardNow}`, argv: ['sysctl', '-w', `net.ipv4.ip_forward=${before.ipForward}`] });
  return steps;
}

/** `virsh` on the system connection (vagrant-libvirt's default URI, qemu:///system). */
const virsh = (...args: string[]) => ['virsh', '-q', '-c', 'qemu:///system', ...args];

/** The host as libvirt and the firewall show it now. */
export async function takeSnapshot(exec: Exec, signal?: AbortSignal): Promise<HostSnapshot> {
  const names = async (argv: string[]) => parseNames((await exec.run(argv, { signal, nothrow: true })).stdout);
  const pools = await names(virsh('pool-list', '--all', '--name'));
  const volumes: string[] = [];
  // libvirt 9's vol-list has no --name: the name is the first column of `Name Path` rows.
  for (const p of pools) for (const row of await names(virsh('vol-list', '--pool', p))) volumes.push(`${p}/${row.split(/\s+/)[0]}`);
  const chains = async (bin: string) => parseIptablesSave((await exec.run([bin], { signal, nothrow: true })).stdout).chains;
  return {
    ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
    chains: { v4: await chains('iptables-save'), v6: await chains('ip6tables-save') },
    networks: await names(virsh('net-list', '--all', '--name')),
    pools,
    volumes,
    domains: await names(virsh('list', '--all', '--name')),
  };
}

/** Put the host back to `before`; returns what could not be removed, each with the tool's message. */
export async function restoreHost(exec: Exec, before: HostSnapshot, signal?: AbortSignal): Promise<string[]> {
  const after = await takeSnapshot(exec, signal);
  const save = async (bin: string) => parseIptablesSave((await exec.run([bin], { signal, nothrow: true })).stdout);
  const plan = restorePlan(
    before,
    after,
    { v4: await save('iptables-save'), v6: await save('ip6tables-save') },
    readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
  );
  const left: string[] = [];
  for (const s of plan) {
    const argv = s.argv[0] === 'virsh' ? virsh(...s.argv.slice(1)) : s.argv;
    const r = await exec.run(argv, { signal, nothrow: true });
    // destroy of an inactive domain/pool/network fails harmlessly before its undefine.
    if (r.code !== 0 && !/destroy$/.test(s.argv[1] ?? '')) left.push(`${s.what}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
  }
  return [...new Set(left)];
}
