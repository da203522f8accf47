import { needTool } from '../kernel/facts.js';
import { BIG_TCP_MAX, GSO_LEGACY_MAX, chosenSize, ipv4Verdict, nodeNamespaces } from '../datapath/bigtcp/bigtcp.js';
import type { LinkFacts } from '../measure/links.js';
import { measurer } from '../measure/measurer.js';
import { couldNotEstablish, type Check } from './check.js';

const FIELDS = ['gso_max_size', 'gro_max_size', 'gso_ipv4_max_size', 'gro_ipv4_max_size'] as const;

/** One device's verdict: its sizes and what TSO probing should have chosen. */
export interface DeviceSizes {
  /** The size TSO probing chose: min(196608, tso_max_size) on, 65536 off. */
  want: number;
  /** The fields checked, as the device reports them (undefined: not reported). */
  got: Partial<Record<(typeof FIELDS)[number], number>>;
  ok: boolean;
}

/**
 * A device passes only when it reports every size checked: equal to `want` with BIG TCP
 * on, at most `want` with it off. A size the device does not report proves nothing in
 * either mode (a missing value is not a small one).
 */
export function judgeDeviceSizes(
  l: Pick<LinkFacts, 'tso_max_size' | (typeof FIELDS)[number]>,
  on: boolean,
  ipv4Sizes: boolean,
): DeviceSizes {
  const want = chosenSize(l.tso_max_size, on);
  const fields = FIELDS.filter((f) => ipv4Sizes || !f.includes('ipv4'));
  const got = Object.fromEntries(fields.map((f) => [f, l[f]]));
  const ok = l.tso_max_size !== undefined && fields.every((f) => l[f] !== undefined && (on ? l[f] === want : l[f]! <= want));
  return { want, got, ok };
}

export const tsoProbe: Check = {
  id: 'tso-probe',
  title: 'TSO probing: BIG TCP sizes clamped per device',
  proves: `every device the lab configured reports gso/gro max sizes equal to min(${BIG_TCP_MAX}, its tso_max_size) with BIG TCP on (at most ${GSO_LEGACY_MAX} with it off)`,
  requires: ({ facts }) => needTool(facts, 'ip'),
  applies: () => ({ ok: true }),
  async run(ctx) {
    const v4 = ipv4Verdict(ctx.facts).ok;
    const devices: Record<string, unknown>[] = [];
    const wrong: string[] = [];
    const evidence: string[] = [];
    for (const node of ctx.lab.nodes) {
      const on = node.datapath.bigTcp;
      for (const netns of nodeNamespaces(ctx, node)) {
        const links = await measurer(ctx).readLinks(ctx.backend.exec(netns), undefined, ctx.signal);
        for (const l of links) {
          const { want, got, ok } = judgeDeviceSizes(l, on, v4);
          const shown = Object.entries(got)
            .map(([f, v]) => `${f} ${v ?? 'missing'}`)
            .join(' ');
          // The MTU is reported, not judged: with BIG TCP it stays as it was (the claims read it).
          devices.push({
            netns,
            dev: l.ifname,
            kind: l.linkinfo?.info_kind,
            mtu: l.mtu,
            tso_max_size: l.tso_max_size,
            expected: want,
            ...got,
            ok,
          });
          evidence.push(`${netns} ${l.ifname}: tso_max_size ${l.tso_max_size ?? 'missing'} ${shown}`);
          if (!ok)
            wrong.push(`${netns}/${l.ifname}: tso_max_size ${l.tso_max_size ?? 'missing'} ${shown}, expected ${on ? '' : '<= '}${want}`);
        }
      }
    }
    const threshold = 'every size reported; == min(196608, tso_max_size) with BIG TCP on; <= 65536 with it off';
    const metrics = { devices, ipv4Sizes: v4 ? 'checked' : `not checked: ${(ipv4Verdict(ctx.facts) as { reason?: string }).reason}` };
    if (!devices.length)
      return { status: 'error', reason: couldNotEstablish("the lab's namespaces list no devices to read"), metrics, threshold, evidence };
    return wrong.length
      ? {
          status: 'fail',
          reason: `${wrong.length} of ${devices.length} devices differ: ${wrong.slice(0, 3).join('; ')}`,
          metrics,
          threshold,
          evidence,
        }
      : {
          status: 'pass',
          reason: `${devices.length} devices report the sizes TSO probing chose (tso_max_size seen: ${[...new Set(devices.map((d) => d.tso_max_size))].join(', ')})`,
          metrics,
          threshold,
          evidence,
        };
  },
};
