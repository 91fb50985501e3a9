// The composition root: one process, one volume service per enabled backend (cinder runs a
// process per backend; one event loop serves them all here). Start order matters to cinder's
// control plane: the services row first (its version caps shape every message cinder-api sends),
// then the RPC consumers, then the first capability report, so the scheduler never hears of a
// backend it cannot reach. The restore of exports after a start runs in the background behind the
// consumers (a connection call restores its volume first); each backend's target daemon is
// watched by a supervisor whose restore is the manager's, the one part that knows from the
// database which initiators are attached.
import { join } from 'node:path';
import { parseExtraCapabilities } from '../config/backend-checks.js';
import type { CinderConfig, BackendConfig } from '../config/index.js';
import { openDatabase, type CinderDb, redactDatabaseUrl } from '../db/index.js';
import { logDropped, type Logger } from '../log.js';
import { LogLevelControl } from '../manager/log-levels.js';
import { VolumeManager, type Handler } from '../manager/volume-manager.js';
import { VolumeService } from '../manager/volume-service.js';
import type { AgentMetrics } from '../metrics.js';
import { AmqpConnection, RpcClient, RpcServer, SchedulerRpcClient, targetsForVolumeService, redactTransportUrl } from '../rpc/index.js';
import { DbAllocatedCapacity, DbServiceRegistry } from './db-ports.js';
import { createDriver } from './driver-factory.js';
import { createImageTools, imageVolumeCacheSettings } from './image-tools-factory.js';
import { RpcSchedulerNotifier, RpcSchedulerCreateVolume } from './scheduler-notifier.js';
import { RpcVolumePeers } from './volume-peers.js';
import { configuredTgtControlPort, createExports, createTargetSide, type TargetSide } from './target-factory.js';
import { startAuditLoop, type AuditLoop } from './audit-loop.js';
import { newKeyedMutex, type FlowDeps } from '../manager/flows/common.js';
import { ExportRestore, type ExportRestoreOptions } from '../manager/flows/export-restore.js';
import { startIdleGc } from './idle-gc.js';
import { adminSocketPath, startAdminSocket, type AdminSocket } from './admin-socket.js';
import { adminOps, InFlightCalls, type AdminBackendView } from './admin-ops.js';
import { packageVersion } from '../version.js';
import { novaAccessFrom } from '../nova/nova-access.js';
import { NovaEventsClient } from '../nova/nova-events-client.js';
import { RpcBackupCallback } from './backup-callback.js';
import type { TargetSupervisor } from '../../drivers/targets/target-supervisor.js';
import type { VolumeExports } from '../../drivers/exports.js';

export interface AgentOptions {
  logger: Logger;
  metrics?: AgentMetrics;
  /** How long to keep trying the database at start before each new round of oslo.db retries. */
  databaseRetryMs?: number;
  /** tgtd control port; default [cinderblock] tgt_control_port, then $CINDERBLOCK_TGTD_CONTROL_PORT, then tgt's own. */
  tgtControlPort?: number;
  /** between two probes of a backend's target daemon; default 3 s */
  targetProbeIntervalMs?: number;
  /** the background restore of exports: concurrency, and the injection point tests use */
  exportRestore?: ExportRestoreOptions;
  /**
   * Aborting it during start-up (SIGTERM before the agent serves) stops what was started so far
   * and makes startAgent reject with StartCancelled.
   */
  signal?: AbortSignal;
  /** The admin socket (cinderblock status, log-level): default <state_path>/cinderblock/admin.sock; false: none. */
  adminSocket?: string | false;
}

/** startAgent gave up because its signal was aborted; everything it had started is stopped. */
export class StartCancelled extends Error {
  constructor() {
    super('start-up cancelled by a signal; everything started so far was stopped');
    this.name = 'StartCancelled';
  }
}

function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StartCancelled();
}

/** setTimeout that ends early when `signal` is aborted. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface RunningBackend {
  backend: BackendConfig;
  service: VolumeService;
  server: RpcServer;
  /** the backend's export side, as the manager's flows use it */
  exports: VolumeExports;
  /** watches the target daemon; null without a target helper */
  supervisor: TargetSupervisor | null;
  restore: ExportRestore;
}

