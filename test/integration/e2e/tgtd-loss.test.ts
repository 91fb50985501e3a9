// Issue 10 item 5, "tgtd killed, never back": cinderblock runs as a process (as an operator runs
// it) behind the real cinder-api and cinder-scheduler on MariaDB, on the file pool, and starts its
// own tgtd on the first attach. With three volumes attached, tgtd is killed with SIGKILL. The
// agent must notice within seconds, start tgtd again and restore every export with exactly the
// initiators the database has attached: each attached initiator logs in and reads its data
// again, an initiator that is not attached is refused, and a new attach succeeds, even one that
// arrives the moment tgtd dies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cinderblockTgtdPidFile, readPidFile } from '../../../drivers/targets/tgt/tgtd-pid.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { createCinderDatabase, type TestCinderDb } from '../../helpers/cinder-db.js';
import { startCinderStack, waitFor, WaitAborted, type CinderStack } from '../../helpers/cinder-stack.js';
import { freePort } from '../../helpers/free-port.js';
import { qemuIo, qemuIscsiAvailable, type IscsiLogin } from '../../helpers/libiscsi.js';
import { controlAnswers, tcpListening, tgtAvailable } from '../../helpers/tgtd.js';

const ready = (await tgtAvailable()) && (await qemuIscsiAvailable());
const initiator = (n: number) => `iqn.1994-05.com.redhat:tgtdloss-compute${n}`;
const STRANGER = 'iqn.1994-05.com.redhat:tgtdloss-not-attached';
const PATTERNS = [0x3a, 0x4b, 0x5c, 0x6d];

