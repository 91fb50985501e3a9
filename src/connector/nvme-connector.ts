// The initiator side of an NVMe/TCP attachment, as os-brick's NVMeOFConnector does it for the
// connection_info our nvmet helper returns: `nvme connect` to each portal not connected yet as the
// host NQN the subsystem admits, the namespace found by its nguid (never by its nsid alone: an
// nsid says nothing about which volume), the kernel's native NVMe multipath joining the paths
// into one device. Disconnect drops the subsystem's controllers only when no other namespace of
// it is in use here; extend asks each controller to rescan and reads the new size.
//
// Layers: nvme-commands.ts builds argv and reads nvme-cli's output; this file runs them through a
// CommandRunner and reads sysfs through ConnectorIo, so tests hand in fakes.
import { setTimeout as delay } from 'node:timers/promises';
import { assertNqn } from '../../drivers/targets/validate.js';
import { invalidInput } from '../errors.js';
import { processRunner, type CommandResult, type CommandRunner } from '../exec/run-command.js';
import { log, type Logger } from '../log.js';
import { ConnectorError, nodeIo, type ConnectorIo } from './iscsi-connector.js';
import {
  blockNguidPath,
  blockSizePath,
  connectArgv,
  disconnectArgv,
  findByNguid,
  isNamespaceDevice,
  liveControllers,
  listSubsysArgv,
  normaliseNguid,
  nsRescanArgv,
  parseListSubsys,
  type NvmeSubsystem,
} from './nvme-commands.js';

export interface NvmeConnectionProperties {
  nqn: string;
  portals: Array<{ address: string; port: number }>;
  /** 32 hex digits */
  nguid: string;
  /** the NQN to connect as; null: this host's /etc/nvme/hostnqn */
  hostNqn: string | null;
}

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

function portOf(v: unknown): number {
  const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw invalidInput(`NVMe-oF port must be 1-65535, got ${JSON.stringify(v)}`);
  return n;
}

/**
 * connection_info as initialize_connection returns it (`{driver_volume_type: 'nvmeof', data}`) or
 * flattened; os-brick 6.1's new format (`target_nqn`, `portals`) or Zed's old one (`nqn`,
 * `target_portal`, `target_port`). Every value that reaches nvme-cli's argv is checked here.
 */
export function parseNvmeConnectionInfo(ci: unknown): NvmeConnectionProperties {
  const top = obj(ci);
  if (!top) throw invalidInput('connection_info must be a JSON object');
  if (top.driver_volume_type !== undefined && top.driver_volume_type !== 'nvmeof') {
    throw invalidInput(`connection_info is for ${JSON.stringify(top.driver_volume_type)}, not nvmeof`);
  }
  const d = obj(top.data) ?? top;
  const nqn = d.target_nqn ?? d.nqn;
  assertNqn(nqn, 'connection_info target_nqn');
  const portals: NvmeConnectionProperties['portals'] = [];
  if (Array.isArray(d.portals) && d.portals.length > 0) {
    for (const p of d.portals) {
      if (!Array.isArray(p) || typeof p[0] !== 'string') throw invalidInput('connection_info portals must be [address, port, transport] triples');
      if (p[2] !== undefined && p[2] !== 'tcp') throw invalidInput(`only NVMe/TCP is supported, got transport ${JSON.stringify(p[2])}`);
      portals.push({ address: p[0], port: portOf(p[1]) });
    }
  } else if (typeof d.target_portal === 'string') {
    portals.push({ address: d.target_portal, port: portOf(d.target_port) });
  } else {
    throw invalidInput('connection_info names no portal (portals or target_portal)');
  }
  const nguid = typeof d.volume_nguid === 'string' ? normaliseNguid(d.volume_nguid) : '';
  if (!/^[0-9a-f]{32}$/.test(nguid)) {
    throw invalidInput('connection_info has no volume_nguid: cinderblock finds the namespace by it, never by ns_id alone');
  }
  let hostNqn: string | null = null;
  if (d.host_nqn !== undefined && d.host_nqn !== null) {
    assertNqn(d.host_nqn, 'connection_info host_nqn');
    hostNqn = d.host_nqn;
  }
  return { nqn, portals, nguid, hostNqn };
}

