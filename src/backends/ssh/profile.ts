import { chosenSize } from '../../datapath/bigtcp/bigtcp.js';
import type { SettingTool } from '../../lifecycle/remote.js';
import type { NicProfileName } from '../../topology/model.js';
import type { NicFacts } from './nic.js';

/** One setting of a host NIC the profile changes, with the value it had (journaled before the change). */
export interface Change {
  tool: SettingTool;
  dev: string;
  key: string;
  value: string;
  old: string;
  why: string;
}

/** A setting the profile asks for that this NIC cannot take, and why. */
export interface Skip {
  what: string;
  reason: string;
}

export interface ProfilePlan {
  changes: Change[];
  skips: Skip[];
  /** Settings already as the profile wants them. */
  kept: string[];
  /** The core applications (tcp_mmap) are pinned to, apart from the NIC's IRQs; undefined when the host has one core. */
  appCore?: number;
  irqCore?: number;
}

/**
 * The seed's setup (two ConnectX-6 Dx back to back): MTU 8264 so that with striding RQ
 * a GRO'ed segment fills whole 4 KiB pages (8192 bytes of payload plus the headers), LRO
 * off (LRO aggregates in hardware and bypasses GRO's accounting), striding RQ on, BIG TCP
 * sizes from TSO probing, and the NIC's IRQs on one core with the application on another.
 */
export const MLX5_MTU = 8264;
/** mlx5's driver name (ethtool -i); its private flags are defined in drivers/net/ethernet/mellanox/mlx5/core/en_ethtool.c. */
export const MLX5_DRIVER = 'mlx5_core';

/** What a profile changes on one NIC, from the NIC's facts (pure: unit-tested). */
export function planProfile(profile: NicProfileName, nic: NicFacts, cpus: number, ipv4BigTcp: boolean): ProfilePlan {
  void profile; // one profile today: mlx5-back-to-back
  const plan: ProfilePlan = { changes: [], skips: [], kept: [] };
  const dev = nic.name;
  const set = (tool: SettingTool, key: string, value: string, old: string | undefined, why: string) => {
    if (old === undefined) plan.skips.push({ what: `${key} ${value}`, reason: `the probe could not read ${dev}'s ${key}` });
    else if (old === value) plan.kept.push(`${key} ${value}`);
    else plan.changes.push({ tool, dev, key, value, old, why });
  };
  set('ip', 'mtu', String(MLX5_MTU), nic.mtu?.toString(), 'GRO segments fill whole pages with striding RQ');

  const lro = nic.features['large-receive-offload'];
  if (!lro) plan.skips.push({ what: 'lro off', reason: `${dev} (${nic.driver ?? '?'}) reports no large-receive-offload feature` });
  else if (lro.on && lro.fixed) plan.skips.push({ what: 'lro off', reason: `${dev}: LRO is fixed on by its driver` });
  else set('ethtool-features', 'lro', 'off', lro.on ? 'on' : 'off', 'LRO bypasses GRO');

  if (nic.driver !== MLX5_DRIVER)
    plan.skips.push({
      what: 'rx_striding_rq on',
      reason: `${dev} is driven by ${nic.driver ?? 'an unknown driver'}, not ${MLX5_DRIVER}: rx_striding_rq is an mlx5 private flag`,
    });
  else if (nic.privFlags.rx_striding_rq === undefined)
    plan.skips.push({ what: 'rx_striding_rq on', reason: `${dev}: this mlx5 firmware/driver has no rx_striding_rq private flag` });
  else set('ethtool-priv-flags', 'rx_striding_rq', 'on', nic.privFlags.rx_striding_rq ? 'on' : 'off', 'multi-packet WQEs');

  // TSO probing (Cilium's rule, chosenSize): never more than the device can segment.
  const size = String(chosenSize(nic.tsoMaxSize, true));
  const why = `BIG TCP, min(196608, tso_max_size ${nic.tsoMaxSize ?? '?'})`;
  set('ip', 'gso_max_size', size, nic.gsoMaxSize?.toString(), why);
  set('ip', 'gro_max_size', size, nic.groMaxSize?.toString(), why);
  if (ipv4BigTcp) {
    set('ip', 'gso_ipv4_max_size', size, nic.gsoIpv4MaxSize?.toString(), why);
    set('ip', 'gro_ipv4_max_size', size, nic.groIpv4MaxSize?.toString(), why);
  }

  if (cpus < 2) plan.skips.push({ what: 'IRQs apart from the application', reason: `the host has ${cpus} CPU: nothing to keep apart` });
  else if (!nic.irqs.length) plan.skips.push({ what: 'IRQs apart from the application', reason: `${dev} has no MSI IRQs to pin` });
  else {
    plan.irqCore = 0;
    plan.appCore = cpus - 1;
    for (const i of nic.irqs)
      set('proc', `/proc/irq/${i.irq}/smp_affinity_list`, '0', i.cpus || undefined, `IRQs on core 0, application on core ${cpus - 1}`);
  }
  return plan;
}

/**
 * Combined channels (ethtool -L) as the topology asks, journaled like the profile's settings;
 * nothing when it does not ask (pure: unit-tested).
 */
export function planChannels(nic: NicFacts, want: number | undefined): ProfilePlan {
  const plan: ProfilePlan = { changes: [], skips: [], kept: [] };
  if (want === undefined) return plan;
  const [max, cur] = nic.channels.combined ?? [undefined, undefined];
  const what = `combined channels ${want}`;
  if (max === undefined || cur === undefined) plan.skips.push({ what, reason: `${nic.name} reports no combined channels (ethtool -l)` });
  else if (want > max) plan.skips.push({ what, reason: `${nic.name} (${nic.driver ?? '?'}) has at most ${max} combined channel(s)` });
  else if (want === cur) plan.kept.push(what);
  else
    plan.changes.push({
      tool: 'ethtool-channels',
      dev: nic.name,
      key: 'combined',
      value: String(want),
      old: String(cur),
      why: 'channels as the topology asks',
    });
  return plan;
}

/** The command that puts one setting back to its old value (also what applies a change, with the new value). */
export function settingArgv(tool: SettingTool, dev: string, key: string, value: string): string[] {
  switch (tool) {
    case 'ip':
      return ['ip', 'link', 'set', 'dev', dev, key, value];
    case 'ethtool-features':
      return ['ethtool', '-K', dev, key, value];
    case 'ethtool-priv-flags':
      return ['ethtool', '--set-priv-flags', dev, key, value];
    case 'proc':
      return ['sh', '-c', 'echo "$1" > "$2"', 'sh', value, key];
    case 'ethtool-channels':
      return ['ethtool', '-L', dev, key, value];
  }
}
