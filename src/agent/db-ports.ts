// The manager's ports implemented over Cinder's database.
import type { CinderDb } from '../db/index.js';
import type { AllocatedCapacitySource, ServiceRecord, ServiceRegistry } from '../manager/ports.js';
import type { Logger } from '../log.js';

export class DbServiceRegistry implements ServiceRegistry {
  constructor(
    private readonly db: CinderDb,
    private readonly opts: { host: string; availabilityZone: string; clusterName: string | null; logger: Logger },
  ) {}

  async register(): Promise<ServiceRecord> {
    const { service, created } = await this.db.services.register({
      host: this.opts.host,
      availabilityZone: this.opts.availabilityZone,
      clusterName: this.opts.clusterName,
    });
    if (created) this.opts.logger.info(`created services row for ${this.opts.host} (cinder-volume)`);
    return { id: service.id, uuid: String(service.uuid), host: this.opts.host };
  }

  async reportState(record: ServiceRecord): Promise<ServiceRecord> {
    if (await this.db.services.reportState(record.id, this.opts.availabilityZone)) return record;
    // cinder's report_state re-creates a row that was deleted (e.g. `cinder-manage service remove`).
    this.opts.logger.warn(`services row ${record.id} for ${this.opts.host} is gone; registering again`);
    return this.register();
  }
}

/**
 * cinder's _count_allocated_capacity: the GiB of this backend's volumes, per pool. The pool is the
 * part after '#' in volume.host; volumes without one count toward the backend's only pool.
 */
export class DbAllocatedCapacity implements AllocatedCapacitySource {
  constructor(
    private readonly db: CinderDb,
    private readonly defaultPool: string,
  ) {}

  async allocatedGbByPool(backendHost: string): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const v of await this.db.volumes.listByHost(backendHost)) {
      const pool = v.host?.includes('#') ? v.host.slice(v.host.indexOf('#') + 1) : this.defaultPool;
      out.set(pool, (out.get(pool) ?? 0) + (v.size ?? 0));
    }
    return out;
  }
}
