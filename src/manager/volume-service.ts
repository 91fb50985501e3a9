// One backend's volume service: what cinder/service.py and VolumeManager.init_host do around the
// RPC endpoint. It sets up the driver, writes the services row, heartbeats it every report_interval,
// and reports capabilities to the scheduler at start, every backend_stats_polling_interval and
// whenever the scheduler asks (publish_service_capabilities fanout).
//
// While the driver is not initialized the heartbeat is skipped, as cinder does, so the service shows
// `down` and the scheduler places nothing here; unlike cinder we retry the driver setup, so fixing
// the backend (creating the volume group, say) brings the service up without a restart.
import type { VolumeDriver } from '../../drivers/driver.js';
import type { Logger } from '../log.js';
import { buildCapabilities } from './capabilities.js';
import { PeriodicTask } from './periodic.js';
import type { AllocatedCapacitySource, SchedulerNotifier, ServiceRecord, ServiceRegistry } from './ports.js';

/** The part of the volume driver the service lifecycle uses: setup, stats, its name. */
export type ServiceDriver = Pick<VolumeDriver, 'className' | 'doSetup' | 'checkForSetupError' | 'getVolumeStats' | 'secureFileOperationsEnabled'>;

export interface VolumeServiceOptions {
  /** `host@backend`, the services row's host and the scheduler's backend name. */
  host: string;
  clusterName: string | null;
  driver: ServiceDriver;
  registry: ServiceRegistry;
  scheduler: SchedulerNotifier;
  allocated: AllocatedCapacitySource;
  logger: Logger;
  reportIntervalMs: number;
  statsIntervalMs: number;
  driverRetryMs?: number;
  registryRetryMs?: number;
  filterFunction: string | null;
  goodnessFunction: string | null;
  extraCapabilities?: Record<string, unknown>;
  /** shared_targets of the capability report: the backend's export layout (VolumeExports.sharedTargets). */
  sharedTargets?: boolean | null;
  /** Called after each heartbeat written (metrics, systemd status). */
  onHeartbeat?: () => void;
  /** Called with each capability report sent to the scheduler (metrics). */
  onCapabilities?: (capabilities: Record<string, unknown>) => void;
  /**
   * Called once when a driver that failed its setup at start comes up later, before the service
   * reports itself up: init_host's recovery (re-export in-use volumes) was skipped at start.
   */
  onDriverRecovered?: () => Promise<void>;
}

export class VolumeService {
  private record: ServiceRecord | undefined;
  private initialized = false;
  private lastCapabilities: Record<string, unknown> | undefined;
  private heartbeatFailing = false;
  private readonly heartbeat: PeriodicTask;
  private readonly statsTask: PeriodicTask;
  private readonly driverRetry: PeriodicTask;
  private stopping = false;

  constructor(private readonly opts: VolumeServiceOptions) {
    const log = opts.logger;
    this.heartbeat = new PeriodicTask('report_state', opts.reportIntervalMs, () => this.reportState(), log);
    this.statsTask = new PeriodicTask('publish_service_capabilities', opts.statsIntervalMs, () => this.publishServiceCapabilities(), log);
    this.driverRetry = new PeriodicTask('driver_setup', opts.driverRetryMs ?? 30_000, () => this.retryDriverSetup(), log);
  }

  get host(): string {
    return this.opts.host;
  }

  get driver(): ServiceDriver {
    return this.opts.driver;
  }

  get driverInitialized(): boolean {
    return this.initialized;
  }

  /** The services row; set once start() has registered it. */
  get serviceRecord(): ServiceRecord | undefined {
    return this.record;
  }

  /**
   * Registers the service row (retrying while the database is unreachable) and sets up the driver.
   * Resolves once the row exists; a driver that fails setup leaves the service down but running.
   */
  async start(): Promise<void> {
    this.stopping = false;
    await this.setUpDriver();
    this.record = await this.registerWithRetry();
    this.opts.logger.info({ service_uuid: this.record.uuid, service_id: this.record.id }, `volume service ${this.opts.host} registered`);
    if (!this.initialized) this.driverRetry.start();
  }

