/**
 * Journal records of objects on a remote (ssh) target. Each carries its target, so
 * `lab down` after a `kill -9` reaches the host again without the topology.
 */

/** How to reach a target again: the topology's ssh fields and the lab's control socket. */
export interface RemoteTarget {
  node: string;
  host: string;
  user?: string;
  port?: number;
  identityFile?: string;
  jump?: string;
  knownHosts?: string;
  /** The ControlMaster socket on this machine (under the lab's state dir). */
  control: string;
  /** The login is not root: commands go through sudo -n. */
  sudo?: boolean;
}

/** Which tool changes (and puts back) a host setting. */
export type SettingTool = 'ip' | 'ethtool-features' | 'ethtool-priv-flags' | 'proc' | 'ethtool-channels';

/** One object or changed setting on a target. */
export type RemoteItem =
  /** The multiplexed connection (closed last, with ssh -O exit). */
  | { what: 'connection' }
  /** Namespaces on the target; their processes are killed before they go. */
  | { what: 'netns'; names: string[] }
  /** A directory the lab created on the target (BPF objects, pins). */
  | { what: 'dir'; path: string }
  /** A cgroup v2 directory on the target (its processes are killed with cgroup.kill first). */
  | { what: 'cgroup'; path: string }
  /** The host's NIC `dev`, moved into `netns` and renamed `name`; put back under its own name with its addresses. */
  | { what: 'nic'; dev: string; netns: string; name: string; mac?: string; addrs: string[]; up: boolean }
  /** A setting of the host's NIC `dev` with its value before the lab changed it. */
  | { what: 'setting'; dev: string; tool: SettingTool; key: string; old: string }
  /** A process the lab started on the target (tcp_mmap); killed only if its pid still runs `comm`. */
  | { what: 'process'; pid: number; comm: string };
