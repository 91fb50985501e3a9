// target_helper for a backend. lioadm gets drivers/targets/lio (configfs); nvmet gets
// drivers/targets/nvmet (NVMe/TCP, configfs, watched like LIO); tgtadm gets
// drivers/targets/tgt with the backend's target options. Each comes with the supervisor of its
// daemon, and the backend's exports (drivers/exports.ts) are built from both and the volume
// driver: the daemon is made ready before the first export operation (tgtd started when nothing
// answers on its control port; LIO mended from our record), so a backend that never exports
// never touches tgtd, and from then on it is probed every few seconds. A loss is logged,
// repaired where the agent may (tgtd restarted when cinderblock owns it) and followed by the
// restore of every export, which the composition root wires to the manager (setRestore).
import { mkdirSync } from 'node:fs';
import type { BackendConfig, CinderConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { TargetHelper } from '../../drivers/targets/target.js';
import type { VolumeDriver } from '../../drivers/driver.js';
import { TargetExports, type VolumeExports } from '../../drivers/exports.js';
import { HostTargetExports } from '../../drivers/host-target-exports.js';
import { HostTargetRegistry, hostTargetsPath } from '../../drivers/targets/host-target/host-target-registry.js';
import type { HostTargetHelper } from '../../drivers/targets/host-target/host-target.js';
import type { HostTargetProtocol } from '../../drivers/targets/host-target/host-target-protocol.js';
import { IscsiHostProtocol } from '../../drivers/targets/iscsi-host-protocol.js';
import { NvmetHostProtocol } from '../../drivers/targets/nvmet/nvmet-host-protocol.js';
import { NvmetHostTarget } from '../../drivers/targets/nvmet/nvmet-host-target.js';
import { TgtHostTarget } from '../../drivers/targets/tgt/tgt-host-target.js';
import { invalidInput } from '../errors.js';
import { TgtTarget } from '../../drivers/targets/tgt/tgt-target.js';
import { LioHostTarget } from '../../drivers/targets/lio/lio-host-target.js';
import { LioTarget } from '../../drivers/targets/lio/lio-target.js';
import { LioWatch } from '../../drivers/targets/lio/lio-watch.js';
import { NvmetTarget } from '../../drivers/targets/nvmet/nvmet-target.js';
import { NVME_TCP_PORT } from '../../drivers/targets/nvmet/nvmet-options.js';
import { TgtdWatch } from '../../drivers/targets/tgt/tgtd-watch.js';
import { TargetSupervisor } from '../../drivers/targets/target-supervisor.js';
import { formatPortal } from '../iscsi/index.js';

export interface TargetFactoryOptions {
  /** tgtd/tgtadm control port (tests run their own tgtd); default tgt's own. */
  tgtControlPort?: number;
  logger: Logger;
  /** between two probes of the target daemon; default 3 s, 0 = never probe */
  probeIntervalMs?: number;
}

/** The backend's target helper and the supervisor that watches its daemon. */
export interface TargetSide {
  helper: TargetHelper;
  supervisor: TargetSupervisor;
  /**
   * The same daemon's host targets (target_layout = per-host) for backend `backend`: the tool's
   * helper and the protocol's names, admission and connection_info. Made only for a per-host
   * backend, so an option only that layout cares about stops only its start-up.
   */
  hostTargets: (backend: string) => HostTargetSide;
}

export interface HostTargetSide {
  helper: HostTargetHelper;
  protocol: HostTargetProtocol;
}

/**
 * tgtd's control port as the agent and every command that reads tgtd pick it: [cinderblock]
 * tgt_control_port, then CINDERBLOCK_TGTD_CONTROL_PORT; undefined: tgt's own default. One rule,
 * or a command reads another tgtd than the agent's (the audit once saw "no daemon" and said clean).
 */
export function configuredTgtControlPort(config: CinderConfig, env: Readonly<Record<string, string | undefined>> = process.env): number | undefined {
  const conf = config.cinderblock.tgt_control_port;
  if (conf > 0) return conf;
  const fromEnv = Number.parseInt(env.CINDERBLOCK_TGTD_CONTROL_PORT ?? '', 10);
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : undefined;
}

/** The backend's target side, or null for target_helper = fake (no exports). */
export function createTargetSide(backend: BackendConfig, opts: TargetFactoryOptions): TargetSide | null {
  if (backend.target_helper === 'fake') return null;
  if (backend.target_helper === 'nvmet') return createNvmetSide(backend, opts);
  if (backend.target_helper !== 'tgtadm' && backend.target_helper !== 'lioadm') {
    opts.logger.error(`[${backend.name}] target_helper = ${backend.target_helper} is not supported by cinderblock yet; exports will fail. Use tgtadm, lioadm or nvmet.`);
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
  const supervise = (inner: TargetHelper, watch: ConstructorParameters<typeof TargetSupervisor>[0], hostHelper: () => HostTargetHelper): TargetSide => {
    const supervisor = new TargetSupervisor(watch, { logger: opts.logger, ...(opts.probeIntervalMs !== undefined ? { intervalMs: opts.probeIntervalMs } : {}) });
    return { helper: inner, supervisor, hostTargets: (name) => ({ helper: hostHelper(), protocol: new IscsiHostProtocol(iscsi, name) }) };
  };
  if (backend.target_helper === 'lioadm') {
    // configfs directly (targetcli when configfs is not writable). Our own objects are mended from
    // our record before the first operation; other owners' objects are never touched.
    // per-host: one target per compute host on the same configfs (lio-host-target.ts)
    const lio = new LioTarget(iscsi);
    return supervise(lio, new LioWatch(lio), () => new LioHostTarget(iscsi));
  }
  const controlPort = opts.tgtControlPort;
  const tgtOptions = {
    ...iscsi,
    iscsiWriteCache: backend.iscsi_write_cache,
    iscsiTargetFlags: backend.iscsi_target_flags,
    ...(controlPort ? { controlPort } : {}),
  };
  const target = new TgtTarget(tgtOptions);
  const portals = [backend.target_ip_address, ...backend.iscsi_secondary_ip_addresses].map((host) => formatPortal({ host, port: backend.target_port }));
  return supervise(target, new TgtdWatch({ portals, ...(controlPort ? { controlPort } : {}) }), () => new TgtHostTarget(tgtOptions));
}

/**
 * target_helper = nvmet (NVMe/TCP through the kernel's nvmet configfs): our subsystems are mended
 * from our record before the first operation and watched like LIO's targets (a configfs loss is
 * followed by the manager's restore). target_layout = per-host gets a subsystem per compute host
 * (nvmet-host-target.ts). Options are checked here so a bad value stops start-up.
 */
function createNvmetSide(backend: BackendConfig, opts: TargetFactoryOptions): TargetSide {
  // cinder's nvmet helper listens on target_port as configured, 3260 (iSCSI's port) by default;
  // so does this one: hosts attached by a cinder-volume before hold connection_info naming that
  // port, and their controllers reconnect there after a restore.
  const targetPort = backend.target_port;
  if (targetPort === 3260) {
    opts.logger.warn(
      `[${backend.name}] target_helper = nvmet listens on target_port 3260, cinder's default and iSCSI's port, as cinder does; NVMe/TCP's own port is ${NVME_TCP_PORT}: set target_port = ${NVME_TCP_PORT} on a backend with no NVMe attachment yet (attached hosts keep the port their connection_info names)`,
    );
  }
  mkdirSync(backend.volumes_dir, { recursive: true, mode: 0o750 });
  const nvmet = new NvmetTarget({
    targetPrefix: backend.target_prefix,
    targetIpAddress: backend.target_ip_address,
    targetSecondaryIpAddresses: backend.iscsi_secondary_ip_addresses,
    targetPort,
    targetProtocol: backend.target_protocol,
    nvmetPortId: backend.nvmet_port_id,
    nvmetNsId: backend.nvmet_ns_id,
    volumesDir: backend.volumes_dir,
  });
  const supervisor = new TargetSupervisor(new LioWatch(nvmet, 'nvmet (configfs)'), { logger: opts.logger, ...(opts.probeIntervalMs !== undefined ? { intervalMs: opts.probeIntervalMs } : {}) });
  // per-host: a subsystem per compute host on the same configfs, ports and modules
  const hostTargets = (name: string): HostTargetSide => ({
    helper: new NvmetHostTarget(nvmet, { targetPrefix: backend.target_prefix, nvmetNsId: backend.nvmet_ns_id }),
    protocol: new NvmetHostProtocol({ targetPrefix: backend.target_prefix, backend: name, portals: () => nvmet.portals() }),
  });
  return { helper: nvmet, supervisor, hostTargets };
}

export interface ExportsContext {
  backend: Pick<BackendConfig, 'name' | 'target_layout' | 'target_helper'>;
  /** [DEFAULT] state_path: the per-host layout's registry lives under it */
  statePath: string;
  /** [oslo_concurrency] lock_path: the host targets' external locks */
  lockPath: string | null;
}

/**
 * The backend's exports: its target side (null: none configured, every export refused) serving
 * what the driver names, in the backend's target_layout. The one place VolumeExports are built.
 * Without `ctx` (tests of the per-volume layout), per volume.
 */
export function createExports(driver: VolumeDriver, side: TargetSide | null, ctx?: ExportsContext): VolumeExports {
  const perVolume = new TargetExports({ target: side?.helper ?? null, supervisor: side?.supervisor ?? null, driver });
  if (!ctx || ctx.backend.target_layout !== 'per-host') return perVolume;
  if (!side) {
    throw invalidInput(`[${ctx.backend.name}] target_layout = per-host needs a target: target_helper = ${ctx.backend.target_helper} exports nothing; use tgtadm, lioadm or nvmet, or target_layout = per-volume`);
  }
  const registry = new HostTargetRegistry({ path: hostTargetsPath(ctx.statePath, ctx.backend.name), backend: ctx.backend.name, lockPath: ctx.lockPath });
  const host = side.hostTargets(ctx.backend.name);
  const exports = new HostTargetExports({
    protocol: host.protocol,
    helper: host.helper,
    registry,
    supervisor: side.supervisor,
    lockPath: ctx.lockPath,
    driver,
    perVolume,
  });
  // LIO has no daemon whose death says "restore": its watch compares configfs with what we
  // promised, and for host targets the registry holds that (tgt's watch sees tgtd go instead)
  if (side.supervisor.watch instanceof LioWatch) side.supervisor.watch.watchHostTargets(() => exports.missingHostTargets());
  return exports;
}

/** The backend's (unsupervised) target helper, or null for target_helper = fake (no exports). */
export function createTargetHelper(backend: BackendConfig, opts: TargetFactoryOptions): TargetHelper | null {
  return createTargetSide(backend, opts)?.helper ?? null;
}
