import { z } from 'zod';
import { parseJson, type Exec } from '../exec/exec.js';

const NetShow = z.array(
  z
    .object({
      tc: z
        .array(
          z.object({
            devname: z.string(),
            kind: z.string(),
            name: z.string().optional(),
            prog_id: z.number().optional(),
            id: z.number().optional(),
          }),
        )
        .default([]),
    })
    .passthrough(),
);

/** Programs attached to a device's tcx, clsact or netkit hooks, in chain order, as bpftool reports them. */
export async function tcxPrograms(
  exec: Exec,
  dev: string,
  signal?: AbortSignal,
): Promise<{ kind: string; name?: string; progId: number }[]> {
  const r = await exec.run(['bpftool', '-j', 'net', 'show', 'dev', dev], { signal });
  return NetShow.parse(parseJson(r, 'bpftool net show'))
    .flatMap((e) => e.tc)
    .filter((t) => /^(tcx|clsact|netkit)\//.test(t.kind))
    .map((t) => ({ kind: t.kind, name: t.name, progId: t.prog_id ?? t.id ?? 0 })); // clsact entries say id, tcx ones prog_id
}
