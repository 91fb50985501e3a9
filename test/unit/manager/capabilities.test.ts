import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { buildCapabilities } from '../../../src/manager/capabilities.js';
import type { BackendStats } from '../../../drivers/driver.js';

const sharedDir = process.env.CINDERBLOCK_SHARED ?? new URL('../../../../shared', import.meta.url).pathname;

describe('buildCapabilities', () => {
  it('turns the LVM driver stats into exactly what cinder-volume sent the scheduler', () => {
    const fixture = JSON.parse(readFileSync(`${sharedDir}/cinder/fixtures/scheduler.update_service_capabilities.e2e.json`, 'utf8'));
    const sent = fixture.request.oslo_message.args.capabilities;
    // What LVMVolumeDriver._update_volume_stats returned before the manager touched it.
    const { allocated_capacity_gb: _a, cacheable: _c, ...pool } = sent.pools[0];
    const { filter_function: _f, goodness_function: _g, ...top } = sent;
    const stats = { ...top, pools: [pool] } as BackendStats;
    const built = buildCapabilities({ stats, allocatedGbByPool: new Map([['lvm', 0]]), filterFunction: null, goodnessFunction: null });
    expect(built).toEqual(sent);
  });

  it('keeps a cacheable flag the driver set and leaves non-block protocols alone', () => {
    const stats = {
      volume_backend_name: 'nfs', vendor_name: 'x', driver_version: '1', storage_protocol: 'nfs',
      shared_targets: false, sparse_copy_volume: true,
      pools: [{ pool_name: 'p', cacheable: false }],
    } as unknown as BackendStats;
    const built = buildCapabilities({ stats, allocatedGbByPool: new Map([['p', 7]]), filterFunction: 'f', goodnessFunction: null });
    expect((built.pools as any)[0]).toEqual({ pool_name: 'p', cacheable: false, allocated_capacity_gb: 7 });
    expect(built.filter_function).toBe('f');
  });
});
