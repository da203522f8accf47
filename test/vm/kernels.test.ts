import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cachedKernel, type KernelStatus } from '../../src/kernels/cache.js';
import { cli } from '../kernel/helpers.js';

// Uses the default cache (or DPL_CACHE_DIR) on purpose: CI fetches once, later runs reuse it.
describe('lab kernels fetch 6.12 (real apt download from the Debian mirror)', () => {
  it('fetches (or finds cached) a verified kernel with vmlinuz, config and modules', async () => {
    const r = await cli(['kernels', 'fetch', '6.12']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/verified and cached|already cached/);
    const k = cachedKernel('6.12')!;
    expect(k).toBeDefined();
    expect(existsSync(k.vmlinuz)).toBe(true);
    expect(readFileSync(k.vmlinuz).subarray(0x202, 0x206).toString('latin1')).toBe('HdrS'); // bzImage setup header magic
    expect(readFileSync(k.config!, 'utf8')).toMatch(/^CONFIG_NETKIT=y$/m);
    const net = readdirSync(join(k.modulesDir, 'kernel/drivers/net'));
    expect(net.some((f) => /^(veth|virtio_net)\.ko/.test(f))).toBe(true);
    expect(readFileSync(join(k.modulesDir, 'modules.dep'), 'utf8')).toMatch(/virtio_net\.ko\S*: .*net_failover/);
  });

  it('a second fetch does nothing', async () => {
    const r = await cli(['kernels', 'fetch', '6.12']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/already cached.*nothing to do/);
  });

  it('list --json shows it cached with netkit', async () => {
    const r = await cli(['kernels', 'list', '--json']);
    expect(r.code).toBe(0);
    const k = (JSON.parse(r.stdout) as KernelStatus[]).find((e) => e.name === '6.12')!;
    expect(k).toMatchObject({ cached: true, supports: { netkit: true, tcx: true, bigTcpIpv4: true } });
  });

  it('an unknown name is a usage error naming the known kernels', async () => {
    const r = await cli(['kernels', 'fetch', 'no-such-kernel']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/known kernels: .*6\.12/);
  });
});
