import { join } from 'node:path';
import { z } from 'zod';
import { parseJson, type Exec } from '../exec/exec.js';
import { attachPinned, detachAll, objectFor, type Hook } from '../datapath/hook.js';

/** Indexes of big_counts in bpf/bigtcp_count.c. */
export const BIG = { v4Big: 0, v6Big: 1, v4All: 2, v6All: 3 } as const;
export type BigCounts = { v4Big: number; v6Big: number; v4All: number; v6All: number };

const DumpJson = z.array(z.object({ formatted: z.object({ key: z.number(), value: z.number() }) }));

/**
 * A BPF counter of skbs longer than 65535 bytes, attached to the egress hook of a pod's
 * device (inside the pod's namespace): every skb the pod's TCP stack sends passes it,
 * whatever the node's host routing does further on.
 */
export class BigCounter {
  readonly dir: string;
  constructor(
    /** The node's root context, where the program is loaded and pinned. */
    private readonly host: Exec,
    private readonly podExec: Exec,
    private readonly dev: string,
    bpfDir: string,
    /** Directory of the built objects (bigtcp_count.o / bigtcp_count_tc.o). */
    private readonly objDir: string,
    /** tcx, or tc (clsact) on kernels without tcx. */
    private readonly hook: Hook,
  ) {
    this.dir = join(bpfDir, `count-${dev}-${process.pid}`);
  }

  private get map() {
    return join(this.dir, 'maps', 'big_counts');
  }

  /** Load and attach; the pins live under the lab's bpf dir, which the journal owns. */
  async attach(signal?: AbortSignal): Promise<void> {
    await this.host.run(['mkdir', '-p', this.dir], { signal });
    const obj = join(this.objDir, objectFor('bigtcp_count', this.hook));
    await this.host.run(['bpftool', 'prog', 'loadall', obj, join(this.dir, 'prog'), 'pinmaps', join(this.dir, 'maps')], { signal });
    await attachPinned(this.podExec, this.hook, 'egress', [[this.dev, join(this.dir, 'prog', 'count_big')]], signal);
  }

  async reset(signal?: AbortSignal): Promise<void> {
    const lines = Object.values(BIG).map((k) => `map update pinned ${this.map} key ${k} 0 0 0 value 0 0 0 0 0 0 0 0`);
    await this.host.run(['bpftool', 'batch', 'file', '-'], { input: lines.join('\n') + '\n', signal });
  }

  async read(signal?: AbortSignal): Promise<{ counts: BigCounts; raw: string }> {
    const r = await this.host.run(['bpftool', '-j', 'map', 'dump', 'pinned', this.map], { signal });
    const byKey = new Map(DumpJson.parse(parseJson(r, 'bpftool map dump')).map((e) => [e.formatted.key, e.formatted.value]));
    const get = (k: number) => byKey.get(k) ?? 0;
    return { counts: { v4Big: get(BIG.v4Big), v6Big: get(BIG.v6Big), v4All: get(BIG.v4All), v6All: get(BIG.v6All) }, raw: r.stdout.trim() };
  }

  async detach(): Promise<void> {
    await detachAll(this.podExec, this.hook, 'egress', [this.dev]).catch(() => {});
    await this.host.run(['rm', '-rf', this.dir], { nothrow: true });
  }
}
