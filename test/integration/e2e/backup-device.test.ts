// issue 14 item 5, what this host can show for real: Debian's cinder-backup (posix driver) on
// the real cinder-api and scheduler, cinderblock as the volume service. `cinder backup-create`
// makes cinder-backup cast get_backup_device to the agent, which answers with continue_backup
// to the backup host: for an available volume the volume itself, for an in-use one a temporary
// clone (`backup-vol-<id>`, outside quota). cinder-backup then asks initialize_connection of the
// device; this host has no SCSI in its kernel, so os-brick could not attach an iSCSI export, and
// the backend here exports nothing (target_helper = fake): the attach fails, and what follows is
// cinder-backup's own failure path, terminate_connection(force) and the delete cast of the
// temporary clone, which the agent serves. What needs the lab (a kernel initiator): the bytes
// read through os-brick, backup-restore, and the byte comparison (test/lab).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCinderStack, waitFor, type CinderStack } from '../../helpers/cinder-stack.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { createCinderDatabase, type TestCinderDb } from '../../helpers/cinder-db.js';
import { createOwnVhost, type OwnVhost } from '../../helpers/rabbit-vhost.js';

const CINDER_BACKUP = '/usr/bin/cinder-backup';
const API_PORT = 18921;

describe.runIf(existsSync(CINDER_BACKUP))('cinder-backup asks the agent for the backup device', () => {
  let stack: CinderStack;
  let agent: AgentProcess;
  let backupDaemon: ChildProcess;
  let backupDir: string;
  let backupLog: string;
  let db: TestCinderDb;
  // every stack's scheduler consumes `cinder-scheduler`: a vhost of our own, or other stacks take our requests
  let vhost: OwnVhost;

  // cinder-backup logs to log_dir (cinder-backup.log); its stdout/stderr (.out) has what comes before logging is set up
  const backupLogText = async () =>
    (await Promise.all([backupLog, backupLog.replace(/\.out$/, '.log')].map((f) => readFile(f, 'utf8').catch(() => '')))).join('\n');
  async function volume(id: string) {
    return (await stack.api('GET', `/volumes/${id}`)).body.volume as Record<string, any> | undefined;
  }
  async function waitVolume(id: string, status: string) {
    return waitFor(`volume ${id} to be ${status}`, 150_000, async () => ((await volume(id))?.status === status ? true : undefined)).catch(async (err: Error) => {
      throw new Error(`${err.message} (now ${(await volume(id))?.status})\n${agent.text().slice(-2500)}\n${(await backupLogText()).slice(-2500)}`);
    });
  }
  async function newVolume(): Promise<string> {
    const r = await stack.api('POST', '/volumes', { volume: { size: 1, name: 'backup-source' } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    await waitVolume(r.body.volume.id, 'available');
    return r.body.volume.id;
  }
  async function backupOf(volumeId: string): Promise<Record<string, any>> {
    const r = await stack.api('POST', '/backups', { backup: { volume_id: volumeId, name: `b-${volumeId.slice(0, 8)}`, force: true } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const id = r.body.backup.id as string;
    return waitFor(`backup ${id} to settle`, 150_000, async () => {
      const b = (await stack.api('GET', `/backups/${id}`)).body.backup;
      return b && b.status !== 'creating' ? b : undefined;
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${agent.text().slice(-2500)}\n${(await backupLogText()).slice(-4000)}`);
    });
  }

  beforeAll(async () => {
    backupDir = await mkdtemp(join(tmpdir(), 'cb-backups-'));
    // MariaDB: four writers (api, scheduler, backup, agent) lock a SQLite file out under load
    db = await createCinderDatabase('mysql');
    vhost = await createOwnVhost('nb-backup');
    stack = await startCinderStack({
      apiPort: API_PORT,
      databaseUrl: db.url,
      transportUrl: vhost.transportUrl,
      startTimeoutMs: 180_000,
      defaults: { backup_driver: 'cinder.backup.drivers.posix.PosixBackupDriver', backup_posix_path: backupDir },
      backends: { file: { volume_driver: 'file', volume_backend_name: 'file', target_helper: 'fake' } },
      extraSections: { cinderblock: { metrics_listen: '' } },
    });
    backupLog = join(stack.dir, 'logs', 'cinder-backup.out');
    const out = openSync(backupLog, 'a');
    backupDaemon = spawn(CINDER_BACKUP, ['--config-file', stack.confPath], { stdio: ['ignore', out, out], env: { ...process.env, PATH: '/usr/bin:/usr/sbin:/bin:/sbin' } });
    agent = startAgentProcess(stack.confPath);
    await agent.waitForLog(/serving 1 backend/);
    await waitFor('cinder-backup to be up', 180_000, async () => {
      const r = await stack.api('GET', '/os-services?binary=cinder-backup');
      return r.body?.services?.some((s: any) => s.state === 'up') ? true : undefined;
    });
  }, 420_000);

  afterAll(async () => {
    await agent?.stop();
    if (backupDaemon && backupDaemon.exitCode === null) {
      const gone = new Promise((r) => backupDaemon.once('exit', r));
      backupDaemon.kill('SIGTERM');
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
    }
    await stack?.stop();
    await rm(backupDir, { recursive: true, force: true });
    await db?.drop();
    await vhost?.drop();
  }, 60_000);

  it('available volume: continue_backup names the volume itself; the failed attach leaves it available', async () => {
    const id = await newVolume();
    const b = await backupOf(id);
    // the agent answered get_backup_device with continue_backup to the backup host
    expect(agent.text()).toMatch(new RegExp(`Calling backup continue_backup for: ${b.id}`));
    // cinder-backup took continue_backup (its log names the backup it creates)
    expect(await backupLogText()).toContain(b.id);
    // this host cannot attach: the backup fails, and cinder-backup gives the volume its status back
    expect(b.status).toBe('error');
    await waitVolume(id, 'available');
  }, 400_000);

  it('in-use volume: a temporary clone is backed up instead, and deleted after', async () => {
    const id = await newVolume();
    expect((await stack.api('POST', `/volumes/${id}/action`, { 'os-reserve': null })).status).toBe(202);
    expect((await stack.api('POST', `/volumes/${id}/action`, { 'os-attach': { instance_uuid: randomUUID(), mountpoint: '/dev/vdb', mode: 'rw' } })).status).toBe(202);
    await waitVolume(id, 'in-use');
    const b = await backupOf(id);
    expect(b.status).toBe('error');
    // the clone cinder's default driver makes: backup-vol-<source id>, on the source's backend
    expect(agent.text()).toMatch(new RegExp(`Calling backup continue_backup for: ${b.id}`));
    const temps = () => stack.api('GET', `/volumes/detail?all_tenants=1&name=backup-vol-${id}`).then((r) => (r.body.volumes as any[]) ?? []);
    // cinder-backup cleans it up with a delete_volume cast to the agent
    await waitFor(`the temporary clone of ${id} to be gone`, 150_000, async () => ((await temps()).length === 0 ? true : undefined));
    expect(agent.text()).toMatch(/Deleted volume successfully/);
    await waitVolume(id, 'in-use');
  }, 400_000);
});