export interface NvmeConnectorOptions {
  runner?: CommandRunner;
  rootHelper?: readonly string[];
  io?: ConnectorIo;
  sysfsRoot?: string;
  /** this host's NQN when connection_info names none (default /etc/nvme/hostnqn) */
  hostNqnFile?: string;
  /**
   * the host id to connect with (default: nvme-cli's /etc/nvme/hostid); the kernel takes one
   * host id under one host NQN only, so a machine presenting several NQNs passes one per NQN
   */
  hostId?: string;
  /** how long to wait for the namespace's block device after connect (default 30 s) */
  deviceWaitMs?: number;
  pollMs?: number;
  logger?: Logger;
}

export interface NvmeConnectedDevice {
  /** /dev/nvmeXnY: the multipath head when the kernel joins paths, else the one namespace */
  path: string;
  /** controllers of the subsystem live on this host now */
  controllers: string[];
  /** portals this call connected (others were connected already) */
  connected: string[];
}

export class NvmeConnector {
  private readonly runner: CommandRunner;
  private readonly io: ConnectorIo;
  private readonly sysfs: string;
  private readonly logger: Logger;

  constructor(private readonly o: NvmeConnectorOptions = {}) {
    this.runner = o.runner ?? processRunner({ prefix: o.rootHelper ?? [] });
    this.io = o.io ?? nodeIo;
    this.sysfs = o.sysfsRoot ?? '/sys';
    this.logger = o.logger ?? log();
  }

  private async exec(argv: string[]): Promise<CommandResult> {
    const r = await this.runner(argv);
    if (r.exitCode !== 0) {
      throw new ConnectorError(`${argv.slice(0, 2).join(' ')} failed (exit ${r.exitCode}): ${r.stderr.trim().slice(0, 300) || r.stdout.trim().slice(0, 300)}`, { argv, exitCode: r.exitCode, stderr: r.stderr });
    }
    return r;
  }

  private async subsystems(): Promise<NvmeSubsystem[]> {
    const r = await this.runner(listSubsysArgv());
    // nvme-cli prints nothing (or an error) when no subsystem exists at all
    if (r.exitCode !== 0 || !r.stdout.trim()) return [];
    return parseListSubsys(r.stdout);
  }

  private async hostNqn(p: NvmeConnectionProperties): Promise<string> {
    if (p.hostNqn) return p.hostNqn;
    const file = this.o.hostNqnFile ?? '/etc/nvme/hostnqn';
    const text = (await this.io.readFile(file).catch(() => '')).trim();
    assertNqn(text, `this host's NQN (${file}); connection_info has no host_nqn`);
    return text;
  }

  /** (device, nguid) for every NVMe namespace block device on this host. */
  private async namespaces(): Promise<Array<{ name: string; nguid: string }>> {
    const names = (await this.io.readdir(`${this.sysfs}/class/block`).catch(() => [] as string[])).filter(isNamespaceDevice);
    const out: Array<{ name: string; nguid: string }> = [];
    for (const name of names) {
      const nguid = await this.io.readFile(blockNguidPath(name, this.sysfs)).catch(() => '');
      out.push({ name, nguid });
    }
    return out;
  }

