import { join } from 'node:path';
import type { LabContext } from '../../lifecycle/context.js';
import type { LabNode } from '../../topology/model.js';

/** bpf/xdp_pass.c: an XDP program that passes every frame. */
export const XDP_PASS_OBJ = 'xdp_pass.o';

/**
 * The devices of an LB node that xl_xdp redirects to must accept XDP frames. virtio-net (an LB node in a VM) sends
 * them only from a device with an XDP program of its own (drivers/net/virtio_net.c virtnet_xdp_xmit: "Only allow
 * ndo_xdp_xmit if XDP is loaded on dev", -ENXIO otherwise), so those NICs get xdp_pass, attached natively. veth needs
 * NAPI on the receiving peer instead (the backend node's end, prepareBackendNode), so its devices are left alone.
 * Returns the devices that got it. The pin lives under the LB node's journaled pin dir.
 */
export async function readyRedirectTargets(
  ctx: LabContext,
  node: LabNode,
  links: readonly { dev: string }[],
  pinDir: string,
): Promise<string[]> {
  const exec = ctx.backend.exec(node.netns);
  const { signal } = ctx;
  const virtio: string[] = [];
  for (const { dev } of links)
    if (/^driver: virtio_net$/m.test((await exec.run(['ethtool', '-i', dev], { signal })).stdout)) virtio.push(dev);
  if (!virtio.length) return [];
  const pin = join(pinDir, 'xdp_pass');
  await ctx.backend.root(node.name).run(['bpftool', 'prog', 'load', join(ctx.objDir, XDP_PASS_OBJ), pin, 'type', 'xdp'], { signal });
  for (const dev of virtio) await exec.run(['bpftool', 'net', 'attach', 'xdpdrv', 'pinned', pin, 'dev', dev], { signal, needsBpffs: true });
  return virtio;
}
