// target_helper for a backend. lioadm gets drivers/targets/lio (configfs); tgtadm gets drivers/targets/tgt with the backend's target options;
// tgtd is made sure to run (started as a daemon when nothing answers on its control port) before
// the first export operation, so a backend that never exports never touches tgtd.
import { mkdirSync } from 'node:fs';
import type { BackendConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { ConnectionInfo, Connector, EnsureExportOptions, ExportedVolume, ExportModelUpdate, TargetHelper, TerminateOptions } from '../../drivers/targets/target.js';
import { TgtTarget } from '../../drivers/targets/tgt/tgt-target.js';
import { LioTarget } from '../../drivers/targets/lio/lio-target.js';
import { ensureTgtd } from '../../drivers/targets/tgt/tgtd.js';
import { formatPortal } from '../../drivers/targets/provider-location.js';

export interface TargetFactoryOptions {
  /** tgtd/tgtadm control port (tests run their own tgtd); default tgt's own. */
  tgtControlPort?: number;
  logger: Logger;
}

/** Runs `ready()` once before the first operation that needs the daemon. */
class LazyTarget implements TargetHelper {
  private readiness: Promise<void> | null = null;

  constructor(
    private readonly inner: TargetHelper,
    private readonly ready: () => Promise<void>,
  ) {}

  private async up(): Promise<void> {
    if (!this.readiness) {
      this.readiness = this.ready().catch((err: unknown) => {
        this.readiness = null; // try again next time
        throw err;
      });
    }
    await this.readiness;
  }

  validateConnector(connector: Connector): void {
    this.inner.validateConnector(connector);
  }
  async createExport(v: ExportedVolume): Promise<ExportModelUpdate> {
    await this.up();
    return this.inner.createExport(v);
  }
  async ensureExport(v: ExportedVolume, opts?: EnsureExportOptions): Promise<void> {
    await this.up();
    return this.inner.ensureExport(v, opts);
  }
  async removeExport(v: ExportedVolume): Promise<void> {
    await this.up();
    return this.inner.removeExport(v);
  }
  async initializeConnection(v: ExportedVolume, connector: Connector): Promise<ConnectionInfo> {
    await this.up();
    return this.inner.initializeConnection(v, connector);
  }
  async terminateConnection(v: ExportedVolume, connector: Connector | null, opts: TerminateOptions): Promise<void> {
    await this.up();
    return this.inner.terminateConnection(v, connector, opts);
  }
  async extendTarget(v: ExportedVolume): Promise<void> {
    await this.up();
    return this.inner.extendTarget(v);
  }
  async listExports(): Promise<string[]> {
    await this.up();
    return this.inner.listExports();
  }
}

/** The backend's target helper, or null for target_helper = fake (no exports). */
export function createTargetHelper(backend: BackendConfig, opts: TargetFactoryOptions): TargetHelper | null {
  if (backend.target_helper === 'fake') return null;
  if (backend.target_helper !== 'tgtadm' && backend.target_helper !== 'lioadm') {
    opts.logger.error(`[${backend.name}] target_helper = ${backend.target_helper} is not supported by cinderblock yet; exports will fail. Use tgtadm or lioadm.`);
    return null;
  }
  if (backend.target_protocol !== 'iscsi' && backend.target_protocol !== 'iser') {
    opts.logger.error(`[${backend.name}] target_protocol = ${backend.target_protocol} needs another target helper than ${backend.target_helper}; exports will fail.`);
    return null;
  }
  mkdirSync(backend.volumes_dir, { recursive: true, mode: 0o750 });
  const iscsi = {
    targetPrefix: backend.target_prefix,
    targetIpAddress: backend.target_ip_address,
    targetSecondaryIpAddresses: backend.iscsi_secondary_ip_addresses,
    targetPort: backend.target_port,
    targetProtocol: backend.target_protocol,
    volumesDir: backend.volumes_dir,
  };
  if (backend.target_helper === 'lioadm') {
    // configfs directly (targetcli when configfs is not writable). Our own objects are mended from
    // our record before the first operation; other owners' objects are never touched.
    const lio = new LioTarget(iscsi);
    return new LazyTarget(lio, async () => {
      await lio.reconcile();
    });
  }
  const controlPort = opts.tgtControlPort;
  const target = new TgtTarget({
    ...iscsi,
    iscsiWriteCache: backend.iscsi_write_cache,
    iscsiTargetFlags: backend.iscsi_target_flags,
    ...(controlPort ? { controlPort } : {}),
  });
  const portals = [backend.target_ip_address, ...backend.iscsi_secondary_ip_addresses].map((host) => formatPortal({ host, port: backend.target_port }));
  return new LazyTarget(target, async () => {
    const r = await ensureTgtd({ portal: portals, ...(controlPort ? { controlPort } : {}) });
    if (r.started) opts.logger.info({ pid: r.pid, portals }, 'started tgtd');
  });
}