export interface Agent {
  backends: RunningBackend[];
  db: CinderDb;
  /** resolves when every backend's start-up restore of exports is done */
  exportsRestored: Promise<void>;
  stop(): Promise<void>;
}

async function openDatabaseWithRetry(config: CinderConfig, opts: AgentOptions): Promise<CinderDb> {
  const url = config.database.connection;
  for (let round = 1; ; round++) {
    throwIfCancelled(opts.signal);
    try {
      return await openDatabase(url, {
        logger: opts.logger,
        maxPoolSize: config.database.max_pool_size ?? 5,
        maxRetries: config.database.max_retries,
        retryInterval: config.database.retry_interval,
        connectionRecycleTime: config.database.connection_recycle_time,
      });
    } catch (err) {
      // oslo.db gives up after max_retries and cinder-volume dies; an agent that keeps trying
      // comes up by itself when the database does.
      const wait = opts.databaseRetryMs ?? Math.max(1, config.database.retry_interval) * 1000;
      opts.logger.error(
        { err },
        `cannot open the database ${redactDatabaseUrl(url)} (round ${round}); retrying in ${wait / 1000}s. ` +
          `Check [database] connection, that the server is up and that \`cinder-manage db sync\` has run.`,
      );
      await pause(wait, opts.signal);
    }
  }
}

function instrument(methods: Record<string, Handler>, backend: string, metrics: AgentMetrics | undefined): Record<string, Handler> {
  if (!metrics) return methods;
  return Object.fromEntries(
    Object.entries(methods).map(([name, fn]) => [
      name,
      async (ctx: Record<string, unknown>, args: Record<string, unknown>) => {
        const done = metrics.rpcStarted(backend, name);
        try {
          const result = await fn(ctx, args);
          done('ok');
          return result;
        } catch (err) {
          done('error');
          throw err;
        }
      },
    ]),
  );
}

