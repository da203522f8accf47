import { z } from 'zod';

/** A check as report.json holds it; metrics stay open (each check has its own shape). */
export const ReportCheck = z
  .object({
    id: z.string(),
    title: z.string(),
    status: z.enum(['pass', 'fail', 'error', 'skip']),
    reason: z.string(),
    metrics: z.record(z.string(), z.unknown()),
    threshold: z.string().optional(),
    evidence: z.array(z.string()),
    ms: z.number(),
  })
  .passthrough();
export type ReportCheck = z.infer<typeof ReportCheck>;

const Addr = z.object({ addr: z.string(), len: z.number() });

/** The resolved topology a report carries (the lab model's network part), for the graph. */
export const ReportNetwork = z.object({
  families: z.array(z.string()),
  nodes: z.array(
    z.object({
      name: z.string(),
      podCidr4: z.string().optional(),
      podCidr6: z.string().optional(),
      pods: z.array(
        z.object({ name: z.string(), hostDev: z.string(), dev: z.string(), ipv4: z.string().optional(), ipv6: z.string().optional() }),
      ),
      uplink: z
        .object({
          peer: z.string(),
          nodeDev: z.string(),
          peerDev: z.string(),
          rate: z.string().optional(),
          node4: Addr.optional(),
          peer4: Addr.optional(),
          node6: Addr.optional(),
          peer6: Addr.optional(),
        })
        .optional(),
    }),
  ),
  links: z.array(
    z.object({
      a: z.string(),
      b: z.string(),
      devA: z.string(),
      devB: z.string(),
      rate: z.string().optional(),
      a4: Addr.optional(),
      b4: Addr.optional(),
      a6: Addr.optional(),
      b6: Addr.optional(),
    }),
  ),
});
export type ReportNetwork = z.infer<typeof ReportNetwork>;

/** report.json as the HTML report and `lab claims` read it back (older reports lack `network`). */
export const ReportDoc = z
  .object({
    lab: z.string(),
    topology: z.string(),
    backend: z.string(),
    generatedAt: z.string(),
    kernel: z.object({ release: z.string(), arch: z.string().optional() }).passthrough(),
    timing: z.enum(['native', 'emulated']).optional(),
    datapath: z.array(z.object({ feature: z.string(), node: z.string(), status: z.string(), mode: z.string(), detail: z.string() })),
    summary: z.record(z.string(), z.number()),
    checks: z.array(ReportCheck),
    network: ReportNetwork.optional(),
  })
  .passthrough();
export type ReportDoc = z.infer<typeof ReportDoc>;