  async connectVolume(ci: unknown): Promise<NvmeConnectedDevice> {
    const p = parseNvmeConnectionInfo(ci);
    const hostnqn = await this.hostNqn(p);
    const live = (await this.subsystems()).filter((s) => s.nqn === p.nqn).flatMap((s) => s.paths.filter((x) => x.state === 'live'));
    const connected: string[] = [];
    const failures: string[] = [];
    for (const portal of p.portals) {
      const where = `${portal.address}:${portal.port}`;
      if (live.some((x) => x.traddr === portal.address && Number(x.trsvcid) === portal.port)) continue;
      // ctrl_loss_tmo -1, as os-brick: the device outlives a target restart instead of vanishing
      const argv = connectArgv({ transport: 'tcp', traddr: portal.address, trsvcid: portal.port, subnqn: p.nqn, hostnqn, ctrlLossTmo: -1, ...(this.o.hostId ? { hostid: this.o.hostId } : {}) });
      try {
        await this.exec(argv);
        connected.push(where);
      } catch (err) {
        failures.push(`${where}: ${(err as Error).message}`);
        this.logger.warn({ nqn: p.nqn, portal: where }, `nvme connect to ${where} failed: ${(err as Error).message}`);
      }
    }
    if (failures.length === p.portals.length) {
      throw new ConnectorError(`no portal of ${p.nqn} could be connected as ${hostnqn}: ${failures.join('; ')}. Is this host's NQN attached to the volume?`);
    }
    const device = await this.waitForDevice(p.nguid);
    if (!device) {
      throw new ConnectorError(`connected to ${p.nqn}, but no namespace with nguid ${p.nguid} appeared within ${(this.o.deviceWaitMs ?? 30_000) / 1000} s: the volume is not mapped for ${hostnqn}`);
    }
    const controllers = liveControllers(await this.subsystems(), p.nqn);
    this.logger.info({ nqn: p.nqn, device, controllers }, `NVMe/TCP volume ${p.nguid} is /dev/${device}`);
    return { path: `/dev/${device}`, controllers, connected };
  }

  private async waitForDevice(nguid: string): Promise<string | null> {
    const deadline = Date.now() + (this.o.deviceWaitMs ?? 30_000);
    for (;;) {
      const found = findByNguid(await this.namespaces(), nguid);
      if (found || Date.now() >= deadline) return found;
      await delay(this.o.pollMs ?? 250);
    }
  }

  /**
   * Drops the subsystem's controllers, unless another namespace of it is still here (a shared
   * subsystem): then only this volume's device goes with the target's unmapping.
   */
  async disconnectVolume(ci: unknown): Promise<{ disconnected: boolean }> {
    const p = parseNvmeConnectionInfo(ci);
    const subsystems = await this.subsystems();
    const controllers = liveControllers(subsystems, p.nqn);
    if (controllers.length === 0) return { disconnected: false };
    const mine = findByNguid(await this.namespaces(), p.nguid);
    const others = (await this.subsystemNamespaces(subsystems, p.nqn, controllers)).filter((n) => n !== mine);
    if (others.length > 0) {
      this.logger.info({ nqn: p.nqn, others }, `${p.nqn} still serves ${others.length} other namespace(s) here: its controllers stay`);
      return { disconnected: false };
    }
    await this.exec(disconnectArgv(p.nqn));
    return { disconnected: true };
  }

  /**
   * The namespace devices of a subsystem on this host: under the subsystem in sysfs when the
   * kernel's native multipath joins paths (the head devices), under each controller otherwise.
   */
  private async subsystemNamespaces(subsystems: readonly NvmeSubsystem[], nqn: string, controllers: readonly string[]): Promise<string[]> {
    const names = new Set<string>();
    const dirs = [
      // names as nvme-cli printed them (the listing disconnectVolume already holds), checked before they become paths
      ...subsystems.filter((s) => s.nqn === nqn && /^nvme-subsys\d{1,5}$/.test(s.name)).map((s) => `${this.sysfs}/class/nvme-subsystem/${s.name}`),
      ...controllers.filter((c) => /^nvme\d{1,5}$/.test(c)).map((c) => `${this.sysfs}/class/nvme/${c}`),
    ];
    for (const dir of dirs) for (const e of await this.io.readdir(dir).catch(() => [] as string[])) if (isNamespaceDevice(e)) names.add(e);
    return [...names];
  }

  /** Every controller of the subsystem rescans; the device's new size in bytes. */
  async extendVolume(ci: unknown): Promise<number> {
    const p = parseNvmeConnectionInfo(ci);
    for (const c of liveControllers(await this.subsystems(), p.nqn)) await this.exec(nsRescanArgv(c));
    const device = findByNguid(await this.namespaces(), p.nguid);
    if (!device) throw new ConnectorError(`no namespace with nguid ${p.nguid} on this host: connect it first`);
    const sectors = Number((await this.io.readFile(blockSizePath(device, this.sysfs))).trim());
    return sectors * 512;
  }
}
