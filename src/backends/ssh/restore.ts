import { LabError } from '../../errors.js';
import type { JournalEntry } from '../../lifecycle/journal.js';
import type { RemoteItem, RemoteTarget } from '../../lifecycle/remote.js';
import type { DestroyResult } from '../backend.js';
import { targetName } from './args.js';
import { SshExec } from './exec.js';
import { settingArgv } from './profile.js';
import { closeMaster, openMaster } from './connection.js';

/** Namespaces go with their processes: a process left in a deleted namespace would keep it (and its devices) alive. */
const DEL_NETNS =
  'for n in "$@"; do [ -e "/run/netns/$n" ] || continue; for p in $(ip netns pids "$n"); do kill -9 "$p"; done; ip netns del "$n"; done';

/** A cgroup's processes killed (cgroup.kill, 5.14+), then the directory removed once they are gone. */
const RM_CGROUP = `[ -d "$1" ] || exit 0
[ -e "$1/cgroup.kill" ] && echo 1 > "$1/cgroup.kill"
for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$1" 2>/dev/null && exit 0; sleep 0.2; done
rmdir "$1"`;

/** An entry of a generic kind (a pin, a namespace a check made) owned by the ssh backend, as the remote object it is. */
export function asRemote(e: JournalEntry, targets: Map<string, RemoteTarget>): { target: RemoteTarget; item: RemoteItem } | undefined {
  const o = e.obj;
  if (o.kind === 'remote') return o;
  const target = e.owner.node ? targets.get(e.owner.node) : undefined;
  if (!target) return undefined;
  if (o.kind === 'pin' || o.kind === 'dir') return { target, item: { what: 'dir', path: o.path } };
  if (o.kind === 'cgroup') return { target, item: { what: 'cgroup', path: o.path } };
  if (o.kind === 'netns') return { target, item: { what: 'netns', names: [o.name] } };
  return undefined;
}

/**
 * The NIC back under its own name in the host's namespace: from the lab's namespace if it
 * is still there, else wherever the kernel left it when the namespace went (physical devices
 * return to init_net, renamed devN on a clash: default_device_exit_net in net/core/dev.c),
 * found by its MAC; then its addresses and its up/down state.
 */
const NIC_BACK = `ns=$1 name=$2 dev=$3 mac=$4 up=$5; shift 5
if [ -e "/run/netns/$ns" ] && ip -n "$ns" link show dev "$name" >/dev/null 2>&1; then
  ip -n "$ns" link set dev "$name" down && ip -n "$ns" link set dev "$name" netns 1 name "$dev" || exit 1
elif ! ip link show dev "$dev" >/dev/null 2>&1; then
  cur=; for d in /sys/class/net/*; do [ -n "$mac" ] && [ "$(cat "$d/address")" = "$mac" ] && cur=\${d##*/}; done
  [ -n "$cur" ] || { echo "NIC $dev is in neither $ns nor the host namespace" >&2; exit 1; }
  ip link set dev "$cur" down && ip link set dev "$cur" name "$dev" || exit 1
fi
for a in "$@"; do ip addr replace "$a" dev "$dev" || exit 1; done
if [ "$up" = up ]; then ip link set dev "$dev" up; fi`;

/** A pid is killed only while it still runs the command the lab started (a pid may be reused after a reboot or its end). */
const KILL_PROC = '[ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && kill -9 "$1"; exit 0';

/** The commands that undo one remote object, in order (pure: unit-tested). The connection is closed here, not there. */
export function undoArgv(item: RemoteItem): string[][] {
  switch (item.what) {
    case 'connection':
      return [];
    case 'netns':
      return [['sh', '-c', DEL_NETNS, 'sh', ...item.names]];
    case 'dir':
      return [['rm', '-rf', item.path]];
    case 'cgroup':
      return [['sh', '-c', RM_CGROUP, 'sh', item.path]];
    case 'nic':
      return [['sh', '-c', NIC_BACK, 'sh', item.netns, item.name, item.dev, item.mac ?? '', item.up ? 'up' : 'down', ...item.addrs]];
    case 'setting':
      return [settingArgv(item.tool, item.dev, item.key, item.old)];
    case 'process':
      return [['sh', '-c', KILL_PROC, 'sh', String(item.pid), item.comm]];
  }
}

const describe = (t: RemoteTarget, i: RemoteItem) => {
  switch (i.what) {
    case 'setting':
      return `${targetName(t)}: ${i.dev} ${i.key} back to ${i.old}`;
    case 'nic':
      return `${targetName(t)}: NIC ${i.dev} back from ${i.netns}`;
    case 'netns':
      return `${targetName(t)}: namespaces ${i.names.join(', ')}`;
    case 'process':
      return `${targetName(t)}: process ${i.comm} (pid ${i.pid})`;
    default:
      return `${targetName(t)}: ${i.what} ${'path' in i ? i.path : ''}`;
  }
};

/**
 * Undo remote objects in the order given (reverse creation): NIC back, settings back to their
 * old values, namespaces, directories, and the connection last. A target that cannot be
 * reached keeps its entries in the journal for the next `lab down`.
 */
export async function destroyRemote(entries: JournalEntry[], progress: (m: string) => void): Promise<DestroyResult> {
  const gone: number[] = [];
  const left: string[] = [];
  const reach = new Map<string, Promise<string | undefined>>();
  const connect = (t: RemoteTarget) => {
    if (!reach.has(t.control))
      reach.set(
        t.control,
        openMaster(t).then(
          () => undefined,
          (e) => (e instanceof LabError ? e.message : String(e)),
        ),
      );
    return reach.get(t.control)!;
  };
  // Datapath features journal their pins and cgroups under the node only: its target is that of the node's own entries.
  const targets = new Map<string, RemoteTarget>();
  for (const e of entries) if (e.obj.kind === 'remote') targets.set(e.obj.target.node, e.obj.target);
  for (const e of entries) {
    const r = asRemote(e, targets);
    if (!r) {
      left.push(`${e.obj.kind}: not an object of an ssh target the journal names (${JSON.stringify(e.obj)})`);
      continue;
    }
    const { target, item } = r;
    if (item.what === 'connection') {
      await closeMaster(target);
      gone.push(e.seq);
      continue;
    }
    const why = await connect(target);
    if (why) {
      left.push(`${describe(target, item)}: ${why}`);
      continue;
    }
    if (item.what === 'setting' || item.what === 'nic') progress(describe(target, item));
    const exec = new SshExec(target, !!target.sudo);
    let failed: string | undefined;
    for (const argv of undoArgv(item)) {
      const r = await exec.run(argv, { nothrow: true }).catch((err: unknown) => ({ code: -1, stderr: String(err) }));
      if (r.code !== 0) failed = r.stderr.trim().split('\n').slice(-2).join(' / ');
    }
    failed ? left.push(`${describe(target, item)}: ${failed}`) : gone.push(e.seq);
  }
  return { gone, left };
}
