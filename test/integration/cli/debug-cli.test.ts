// The operator's debug CLI against real parts: a real agent (startAgent, RabbitMQ, cinder's schema
// on MariaDB, the file pool, a private tgtd), and the built `cinderblock` run as a child process
// with the same cinder.conf, as an operator runs it. Checks what each command shows, its exit
// code, and that the CHAP secret is never printed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { repoRoot } from '../../helpers/fixtures.js';
import { seedAttachment, seedVolume } from '../../helpers/cinder-db.js';
import { startHarness, volumeObject, waitFor, type Harness } from '../manager/helpers.js';
import { parseProviderAuth } from '../../../src/iscsi/index.js';

const INITIATOR = 'iqn.1994-05.com.redhat:cli-test-compute1';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'cinderblock.js'), ...args], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('cinderblock status, volume, doctor, log-level, logs', () => {
  let h: Harness;
  let conf: string;
  let volumeId: string;
  let attachmentId: string;

  beforeAll(async () => {
    if (!existsSync(join(repoRoot, 'dist', 'src', 'cli', 'main.js'))) throw new Error('run `npm run build` before this test');
    h = await startHarness({ backend: 'mysql' });
    conf = join(h.dir, 'cinder.conf');
    // the CLI finds the harness's private tgtd by the same option the agent reads
    await writeFile(conf, `${h.confText}\n[cinderblock]\nmetrics_listen =\n${h.tgtd ? `tgt_control_port = ${h.tgtd.controlPort}\n` : ''}`);
    volumeId = await seedVolume(h.db, { host: h.poolHost, size: 1 });
    await h.cast('create_volume', { volume: await volumeObject(h.db, volumeId), request_spec: null, filter_properties: {}, allow_reschedule: false });
    await waitFor('available', async () => (await h.db.volumes.get(volumeId)).status === 'available');
    if (h.tgtd) {
      attachmentId = await seedAttachment(h.db, volumeId);
      await h.db.volumes.update(volumeId, { status: 'reserved' });
      await h.call('attachment_update', { vref: await volumeObject(h.db, volumeId), connector: { initiator: INITIATOR, host: 'compute1' }, attachment_id: attachmentId }, '3.9');
      const att = await h.db.attachments.get(attachmentId);
      await h.db.attachments.volumeAttached(attachmentId, att.instance_uuid, 'compute1', '/dev/vdb', 'rw', true);
    }
  }, 120_000);

  afterAll(async () => {
    await h?.close();
  });

  it('the admin socket is a 0600 unix socket under state_path', () => {
    const st = statSync(join(h.dir, 'cinderblock', 'admin.sock'));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it('status --json: the service row up, volumes and attachments by status, live exports, target daemon and RPC from the agent', async () => {
    const r = await cli(['status', '--config-file', conf, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.agent.running).toBe(true);
    expect(s.database.reachable).toBe(true);
    const b = s.backends[0];
    expect(b.host).toBe(h.backendHost);
    expect(b.service.state).toBe('up');
    expect(b.service.rpcVersion).toBe('3.18');
    expect(b.live.driverInitialized).toBe(true);
    expect(b.live.pools[0].pool_name).toBe('file');
    expect(b.live.rpc.inFlight).toBe(0);
    expect(b.live.locks).toEqual([]);
    expect(b.live.rpc.calls).toEqual([]);
    expect(b.allocated).toEqual({ count: 1, gigabytes: 1 });
    if (h.tgtd) {
      expect(b.volumes).toEqual({ 'in-use': 1 });
      expect(b.attachments).toEqual({ attached: 1 });
      // whom it admits, as the audit compares it with the attachments
      expect(b.live.exports).toEqual([{ volumeName: `volume-${volumeId}`, iqn: `iqn.2010-10.org.openstack:volume-${volumeId}`, live: true, admitted: [INITIATOR] }]);
      expect(b.live.target).toMatchObject({ up: true, armed: true });
    }
  });

  it('status as a table names the backend, its state and the pool', async () => {
    const r = await cli(['status', '--config-file', conf]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`file\\s+${h.backendHost.replace(/[.@]/g, '\\$&')}\\s+up`));
    expect(r.stdout).toContain('pools (from the agent)');
    expect(r.stdout).toContain('locks held');
  });

  it('volume show: row, file, export with ACL, CHAP user and session list, attachment; consistent; the CHAP secret is never printed', async (t) => {
    if (!h.tgtd) return t.skip();
    const row = await h.db.volumes.get(volumeId);
    const creds = parseProviderAuth(row.provider_auth)!;
    for (const args of [['--json'], []]) {
      const r = await cli(['volume', 'show', volumeId, '--config-file', conf, ...args]);
      expect(r.stdout).not.toContain(creds.password);
      expect(r.code).toBe(0);
    }
    const v = JSON.parse((await cli(['volume', 'show', row.display_name!, '--config-file', conf, '--json'])).stdout);
    expect(v.volume.id).toBe(volumeId);
    expect(v.volume.chapUser).toBe(creds.username);
    expect(v.object).toMatchObject({ kind: 'file', exists: true, sizeBytes: 1024 ** 3, path: join(h.poolDir, `volume-${volumeId}`) });
    expect(v.export).toMatchObject({ present: true, acls: [INITIATOR], chapUsers: [creds.username], sessions: [] });
    expect(v.export.luns).toEqual([{ lun: 1, backingPath: join(h.poolDir, `volume-${volumeId}`), sizeMb: 1074 }]);
    expect(v.attachments).toMatchObject([{ id: attachmentId, status: 'attached', host: 'compute1', initiator: INITIATOR, mountpoint: '/dev/vdb' }]);
    expect(v.inconsistencies).toEqual([]);
  });

  it('volume show reports what disagrees and exits 1: a row that says available while attached, an ACL without attachment', async (t) => {
    if (!h.tgtd) return t.skip();
    await h.db.volumes.update(volumeId, { status: 'available' });
    await h.db.attachments.update(attachmentId, { attach_status: 'detached' });
    try {
      const r = await cli(['volume', 'show', volumeId, '--config-file', conf]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`ACL ${INITIATOR} has no live attachment`);
      await h.db.attachments.update(attachmentId, { attach_status: 'attached' });
      const r2 = await cli(['volume', 'show', volumeId, '--config-file', conf, '--json']);
      expect(r2.code).toBe(1);
      expect(JSON.parse(r2.stdout).inconsistencies[0]).toMatch(/^status is available but 1 attachment\(s\) are attached/);
    } finally {
      await h.db.attachments.update(attachmentId, { attach_status: 'attached' });
      await h.db.volumes.update(volumeId, { status: 'in-use' });
    }
  });

  it('volume show of an unknown volume exits 4; volume list filters by host and status', async () => {
    const missing = await cli(['volume', 'show', randomUUID(), '--config-file', conf]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/no volume has the id or name/);
    const list = JSON.parse((await cli(['volume', 'list', '--config-file', conf, '--json'])).stdout);
    expect(list.map((v: { id: string }) => v.id)).toContain(volumeId);
    const none = JSON.parse((await cli(['volume', 'list', '--config-file', conf, '--json', '--status', 'error_deleting'])).stdout);
    expect(none).toEqual([]);
    const other = JSON.parse((await cli(['volume', 'list', '--config-file', conf, '--json', '--host', 'nosuchhost@x'])).stdout);
    expect(other).toEqual([]);
  });

  it('log-level sets the running agent per backend and for all; a bad level exits 2 without asking the agent', async () => {
    const set = await cli(['log-level', 'DEBUG', '--backend', 'file', '--config-file', conf, '--json']);
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toEqual({ file: { cinderblock: 'DEBUG' } });
    const get = JSON.parse((await cli(['log-level', '--config-file', conf, '--json'])).stdout);
    expect(get).toEqual({ file: { cinderblock: 'DEBUG' } });
    expect((await cli(['log-level', 'warning', '--config-file', conf, '--json'])).code).toBe(0);
    expect(JSON.parse((await cli(['log-level', '--config-file', conf, '--json'])).stdout)).toEqual({ file: { cinderblock: 'WARNING' } });
    const bad = await cli(['log-level', 'LOUD', '--config-file', conf]);
    expect(bad.code).toBe(2);
    const unknownBackend = await cli(['log-level', 'INFO', '--backend', 'nope', '--config-file', conf]);
    expect(unknownBackend.code).toBe(2);
    expect(unknownBackend.stderr).toMatch(/no backend nope/);
  });

  it('logs --request-id picks one request out of a JSON log file', async () => {
    const file = join(h.dir, 'agent.log');
    const lines = [
      { level: 30, time: '2026-12-02T12:00:00.000Z', backend: 'file', msg: 'create_volume', request_id: 'req-aaa', global_request_id: null },
      { level: 30, time: '2026-12-02T12:00:01.000Z', backend: 'file', msg: 'other', request_id: 'req-bbb' },
      { level: 50, time: '2026-12-02T12:00:02.000Z', backend: 'file', msg: 'failed', request_id: 'req-ccc', global_request_id: 'req-aaa' },
    ];
    await writeFile(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\nnot json at all\n`);
    const r = await cli(['logs', '--request-id', 'req-aaa', '--file', file, '--config-file', conf]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(2);
    expect(r.stdout).toContain('ERROR    [file] failed');
    expect((await cli(['logs', '--request-id', 'req-zzz', '--file', file, '--config-file', conf])).code).toBe(1);
  });

  it('logs --follow prints the request\'s lines as the agent writes them, until Ctrl-C', async () => {
    const file = join(h.dir, 'follow.log');
    await writeFile(file, `${JSON.stringify({ level: 30, time: 't0', msg: 'before', request_id: 'req-f' })}\n`);
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'cinderblock.js'), 'logs', '--request-id', 'req-f', '--follow', '--file', file, '--config-file', conf, '--json']);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor('the existing line', async () => out.includes('"before"'));
    await appendFile(file, `${JSON.stringify({ level: 40, time: 't1', msg: 'after', request_id: 'req-f' })}\n${JSON.stringify({ level: 30, msg: 'someone else', request_id: 'req-x' })}\n`);
    await waitFor('the appended line', async () => out.includes('"after"'));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out.trim().split('\n').map((l) => JSON.parse(l).msg)).toEqual(['before', 'after']);
  });

  it('doctor checks the database, the broker, the file pool, tgtd and the paths, with a fix for each failure', async () => {
    const r = await cli(['doctor', '--config-file', conf, '--json']);
    const { checks } = JSON.parse(r.stdout) as { checks: Array<{ name: string; status: string; detail: string; fix?: string }> };
    const byName = (n: string) => checks.find((c) => c.name === n);
    expect(byName('database')?.status).toBe('ok');
    expect(byName('broker')?.status).toBe('ok');
    expect(byName('[file] file pool')?.status).toBe('ok');
    expect(byName('state_path')?.status).toBe('ok');
    expect(byName('lock_path')?.status).toMatch(/ok|warn/);
    expect(byName('clock skew')?.status).toBe('ok');
    expect(byName('agent')?.status).toBe('ok');
    if (h.tgtd) expect(byName('[file] tgtd')?.status).toBe('ok');
    for (const c of checks) if (c.status === 'fail' || c.status === 'warn') expect(c.fix, c.name).toBeTruthy();
    expect(r.code).toBe(checks.some((c) => c.status === 'fail') ? 1 : 0);
    // nothing printed from the configuration's secrets: the database and broker URLs are redacted
    expect(r.stdout).not.toMatch(/guest:guest@/);
  });

  it('doctor fails on a broker it cannot log in to, and says what to do', async () => {
    const bad = join(h.dir, 'bad-broker.conf');
    await writeFile(bad, `${h.confText.replace(/transport_url = .*/, 'transport_url = rabbit://nobody:wrong@127.0.0.1:5672/')}\n[cinderblock]\nmetrics_listen =\n`);
    const r = await cli(['doctor', '--config-file', bad, '--json']);
    expect(r.code).toBe(1);
    const broker = (JSON.parse(r.stdout).checks as Array<{ name: string; status: string; fix: string; detail: string }>).find((c) => c.name === 'broker')!;
    expect(broker.status).toBe('fail');
    expect(broker.fix).toMatch(/transport_url/);
    expect(r.stdout).not.toContain('wrong');
  }, 60_000);

  it('with the agent stopped, status says so, keeps the database part and probes the target daemon itself; exit 1', async () => {
    await h.agent.stop();
    const r = await cli(['status', '--config-file', conf, '--json']);
    expect(r.code).toBe(1);
    const s = JSON.parse(r.stdout);
    expect(s.agent.running).toBe(false);
    expect(s.agent.detail).toMatch(/not running/);
    expect(s.backends[0].service.state).toBe('up');
    expect(s.backends[0].live).toBeNull();
    if (h.tgtd) {
      expect(s.backends[0].target.state).toBe('up');
      // the export found the way the agent's start-up sweep finds it, without the agent
      expect(s.backends[0].exports).toEqual([{ volumeName: `volume-${volumeId}`, iqn: `iqn.2010-10.org.openstack:volume-${volumeId}`, live: true, admitted: [INITIATOR] }]);
    }
    const text = await cli(['status', '--config-file', conf]);
    expect(text.stdout).toContain('agent not running: no live capacity');
    // the row still looks alive for service_down_time: doctor says something else may serve it
    const doc = JSON.parse((await cli(['doctor', '--config-file', conf, '--json', '--no-broker'])).stdout) as { checks: Array<{ name: string; status: string; fix?: string }> };
    expect(doc.checks.find((c) => c.name === `service ${h.backendHost}`)).toMatchObject({ status: expect.stringMatching(/^(fail|warn)$/), fix: expect.stringMatching(/stop it before starting cinderblock/) });
    expect(doc.checks.find((c) => c.name === 'agent')?.status).toBe('skip');
    const lvl = await cli(['log-level', 'DEBUG', '--config-file', conf]);
    expect(lvl.code).toBe(3);
    expect(lvl.stderr).toMatch(/the agent is not running/);
  });
});
