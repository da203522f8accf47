import { z } from 'zod';
import { parseJson, type Exec } from '../exec/exec.js';

/** One device as `ip -d -j link show` reports it (the fields the lab reads). */
export const LinkJson = z
  .object({
    ifindex: z.number(),
    ifname: z.string(),
    operstate: z.string().optional(),
    mtu: z.number().optional(),
    tso_max_size: z.number().optional(),
    tso_max_segs: z.number().optional(),
    gso_max_size: z.number().optional(),
    gro_max_size: z.number().optional(),
    gso_ipv4_max_size: z.number().optional(),
    gro_ipv4_max_size: z.number().optional(),
    linkinfo: z.object({ info_kind: z.string().optional() }).passthrough().optional(),
  })
  .passthrough();
export type LinkFacts = z.infer<typeof LinkJson>;

/** Devices of one namespace (loopback excluded), as the kernel reports them. */
export async function readLinks(exec: Exec, dev?: string, signal?: AbortSignal): Promise<LinkFacts[]> {
  const r = await exec.run(['ip', '-d', '-j', 'link', 'show', ...(dev ? ['dev', dev] : [])], { signal });
  return z
    .array(LinkJson)
    .parse(parseJson(r, `ip -d -j link show on ${exec.where}`))
    .filter((l) => l.ifname !== 'lo');
}
