import { join } from 'node:path';
import { EXIT } from '../errors.js';
import { stateRoot } from '../lifecycle/journal.js';
import type { RemoteTarget } from '../lifecycle/remote.js';
import { table } from '../report/table.js';
import { printError } from './output.js';

/** `[user@]host[:port]`, or a test target's name (left, right). */
export function parseTargetSpec(spec: string, identityFile?: string, knownHosts?: string): RemoteTarget {
  const m = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec);
  const host = m ? m[2].replace(/^\[|\]$/g, '') : spec;
  return {
    node: spec,
    host,
    user: m?.[1],
    port: m?.[3] ? Number(m[3]) : undefined,
    identityFile,
    knownHosts,
    control: join(stateRoot(), '.ssh', `doctor.${process.pid}.sock`),
  };
}

/** `lab doctor --target HOST`: one target's kernel, tools and NICs, read over ssh. */
export async function doctorTarget(spec: string, opts: { identity?: string; knownHosts?: string; json?: boolean }): Promise<number> {
  const { TARGETS, targetOf } = await import('../backends/ssh/targets.js');
  const { openMaster, closeMaster } = await import('../backends/ssh/connection.js');
  const { SshExec } = await import('../backends/ssh/exec.js');
  const { probeTarget } = await import('../backends/ssh/probe.js');
  const { nicRows } = await import('../backends/ssh/nic.js');
  const test = TARGETS.find((t) => t.name === spec);
  const t = test ? { ...targetOf(test), control: parseTargetSpec(spec).control } : parseTargetSpec(spec, opts.identity, opts.knownHosts);
  try {
    await openMaster(t);
    const f = await probeTarget(new SshExec(t, false));
    if (opts.json) process.stdout.write(JSON.stringify({ target: spec, ...f, kernel: { ...f.kernel, config: undefined } }, null, 2) + '\n');
    else {
      const k = f.kernel;
      const out = [
        `target ${spec}: kernel ${k.release} (${k.arch}), config from ${k.configSource ?? 'nowhere (no /proc/config.gz, no /boot/config-*)'}, ` +
          `BTF ${k.btf ? 'yes' : 'no'}, bpffs ${k.bpffs ? 'mounted' : 'NOT mounted'}, ${f.cpus} CPUs${f.emulated ? ' (QEMU TCG: emulated)' : ''}`,
        `root: ${f.uid === 0 ? 'login is root' : f.sudo ? `uid ${f.uid}, sudo -n works` : `uid ${f.uid} and sudo -n fails: the lab cannot run here`}`,
        `tools: ${Object.entries(k.tools)
          .filter(([n]) => n !== 'clang')
          .map(([n, v]) => `${n} ${v.path ? (v.version?.join('.') ?? 'yes') : 'MISSING'}`)
          .join(', ')}`,
        `config: ${['CONFIG_NETKIT', 'CONFIG_NET_SCH_FQ', 'CONFIG_NET_XGRESS', 'CONFIG_DEBUG_INFO_BTF'].map((c) => `${c}=${k.config[c] ?? 'n'}`).join(' ')}`,
        '',
        ...(f.nics.length
          ? f.nics.flatMap((n) => [table([`NIC ${n.name}`, ''], nicRows(n)), ''])
          : ['no physical NICs (none with /sys/class/net/X/device)']),
      ];
      process.stdout.write(out.join('\n') + '\n');
    }
    return EXIT.ok;
  } catch (e) {
    printError(e);
    return EXIT.badInput;
  } finally {
    await closeMaster(t);
  }
}
