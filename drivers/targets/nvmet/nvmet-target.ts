// target_helper = nvmet, target_protocol = nvmet_tcp: NVMe/TCP exports through the kernel's NVMe
// target, driven by writing /sys/kernel/config/nvmet (nvmet-configfs.ts) — no nvmetcli, which
// Debian bookworm does not package, and no save/edit/restore of the whole tree, which is how
// cinder's nvmet.py makes every connected host lose every namespace on each export change.
//
// One subsystem per volume, named as cinder names it (nvmet-naming.ts), one namespace in it
// (nsid = nvmet_ns_id, kept in our record so a restore gives the same one), linked to one port per
// address (nvmet-options.ts). Access (README.md): attr_allow_any_host stays 0 and allowed_hosts
// holds exactly the host NQNs of live attachments; the namespace is enabled only while some host
// is admitted. Revoking the last host disables the namespace (the only thing that takes it from a
// controller already connected); revoking one of several relinks the subsystem's ports, which
// makes the kernel drop every controller of it there, and only the admitted hosts get back in.
//
// Persistence: $volumes_dir/cinderblock-nvmet.json (nvmet-state.ts). reconcile() at start and
// ensureExport rebuild only subsystems with our NQN prefix that the record or the caller names.
//
// Concurrency: per-subsystem KeyedMutex for everything on one subsystem; one lock for the ports
// (shared by every subsystem: an address is written only before a port's first link) and one for
// the record file, each taken inside a subsystem lock, never the other way round.
import { stat } from 'node:fs/promises';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { forEachLimited } from '../../../src/concurrency/for-each-limited.js';
import { invalidConnectorException, invalidInput, invalidVolume, volumeBackendApiException } from '../../../src/errors.js';
import { processRunner, type CommandRunner } from '../../../src/exec/run-command.js';
import { log } from '../../../src/log.js';
import { nodeConfigfsIo, type ConfigfsIo } from '../lio/configfs.js';
import { buildNvmeofConnectionInfo } from '../nvmeof-connection-info.js';
import type { ConnectionInfo, Connector, EnsureExportOptions, ExportedVolume, ExportModelUpdate, FoundExport, TargetHelper, TerminateOptions } from '../target.js';
import { assertBackingPath, assertDirectory, assertNqn, isNqn } from '../validate.js';
import { ANY_HOST, NVMET_CONFIGFS_ROOT, NvmetConfigfs } from './nvmet-configfs.js';
import { NvmetModules } from './nvmet-modules.js';
import { namespaceIdentity, nvmetProviderLocation, subsystemNqn, volumeIdOfSubsystem } from './nvmet-naming.js';
import { nvmetPorts, validateNvmetOptions, type NvmetPort, type NvmetTargetOptions } from './nvmet-options.js';
import { nvmetStatePath, readNvmetState, writeNvmetState, type NvmetExportRecord, type NvmetHostEntry, type NvmetState } from './nvmet-state.js';

const RECONCILE_CONCURRENCY = 8;

export interface NvmetTargetConfig extends NvmetTargetOptions {
  /** volumes_dir: holds cinderblock-nvmet.json */
  volumesDir: string;
  /** default /sys/kernel/config/nvmet; tests point it at a stand-in directory */
  configfsRoot?: string;
  io?: ConfigfsIo;
  /** runs modprobe; default the one process runner */
  runner?: CommandRunner;
  /** whether /sys/module/<name> exists; tests inject it */
  moduleLoaded?: (name: string) => Promise<boolean>;
}

interface Desired {
  volumeId: string;
  nqn: string;
  backingPath: string;
  nsid: number;
  /** host NQNs to admit, exactly */
  hosts: string[];
}

/** connector['nqn'], required (InvalidConnectorException) and checked (InvalidInput). */
export function connectorNqn(connector: Connector | null | undefined): string {
  const nqn = connector && typeof connector === 'object' ? connector.nqn : undefined;
  if (nqn === undefined || nqn === null || nqn === '') throw invalidConnectorException('nqn');
  assertNqn(nqn, "connector's nqn");
  return nqn;
}

