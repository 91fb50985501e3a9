// TgtTarget against a real tgtd on 127.0.0.1 (a private control port and iSCSI port) and real
// user-space initiators (libiscsi's iscsi-inq/iscsi-ls/iscsi-readcapacity16 and qemu-io's iscsi
// driver). Covers: export a sparse file; CHAP; per-initiator ACLs (an initiator that is not
// attached is refused even with the right secret; after a detach the initiator is refused and its
// session is closed); extend; tgtd killed -9 and restarted (restored by tgt-admin from the target
// file, and by ensureExport); removal.
import { randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExportedVolume } from '../../../drivers/targets/target.js';
import { TgtTarget } from '../../../drivers/targets/tgt/tgt-target.js';
import { parseShowTargets } from '../../../drivers/targets/tgt/tgtadm-parse.js';
import { iscsiInq, iscsiLs, iscsiReadCapacity16, iscsiUrl, libiscsiAvailable, qemuImgReadAll, qemuIo, qemuIscsiAvailable, type IscsiLogin } from '../../helpers/libiscsi.js';
import { startTgtd, tgtAvailable, type TgtdHandle } from '../../helpers/tgtd.js';

const haveTgt = await tgtAvailable();
const haveLibiscsi = await libiscsiAvailable();
const haveQemuIscsi = haveLibiscsi && (await qemuIscsiAvailable());

const MiB = 1024 * 1024;
const A = 'iqn.1994-05.com.redhat:compute-a';
const B = 'iqn.1994-05.com.redhat:compute-b';
const C = 'iqn.1994-05.com.redhat:compute-c';

const timings: [string, number][] = [];
// initiator processes this file started; killed by pid in afterAll if a test failed midway
const children = new Set<ResultPromise>();
function spawnPerf(args: string[], timeoutMs: number): ResultPromise {
  const p = execa('iscsi-perf', args, { reject: false, timeout: timeoutMs });
  children.add(p);
  return p;
}
async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings.push([label, Math.round((performance.now() - t0) * 10) / 10]);
  }
}

