import { join } from 'node:path';
import { z } from 'zod';
import { parseJson, type Exec } from '../exec/exec.js';

const NetkitLink = z.array(
  z.object({
    linkinfo: z
      .object({
        info_kind: z.string(),
        info_data: z.object({ mode: z.string(), type: z.string(), policy: z.string(), peer_policy: z.string() }).partial(),
      })
      .optional(),
    stats64: z.object({ tx: z.object({ dropped: z.number() }) }).optional(),
  }),
);

/** A device's kind, netkit mode and policies, and its tx_dropped counter (`ip -s -d -j link`). */
export interface NetkitDevice {
  /** linkinfo info_kind ('netkit', 'veth'...). */
  kind?: string;
  /** netkit mode: 'l2' or 'l3'. */
  mode?: string;
  /** 'primary' or 'peer'. */
  type?: string;
  /** This side's default policy without a program ('forward' or 'blackhole'). */
  policy?: string;
  /** The other side's default policy. */
  peer_policy?: string;
  /** stats64 tx dropped. */
  txDropped: number;
}

export async function readNetkitDevice(exec: Exec, dev: string, signal?: AbortSignal): Promise<NetkitDevice> {
  const r = await exec.run(['ip', '-s', '-d', '-j', 'link', 'show', 'dev', dev], { signal });
  const [l] = NetkitLink.parse(parseJson(r, 'ip -s -d -j link'));
  return { kind: l.linkinfo?.info_kind, ...l.linkinfo?.info_data, txDropped: l.stats64?.tx.dropped ?? 0 };
}

/** One netkit program syscall tried through bpf/user/nkctl.c, and what the kernel answered. */
export interface NkctlAttempt {
  /** The errno name the kernel returned, or 'allowed'. */
  errno: string;
  exitCode: number | null;
  /** nkctl's JSON line, as evidence. */
  text: string;
}

/** Query or detach a netkit hook's program from `exec` (a pod, to see the kernel refuse). */
export async function nkctlAttempt(
  exec: Exec,
  objDir: string,
  op: 'query' | 'detach',
  hook: 'peer' | 'primary',
  dev: string,
  prog?: string,
): Promise<NkctlAttempt> {
  const r = await exec.run([join(objDir, 'nkctl'), op, hook, dev, ...(prog ? [prog] : [])], { nothrow: true, needsBpffs: true });
  return { errno: /"error":"(\w+)"/.exec(r.stdout)?.[1] ?? 'allowed', exitCode: r.code, text: r.stdout.trim() };
}

/** Take a pinned program off a netkit primary's peer hook, or put it back (from the node). */
export async function setPeerProgram(exec: Exec, objDir: string, op: 'attach' | 'detach', primary: string, prog: string): Promise<void> {
  await exec.run([join(objDir, 'nkctl'), op, 'peer', primary, prog], { needsBpffs: true });
}