function connectorHost(connector: Connector | null | undefined): string | null {
  return typeof connector?.host === 'string' && connector.host !== '' ? connector.host : null;
}

function passThrough(e: unknown): boolean {
  const c = (e as { className?: string } | null)?.className;
  return c === 'InvalidVolume' || c === 'InvalidInput' || c === 'InvalidConnectorException' || c === 'VolumeDriverException' || c === 'VolumeBackendAPIException';
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export class NvmetTarget implements TargetHelper {
  private readonly locks = new KeyedMutex();
  private readonly shared = new KeyedMutex();
  readonly fs: NvmetConfigfs;
  private readonly modules: NvmetModules;
  private readonly ports: NvmetPort[];

  constructor(private readonly o: NvmetTargetConfig) {
    validateNvmetOptions(o);
    assertDirectory(o.volumesDir, 'volumes_dir');
    this.fs = new NvmetConfigfs(o.configfsRoot ?? NVMET_CONFIGFS_ROOT, o.io ?? nodeConfigfsIo);
    this.ports = nvmetPorts(o);
    this.modules = new NvmetModules({
      runner: o.runner ?? processRunner(),
      loaded: o.moduleLoaded ?? ((name) => pathExists(`/sys/module/${name}`)),
      rootPresent: () => this.fs.available(),
    });
  }

  nqnOf(v: Pick<ExportedVolume, 'id'>): string {
    return subsystemNqn(this.o.targetPrefix, v.id);
  }

  statePath(): string {
    return nvmetStatePath(this.o.volumesDir);
  }

  validateConnector(connector: Connector): void {
    connectorNqn(connector);
  }

  // ---- record --------------------------------------------------------------------------------

  private readState(): Promise<NvmetState> {
    return readNvmetState(this.statePath());
  }

  private updateState(fn: (s: NvmetState) => void): Promise<void> {
    return this.shared.run('record', async () => {
      const s = await this.readState();
      fn(s);
      await writeNvmetState(this.statePath(), s);
    });
  }

  private async record(nqn: string): Promise<NvmetExportRecord | null> {
    return (await this.readState()).exports[nqn] ?? null;
  }

  private location(nqn: string, nsid: number): string {
    const first = this.ports[0]!;
    return nvmetProviderLocation(first.ip, this.o.targetPort, nqn, nsid);
  }

  // ---- export lifecycle ------------------------------------------------------------------------

  async createExport(v: ExportedVolume): Promise<ExportModelUpdate> {
    const nqn = this.nqnOf(v);
    assertBackingPath(v.backingPath);
    return this.locks.run(nqn, async () => {
      try {
        if (!(await pathExists(v.backingPath))) throw invalidVolume(`backing device ${v.backingPath} of volume ${v.id} does not exist`);
        const rec = await this.record(nqn);
        const nsid = rec?.nsid ?? this.o.nvmetNsId;
        // cinder calls create_export before every attachment: the admitted hosts stay
        const hosts = rec?.hosts ?? [];
        const made = await this.build({ volumeId: v.id, nqn, backingPath: v.backingPath, nsid, hosts: hosts.map((h) => h.nqn) });
        try {
          await this.updateState((s) => {
            s.exports[nqn] = { volumeId: v.id, nqn, backingPath: v.backingPath, nsid, hosts };
          });
        } catch (e) {
          // the record's failure is what the caller must hear; a subsystem left behind is said, and
          // the start-up sweep and `cinderblock audit` see it as an export no volume needs
          if (made) await this.fs.removeSubsystem(nqn).catch((err: unknown) => log().error({ err, nqn, volume_id: v.id }, `could not take back subsystem ${nqn} after its record failed; \`cinderblock audit --fix\` removes it`));
          throw e;
        }
        log().info({ volume_id: v.id, nqn, nsid, created: made }, 'created nvmet export');
        return { provider_location: this.location(nqn, nsid), provider_auth: '' };
      } catch (e) {
        log().error({ volume_id: v.id, nqn, err: e }, 'failed to create nvmet subsystem');
        if (passThrough(e)) throw e;
        throw volumeBackendApiException(`Failed to add subsystem: ${nqn}`, e);
      }
    });
  }

  /**
   * Rebuild the export (after a reboot or a configfs loss) with the nsid of our record. With
   * `connectors` (the database's live attachments), exactly their NQNs are admitted; otherwise
   * the record's hosts.
   */
  async ensureExport(v: ExportedVolume, opts: EnsureExportOptions = {}): Promise<void> {
    const nqn = this.nqnOf(v);
    assertBackingPath(v.backingPath);
    const given: NvmetHostEntry[] | null = opts.connectors ? uniqueHosts(opts.connectors.filter((c) => isNqn(c?.nqn)).map((c) => ({ nqn: c.nqn as string, host: connectorHost(c) }))) : null;
    await this.locks.run(nqn, async () => {
      try {
        const rec = await this.record(nqn);
        if (!rec && !v.providerLocation) return;
        const nsid = rec?.nsid ?? nsidFromLocation(v.providerLocation) ?? this.o.nvmetNsId;
        const hosts = given ?? rec?.hosts ?? [];
        const made = await this.build({ volumeId: v.id, nqn, backingPath: v.backingPath, nsid, hosts: hosts.map((h) => h.nqn) });
        await this.updateState((s) => {
          s.exports[nqn] = { volumeId: v.id, nqn, backingPath: v.backingPath, nsid, hosts };
        });
        log().info({ volume_id: v.id, nqn, nsid, recreated: made, hosts: hosts.length }, 'ensured nvmet export');
      } catch (e) {
        log().error({ volume_id: v.id, nqn, err: e }, 'failed to ensure nvmet subsystem');
        if (passThrough(e)) throw e;
        throw volumeBackendApiException(`Failed to add subsystem: ${nqn}`, e);
      }
    });
  }

  async removeExport(v: ExportedVolume): Promise<void> {
    const nqn = this.nqnOf(v);
    await this.locks.run(nqn, async () => {
      try {
        const before = await this.fs.readSubsystem(nqn);
        await this.fs.removeSubsystem(nqn);
        if (await this.fs.readSubsystem(nqn)) throw new Error(`subsystem ${nqn} still present after removal`);
        await this.updateState((s) => {
          delete s.exports[nqn];
        });
        for (const h of before?.hosts ?? []) await this.fs.removeHostIfUnused(h).catch(() => false);
        log().info({ volume_id: v.id, nqn }, 'removed nvmet export');
      } catch (e) {
        log().error({ volume_id: v.id, nqn, err: e }, 'failed to remove nvmet subsystem');
        throw volumeBackendApiException(`Failed to delete subsystem: ${nqn}`, e);
      }
    });
  }

  // ---- connections ------------------------------------------------------------------------------

  async initializeConnection(v: ExportedVolume, connector: Connector): Promise<ConnectionInfo> {
    const hostNqn = connectorNqn(connector);
    const host = connectorHost(connector);
    const nqn = this.nqnOf(v);
    return this.locks.run(nqn, async () => {
      try {
        const rec = await this.record(nqn);
        if (!rec || !(await this.fs.readSubsystem(nqn))) throw invalidVolume(`Could not find NVMe export for volume ${v.id}`);
        // Two compute hosts presenting one NQN (cloned images share /etc/nvme/hostnqn): an ACL
        // by NQN could not tell them apart, so the second is refused rather than let in.
        const clash = rec.hosts.find((h) => h.nqn === hostNqn && h.host !== null && host !== null && h.host !== host);
        if (clash) {
          throw invalidInput(`host NQN ${hostNqn} is already attached from compute host ${clash.host}; ${host} presents the same NQN (give each host its own /etc/nvme/hostnqn)`);
        }
        const hosts = rec.hosts.some((h) => h.nqn === hostNqn) ? rec.hosts : [...rec.hosts, { nqn: hostNqn, host }];
        await this.build({ volumeId: rec.volumeId, nqn, backingPath: rec.backingPath, nsid: rec.nsid, hosts: hosts.map((h) => h.nqn) });
        await this.updateState((s) => {
          s.exports[nqn] = { ...rec, hosts };
        });
        log().info({ volume_id: v.id, nqn, host_nqn: hostNqn }, 'host admitted to nvmet subsystem');
        return buildNvmeofConnectionInfo({
          nqn,
          nsid: rec.nsid,
          nguid: namespaceIdentity(rec.volumeId).nguid,
          portals: this.ports.map((p) => ({ ip: p.ip, port: this.o.targetPort })),
          hostNqn,
        });
      } catch (e) {
        log().error({ volume_id: v.id, nqn, host_nqn: hostNqn, err: e }, 'failed to initialize nvmet connection');
        if (passThrough(e)) throw e;
        throw volumeBackendApiException(`Failed to admit host ${hostNqn} to subsystem ${nqn}`, e);
      }
    });
  }

  /**
   * Refuse the connector's NQN from now on and take the namespace from it at once: the last host
   * leaving disables the namespace; one of several leaving relinks the ports (the kernel drops
   * the subsystem's controllers there; admitted hosts reconnect, the revoked one is refused).
   */
  async terminateConnection(v: ExportedVolume, connector: Connector | null, opts: TerminateOptions): Promise<void> {
    const nqn = this.nqnOf(v);
    const raw = connector?.nqn;
    let hostNqn: string | null = null;
    if (raw !== undefined && raw !== null && raw !== '') {
      if (!isNqn(raw)) {
        log().warn({ volume_id: v.id, nqn }, 'terminate_connection: connector nqn is not an NQN; nothing to revoke');
        return;
      }
      hostNqn = raw;
    }
    if (opts.keepAcl) {
      log().debug({ volume_id: v.id, nqn, host_nqn: hostNqn }, 'terminate_connection: another attachment of this host remains; host kept');
      return;
    }
    if (hostNqn === null && !opts.force) {
      log().warn({ volume_id: v.id, nqn }, 'terminate_connection without an nqn and without force: nothing to revoke');
      return;
    }
    const matches = (h: string): boolean => hostNqn === null || h === hostNqn;
    await this.locks.run(nqn, async () => {
      let recordError: unknown = null;
      let rec: NvmetExportRecord | null = null;
      // 1. the record first: a restore will not admit the host again
      try {
        await this.updateState((s) => {
          const r = s.exports[nqn];
          if (r) r.hosts = r.hosts.filter((h) => !matches(h.nqn));
          rec = r ?? null;
        });
      } catch (e) {
        recordError = e;
      }
      try {
        await this.revoke(nqn, matches, (rec as NvmetExportRecord | null)?.nsid ?? null);
        if (recordError) throw recordError;
        log().info({ volume_id: v.id, nqn, host_nqn: hostNqn ?? 'ALL (force)' }, 'host revoked on nvmet subsystem');
      } catch (e) {
        log().error({ volume_id: v.id, nqn, host_nqn: hostNqn, err: e }, 'failed to terminate nvmet connection');
        throw volumeBackendApiException(`Failed to revoke host ${hostNqn ?? '(all)'} on subsystem ${nqn}`, e);
      }
    });
  }

  /**
   * The grown device's size: `revalidate_size` where the kernel has it; otherwise a disable and
   * enable of the namespace (connected hosts see it go and come back with the new size).
   */
  async extendTarget(v: ExportedVolume): Promise<void> {
    const nqn = this.nqnOf(v);
    await this.locks.run(nqn, async () => {
      const rec = await this.record(nqn);
      const ns = rec ? await this.fs.readNamespace(nqn, rec.nsid) : null;
      if (!rec || !ns) return;
      if (await this.fs.revalidateSize(nqn, rec.nsid)) return;
      if (!ns.enabled) return;
      await this.fs.setNamespaceEnabled(nqn, rec.nsid, false);
      await this.fs.setNamespaceEnabled(nqn, rec.nsid, true);
    });
  }

  /** Our per-volume subsystems (`nqn.<target_prefix>-<volume id>`) in configfs; per-host ones are the host target's. */
  async listExports(): Promise<string[]> {
    if (!(await this.fs.available())) return [];
    return (await this.fs.listSubsystems()).filter((n) => volumeIdOfSubsystem(this.o.targetPrefix, n) !== null);
  }

  // ---- what the per-host layout (nvmet-host-target.ts) shares with this helper -------------------

  /** modprobe nvmet / nvmet-tcp when missing (an error naming target_helper = nvmet when impossible). */
  ensureModules(): Promise<void> {
    return this.modules.ensure();
  }

  /** Where hosts connect: one portal per configured address, on target_port. */
  portals(): Array<{ ip: string; port: number }> {
    return this.ports.map((p) => ({ ip: p.ip, port: this.o.targetPort }));
  }

  /** Every port configured (address written before its first link) and linked to `nqn`. */
  async linkPorts(nqn: string): Promise<void> {
    await this.shared.run('ports', async () => {
      for (const p of this.ports) {
        await this.fs.ensurePort(p.id, p.addr);
        await this.fs.linkPort(p.id, nqn);
      }
    });
  }

  /** The subsystems linked on every one of our ports (what a probe counts as served). */
  async linkedOnEveryPort(): Promise<Set<string>> {
    if (!(await this.fs.available())) return new Set();
    const sets = await Promise.all(this.ports.map(async (p) => new Set(await this.fs.linkedSubsystems(p.id))));
    const [first, ...rest] = sets;
    return new Set([...(first ?? [])].filter((n) => rest.every((s) => s.has(n))));
  }

  /**
   * For the start-up sweep: our subsystems, live in configfs or recorded. `iqn` holds the NQN;
   * the volume name is cinder's default `volume-<id>` (the NQN carries the id): a volume whose
   * data lives under another name (migrated) does not match its driver path and is left alone.
   */
  async findExports(): Promise<FoundExport[]> {
    const found = new Map<string, FoundExport>();
    for (const r of Object.values((await this.readState()).exports)) {
      found.set(r.nqn, { iqn: r.nqn, volumeName: `volume-${r.volumeId}`, backingPath: r.backingPath, live: false, recorded: true });
    }
    for (const nqn of await this.listExports()) {
      const id = volumeIdOfSubsystem(this.o.targetPrefix, nqn);
      if (!id) continue;
      const seen = found.get(nqn);
      const sub = await this.fs.readSubsystem(nqn);
      const backingPath = seen?.backingPath ?? sub?.namespaces[0]?.devicePath ?? null;
      found.set(nqn, { iqn: nqn, volumeName: `volume-${id}`, backingPath: backingPath || null, live: true, recorded: seen?.recorded ?? false, admitted: sub?.allowAnyHost ? [ANY_HOST, ...sub.hosts] : (sub?.hosts ?? []) });
    }
    return [...found.values()];
  }

  /**
   * Subsystems our record lists that configfs lacks or has incomplete (no port link, namespace
   * gone). Looked at again under the subsystem's lock, as LIO's watch does, so an operation in
   * flight is not taken for a loss.
   */
  async missingExports(): Promise<string[]> {
    // the supervisor asks every few seconds: one listing of subsystems and of each port's links
    // picks the candidates; only those are read in full
    const available = await this.fs.available();
    const present = new Set(available ? await this.fs.listSubsystems() : []);
    const linked = await Promise.all(this.ports.map(async (p) => new Set(available ? await this.fs.linkedSubsystems(p.id) : [])));
    const all = Object.values((await this.readState()).exports);
    // and one stat per recorded namespace: a namespace removed by hand leaves the subsystem and its links in place
    const nsGone = await Promise.all(all.map(async (r) => available && present.has(r.nqn) && !(await this.fs.namespaceExists(r.nqn, r.nsid))));
    const records = all.filter((r, i) => !present.has(r.nqn) || linked.some((l) => !l.has(r.nqn)) || nsGone[i]);
    const missing: string[] = [];
    for (const r of records) {
      await this.locks.run(r.nqn, async () => {
        if (!(await this.record(r.nqn))) return;
        if (!(await this.matches(r))) missing.push(r.nqn);
      });
    }
    return missing;
  }

  /** Start-up: rebuild every recorded export that configfs lacks or has wrong. Nothing else is read. */
  async reconcile(): Promise<{ mended: string[]; failed: string[] }> {
    const records = Object.values((await this.readState()).exports);
    const outcome = new Array<'ok' | 'mended' | 'failed'>(records.length);
    if (records.length > 0) await this.modules.ensure();
    await forEachLimited(records, RECONCILE_CONCURRENCY, (r, i) =>
      this.locks.run(r.nqn, async () => {
        try {
          if (await this.matches(r)) {
            outcome[i] = 'ok';
            return;
          }
          await this.build({ volumeId: r.volumeId, nqn: r.nqn, backingPath: r.backingPath, nsid: r.nsid, hosts: r.hosts.map((h) => h.nqn) });
          outcome[i] = 'mended';
          log().warn({ volume_id: r.volumeId, nqn: r.nqn }, 'nvmet reconcile: export mended from record');
        } catch (e) {
          outcome[i] = 'failed';
          log().error({ volume_id: r.volumeId, nqn: r.nqn, err: e }, 'nvmet reconcile: could not mend export');
        }
      }),
    );
    return {
      mended: records.filter((_, i) => outcome[i] === 'mended').map((r) => r.nqn),
      failed: records.filter((_, i) => outcome[i] === 'failed').map((r) => r.nqn),
    };
  }

  // ---- internals --------------------------------------------------------------------------------

  /** Does configfs hold exactly what the record says? */
  private async matches(r: NvmetExportRecord): Promise<boolean> {
    if (!(await this.fs.available())) return false;
    const s = await this.fs.readSubsystem(r.nqn);
    if (!s || s.allowAnyHost) return false;
    const want = [...new Set(r.hosts.map((h) => h.nqn))].sort();
    if (want.join('\n') !== s.hosts.join('\n')) return false;
    const id = namespaceIdentity(r.volumeId);
    const ns = s.namespaces.find((n) => n.nsid === r.nsid);
    if (!ns || s.namespaces.length !== 1 || ns.devicePath !== r.backingPath || ns.deviceNguid !== id.nguid || ns.enabled !== want.length > 0) return false;
    const linked = await this.fs.portsOf(r.nqn);
    return this.ports.every((p) => linked.includes(p.id));
  }

  /**
   * Make configfs match `d` with the smallest edits. The order keeps the subsystem closed until it
   * is complete: allow_any_host=0 and the host links before the namespace is enabled, ports
   * configured before they are linked. A subsystem this call created is removed if a step fails.
   */
  private async build(d: Desired): Promise<boolean> {
    await this.modules.ensure();
    const made = await this.fs.createSubsystem(d.nqn);
    try {
      const now = (await this.fs.readSubsystem(d.nqn))!;
      // a namespace under another nsid (cinder's helper made it, or nvmet_ns_id changed): ours is the record's
      for (const ns of now.namespaces) if (ns.nsid !== d.nsid) await this.fs.removeNamespace(d.nqn, ns.nsid);
      const id = namespaceIdentity(d.volumeId);
      await this.fs.ensureNamespace(d.nqn, d.nsid, { devicePath: d.backingPath, deviceUuid: id.uuid, deviceNguid: id.nguid });
      const extra = now.hosts.filter((h) => !d.hosts.includes(h));
      for (const h of d.hosts) await this.fs.allowHost(d.nqn, h);
      for (const h of extra) await this.fs.disallowHost(d.nqn, h);
      const ns = await this.fs.readNamespace(d.nqn, d.nsid);
      const on = d.hosts.length > 0;
      if (ns?.enabled !== on) await this.fs.setNamespaceEnabled(d.nqn, d.nsid, on);
      await this.linkPorts(d.nqn);
      // hosts admitted before and not now may still hold a controller: drop them
      if (extra.length > 0 && on) await this.kickControllers(d.nqn);
      for (const h of extra) await this.fs.removeHostIfUnused(h).catch(() => false);
      await this.verify(d);
      return made;
    } catch (e) {
      if (made) await this.fs.removeSubsystem(d.nqn).catch((err: unknown) => log().error({ nqn: d.nqn, err }, 'rollback: could not remove subsystem'));
      throw e;
    }
  }

  private async verify(d: Desired): Promise<void> {
    const s = await this.fs.readSubsystem(d.nqn);
    const want = [...new Set(d.hosts)].sort();
    const ns = s?.namespaces.find((n) => n.nsid === d.nsid);
    if (!s || s.allowAnyHost || s.hosts.join('\n') !== want.join('\n') || !ns || ns.devicePath !== d.backingPath || ns.enabled !== want.length > 0) {
      throw new Error(`subsystem ${d.nqn} does not read back as written`);
    }
  }

  /** Unlink and relink the subsystem's ports: the kernel deletes its controllers on each. */
  async kickControllers(nqn: string): Promise<void> {
    await this.shared.run('ports', async () => {
      for (const id of await this.fs.portsOf(nqn)) {
        await this.fs.unlinkPort(id, nqn);
        await this.fs.linkPort(id, nqn);
      }
    });
  }

  /** Take the matching hosts off the subsystem, then make sure none of them keeps the namespace. */
  private async revoke(nqn: string, matches: (h: string) => boolean, nsid: number | null): Promise<void> {
    const s = await this.fs.readSubsystem(nqn);
    if (!s) return;
    const revoked = s.hosts.filter(matches);
    const remaining = s.hosts.filter((h) => !matches(h));
    for (const h of revoked) await this.fs.disallowHost(nqn, h);
    if (remaining.length === 0) {
      // nobody admitted: the namespace goes from every controller still connected (AEN)
      for (const ns of s.namespaces) if (nsid === null || ns.nsid === nsid || ns.enabled) await this.fs.setNamespaceEnabled(nqn, ns.nsid, false);
    } else if (revoked.length > 0) {
      await this.kickControllers(nqn);
    }
    const after = await this.fs.readSubsystem(nqn);
    if (after?.hosts.some(matches)) throw new Error(`host still admitted after revocation: ${after.hosts.filter(matches).join(', ')}`);
    if (remaining.length === 0 && after?.namespaces.some((n) => n.enabled)) throw new Error(`namespace of ${nqn} still enabled with no host admitted`);
    for (const h of revoked) await this.fs.removeHostIfUnused(h).catch(() => false);
  }
}

function uniqueHosts(hosts: NvmetHostEntry[]): NvmetHostEntry[] {
  const out: NvmetHostEntry[] = [];
  for (const h of hosts) if (!out.some((o) => o.nqn === h.nqn)) out.push(h);
  return out;
}

/** The nsid at the end of provider_location (`<ip>:<port> tcp <nqn> <nsid>`), or null. */
function nsidFromLocation(location: string | null): number | null {
  const m = /\s(\d{1,10})$/.exec(location ?? '');
  const n = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(n) && n >= 1 && n <= 0xfffffffe ? n : null;
}