describe.skipIf(!haveTgt || !haveLibiscsi)('TgtTarget with a real tgtd and libiscsi', () => {
  let tgtd: TgtdHandle;
  let dir: string;
  let helper: TgtTarget;
  let vol: ExportedVolume;
  let iqn: string;
  let user: string;
  let password: string;

  const login = (initiator: string, creds: { user?: string; password?: string } = { user, password }): IscsiLogin => ({
    portal: tgtd.portal,
    iqn,
    lun: 1,
    initiator,
    ...creds,
  });
  const show = async () => parseShowTargets((await tgtd.tgtadm('--lld', 'iscsi', '--op', 'show', '--mode', 'target')).stdout);
  const ours = async () => (await show()).find((t) => t.iqn === iqn);

  beforeAll(async () => {
    tgtd = await startTgtd();
    timings.push(['tgtd start (spawn to first answer)', tgtd.readyMs()]);
    dir = mkdtempSync('/tmp/cinderblock-tgt-it-');
    const id = randomUUID();
    const backingPath = join(dir, `volume-${id}`);
    writeFileSync(backingPath, '');
    truncateSync(backingPath, 64 * MiB);
    vol = { id, name: `volume-${id}`, providerLocation: null, providerAuth: null, backingPath, multiattach: true };
    helper = new TgtTarget({
      targetPrefix: 'iqn.2010-10.org.openstack:',
      targetIpAddress: '127.0.0.1',
      targetSecondaryIpAddresses: [],
      targetPort: tgtd.port,
      targetProtocol: 'iscsi',
      volumesDir: join(dir, 'volumes'),
      iscsiWriteCache: 'on',
      iscsiTargetFlags: '',
      controlPort: tgtd.controlPort,
    });
    iqn = helper.iqnOf(vol);
  });

  afterAll(async () => {
    await tgtd?.stop();
    for (const c of children) {
      if (c.exitCode !== null || c.signalCode !== null || !c.pid) continue;
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await Promise.all(children);
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.log(`tgt integration timings (ms):\n${timings.map(([l, ms]) => `  ${l.padEnd(58)} ${ms}`).join('\n')}`);
  });

  it('createExport makes a target with LUN 1 on the file, a CHAP account and no ACL', async () => {
    const update = await timed('createExport (new target)', () => helper.createExport(vol));
    const m = /^127\.0\.0\.1:(\d+),(\d+) (\S+) 1$/.exec(update.provider_location);
    expect(m, update.provider_location).not.toBeNull();
    expect(Number(m![1])).toBe(tgtd.port);
    expect(m![3]).toBe(`iqn.2010-10.org.openstack:volume-${vol.id}`);
    const auth = /^CHAP ([2-9A-HJ-NP-Za-km-z]{20}) ([2-9A-HJ-NP-Za-km-z]{16})$/.exec(update.provider_auth);
    expect(auth).not.toBeNull();
    user = auth![1]!;
    password = auth![2]!;
    vol = { ...vol, providerLocation: update.provider_location, providerAuth: update.provider_auth };

    const t = await ours();
    expect(t?.tid).toBe(Number(m![2]));
    expect(t?.luns.map((l) => l.lun)).toEqual([0, 1]);
    expect(t?.luns[1]?.backingStorePath).toBe(vol.backingPath);
    expect(t?.luns[1]?.thinProvisioning).toBe(true);
    expect(t?.accounts).toEqual([user]);
    expect(t?.acls).toEqual([]);

    const file = readFileSync(join(dir, 'volumes', vol.name), 'utf8');
    expect(file).toContain(`<target ${iqn}>`);
    expect(file).toContain(`incominguser ${user} ${password}`);
    expect(file).toContain('initiator-address 0.0.0.0');
    expect(file).not.toMatch(/^\s*initiator-name /m);
    expect(statSync(join(dir, 'volumes', vol.name)).mode & 0o777).toBe(0o600);
  });

  it('nobody can log in before initialize_connection, not even with the CHAP secret', async () => {
    const r = await timed('iscsi-inq refused (no ACL yet)', () => iscsiInq(login(A)));
    expect(r.outcome).toBe('target-not-found');
  });

  it('createExport again is a no-op that reuses the stored CHAP credentials', async () => {
    const before = await ours();
    const again = await timed('createExport (existing target)', () => helper.createExport(vol));
    expect(again).toEqual({ provider_location: vol.providerLocation, provider_auth: vol.providerAuth });
    expect(await ours()).toEqual(before);
  });

  it('initializeConnection binds initiator A; A logs in with CHAP', async () => {
    const info = await timed('initializeConnection A', () => helper.initializeConnection(vol, { initiator: A, host: 'compute-a', multipath: false }));
    expect(info).toEqual({
      driver_volume_type: 'iscsi',
      data: {
        target_discovered: false,
        target_portal: `127.0.0.1:${tgtd.port}`,
        target_iqn: iqn,
        target_lun: 1,
        volume_id: vol.id,
        auth_method: 'CHAP',
        auth_username: user,
        auth_password: password,
      },
    });
    expect((await ours())?.acls).toEqual([A]);
    expect(readFileSync(join(dir, 'volumes', vol.name), 'utf8')).toContain(`initiator-name ${A}`);
    const r = await timed('iscsi-inq A (login + INQUIRY)', () => iscsiInq(login(A)));
    expect(r.outcome, r.stderr).toBe('ok');
    expect(r.stdout).toContain('DIRECT_ACCESS');
    const cap = await iscsiReadCapacity16(login(A));
    expect(cap.sizeBytes).toBe(64 * MiB);
  });

  it.skipIf(!haveQemuIscsi)('A writes a pattern and reads it back through qemu-io', async () => {
    const w = await timed('qemu-io write 1M as A', () => qemuIo(login(A), 'write -P 0xab 0 1M'));
    expect(w.exitCode, w.stderr).toBe(0);
    const r = await timed('qemu-io read+verify 1M as A', () => qemuIo(login(A), 'read -P 0xab 0 1M'));
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('read 1048576/1048576 bytes');
    // and the data is in the backing file
    expect(readFileSync(vol.backingPath).subarray(0, MiB).every((b) => b === 0xab)).toBe(true);
  });

  it('wrong or missing CHAP is refused', async () => {
    const wrong = await timed('iscsi-inq wrong CHAP (refused)', () => iscsiInq(login(A, { user, password: 'WrongSecret23456' })));
    expect(wrong.outcome).toBe('auth-failure');
    const none = await iscsiInq(login(A, {}));
    expect(none.outcome).toBe('auth-failure');
    if (haveQemuIscsi) {
      const q = await qemuIo(login(A, { user, password: 'WrongSecret23456' }), 'read 0 4k');
      expect(q.outcome).toBe('auth-failure');
    }
  });

  it('initiator B, not attached, is refused even with the right CHAP secret and does not see the target', async () => {
    const r = await timed('iscsi-inq B with right CHAP (refused)', () => iscsiInq(login(B)));
    expect(r.outcome).toBe('target-not-found');
    const ls = await timed('iscsi-ls discovery as B', () => iscsiLs({ portal: tgtd.portal, initiator: B, user, password }));
    expect(ls.targets.map((t) => t.iqn)).not.toContain(iqn);
    const lsA = await iscsiLs({ portal: tgtd.portal, initiator: A, user, password });
    expect(lsA.targets.find((t) => t.iqn === iqn)?.luns.map((l) => l.lun)).toEqual([0, 1]);
    if (haveQemuIscsi) expect((await qemuIo(login(B), 'read 0 4k')).outcome).toBe('target-not-found');
  });

  it('multiattach: keepAcl leaves the initiator in; the last detach of C revokes only C', async () => {
    await helper.initializeConnection(vol, { initiator: C });
    expect((await ours())?.acls).toEqual([A, C]);
    await helper.terminateConnection(vol, { initiator: C }, { keepAcl: true });
    expect((await iscsiInq(login(C))).outcome).toBe('ok');
    await timed('terminateConnection C', () => helper.terminateConnection(vol, { initiator: C }, {}));
    expect((await iscsiInq(login(C))).outcome).toBe('target-not-found');
    expect((await iscsiInq(login(A))).outcome).toBe('ok');
    expect((await ours())?.acls).toEqual([A]);
  });

  it('terminateConnection revokes A: its live session is closed and it cannot log in again', async () => {
    // a long-running session as A (reads for up to 30 s)
    const perf = spawnPerf(['-i', A, '-t', '30', iscsiUrl(login(A))], 40_000);
    let nexus = false;
    for (let i = 0; i < 200 && !nexus; i++) {
      nexus = ((await ours())?.nexuses ?? []).some((n) => n.initiator === A);
      if (!nexus) await new Promise((r) => setTimeout(r, 10));
    }
    expect(nexus).toBe(true);
    await timed('terminateConnection A (unbind + close session)', () => helper.terminateConnection(vol, { initiator: A }, {}));
    const t = await ours();
    expect(t?.acls).toEqual([]);
    expect(t?.nexuses.filter((n) => n.initiator === A)).toEqual([]);
    // libiscsi keeps trying to reconnect; for two seconds none of its attempts gets a session
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      expect((await ours())?.nexuses.filter((n) => n.initiator === A)).toEqual([]);
    }
    expect(perf.exitCode).toBeNull();
    process.kill(perf.pid!, 'SIGKILL');
    await perf;
    const r = await timed('iscsi-inq A after detach (refused)', () => iscsiInq(login(A)));
    expect(r.outcome).toBe('target-not-found');
    expect(readFileSync(join(dir, 'volumes', vol.name), 'utf8')).not.toMatch(/^\s*initiator-name /m);
    // idempotent
    await helper.terminateConnection(vol, { initiator: A }, {});
  });

  it('extendTarget makes a grown backing file visible (READ CAPACITY 16)', async () => {
    await helper.initializeConnection(vol, { initiator: A });
    truncateSync(vol.backingPath, 96 * MiB);
    const stale = await iscsiReadCapacity16(login(A));
    expect(stale.sizeBytes).toBe(64 * MiB);
    await timed('extendTarget (online=0,path=... reopen)', () => helper.extendTarget(vol));
    const cap = await timed('iscsi-readcapacity16 after extend', () => iscsiReadCapacity16(login(A)));
    expect(cap.sizeBytes).toBe(96 * MiB);
    const t = await ours();
    expect(t?.luns[1]?.online).toBe(true);
    expect(t?.luns[1]?.backingStorePath).toBe(vol.backingPath);
    expect(t?.acls).toEqual([A]);
    expect(t?.accounts).toEqual([user]);
  });

  it.skipIf(!haveQemuIscsi)('extendTarget while a reader streams the LUN: the read completes with the right data', async () => {
    // 256 MiB of real data to read (holes would be skipped via GET LBA STATUS); grow to 384 MiB
    // while qemu-img is reading
    const fd = openSync(vol.backingPath, 'r+');
    const chunk = Buffer.alloc(MiB, 0xab);
    for (let i = 0; i < 256; i++) writeSync(fd, chunk, 0, MiB, i * MiB);
    closeSync(fd);
    await helper.extendTarget(vol);
    const out = join(dir, 'read-back.raw');
    const reader = qemuImgReadAll(login(A), out);
    let sawSession = false;
    for (let i = 0; i < 200 && !sawSession; i++) {
      sawSession = ((await ours())?.nexuses ?? []).some((x) => x.initiator === A);
      if (!sawSession) await new Promise((r) => setTimeout(r, 5));
    }
    expect(sawSession).toBe(true);
    truncateSync(vol.backingPath, 384 * MiB);
    await timed('extendTarget with a live session (offline, close, reopen, ready)', () => helper.extendTarget(vol));
    const r = await reader;
    timings.push(['qemu-img convert of 256 MiB across the extend', r.ms]);
    expect(r.exitCode, r.stderr).toBe(0);
    const got = readFileSync(out);
    expect(got.length).toBe(256 * MiB);
    expect(got.every((b) => b === 0xab)).toBe(true);
    rmSync(out);
    expect((await iscsiReadCapacity16(login(A))).sizeBytes).toBe(384 * MiB);
    const t = await ours();
    expect(t?.state).toBe('ready');
    expect(t?.acls).toEqual([A]);
  });

  it('after kill -9 and restart of tgtd, tgt-admin restores the target from its file with only A allowed', async () => {
    await timed('kill -9 tgtd', () => tgtd.kill());
    await timed('restart tgtd', () => tgtd.start());
    expect(await ours()).toBeUndefined();
    const r = await timed('tgt-admin -e -c <target file>', () =>
      execa('tgt-admin', ['-C', String(tgtd.controlPort), '-c', join(dir, 'volumes', vol.name), '-e'], { reject: false }),
    );
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const t = await ours();
    expect(t?.acls).toEqual(['0.0.0.0', A]);
    expect((await iscsiInq(login(A))).outcome).toBe('ok');
    expect((await iscsiInq(login(B))).outcome).toBe('target-not-found');
    expect((await iscsiInq(login(A, { user, password: 'WrongSecret23456' }))).outcome).toBe('auth-failure');
  });

  it('ensureExport on a tgt-admin restored target removes the address rule and keeps A', async () => {
    await helper.ensureExport(vol);
    expect((await ours())?.acls).toEqual([A]);
    expect((await iscsiInq(login(A))).outcome).toBe('ok');
  });

  it('after kill -9 and restart of tgtd, ensureExport alone restores target, CHAP and the ACL of A', async () => {
    await tgtd.kill();
    await tgtd.start();
    expect(await ours()).toBeUndefined();
    expect((await iscsiInq(login(A))).outcome).not.toBe('ok');
    await timed('ensureExport after tgtd restart', () => helper.ensureExport(vol));
    const t = await ours();
    expect(t?.accounts).toEqual([user]);
    expect(t?.acls).toEqual([A]);
    expect(t?.luns[1]?.backingStorePath).toBe(vol.backingPath);
    const r = await timed('iscsi-inq A after restore', () => iscsiInq(login(A)));
    expect(r.outcome, r.stderr).toBe('ok');
    expect((await iscsiReadCapacity16(login(A))).sizeBytes).toBe(haveQemuIscsi ? 384 * MiB : 96 * MiB);
    expect((await iscsiInq(login(B))).outcome).toBe('target-not-found');
    expect((await iscsiInq(login(A, { user, password: 'WrongSecret23456' }))).outcome).toBe('auth-failure');
    if (haveQemuIscsi) {
      const q = await timed('qemu-io read+verify 1M as A after restore', () => qemuIo(login(A), 'read -P 0xab 0 1M'));
      expect(q.exitCode, q.stdout + q.stderr).toBe(0);
    }
    // idempotent, and the database's view of attachments wins over the file's
    await helper.ensureExport(vol, { initiators: [C] });
    expect((await ours())?.acls).toEqual([C]);
    expect((await iscsiInq(login(A))).outcome).toBe('target-not-found');
    await helper.ensureExport(vol, { initiators: [A] });
    expect((await ours())?.acls).toEqual([A]);
  });

  it('rejects a connector without initiator and a malformed initiator, binding nothing', async () => {
    await expect(helper.initializeConnection(vol, { host: 'x' })).rejects.toMatchObject({
      className: 'InvalidConnectorException',
      message: "Connector doesn't have required information: initiator",
    });
    await expect(helper.initializeConnection(vol, { initiator: 'iqn.2020-01.evil:x;rm -rf /' })).rejects.toMatchObject({ className: 'InvalidInput' });
    await expect(helper.initializeConnection(vol, { initiator: 'iqn.2020-01.evil:x\ninitiator-address ALL' })).rejects.toMatchObject({ className: 'InvalidInput' });
    expect((await ours())?.acls).toEqual([A]);
  });

  it('listExports lists the IQN', async () => {
    expect(await helper.listExports()).toEqual([iqn]);
  });

  it('removeExport deletes target, account and file, closing sessions; a second call is a no-op', async () => {
    const perf = spawnPerf(['-i', A, '-t', '30', iscsiUrl(login(A))], 40_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(((await ours())?.nexuses ?? []).some((n) => n.initiator === A)).toBe(true);
    await timed('removeExport (with a live session)', () => helper.removeExport(vol));
    // the initiator keeps trying to reconnect; there is nothing left to reconnect to
    if (perf.exitCode === null) process.kill(perf.pid!, 'SIGKILL');
    await perf;
    expect(await ours()).toBeUndefined();
    const accounts = (await tgtd.tgtadm('--lld', 'iscsi', '--op', 'show', '--mode', 'account')).stdout;
    expect(accounts).not.toContain(user);
    expect(() => statSync(join(dir, 'volumes', vol.name))).toThrow();
    expect((await iscsiInq(login(A))).outcome).not.toBe('ok');
    await timed('removeExport (already gone)', () => helper.removeExport(vol));
    expect(await helper.listExports()).toEqual([]);
  });
});