function login(ci: Record<string, any>, init: string): IscsiLogin {
  return { portal: ci.target_portal, iqn: ci.target_iqn, lun: ci.target_lun, initiator: init, user: ci.auth_username, password: ci.auth_password };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.runIf(ready)('tgtd killed under attached volumes (cinder-api, MariaDB, cinderblock process, tgt)', () => {
  let stack: CinderStack;
  let db: TestCinderDb;
  let agent: AgentProcess;
  let dir: string;
  let tgtPort = 0;
  let pidFile = '';

  async function waitStatus(id: string, status: string, timeoutMs = 60_000) {
    return waitFor(`volume ${id} to be ${status}`, timeoutMs, async () => {
      const v = (await stack.api('GET', `/volumes/${id}`)).body.volume;
      if (v?.status?.startsWith('error')) throw new WaitAborted(`volume ${id} went to ${v.status}\n${agent.text().slice(-3000)}`);
      return v?.status === status ? v : undefined;
    });
  }
  async function createVolume(name: string) {
    const r = await stack.api('POST', '/volumes', { volume: { size: 1, name } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitStatus(r.body.volume.id, 'available');
  }
  /** nova's attach: attachment_create with the connector, then os-complete */
  async function attach(volumeId: string, init: string) {
    const r = await stack.api('POST', '/attachments', {
      attachment: { volume_uuid: volumeId, connector: { initiator: init, ip: '127.0.0.1', host: init.split(':')[1], platform: 'x86_64', os_type: 'linux2', multipath: false }, mode: 'rw' },
    });
    expect(r.status, `${JSON.stringify(r.body)}\n${agent.text().slice(-3000)}`).toBe(200);
    expect((await stack.api('POST', `/attachments/${r.body.attachment.id}/action`, { 'os-complete': null })).status).toBe(204);
    await waitStatus(volumeId, 'in-use');
    return r.body.attachment.connection_info as Record<string, any>;
  }
  async function killTgtd(): Promise<number> {
    const pid = await readPidFile(pidFile);
    expect(pid, 'the agent started tgtd and recorded its pid').not.toBeNull();
    expect(alive(pid!)).toBe(true);
    process.kill(pid!, 'SIGKILL');
    await waitFor('tgtd gone', 10_000, async () => (alive(pid!) ? undefined : true));
    return pid!;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-tgtd-loss-'));
    db = await createCinderDatabase('mysql');
    // a port no tgtd serves (tgtadm takes control ports below 32768): the agent starts its own tgtd there
    for (let p = 13420; p < 13460 && !tgtPort; p++) {
      if (!(await tcpListening('127.0.0.1', p)) && !(await controlAnswers(p))) tgtPort = p;
    }
    expect(tgtPort, 'a free port for tgtd in 13420..13459').toBeGreaterThan(0);
    pidFile = cinderblockTgtdPidFile(tgtPort);
    stack = await startCinderStack({
      apiPort: await freePort(),
      databaseUrl: db.url,
      backends: {
        file: { volume_driver: 'file', volume_backend_name: 'file', target_helper: 'tgtadm', target_ip_address: '127.0.0.1', target_port: String(tgtPort) },
      },
      extraSections: { cinderblock: { tgt_control_port: String(tgtPort), metrics_listen: '' } },
    });
    agent = startAgentProcess(stack.confPath);
    await agent.waitForLog(/serving 1 backend/, 60_000);
    await waitFor('the scheduler to know the pool', 30_000, async () => {
      const r = await stack.api('GET', '/scheduler-stats/get_pools');
      return r.body?.pools?.length ? true : undefined;
    });
  }, 240_000);

  afterAll(async () => {
    await agent?.stop();
    // the tgtd the agent started outlives it by design; this test's one goes by its pid
    const pid = pidFile ? await readPidFile(pidFile) : null;
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    for (const f of [pidFile, `/var/run/tgtd/socket.${tgtPort}`, `/var/run/tgtd/socket.${tgtPort}.lock`]) if (f && existsSync(f)) rmSync(f, { force: true });
    await stack?.stop();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('detects the loss within seconds, restarts tgtd, restores the exports to exactly the attached initiators, and attaches again', async () => {
    const vols = [];
    for (let i = 0; i < 3; i++) vols.push(await createVolume(`loss-${i}`));
    const infos: Array<Record<string, any>> = [];
    for (const [i, v] of vols.entries()) {
      const ci = await attach(v.id, initiator(i));
      expect((await qemuIo(login(ci, initiator(i)), `write -P ${PATTERNS[i]} 0 1M`)).outcome).toBe('ok');
      infos.push(ci);
    }
    expect(existsSync(pidFile)).toBe(true);

    // 1. tgtd killed while nothing is going on: the agent notices by itself
    const seen = agent.lines.length;
    const killedAt = Date.now();
    const oldPid = await killTgtd();
    const lost = await agent.waitForLog(/^target daemon lost: tgtd on control port/, 15_000);
    const detectMs = Date.now() - killedAt;
    expect(detectMs).toBeLessThan(10_000);
    const recovered = await agent.waitForLog(/^target daemon recovered: /, 30_000);
    expect(agent.lines.indexOf(lost)).toBeGreaterThanOrEqual(seen);
    expect(recovered).toMatchObject({ volumes: 3, restored: 3, failed: 0 });
    const newPid = await readPidFile(pidFile);
    expect(newPid).not.toBe(oldPid);
    expect(alive(newPid!)).toBe(true);

    // every attached initiator reads its own data again; nobody else gets in
    for (const [i, ci] of infos.entries()) {
      expect((await qemuIo(login(ci, initiator(i)), `read -P ${PATTERNS[i]} 0 1M`)).outcome, `initiator ${i}`).toBe('ok');
      expect((await qemuIo(login(ci, STRANGER), 'read 0 4k')).outcome, `stranger on volume ${i}`).toBe('target-not-found');
      expect((await qemuIo(login(ci, initiator((i + 1) % 3)), 'read 0 4k')).outcome, `initiator ${(i + 1) % 3} on volume ${i}`).toBe('target-not-found');
    }
    const v3 = await createVolume('loss-3');
    const ci3 = await attach(v3.id, initiator(3));
    expect((await qemuIo(login(ci3, initiator(3)), `write -P ${PATTERNS[3]} 0 1M`)).outcome).toBe('ok');

    // 2. tgtd killed the moment an attach arrives: the attach restarts it rather than failing
    const v4 = await createVolume('loss-4');
    await killTgtd();
    const ci4 = await attach(v4.id, initiator(4));
    expect((await qemuIo(login(ci4, initiator(4)), 'read 0 4k')).outcome).toBe('ok');
    await waitFor('the second restore', 30_000, async () => (agent.lines.filter((l) => /^target daemon recovered: /.test(String(l.msg))).length >= 2 ? true : undefined));
    for (const [i, ci] of [...infos, ci3].entries()) {
      expect((await qemuIo(login(ci, initiator(i)), `read -P ${PATTERNS[i]} 0 1M`)).outcome, `initiator ${i} after the second kill`).toBe('ok');
      expect((await qemuIo(login(ci, STRANGER), 'read 0 4k')).outcome).toBe('target-not-found');
    }
    for (const v of [...vols, v3, v4]) expect((await stack.api('GET', `/volumes/${v.id}`)).body.volume.status).toBe('in-use');

    // the operator's lines say what happened and never a secret
    const text = agent.text();
    for (const ci of [...infos, ci3, ci4]) expect(text).not.toContain(ci.auth_password);
  }, 300_000);
});
