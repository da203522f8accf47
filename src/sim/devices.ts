import { LabError } from '../errors.js';

/**
 * GSO_MAX_SIZE in include/linux/netdevice.h: 8 * GSO_MAX_SEGS (65535) = 524280, the
 * tso_max_size a driver that can segment anything announces.
 */
export const GSO_MAX_SIZE = 524280;
/** TSO_LEGACY_MAX_SIZE (include/linux/netdevice.h): what alloc_netdev_mqs gives a device that sets nothing. */
export const TSO_LEGACY_MAX_SIZE = 65536;

export type DeviceKind = 'veth' | 'netkit' | 'virtio-net' | 'mlx5' | 'ice';

/** What the model knows of a device kind. */
export interface DeviceProfile {
  kind: DeviceKind;
  /** Largest GSO packet the device segments (ip -d link: tso_max_size). */
  tsoMaxSize: number;
  mtu: number;
  /** Wire rate of a NIC, bit/s; undefined for software devices (bounded by CPU, see cpu.ts). */
  lineBps?: number;
  /** Where the numbers come from. */
  source: string;
}

export const PROFILES: Record<DeviceKind, DeviceProfile> = {
  veth: {
    kind: 'veth',
    tsoMaxSize: GSO_MAX_SIZE,
    mtu: 1500,
    source: 'drivers/net/veth.c veth_setup: netif_set_tso_max_size(dev, GSO_MAX_SIZE)',
  },
  netkit: {
    kind: 'netkit',
    tsoMaxSize: GSO_MAX_SIZE,
    mtu: 1500,
    source:
      'tso_max_size assumed as veth (drivers/net/netkit.c); not verified here: this host kernel has no CONFIG_NETKIT. ' +
      'Its transmit path differs: see PathSpec.podDevice in path.ts',
  },
  'virtio-net': {
    kind: 'virtio-net',
    tsoMaxSize: TSO_LEGACY_MAX_SIZE,
    mtu: 1500,
    source: 'drivers/net/virtio_net.c sets no tso_max_size: net/core/dev.c alloc_netdev_mqs default TSO_LEGACY_MAX_SIZE',
  },
  mlx5: {
    kind: 'mlx5',
    tsoMaxSize: GSO_MAX_SIZE,
    mtu: 1500,
    lineBps: 100e9,
    source: 'ConnectX-6 Dx 100GbE; drivers/net/ethernet/mellanox/mlx5/core/en_main.c: netif_set_tso_max_size(netdev, GSO_MAX_SIZE)',
  },
  ice: {
    kind: 'ice',
    tsoMaxSize: 131072,
    mtu: 1500,
    lineBps: 100e9,
    source:
      'E810 100GbE; drivers/net/ethernet/intel/ice/ice_main.c ice_set_netdev_features: netif_set_tso_max_size(netdev, ICE_MAX_TSO_SIZE = 131072)',
  },
};

/** One device in the model, with the sizes `ip -d link` would show. */
export class SimDevice {
  gsoMaxSize = TSO_LEGACY_MAX_SIZE;
  groMaxSize = TSO_LEGACY_MAX_SIZE;
  gsoIpv4MaxSize = TSO_LEGACY_MAX_SIZE;
  groIpv4MaxSize = TSO_LEGACY_MAX_SIZE;
  constructor(
    readonly netns: string,
    readonly name: string,
    readonly profile: DeviceProfile,
    readonly ifindex: number,
  ) {}

  /**
   * `ip link set gso_max_size N ...`: net/core/rtnetlink.c validate_linkmsg refuses a GSO size
   * above tso_max_size (EINVAL, "Too big gso_max_size"); GRO sizes have their own cap (GRO_MAX_SIZE).
   */
  setSizes(size: number, ipv4: boolean): void {
    if (size > this.profile.tsoMaxSize)
      throw new LabError('E_USAGE', `${this.netns}/${this.name}: gso_max_size ${size} > tso_max_size ${this.profile.tsoMaxSize} (EINVAL)`);
    this.gsoMaxSize = this.groMaxSize = size;
    if (ipv4) this.gsoIpv4MaxSize = this.groIpv4MaxSize = size;
  }

  /** The GSO size TCP sees for a family (sk_dst_gso_max_size in net/core/sock.c: IPv4 reads gso_ipv4_max_size). */
  gsoFor(family: 'ipv4' | 'ipv6'): number {
    return family === 'ipv4' ? this.gsoIpv4MaxSize : this.gsoMaxSize;
  }
}
