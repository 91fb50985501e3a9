// `cinderblock doctor`: before starting the agent on a host (or when it misbehaves), check that
// what cinder.conf asks for is there: LVM and the volume group (and the thin pool's room), the
// file pool's directory, the target daemon or LIO's kernel side, the initiator tools when the
// connector is in use, lock_path and state_path, the database and the broker with the
// configured credentials, the clock against the database's, and no cinder-volume left running
// for the same backends. Every failure says what to do. Exit 0: nothing failed (warnings allowed);
// 1: at least one check failed; 2: cinder.conf cannot be read.
import { constants as fsc } from 'node:fs';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import type { BackendConfig, CinderConfig, ConfigSourceArg } from '../config/index.js';
import { isUp } from '../db/index.js';
import { AmqpConnection, redactTransportUrl } from '../rpc/index.js';
import { AdminSocketError, adminRequest, adminSocketPath } from '../agent/admin-socket.js';
import type { LiveStatus } from '../agent/admin-ops.js';
import { emit, EXIT, loadCliConfig, openCliDatabase, reportCloseFailure, runCli, type OutputOptions } from './output.js';
import { backendKind, lvmVolumeGroup, targetDaemonState } from './inspect-backend.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** what to do about a warn or fail */
  fix?: string;
}

const ok = (name: string, detail: string): Check => ({ name, status: 'ok', detail });
const warn = (name: string, detail: string, fix: string): Check => ({ name, status: 'warn', detail, fix });
const fail = (name: string, detail: string, fix: string): Check => ({ name, status: 'fail', detail, fix });
const skip = (name: string, detail: string): Check => ({ name, status: 'skip', detail });

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The first directory on PATH holding an executable `name`, or null. */
export async function onPath(name: string, path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'): Promise<string | null> {
  // root's PATH sometimes lacks the sbin directories where tgtadm, lvm and iscsiadm live
  const dirs = [...new Set([...path.split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'])].filter(Boolean);
  for (const d of dirs) {
    const p = join(d, name);
    try {
      await access(p, fsc.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** pids whose command line mentions `needle` (argv[0] or a script argument), other than ours. */
export async function processesMatching(needle: RegExp, procRoot = '/proc'): Promise<Array<{ pid: number; cmdline: string }>> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of await readdir(procRoot).catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const raw = await readFile(join(procRoot, entry, 'cmdline'), 'utf8').catch(() => '');
    const cmdline = raw.split('\0').filter(Boolean).join(' ');
    if (cmdline && needle.test(cmdline)) out.push({ pid: Number(entry), cmdline });
  }
  return out;
}

async function writableDir(path: string): Promise<{ ok: boolean; detail: string; worldWritable?: boolean }> {
  try {
    const st = await stat(path);
    if (!st.isDirectory()) return { ok: false, detail: `${path} is not a directory` };
    await access(path, fsc.W_OK | fsc.X_OK);
    // world-writable without the sticky bit: anyone could plant a lock or socket file
    const worldWritable = (st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0;
    return { ok: true, detail: `${path} (mode ${(st.mode & 0o7777).toString(8)}, uid ${st.uid})`, worldWritable };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, detail: code === 'ENOENT' ? `${path} does not exist` : code === 'EACCES' ? `${path} is not writable by uid ${process.getuid?.()}` : message(err) };
  }
}

async function lvmChecks(b: BackendConfig): Promise<Check[]> {
  const n = (what: string) => `[${b.name}] ${what}`;
  const vg = lvmVolumeGroup(b);
  const out: Check[] = [];
  try {
    const v = await vg.version();
    out.push(ok(n('lvm'), `LVM ${v.join('.')}`));
  } catch (err) {
    return [fail(n('lvm'), `lvm does not run: ${message(err)}`, 'apt-get install lvm2 (and run as root)')];
  }
  let report;
  try {
    report = await vg.report({ fresh: true });
  } catch (err) {
    out.push(fail(n(`volume group ${b.volume_group}`), message(err), `create it: vgcreate ${b.volume_group} <device>, or set volume_group in [${b.name}]`));
    return out;
  }
  const gib = (x: number) => `${(x / 1024 ** 3).toFixed(1)} GiB`;
  out.push(ok(n(`volume group ${b.volume_group}`), `${gib(report.sizeBytes)}, ${gib(report.freeBytes)} free, ${report.lvCount} LVs`));
  const pool = report.lvs.find((l) => l.name === vg.thinPoolName);
  if (b.lvm_type === 'thin' && !pool) {
    out.push(warn(n('thin pool'), `lvm_type = thin but ${b.volume_group}/${vg.thinPoolName} does not exist`, 'the agent creates it at start; make sure the volume group has free space for it'));
  } else if (pool) {
    const data = pool.dataPercent ?? 0;
    const meta = pool.metadataPercent ?? 0;
    const detail = `${b.volume_group}/${pool.name}: data ${data}%, metadata ${meta}%, ${pool.active ? 'active' : 'INACTIVE'}`;
    if (!pool.active) out.push(fail(n('thin pool'), detail, `lvchange -ay ${b.volume_group}/${pool.name}; check \`lvs -a ${b.volume_group}\` and dmesg`));
    else if (data >= 95 || meta >= 90) out.push(fail(n('thin pool'), detail, `the pool is nearly full and writes will stall: lvextend -L +<size> ${b.volume_group}/${pool.name} (or --poolmetadatasize for metadata), or delete volumes`));
    else if (data >= 80 || meta >= 75) out.push(warn(n('thin pool'), detail, `grow it before it fills: lvextend -L +<size> ${b.volume_group}/${pool.name}`));
    else out.push(ok(n('thin pool'), detail));
  }
  return out;
}

async function targetChecks(config: CinderConfig, b: BackendConfig): Promise<Check[]> {
  const n = (what: string) => `[${b.name}] ${what}`;
  const out: Check[] = [];
  if (b.target_helper === 'fake') return [skip(n('target'), 'target_helper = fake: volumes are not exported')];
  if (b.target_helper === 'tgtadm') {
    const tgtadm = await onPath('tgtadm');
    const tgtd = await onPath('tgtd');
    if (!tgtadm || !tgtd) return [fail(n('tgt'), `${tgtadm ? '' : 'tgtadm '}${tgtd ? '' : 'tgtd '}not found`, 'apt-get install tgt')];
    const s = await targetDaemonState(config, b);
    out.push(s.state === 'up' ? ok(n('tgtd'), s.detail) : warn(n('tgtd'), s.detail, 'nothing to do if the agent may start tgtd; otherwise systemctl start tgt'));
  } else if (b.target_helper === 'lioadm') {
    const modules = ['target_core_mod', b.target_protocol === 'iser' ? 'ib_isert' : 'iscsi_target_mod'];
    for (const m of modules) {
      const loaded = await stat(`/sys/module/${m}`).then(
        () => true,
        () => false,
      );
      out.push(loaded ? ok(n(`kernel module ${m}`), 'loaded') : fail(n(`kernel module ${m}`), 'not loaded', `modprobe ${m} (and add it to /etc/modules-load.d/)`));
    }
    const s = await targetDaemonState(config, b);
    out.push(s.state === 'up' ? ok(n('configfs'), s.detail) : fail(n('configfs'), s.detail, 'mount -t configfs configfs /sys/kernel/config, then modprobe iscsi_target_mod'));
  } else if (b.target_helper === 'nvmet') {
    if (b.target_protocol !== 'nvmet_tcp') return [fail(n('target'), `target_helper = nvmet with target_protocol = ${b.target_protocol}`, 'set target_protocol = nvmet_tcp')];
    // the agent loads them at first use (drivers/targets/nvmet/nvmet-modules.ts): missing is not fatal
    for (const m of ['nvmet', 'nvmet_tcp']) {
      const loaded = await stat(`/sys/module/${m}`).then(
        () => true,
        () => false,
      );
      out.push(loaded ? ok(n(`kernel module ${m}`), 'loaded') : warn(n(`kernel module ${m}`), 'not loaded', `the agent runs modprobe ${m.replace('_', '-')} at first export; add it to /etc/modules-load.d/ to load it at boot`));
    }
  } else {
    return [fail(n('target'), `target_helper = ${b.target_helper} is not supported`, 'use tgtadm, lioadm or nvmet')];
  }
  const dir = await writableDir(b.volumes_dir);
  out.push(dir.ok ? ok(n('volumes_dir'), dir.detail) : warn(n('volumes_dir'), dir.detail, `the agent creates it at start (mkdir -p ${b.volumes_dir}); it must be writable by root`));
  return out;
}

export async function backendChecks(config: CinderConfig, b: BackendConfig): Promise<Check[]> {
  let kind;
  try {
    kind = backendKind(config, b);
  } catch (err) {
    return [fail(`[${b.name}] volume_driver`, message(err), `fix volume_driver in [${b.name}]`)];
  }
  const data =
    kind === 'lvm'
      ? await lvmChecks(b)
      : await writableDir(b.file_volume_dir).then((d) =>
          d.ok ? [ok(`[${b.name}] file pool`, d.detail)] : [fail(`[${b.name}] file pool`, d.detail, `mkdir -p ${b.file_volume_dir} on a file system with room, or set file_volume_dir in [${b.name}]`)],
        );
  return [...data, ...(await targetChecks(config, b))];
}

async function connectorChecks(): Promise<Check[]> {
  const iscsiadm = await onPath('iscsiadm');
  if (!iscsiadm) return [skip('iscsiadm', 'not installed: only `cinderblock connector` (attaching volumes on this host) needs it (apt-get install open-iscsi)')];
  const out: Check[] = [ok('iscsiadm', iscsiadm)];
  const name = await readFile('/etc/iscsi/initiatorname.iscsi', 'utf8').catch(() => '');
  out.push(/^InitiatorName=\S+/m.test(name) ? ok('initiator name', '/etc/iscsi/initiatorname.iscsi') : warn('initiator name', 'no InitiatorName in /etc/iscsi/initiatorname.iscsi', 'dpkg-reconfigure open-iscsi, or write InitiatorName=iqn.… there'));
  if (await onPath('multipathd')) {
    const running = (await processesMatching(/(^|\/)multipathd(\s|$)/)).length > 0;
    out.push(running ? ok('multipathd', 'running') : warn('multipathd', 'installed but not running', 'systemctl enable --now multipathd, if attachments use multipath'));
  } else out.push(skip('multipathd', 'not installed: multipath attachments are not possible (apt-get install multipath-tools)'));
  return out;
}

async function pathChecks(config: CinderConfig): Promise<Check[]> {
  const out: Check[] = [];
  const lockPath = config.concurrency.lock_path;
  if (!lockPath) out.push(warn('lock_path', '[oslo_concurrency] lock_path is not set: locks are this process\'s only', 'set [oslo_concurrency] lock_path = /var/lock/cinder'));
  else {
    const d = await writableDir(lockPath);
    const parent = d.ok ? null : await writableDir(dirname(lockPath));
    // the agent makes lock_path on its first lock, as oslo's lockutils does; its parent must let it
    if (!d.ok && parent?.ok && /does not exist/.test(d.detail)) out.push(warn('lock_path', `${d.detail}; the agent creates it on its first lock`, `or make it now: mkdir -p ${lockPath}`));
    else if (!d.ok) out.push(fail('lock_path', d.detail, `mkdir -p ${lockPath} && chmod 0755 ${lockPath} (owned by the agent's user)`));
    else if (d.worldWritable) out.push(warn('lock_path', `${d.detail}: world-writable`, `chmod o-w ${lockPath}`));
    else out.push(ok('lock_path', d.detail));
  }
  const s = await writableDir(config.default.state_path);
  if (!s.ok) out.push(fail('state_path', s.detail, `mkdir -p ${config.default.state_path} (owned by the agent's user, not world-writable)`));
  else if (s.worldWritable) out.push(warn('state_path', `${s.detail}: world-writable`, `chmod o-w ${config.default.state_path}`));
  else out.push(ok('state_path', s.detail));
  return out;
}

async function databaseChecks(config: CinderConfig, agentRunning: boolean): Promise<Check[]> {
  let db;
  try {
    db = await openCliDatabase(config);
  } catch (err) {
    return [fail('database', message(err), 'check [database] connection (host, user, password), that the server accepts this host, and that `cinder-manage db sync` ran')];
  }
  const out: Check[] = [];
  try {
    out.push(ok('database', `${db.redactedUrl}, schema ${(await db.schemaVersion()) ?? '?'}`));
    const before = Date.now();
    const server = await db.inspect.serverUtcNow();
    if (!server) out.push(skip('clock skew', `${db.dialect}: the database uses this host's clock`));
    else {
      const local = (before + Date.now()) / 2;
      const skew = (local - server.getTime()) / 1000;
      const limit = config.default.service_down_time / 2;
      const detail = `this host is ${Math.abs(skew).toFixed(1)} s ${skew >= 0 ? 'ahead of' : 'behind'} the database`;
      if (Math.abs(skew) >= limit) out.push(fail('clock skew', detail, `heartbeats look ${skew >= 0 ? 'fresh when stale' : 'stale'} to cinder-api (service_down_time ${config.default.service_down_time} s): sync the clocks (chrony/systemd-timesyncd)`));
      else if (Math.abs(skew) >= 5) out.push(warn('clock skew', detail, 'sync the clocks (chrony/systemd-timesyncd)'));
      else out.push(ok('clock skew', detail));
    }
    // A row heartbeating while no agent runs here: another process serves this host's backends
    // (cinder-volume in a container, or another host configured with the same `host`).
    if (!agentRunning) {
      const now = new Date();
      for (const row of await db.inspect.volumeServices(config.backends.map((b) => b.host))) {
        if (isUp(row, now, config.default.service_down_time) && row.updated_at) {
          const age = Math.round((now.getTime() - row.updated_at.getTime()) / 1000);
          const fix = `find what serves it (a cinder-volume in a container or on another host with host = ${(row.host ?? '').split('@')[0]}) and stop it before starting cinderblock`;
          // beyond two report intervals without a beat, whatever served it has most likely just stopped
          if (age <= 2 * config.default.report_interval) out.push(fail(`service ${row.host}`, `heartbeat ${age} s ago, yet no cinderblock runs here`, fix));
          else out.push(warn(`service ${row.host}`, `last heartbeat ${age} s ago with no cinderblock running here: stopped recently?`, `if nothing should serve it, ${fix}`));
        }
      }
    }
  } catch (err) {
    out.push(fail('database', message(err), 'the database answers but a read failed: check the user\'s grants on the cinder schema'));
  } finally {
    await db.close().catch(reportCloseFailure('the database connection'));
  }
  return out;
}

async function brokerCheck(config: CinderConfig): Promise<Check> {
  const url = config.default.transport_url;
  let conn: AmqpConnection | null = null;
  try {
    conn = new AmqpConnection(url, { rabbit: config.rabbit, connectTimeoutMs: 5000 });
    await conn.start(10_000);
    return ok('broker', redactTransportUrl(url));
  } catch (err) {
    return fail('broker', `${redactTransportUrl(url)}: ${message(err)}`, 'check transport_url (user, password, vhost), that RabbitMQ runs and `rabbitmqctl list_permissions -p <vhost>` grants the user');
  } finally {
    await conn?.close().catch(reportCloseFailure('the broker connection'));
  }
}

async function serviceChecks(config: CinderConfig): Promise<Check[]> {
  const out: Check[] = [];
  const cinder = (await processesMatching(/cinder-volume/)).filter((p) => !/cinderblock/.test(p.cmdline));
  out.push(
    cinder.length
      ? fail('cinder-volume', `running on this host: pid ${cinder.map((p) => p.pid).join(', ')}`, 'both must never serve one backend: systemctl disable --now cinder-volume')
      : ok('cinder-volume', 'not running on this host'),
  );
  const socket = adminSocketPath(config.default.state_path);
  try {
    const live = (await adminRequest(socket, { op: 'status' }, 5000)) as LiveStatus;
    out.push(ok('agent', `cinderblock ${live.version} running (pid ${live.pid}), admin socket ${socket}`));
  } catch (err) {
    out.push(err instanceof AdminSocketError && err.unreachable ? skip('agent', `not running (no admin socket at ${socket})`) : warn('agent', message(err), 'see journalctl -u cinderblock'));
  }
  if (process.getuid?.() !== 0) out.push(warn('user', `running as uid ${process.getuid?.()}`, 'run doctor as root (the agent runs as root): LVM, tgtadm and configfs need it'));
  return out;
}

export async function runDoctor(config: CinderConfig, opts: { broker?: boolean } = {}): Promise<Check[]> {
  const checks: Check[] = [];
  const services = await serviceChecks(config);
  checks.push(...services);
  checks.push(...(await pathChecks(config)));
  for (const b of config.backends) checks.push(...(await backendChecks(config, b)));
  checks.push(...(await connectorChecks()));
  checks.push(...(await databaseChecks(config, services.some((c) => c.name === 'agent' && c.status === 'ok'))));
  if (opts.broker !== false) checks.push(await brokerCheck(config));
  return checks;
}

export function doctorExitCode(checks: readonly Check[]): number {
  return checks.some((c) => c.status === 'fail') ? EXIT.problems : EXIT.ok;
}

const MARK: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

export function formatChecks(checks: readonly Check[]): string {
  const w = Math.max(...checks.map((c) => c.name.length));
  let out = '';
  for (const c of checks) {
    out += `${MARK[c.status]}  ${c.name.padEnd(w)}  ${c.detail}\n`;
    if (c.fix && (c.status === 'fail' || c.status === 'warn')) out += `      ${''.padEnd(w)}  -> ${c.fix}\n`;
  }
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  out += `\n${failed} failed, ${warned} warning(s), ${checks.length} checks\n`;
  return out;
}

export async function doctorCommand(sources: ConfigSourceArg[], opts: OutputOptions & { broker?: boolean }): Promise<void> {
  await runCli(async () => {
    const config = await loadCliConfig(sources);
    const checks = await runDoctor(config, opts);
    emit(opts, { checks, failed: checks.filter((c) => c.status === 'fail').length }, () => formatChecks(checks));
    return doctorExitCode(checks);
  });
}