export async function startAgent(config: CinderConfig, opts: AgentOptions): Promise<Agent> {
  const { logger, metrics } = opts;
  if (config.backends.length === 0) {
    throw new Error('enabled_backends is empty: name at least one backend section in [DEFAULT] enabled_backends');
  }
  const { signal } = opts;
  const db = await openDatabaseWithRetry(config, opts);
  logger.info(`database ${db.redactedUrl} open (${db.dialect})`);
  if (signal?.aborted) {
    await db.close().catch(logDropped(logger, 'closing the database after a cancelled start', 'the process is exiting'));
    throw new StartCancelled();
  }

  const transportUrl = config.default.transport_url;
  const connectionOpts = { rabbit: config.rabbit };
  const consumeConn = new AmqpConnection(transportUrl, connectionOpts);
  // Replies and casts go on a connection of their own, as oslo does, so broker flow control on
  // publishing can never stall consumption.
  const publishConn = new AmqpConnection(transportUrl, connectionOpts);
  if (metrics) {
    consumeConn.on('connected', () => metrics.brokerConnected.set(1));
    consumeConn.on('disconnected', () => metrics.brokerConnected.set(0));
  }
  // From here a cancelled start stops what it started: closing the connections and stopping the
  // services ends any step still waiting on them, and the catch below stops the rest.
  const services: VolumeService[] = [];
  const interrupt = () => {
    for (const s of services) void s.stop();
    void consumeConn.close();
    void publishConn.close();
  };
  signal?.addEventListener('abort', interrupt, { once: true });
  logger.info(`connecting to ${redactTransportUrl(transportUrl)}`);
  try {
    await Promise.all([consumeConn.start(), publishConn.start()]);
    throwIfCancelled(signal);
  } catch (err) {
    signal?.removeEventListener('abort', interrupt);
    await Promise.all([consumeConn.close(), publishConn.close()]).catch(logDropped(logger, 'closing the broker connections after a failed start', 'the process is exiting'));
    await db.close().catch(logDropped(logger, 'closing the database after a failed start', 'the process is exiting'));
    throw signal?.aborted ? new StartCancelled() : err;
  }

  const rpcClient = new RpcClient({
    connection: publishConn,
    controlExchange: config.default.control_exchange,
    rpcResponseTimeout: config.default.rpc_response_timeout,
  });
  const notifier = new RpcSchedulerNotifier(new SchedulerRpcClient(rpcClient));
  const rescheduler = new RpcSchedulerCreateVolume(rpcClient);
  const peers = new RpcVolumePeers(rpcClient);
  // nova's external events, from [nova] as cinder reads it; one client for every backend
  const novaAccess = novaAccessFrom(config.nova);
  if (!novaAccess.usable) logger.warn(`nova will not hear of in-use extends (each leaves a user message): ${novaAccess.reason}`);
  const compute = new NovaEventsClient(novaAccess, logger.child({ component: 'nova' }));
  const backupCallback = new RpcBackupCallback(rpcClient);
  const tgtControlPort = opts.tgtControlPort ?? configuredTgtControlPort(config);
  // set_log_levels reaches the backends' loggers too (made before any change; see LogLevelControl)
  const backendLoggers: Logger[] = [];
  const logLevels = new LogLevelControl(logger, 'cinderblock', () => backendLoggers);
  // the heap a burst of work (hundreds of exports, a restore) grew goes back once idle (idle-gc.ts)
  const idleGc = startIdleGc({ logger });

  const running: RunningBackend[] = [];
  const sides: TargetSide[] = [];
  const restores: ExportRestore[] = [];
  const restoredAll: Array<Promise<void>> = [];
  const audits: AuditLoop[] = [];
  const adminViews: AdminBackendView[] = [];
  let admin: AdminSocket | null = null;
  const stopAll = async () => {
    idleGc.stop();
    for (const a of audits) a.stop();
    await admin?.close();
    for (const side of sides) side.supervisor.stop();
    for (const b of running) {
      await b.server.stop().catch((err: unknown) => logger.error({ err }, `stopping RPC server of ${b.backend.host} failed`));
    }
    // every service started, serving or not yet (a cancelled start)
    await Promise.all(services.map((s) => s.stop()));
    await Promise.all(restores.map((r) => r.close()));
    // at stop, each is closed whatever the others did; the process exits after this
    await rpcClient.close().catch(logDropped(logger, 'closing the RPC client', 'its reply queue is auto-deleted by the broker'));
    await Promise.all([consumeConn.close(), publishConn.close()]).catch(logDropped(logger, 'closing the AMQP connections', 'the sockets go with the process'));
    await db.close().catch(logDropped(logger, 'closing the database pool', 'the connections go with the process'));
  };

  try {
    for (const backend of config.backends) {
      throwIfCancelled(signal);
      const blog = logger.child({ backend: backend.name });
      backendLoggers.push(blog);
      let side: TargetSide | null = null;
      try {
        side = createTargetSide(backend, {
          logger: blog,
          ...(tgtControlPort ? { tgtControlPort } : {}),
          ...(opts.targetProbeIntervalMs !== undefined ? { probeIntervalMs: opts.targetProbeIntervalMs } : {}),
        });
      } catch (err) {
        blog.error({ err }, `[${backend.name}] the target helper could not be set up; volumes can be created but not exported`);
      }
      if (side) sides.push(side);
      // the manager's two views of the backend: its data (the driver) and its exports
      const driver = createDriver(config, backend);
      const exports = createExports(driver, side, { backend, statePath: config.default.state_path, lockPath: config.concurrency.lock_path ?? null });
      // A driver that fails its setup at start and comes up later gets init_host's recovery then.
      let recoverLate: (() => Promise<void>) | null = null;
      const service = new VolumeService({
        host: backend.host,
        clusterName: backend.cluster,
        driver,
        registry: new DbServiceRegistry(db, { host: backend.host, availabilityZone: backend.availability_zone, clusterName: backend.cluster, logger: blog }),
        scheduler: notifier,
        allocated: new DbAllocatedCapacity(db, backend.volume_backend_name ?? backend.name),
        logger: blog,
        reportIntervalMs: config.default.report_interval * 1000,
        statsIntervalMs: config.default.backend_stats_polling_interval * 1000,
        filterFunction: backend.filter_function,
        goodnessFunction: backend.goodness_function,
        extraCapabilities: parseExtraCapabilities(backend.name, backend.extra_capabilities),
        sharedTargets: exports.sharedTargets,
        onHeartbeat: () => metrics?.heartbeatTimestamp.set({ backend: backend.name }, Date.now() / 1000),
        onCapabilities: (caps) => metrics?.recordCapabilities(backend.name, caps),
        onDriverRecovered: async () => {
          await recoverLate?.();
        },
      });
      services.push(service);
      await service.start();
      throwIfCancelled(signal);
      metrics?.driverInitialized.set({ backend: backend.name }, service.driverInitialized ? 1 : 0);
      const flows: FlowDeps = {
        db,
        driver,
        exports,
        service,
        scheduler: rescheduler,
        peers,
        migrationCreateVolumeTimeoutSecs: config.default.migration_create_volume_timeout_secs,
        compute,
        backup: backupCallback,
        backupUseTempSnapshot: backend.backup_use_temp_snapshot,
        logger: blog,
        lockPath: config.concurrency.lock_path ?? null,
        locks: newKeyedMutex(),
        poolName: backend.volume_backend_name ?? backend.name,
        reportDiscardSupported: backend.report_discard_supported,
        images: createImageTools(config, backend, blog, metrics),
        imageVolumeCache: imageVolumeCacheSettings(config, backend, blog),
      };
      const restore = new ExportRestore(flows, opts.exportRestore);
      restores.push(restore);
      flows.pendingRestore = restore;
      // the target side detects a lost daemon and brings it back; the manager says what to export
      side?.supervisor.setRestore((reason) => restore.restoreAll(reason));
      const manager = new VolumeManager(service, logLevels, flows);
      // init_host: settle what a crash left that callers read, then serve RPC while the exports
      // are restored in the background.
      const init = await manager.initHost(restore).catch((err: unknown) => {
        blog.error({ err }, 'init_host recovery failed');
        return null;
      });
      restoredAll.push(init?.restored ?? Promise.resolve());
      audits.push(
        startAuditLoop({
          ports: { backend: backend.name, host: backend.host, db, exports, driver },
          intervalMs: config.cinderblock.audit_interval * 1000,
          logger: blog,
          metrics: metrics ?? null,
          after: init?.restored ?? Promise.resolve(),
        }),
      );
      if (!init) {
        recoverLate = async () => {
          await manager.initHost(restore);
        };
      }
      const calls = new InFlightCalls();
      const server = new RpcServer({
        connection: consumeConn,
        publishConnection: publishConn,
        targets: targetsForVolumeService({ host: backend.host, cluster: backend.cluster }),
        endpoints: [{ version: manager.version, methods: calls.wrap(instrument(manager.methods(), backend.name, metrics)) }],
        controlExchange: config.default.control_exchange,
        maxInFlight: config.cinderblock.rpc_max_in_flight,
        name: backend.host,
        // The poison-message record survives the restart a poison message causes.
        poisonStateDir: join(config.default.state_path, 'cinderblock', 'rpc'),
      });
      await server.start();
      running.push({ backend, service, server, exports, supervisor: side?.supervisor ?? null, restore });
      adminViews.push({ running: running[running.length - 1]!, locks: flows.locks, calls, logger: blog });
      blog.info({ queues: server.queueNames }, `volume service ${backend.host} consuming`);
      await service.startPeriodicTasks();
    }
    throwIfCancelled(signal);
    if (opts.adminSocket !== false) {
      const path = opts.adminSocket ?? adminSocketPath(config.default.state_path);
      // Only the operator's view depends on it: the volume service serves without it.
      admin = await startAdminSocket(path, adminOps({ backends: () => adminViews, logLevels, version: packageVersion() }), logger).catch((err: unknown) => {
        logger.error({ err }, `cannot listen on the admin socket ${path}; \`cinderblock status\` and \`log-level\` will not reach this agent. Check that state_path is writable by the agent`);
        return null;
      });
      if (admin) logger.info(`admin socket ${admin.path}`);
    }
  } catch (err) {
    signal?.removeEventListener('abort', interrupt);
    await stopAll();
    throw signal?.aborted ? new StartCancelled() : err;
  }
  signal?.removeEventListener('abort', interrupt);

  return { backends: running, db, exportsRestored: Promise.all(restoredAll).then(() => undefined), stop: stopAll };
}