  /** Starts the periodic work; call once the RPC consumers are listening. */
  async startPeriodicTasks(): Promise<void> {
    // First capability report right away, as init_host ends with publish_service_capabilities.
    await this.statsTask.runNow();
    await this.heartbeat.runNow();
    this.heartbeat.start();
    this.statsTask.start();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([this.heartbeat.stop(), this.statsTask.stop(), this.driverRetry.stop()]);
  }

  /** RPC publish_service_capabilities (fanout from the scheduler) and the periodic report. */
  async publishServiceCapabilities(): Promise<void> {
    if (!this.initialized) {
      this.opts.logger.warn(`Update driver status failed: (config name ${this.opts.host.split('@')[1] ?? ''}) is uninitialized.`);
      return;
    }
    const capabilities = await this.collectCapabilities();
    this.lastCapabilities = capabilities;
    this.opts.onCapabilities?.(capabilities);
    await this.opts.scheduler.updateServiceCapabilities({ host: this.opts.host, capabilities, clusterName: this.opts.clusterName });
    await this.opts.scheduler.notifyServiceCapabilities({ backend: this.opts.clusterName ?? this.opts.host, capabilities });
    this.opts.logger.debug({ pools: (capabilities.pools as unknown[]).length }, 'capabilities sent to the scheduler');
  }

  /** The capability report as last sent, or fresh if none was sent yet. */
  async capabilities(): Promise<Record<string, unknown>> {
    return this.lastCapabilities ?? (await this.collectCapabilities());
  }

  async collectCapabilities(): Promise<Record<string, unknown>> {
    const stats = await this.opts.driver.getVolumeStats();
    const allocatedGbByPool = await this.opts.allocated.allocatedGbByPool(this.opts.host);
    return buildCapabilities({
      stats,
      allocatedGbByPool,
      filterFunction: this.opts.filterFunction,
      goodnessFunction: this.opts.goodnessFunction,
      extraCapabilities: this.opts.extraCapabilities,
      ...(this.opts.sharedTargets !== undefined ? { sharedTargets: this.opts.sharedTargets } : {}),
    });
  }

  private async reportState(): Promise<void> {
    if (!this.record || !this.initialized || this.stopping) return;
    try {
      this.record = await this.opts.registry.reportState(this.record);
      this.opts.onHeartbeat?.();
      if (this.heartbeatFailing) {
        this.opts.logger.info(`heartbeat for ${this.opts.host} restored; the service shows up again`);
        this.heartbeatFailing = false;
      }
    } catch (err) {
      // oslo's report_state logs and carries on; a lost database must never take the agent down.
      this.heartbeatFailing = true;
      this.opts.logger.error(
        { err },
        `heartbeat for ${this.opts.host} could not be written to the database; the service will show down ` +
          `after service_down_time if this goes on. Check [database] connection and that the database is up.`,
      );
    }
  }

  private async setUpDriver(): Promise<void> {
    const { driver, logger } = this.opts;
    try {
      await driver.doSetup();
      await driver.checkForSetupError();
      this.initialized = true;
      logger.info(`driver ${driver.className} for ${this.opts.host} initialized`);
    } catch (err) {
      this.initialized = false;
      logger.error({ err }, `driver ${driver.className} for ${this.opts.host} failed to initialize; the service stays down and setup is retried`);
    }
  }

  private async retryDriverSetup(): Promise<void> {
    if (this.initialized || this.stopping) return;
    await this.setUpDriver();
    if (this.initialized) {
      // halt, not stop: this runs inside the retry task, and stop() waits for the task to end.
      this.driverRetry.halt();
      if (this.opts.onDriverRecovered) {
        try {
          await this.opts.onDriverRecovered();
        } catch (err) {
          this.opts.logger.error({ err }, `recovery after the driver of ${this.opts.host} came up failed; in-use volumes may need their exports checked`);
        }
      }
      await this.publishServiceCapabilities();
      await this.reportState();
    }
  }

  private async registerWithRetry(): Promise<ServiceRecord> {
    const retryMs = this.opts.registryRetryMs ?? 5_000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.opts.registry.register();
      } catch (err) {
        if (this.stopping) throw err;
        this.opts.logger.error(
          { err, attempt },
          `cannot write the services row for ${this.opts.host} (attempt ${attempt}); retrying in ${retryMs / 1000}s. Is the database in [database] connection up?`,
        );
        await new Promise((r) => setTimeout(r, retryMs));
      }
    }
  }
}
