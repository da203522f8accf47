import { createSocket } from 'node:dgram';
import { z } from 'zod';
import { LabError } from '../../errors.js';
import { parseJson } from '../../exec/exec.js';
import type { Lab, LabNode } from '../../topology/model.js';
import type { GuestExec } from './guest-exec.js';
import { sizeAttrs, type BigTcpMode } from '../../datapath/bigtcp/bigtcp.js';

/**
 * A node's uplink is a pair of virtio-net NICs on one QEMU hub (a wire between two NICs
 * of the same VM): the node side and the peer side really are virtio-net, whose
 * tso_max_size (65536: net/core/dev.c gives every device TSO_LEGACY_MAX_SIZE and virtio_net never raises it) TSO probing must clamp BIG TCP to.
 */
const UPLINK_MAC = { node: '52:54:00:d1:00:01', peer: '52:54:00:d1:00:02' };
export const UPLINK_NICS = [
  '-netdev',
  'hubport,id=upn,hubid=0',
  '-device',
  `virtio-net-pci,netdev=upn,mac=${UPLINK_MAC.node}`,
  '-netdev',
  'hubport,id=upp,hubid=0',
  '-device',
  `virtio-net-pci,netdev=upp,mac=${UPLINK_MAC.peer}`,
];

/** Find the guest's NICs by MAC and move each into a namespace under a lab device name. */
async function moveNics(
  guest: GuestExec,
  node: LabNode,
  moves: { mac: string; netns: string; dev: string }[],
  signal?: AbortSignal,
  mode: BigTcpMode = 'off',
): Promise<void> {
  if (!moves.length) return;
  const links = z
    .array(z.object({ ifname: z.string(), address: z.string().optional(), tso_max_size: z.number().optional() }))
    .parse(parseJson(await guest.run(['ip', '-d', '-j', 'link', 'show'], { signal }), 'ip -d -j link'));
  const batch = moves.flatMap(({ mac, netns, dev }) => {
    const l = links.find((x) => x.address === mac);
    if (!l) throw new LabError('E_LAB_FAILED', `the guest of node ${node.name} has no NIC with MAC ${mac}`);
    // The lab did not create this device: its BIG TCP sizes go on before it moves, clamped by its own tso_max_size.
    const sizes = sizeAttrs(mode, l.tso_max_size);
    return [...(sizes ? [`link set dev ${l.ifname}${sizes}`] : []), `link set dev ${l.ifname} netns ${netns} name ${dev}`];
  });
  await guest.run(['ip', '-batch', '-'], { input: batch.join('\n') + '\n', signal });
}

/** The uplink NICs into the node and peer namespaces. */
export function moveUplinkNics(guest: GuestExec, lab: Lab, node: LabNode, signal?: AbortSignal, mode: BigTcpMode = 'off'): Promise<void> {
  const peer = lab.peers.find((p) => p.node === node.name)!;
  const u = node.uplink!;
  return moveNics(
    guest,
    node,
    [
      { mac: UPLINK_MAC.node, netns: node.netns, dev: u.nodeDev },
      { mac: UPLINK_MAC.peer, netns: peer.netns, dev: u.peerDev },
    ],
    signal,
    mode,
  );
}

/** One end of a link between two VMs: the QEMU arguments of its NIC and where the NIC goes. */
export interface Wire {
  node: string;
  mac: string;
  dev: string;
  args: string[];
}

/** A free UDP port on loopback (the kernel picks it; QEMU binds it a moment later). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Links between VMs need no bridge: each end is a virtio-net NIC on a QEMU `dgram`
 * netdev, the two exchanging frames over UDP on loopback.
 *
 * Native XDP on these NICs and the uplink's: a hub port or a dgram netdev has no vnet header, so QEMU offers the guest
 * no checksum or TSO offloads (hw/net/virtio-net.c virtio_net_get_features) and virtnet_xdp_set (drivers/net/virtio_net.c)
 * finds no guest GRO_HW/CSUM to refuse XDP for: no ethtool change is needed. With one queue pair per NIC there are no
 * XDP send queues of their own; XDP_TX and redirects share the locked tx queue (dmesg: "XDP request 3 queues but max is
 * 1 ... slower locked tx mode"). A NIC sends redirected frames only with an XDP program of its own (virtnet_xdp_xmit):
 * the XDP LB puts xdp_pass on the link NICs of its nodes (src/datapath/xdp-lb/redirect-targets.ts).
 */
export async function linkWires(lab: Lab): Promise<Wire[]> {
  const wires: Wire[] = [];
  for (const [k, l] of lab.links.entries()) {
    const [pa, pb] = [await freeUdpPort(), await freeUdpPort()];
    const mac = (side: number) => `52:54:00:d2:${(k + 1).toString(16).padStart(2, '0')}:0${side}`;
    const netdev = (id: string, local: number, remote: number) =>
      `dgram,id=${id},local.type=inet,local.host=127.0.0.1,local.port=${local},remote.type=inet,remote.host=127.0.0.1,remote.port=${remote}`;
    wires.push({
      node: l.a,
      mac: mac(1),
      dev: l.devA,
      args: ['-netdev', netdev(`lk${k}`, pa, pb), '-device', `virtio-net-pci,netdev=lk${k},mac=${mac(1)}`],
    });
    wires.push({
      node: l.b,
      mac: mac(2),
      dev: l.devB,
      args: ['-netdev', netdev(`lk${k}`, pb, pa), '-device', `virtio-net-pci,netdev=lk${k},mac=${mac(2)}`],
    });
  }
  return wires;
}

export function moveLinkNics(
  guest: GuestExec,
  node: LabNode,
  wires: Wire[],
  signal?: AbortSignal,
  mode: BigTcpMode = 'off',
): Promise<void> {
  return moveNics(
    guest,
    node,
    wires.map((w) => ({ mac: w.mac, netns: node.netns, dev: w.dev })),
    signal,
    mode,
  );
}
