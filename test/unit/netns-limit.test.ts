import { describe, expect, it } from 'vitest';
import { maxNetNamespaces, netnsRefusal } from '../../src/backends/netns-limit.js';

describe('network namespaces against user.max_net_namespaces', () => {
  it('refuses a lab whose namespaces with the existing ones pass the limit, naming the figures', () => {
    const e = netnsRefusal(1002, 1000, 3);
    expect(e?.code).toBe('E_REQUIREMENT');
    expect(e?.message).toBe(
      "the lab needs 1002 network namespaces (one per node, pod and peer); with the 3 that exist, that passes the kernel's limit of 1000 (user.max_net_namespaces)",
    );
    expect(netnsRefusal(997, 1000, 3)).toBeUndefined();
    expect(netnsRefusal(998, 1000, 3)).toBeDefined();
    expect(netnsRefusal(10 ** 6, undefined, 0)).toBeUndefined();
  });

  it('reads the limit of this kernel', () => {
    expect(maxNetNamespaces()).toBeGreaterThan(0);
  });
});
