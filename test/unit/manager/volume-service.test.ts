// The service lifecycle around a driver that fails its setup at start and comes up later: the
// retry task must stop itself without waiting for itself (it used to, so stop() never returned and
// the capability report and heartbeat after recovery never ran), and the recovery hook (init_host's
// re-export) must run once.
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import type { BackendStats } from '../../../drivers/driver.js';
import { VolumeService, type ServiceDriver } from '../../../src/manager/volume-service.js';
import type { ServiceRecord } from '../../../src/manager/ports.js';

const logger = pino({ level: 'silent' });

function flakyDriver(failures: number): ServiceDriver & { setups: number } {
  const stats: BackendStats = {
    volume_backend_name: 'file',
    vendor_name: 'test',
    driver_version: '1',
    storage_protocol: 'iSCSI',
    shared_targets: false,
    sparse_copy_volume: true,
    pools: [],
  };
  return {
    className: 'FlakyDriver',
    setups: 0,
    async doSetup() {
      this.setups += 1;
      if (this.setups <= failures) throw new Error('volume group not found yet');
    },
    async checkForSetupError() {},
    async getVolumeStats() {
      return stats;
    },
    secureFileOperationsEnabled: () => false,
  };
}

/** Resolves to 'timeout' if `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('VolumeService with a driver that comes up after start', () => {
  it('runs the recovery hook once, reports capabilities and a heartbeat, and stops', async () => {
    const driver = flakyDriver(1);
    const events: string[] = [];
    let record: ServiceRecord = { id: 1, uuid: 'u', host: 'h@file' };
    const service = new VolumeService({
      host: 'h@file',
      clusterName: null,
      driver,
      registry: {
        async register() {
          return record;
        },
        async reportState(r) {
          events.push('heartbeat');
          record = r;
          return r;
        },
      },
      scheduler: {
        async updateServiceCapabilities() {
          events.push('capabilities');
        },
        async notifyServiceCapabilities() {},
      },
      allocated: { allocatedGbByPool: async () => new Map() },
      logger,
      reportIntervalMs: 60_000,
      statsIntervalMs: 60_000,
      driverRetryMs: 20,
      filterFunction: null,
      goodnessFunction: null,
      onDriverRecovered: async () => {
        events.push('recovered');
      },
    });
    await service.start();
    expect(service.driverInitialized).toBe(false);
    await expect.poll(() => events.includes('heartbeat'), { timeout: 5_000 }).toBe(true);
    expect(service.driverInitialized).toBe(true);
    expect(events).toEqual(['recovered', 'capabilities', 'heartbeat']);
    expect(await within(service.stop(), 2_000)).not.toBe('timeout');
    expect(driver.setups).toBe(2);
  });
});
