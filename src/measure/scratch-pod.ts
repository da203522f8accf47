import { attachPinned, type Hook } from '../datapath/hook.js';
import { setSizes } from '../datapath/bigtcp/bigtcp.js';
import { endpointKey, endpointValue, linkMac, pins } from '../datapath/host-routing/host-routing.js';
import { readLinks } from './links.js';
import type { LabContext } from '../lifecycle/context.js';
import type { LabNode, Pod } from '../topology/model.js';
import { lines, podBatch, podHostLines } from '../backends/wiring.js';

/** The scratch veth pod: '_' cannot appear in topology names, so it never clashes with a pod. */
const SCRATCH = '_veth';
const SCRATCH_DEV = 'lxc_veth';

/** A scratch veth pod beside the netkit ones, to measure a veth path next to theirs, wired like them (gateway, endpoint map, host routing). */
export async function addVethPod(ctx: LabContext, node: LabNode, addr: string, hook: Hook, bpf: boolean) {
  const netns = `${node.netns}.${SCRATCH}`;
  const root = ctx.backend.root(node.name);
  if (root.hostPids) ctx.journal.record({ backend: ctx.backend.kind, node: node.name }, [{ kind: 'netns', name: netns }]);
  await root.run(['ip', '-batch', '-'], {
    input: `netns add ${netns}\nlink add ${SCRATCH_DEV} netns ${node.netns} type veth peer name eth0 netns ${netns}\n`,
  });
  ctx.backend.register?.(netns, node.name);
  // Wired by the same lines as the topology's pods (IPv4 only: the flows use it).
  const scratch: Pod = { name: SCRATCH, node: node.name, netns, hostDev: SCRATCH_DEV, dev: 'eth0', ipv4: addr };
  const v4node = { ...node, gw6: undefined };
  const nodeExec = ctx.backend.exec(node.netns);
  await nodeExec.run(['ip', '-batch', '-'], { input: lines(...podHostLines(v4node, scratch, 'veth')) });
  await ctx.backend.exec(netns).run(['ip', '-batch', '-'], { input: podBatch(v4node, scratch, 'veth') });
  const [dev] = await readLinks(nodeExec, SCRATCH_DEV);
  const p = pins(ctx, node);
  const [podDev] = await readLinks(ctx.backend.exec(netns), 'eth0');
  const value = endpointValue({ ifindex: dev.ifindex, mac: linkMac(podDev), nodeMac: linkMac(dev) });
  await root.run([
    'bpftool',
    'map',
    'update',
    'pinned',
    p.endpoints,
    'key',
    'hex',
    ...endpointKey(addr).split(' '),
    'value',
    'hex',
    ...value.split(' '),
  ]);
  if (bpf) await attachPinned(nodeExec, hook, 'ingress', [[SCRATCH_DEV, p.fromPod]]);
  await setSizes(ctx.backend, ctx.facts, [node.netns, netns], node.datapath.bigTcp);
  return {
    netns,
    remove: async () => {
      await root.run(['bpftool', 'map', 'delete', 'pinned', p.endpoints, 'key', 'hex', ...endpointKey(addr).split(' ')], { nothrow: true });
      await root.run(['ip', 'netns', 'del', netns], { nothrow: true });
    },
  };
}
