// Runs INSIDE the qemu lab guest (real LIO in Debian's kernel, configfs mounted, iscsid running):
// LioTarget writing /sys/kernel/config/target directly, open-iscsi logging in with CHAP.
// Usage: node --import tsx test/lab-lio/lio-scenario.ts <block device> [configfs|targetcli ...]
// (each backend named runs the whole scenario on its own volume; default: configfs)
// Prints `CHECK <name> ok|FAIL <detail>` per check and `LIO-SCENARIO PASS|FAIL` at the end.
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { Configfs } from '../../drivers/targets/lio/configfs.js';
import { LioTarget } from '../../drivers/targets/lio/lio-target.js';
import type { ExportedVolume } from '../../drivers/targets/target.js';

const dev = process.argv[2] ?? '/dev/loop0';
const backends = (process.argv.length > 3 ? process.argv.slice(3) : ['configfs']) as Array<'configfs' | 'targetcli'>;
let ID = '';
let IQN = '';
let mode: 'configfs' | 'targetcli' = 'configfs';
const GOOD = 'iqn.2024-01.org.example:agent1';
const BAD = 'iqn.2024-01.org.example:intruder';
const PORTAL = '127.0.0.1:3260';
let failed = 0;
const t0 = Date.now();

function check(name: string, ok: boolean, detail = ''): void {
  if (!ok) failed++;
  console.log(`CHECK [${mode}] ${name} ${ok ? 'ok' : `FAIL ${detail}`} t=${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

async function iscsiadm(...args: string[]) {
  const r = await execa('iscsiadm', args, { reject: false, timeout: 60_000 });
  return { code: r.exitCode ?? -1, out: `${String(r.stdout)}\n${String(r.stderr)}` };
}

async function setNode(iface: string, user: string, pass: string): Promise<void> {
  for (const [k, v] of [
    ['node.session.auth.authmethod', 'CHAP'],
    ['node.session.auth.username', user],
    ['node.session.auth.password', pass],
  ] as const) {
    await iscsiadm('-m', 'node', '-T', IQN, '-p', PORTAL, '-I', iface, '-o', 'update', '-n', k, '-v', v);
  }
}

async function login(iface: string, user: string, pass: string): Promise<number> {
  await iscsiadm('-m', 'discovery', '-t', 'sendtargets', '-p', PORTAL, '-I', iface);
  await iscsiadm('-m', 'node', '-T', IQN, '-p', PORTAL, '-I', iface, '-o', 'new');
  await setNode(iface, user, pass);
  return (await iscsiadm('-m', 'node', '-T', IQN, '-p', PORTAL, '-I', iface, '-l')).code;
}

async function sessions(): Promise<string> {
  return (await iscsiadm('-m', 'session')).out;
}

/** The `iscsiadm -m session -P 1` block of our target (one session expected), '' when none. */
async function sessionOf(iqn: string): Promise<string> {
  const out = (await iscsiadm('-m', 'session', '-P', '1')).out;
  const blocks = out.split(/(?=^Target: )/m).filter((b) => b.startsWith(`Target: ${iqn} `));
  return blocks.map((b) => b.split('\n').filter((l) => /State/.test(l)).map((l) => l.trim()).join(', ')).join(' || ');
}

async function scenario(n: number): Promise<void> {
  ID = `11111111-2222-3333-4444-55555555555${n}`;
  IQN = `iqn.2010-10.org.openstack:volume-${ID}`;
  const opts = {
    targetPrefix: 'iqn.2010-10.org.openstack:',
    targetIpAddress: '127.0.0.1',
    targetSecondaryIpAddresses: [],
    targetPort: 3260,
    targetProtocol: 'iscsi' as const,
    volumesDir: `/tmp/lio-volumes-${mode}`,
    backend: mode,
  };
  const helper = new LioTarget(opts);
  const fs = new Configfs();
  check(`backend is ${mode}`, (await helper.backend()).kind === mode);
  const vol: ExportedVolume = { id: ID, name: `volume-${ID}`, providerLocation: null, providerAuth: null, backingPath: dev, multiattach: false };

  const r = await helper.createExport(vol);
  const v = { ...vol, providerLocation: r.provider_location, providerAuth: r.provider_auth };
  const [, user, pass] = r.provider_auth.split(' ') as [string, string, string];
  check('provider_location', r.provider_location === `${PORTAL},${IQN} ${IQN} 0`, r.provider_location);
  const again = await helper.createExport(v);
  check('createExport idempotent', again.provider_auth === r.provider_auth);
  const t = await fs.readTarget(IQN);
  check('configfs target', !!t && t.enabled && t.attribs.authentication === '1' && t.attribs.generate_node_acls === '0' && t.portals.includes(PORTAL) && t.lun0Backstore !== null, JSON.stringify(t));
  const bs = await fs.findBackstore(IQN);
  check('backstore', bs?.udevPath === dev && bs.enabled && t?.lun0Backstore === bs.path, `${JSON.stringify(bs)} lun0=${t?.lun0Backstore}`);
  const tcli = await execa('targetcli', ['ls', `/iscsi/${IQN}`], { reject: false, timeout: 120_000 });
  check('targetcli (rtslib) reads our objects', tcli.exitCode === 0 && String(tcli.stdout).includes('lun0') && String(tcli.stdout).includes(IQN), String(tcli.stderr));
  console.log(String(tcli.stdout));

  // no ACL yet: nobody may log in, even with the right CHAP
  await iscsiadm('-m', 'iface', '-I', 'good', '-o', 'new');
  await iscsiadm('-m', 'iface', '-I', 'good', '-o', 'update', '-n', 'iface.initiatorname', '-v', GOOD);
  await iscsiadm('-m', 'iface', '-I', 'bad', '-o', 'new');
  await iscsiadm('-m', 'iface', '-I', 'bad', '-o', 'update', '-n', 'iface.initiatorname', '-v', BAD);
  check('login refused before initializeConnection', (await login('good', user, pass)) !== 0);

  const info = await helper.initializeConnection(v, { initiator: GOOD });
  check('connection_info lun 0', info.data.target_lun === 0 && info.data.target_iqn === IQN && info.data.auth_password === pass, JSON.stringify({ ...info.data, auth_password: '***' }));
  check('login with wrong CHAP refused', (await login('good', user, 'wrongsecret9999x')) !== 0);
  check('login by another initiator refused', (await login('bad', user, pass)) !== 0);
  const ok = await login('good', user, pass);
  check('login of the attached initiator with CHAP', ok === 0, String(ok));
  await execa('udevadm', ['settle', '-t', '30'], { reject: false });
  const s1 = await sessionOf(IQN);
  check('session LOGGED_IN', /iSCSI Session State: LOGGED_IN/.test(s1), s1);
  const disk = (await iscsiadm('-m', 'session', '-P', '3')).out.match(/Attached scsi disk (\w+)/)?.[1];
  check('scsi disk attached', !!disk, String(disk));
  if (disk) {
    const w = await execa('dd', ['if=/dev/urandom', `of=/dev/${disk}`, 'bs=1M', 'count=8', 'oflag=direct'], { reject: false });
    const a = await execa('sh', ['-c', `dd if=/dev/${disk} bs=1M count=8 iflag=direct 2>/dev/null | sha256sum`], { reject: false });
    const b = await execa('sh', ['-c', `dd if=${dev} bs=1M count=8 iflag=direct 2>/dev/null | sha256sum`], { reject: false });
    check('data written through iSCSI is on the backing device', w.exitCode === 0 && String(a.stdout) === String(b.stdout), `${String(w.stderr)} ${String(a.stdout)} ${String(b.stdout)}`);
  }

  // detach: ACL removed, LIO drops the session, a new login is refused
  await helper.terminateConnection(v, { initiator: GOOD }, {});
  check('ACL gone', ((await fs.readTarget(IQN))?.acls.length ?? -1) === 0);
  let seen = await sessionOf(IQN);
  let gone = false;
  for (let i = 0; i < 40 && !gone; i++) {
    seen = await sessionOf(IQN);
    gone = seen === '' || /iSCSI Session State: FAILED/.test(seen);
    if (!gone) await new Promise((res) => setTimeout(res, 250));
  }
  check('session dropped by the target after terminateConnection', gone, seen);
  console.log(`initiator view of our session after terminate: ${seen || '(no session)'}`);
  const lo = await iscsiadm('-m', 'node', '-T', IQN, '-p', PORTAL, '-I', 'good', '-u');
  check('initiator gave up the dead session', (await sessionOf(IQN)) === '', `logout rc=${lo.code} ${await sessionOf(IQN)}`);
  const rl = await login('good', user, pass);
  const after = await sessionOf(IQN);
  check('re-login refused after terminateConnection', rl !== 0 && !/LOGGED_IN/.test(after), `rc=${rl} ${after}`);
  await iscsiadm('-m', 'node', '-T', IQN, '-p', PORTAL, '-I', 'good', '-u');
  check('no session left before reconcile part', (await sessionOf(IQN)) === '', await sessionOf(IQN));

  // "reboot": configfs loses everything of ours; reconcile rebuilds it from the record
  await helper.initializeConnection(v, { initiator: GOOD });
  await fs.removeTarget(IQN);
  const b2 = await fs.findBackstore(IQN);
  if (b2) await fs.removeBackstore(b2);
  check('wiped', (await fs.readTarget(IQN)) === null && (await fs.findBackstore(IQN)) === null);
  const fresh = new LioTarget(opts);
  const rec = await fresh.reconcile();
  check('reconcile mended our export', rec.mended.includes(IQN) && rec.failed.length === 0, JSON.stringify(rec));
  const lr = await login('good', user, pass);
  const s2 = await sessionOf(IQN);
  check('login after reconcile', lr === 0 && /iSCSI Session State: LOGGED_IN/.test(s2), `rc=${lr} ${s2}`);
  await iscsiadm('-m', 'node', '-T', IQN, '-p', PORTAL, '-I', 'good', '-u');
  check('logged out', (await sessionOf(IQN)) === '', await sessionOf(IQN));

  await helper.removeExport(v);
  check('removeExport leaves nothing', (await fs.readTarget(IQN)) === null && (await fs.findBackstore(IQN)) === null);
  check('state file empty', JSON.parse(await readFile(helper.statePath(), 'utf8')).exports[IQN] === undefined);
}

async function main(): Promise<void> {
  let n = 0;
  for (const b of backends) {
    mode = b;
    try {
      await scenario(++n);
    } catch (e) {
      check('scenario ran without exception', false, e instanceof Error ? (e.stack ?? e.message) : String(e));
      const c = (e as { cause?: unknown }).cause;
      if (c) console.log(`cause: ${c instanceof Error ? (c.stack ?? c.message) : String(c)}`);
    }
    await iscsiadm('-m', 'node', '-u');
    await iscsiadm('-m', 'node', '-o', 'delete');
    console.log(`sessions after scenario ${mode}: ${(await sessions()).trim() || '(none)'}`);
  }
  console.log(`LIO-SCENARIO ${failed === 0 ? 'PASS' : `FAIL (${failed})`} time=${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

main().catch((e: unknown) => {
  console.log(`LIO-SCENARIO FAIL exception ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  const c = (e as { cause?: unknown }).cause;
  if (c) console.log(`cause: ${c instanceof Error ? (c.stack ?? c.message) : String(c)}`);
});
