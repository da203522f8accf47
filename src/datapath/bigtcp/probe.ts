import { z } from 'zod';
import { parseJson, type Exec } from '../../exec/exec.js';
import { LinkJson } from '../../measure/links.js';
import type { PodDeviceMode } from '../devices/devices.js';

/**
 * TSO probing once per driver kind, not once per device: tso_max_size is set by the driver
 * when it creates a device (veth_setup() in drivers/net/veth.c: GSO_MAX_SIZE, 524280 here;
 * virtio_net keeps the TSO_LEGACY_MAX_SIZE net/core/dev.c gives every device: 65536), so one
 * probe pair per kind tells the size of every device of that kind.
 */

/** Name of the probe pair of each kind (the end read, and its peer); both ends live in one lab namespace. */
export const PROBE_DEVS: Record<PodDeviceMode, [string, string]> = { veth: ['dplpv0', 'dplpv1'], netkit: ['dplpn0', 'dplpn1'] };

/** The `ip link add` line of a probe pair inside `netns` (created with the driver's defaults). */
export function probeLine(kind: PodDeviceMode, netns: string): string {
  const [a, b] = PROBE_DEVS[kind];
  const type = kind === 'netkit' ? 'netkit mode l3 forward peer blackhole' : 'veth peer';
  return `link add ${a} netns ${netns} type ${type} name ${b} netns ${netns}`;
}

/** tso_max_size of each probed kind, from `ip -d -j link show` of the probe namespace. */
export function tsoMaxOf(json: unknown, kinds: readonly PodDeviceMode[]): Partial<Record<PodDeviceMode, number>> {
  const links = z.array(LinkJson).parse(json);
  const out: Partial<Record<PodDeviceMode, number>> = {};
  for (const k of kinds) {
    const tso = links.find((l) => l.ifname === PROBE_DEVS[k][0])?.tso_max_size;
    if (tso !== undefined) out[k] = tso;
  }
  return out;
}

/** Each kind's tso_max_size, read from the probe pairs already created in `netns` (probeLine). */
export async function readProbes(
  root: Exec,
  netns: string,
  kinds: readonly PodDeviceMode[],
  signal?: AbortSignal,
): Promise<Partial<Record<PodDeviceMode, number>>> {
  const r = await root.run(['ip', '-n', netns, '-d', '-j', 'link', 'show'], { signal });
  return tsoMaxOf(parseJson(r, `ip -n ${netns} -d -j link show`), kinds);
}

/** Lines deleting the probe pairs (one end takes its peer with it), for a batch run inside the probe namespace. */
export function deleteLines(kinds: readonly PodDeviceMode[]): string[] {
  return kinds.map((k) => `link del ${PROBE_DEVS[k][0]}`);
}
