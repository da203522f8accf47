import { resolve as resolvePath } from 'node:path';
import type { Loaded } from './loader.js';
import type { SshTarget } from './model.js';

type Raw = Loaded['topology'];
type Err = (path: (string | number)[], message: string) => void;

/** A node's ssh target, checked against the lab's backend; paths made absolute against the topology's directory. */
export function sshTarget(backend: string, n: Raw['nodes'][number], i: number, dir: string, err: Err): SshTarget | undefined {
  if (backend !== 'ssh') {
    if (n.ssh) err(['nodes', i, 'ssh'], `ssh applies to the ssh backend only (this lab's backend is ${backend})`);
    return undefined;
  }
  if (!n.ssh) {
    err(['nodes', i, 'name'], 'backend ssh: every node needs ssh: {host, ...}, the host it runs on');
    return undefined;
  }
  const s = n.ssh;
  if (s.profile && !s.allowHostChanges)
    err(['nodes', i, 'ssh', 'profile'], `profile ${s.profile} changes the host's NIC: it needs allowHostChanges: true`);
  if (s.channels !== undefined && !s.allowHostChanges)
    err(['nodes', i, 'ssh', 'channels'], `channels ${s.channels} changes the host's NIC: it needs allowHostChanges: true`);
  const abs = (p: string | undefined) => (p && !p.startsWith('~') ? resolvePath(dir, p) : p);
  return { ...s, identityFile: abs(s.identityFile), knownHosts: abs(s.knownHosts) };
}

/** A link between ssh nodes is each host's own NIC: both ends must name one, and moving it is a host change. */
export function sshLinkRules(t: Raw, err: Err): void {
  const targets = new Map<string, string>();
  t.nodes.forEach((n, i) => {
    if (!n.ssh) return;
    const key = `${n.ssh.user ?? ''}@${n.ssh.host}:${n.ssh.port ?? 22}`;
    const prev = targets.get(key);
    if (prev) err(['nodes', i, 'ssh', 'host'], `${key} is already node ${prev}'s target: one node per host`);
    else targets.set(key, n.name);
  });
  t.links.forEach((l, k) => {
    l.endpoints.forEach((e, m) => {
      const i = t.nodes.findIndex((n) => n.name === e);
      const s = t.nodes[i]?.ssh;
      if (!s) return;
      if (!s.nic) err(['links', k, 'endpoints', m], `node ${e}: a link on the ssh backend is a NIC of the host: set nodes[${i}].ssh.nic`);
      else if (!s.allowHostChanges)
        err(
          ['links', k, 'endpoints', m],
          `node ${e}: the link moves NIC ${s.nic} into the lab's namespace, a host change: set nodes[${i}].ssh.allowHostChanges: true`,
        );
    });
  });
  const linked = new Map<string, number>();
  for (const l of t.links) for (const e of l.endpoints) linked.set(e, (linked.get(e) ?? 0) + 1);
  t.nodes.forEach((n, i) => {
    if ((linked.get(n.name) ?? 0) > 1) err(['nodes', i, 'ssh', 'nic'], `node ${n.name} has several links but one NIC (ssh.nic)`);
  });
}
