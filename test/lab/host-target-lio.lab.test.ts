// target_layout = per-host on real LIO (configfs) and the kernel's iSCSI initiator, inside the lab
// guest (test/lab/run-lab.sh boots it; it formats the disk whose serial is cblab-pv0 and rewrites
// /etc/iscsi of the guest's tmpfs overlay). Three simulated compute hosts share the guest's kernel,
// each an iscsiadm iface with its own initiator name, so each has its own sessions.
//
// Built as the agent builds it: cinder.conf text with target_helper = lioadm and target_layout =
// per-host → createTargetSide → createDriver (LVM on a real VG) → createExports (HostTargetExports
// over LioHostTarget). What must hold (issue 12; CONTRACT-WAVE2 A3, A6, A9; bug 2004555):
//  - each host logs in to its own target and sees exactly its own LUNs, by the serial the kernel
//    read from VPD page 0x80, never another host's; another host's initiator is refused;
//  - an unmapped LUN's device on that host becomes unreadable, its number is not reused, the
//    host's other LUNs and the other hosts' sessions go on;
//  - force detach without a connector takes a volume out of every host target;
//  - the last LUN takes the target (and the session) with it;
//  - configfs lost (our target trees removed): ensureExport with the attached connectors restores
//    the same LUN numbers and the hosts' sessions recover;
//  - concurrent attach/detach across hosts leaves each ACL mapping exactly the registry's LUNs.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pattern, readAt, writeAt, until as untilEvery, shTry } from './lab-io.js';
import type { DriverVolume, VolumeDriver } from '../../drivers/driver.js';
import { PER_HOST_LOCATION, type HostTargetExports } from '../../drivers/host-target-exports.js';
import { requireChap, type HostTargetState } from '../../drivers/targets/host-target/host-target-registry.js';
import { Configfs } from '../../drivers/targets/lio/configfs.js';
import { hostBackstoreName } from '../../drivers/targets/lio/lio-host-target.js';
import type { Connector } from '../../drivers/targets/target.js';
import { createLogger, setRootLogger } from '../../src/log.js';
import { ensureIface, iscsiadm, login, logout } from '../helpers/iscsiadm.js';
import { readable, sessionIds, sessionState, view } from '../helpers/kernel-iscsi-view.js';
import { lioLabBackend, lioLabConf, prepareLabStorageAndInitiator } from './lio-lab-backend.js';

const inLab = process.env.CINDERBLOCK_LAB === '1' && Boolean(process.env.CBLAB_DISKS);
const DISK = (process.env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
const OUT = process.env.CBLAB_OUT ?? '/tmp/cblab-host-lio-out';
const WORK = '/tmp/cblab-host-lio';
const LOG = `${WORK}/agent.log`;
const PORTAL = '127.0.0.1:3260';
const t0 = Date.now();
const timings: Record<string, number> = {};

interface Host {
  host: string;
  iface: string;
  initiator: string;
}
const HOSTS: Host[] = [1, 2, 3].map((i) => ({ host: `compute-${i}`, iface: `h${i}`, initiator: `iqn.2024-01.org.example:compute-${i}` }));
const [H1, H2, H3] = HOSTS as [Host, Host, Host];
const connector = (h: Host): Connector => ({ host: h.host, initiator: h.initiator });

/** lab-io's until, polling every 300 ms */
const until = <T>(what: string, ms: number, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>): Promise<T> => untilEvery(what, ms, fn, 300);
const serialsOf = (m: Map<number, { serial: string }>): Record<number, string> => Object.fromEntries([...m].map(([lun, x]) => [lun, x.serial]));

async function rescanSessions(h: Host, iqn: string): Promise<void> {
  for (const sid of sessionIds(h, iqn)) {
    const r = await iscsiadm('-m', 'session', '-r', sid.replace('session', ''), '-R');
    if (r.code !== 0) throw new Error(`rescan ${sid}: ${r.out}`);
  }
  shTry(['udevadm', 'settle', '-t', '30']);
}

/** Drop the host's SCSI device of a LUN (what os-brick does on disconnect). */
function deleteDevice(sdev: string): void {
  writeFileSync(join(sdev, 'delete'), '1\n');
}

describe.skipIf(!inLab).sequential('per-host LIO targets + kernel initiator (lab guest)', () => {
  const configfs = new Configfs();
  let driver: VolumeDriver;
  let exports: HostTargetExports;
  const vols: DriverVolume[] = [];
  const secrets = new Set<string>();
  const paths = { workDir: WORK, statePath: WORK };
  const state = async (): Promise<HostTargetState> => ({ version: 1, targets: (await exports.inventory()).hostTargets?.records ?? [] });
  const recordOf = async (h: Host) => (await state()).targets.find((t) => t.host === h.host);
  const iqnOf = async (h: Host) => (await recordOf(h))!.iqn;
  const lunsOf = async (h: Host): Promise<Record<number, string>> => Object.fromEntries(((await recordOf(h))?.luns ?? []).map((m) => [m.lun, m.serial]));
  const serial = (v: DriverVolume) => v.id;

  async function attach(v: DriverVolume, h: Host): Promise<number> {
    const info = await exports.initializeConnection(v, connector(h));
    if (typeof info.data.auth_password === 'string') secrets.add(info.data.auth_password);
    return info.data.target_lun as number;
  }
  async function hostLogin(h: Host): Promise<void> {
    const r = (await recordOf(h))!;
    const res = await login({ portal: PORTAL, iqn: r.iqn, iface: h.iface, user: requireChap(r).username, password: requireChap(r).password });
    if (res.code !== 0) throw new Error(`${h.host} login: ${res.out}`);
    await until(`${h.host}'s LUNs scanned`, 30_000, async () => view(h, r.iqn).size === r.luns.length);
    shTry(['udevadm', 'settle', '-t', '30']);
  }

  beforeAll(async () => {
    const t = Date.now();
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(`${WORK}/locks`, { recursive: true });
    mkdirSync(OUT, { recursive: true });
    setRootLogger(createLogger({ level: 'debug', pretty: false, destination: LOG }));
    prepareLabStorageAndInitiator({ disk: DISK, workDir: WORK, initiator: 'iqn.2024-01.org.example:default' });
    for (const h of HOSTS) await ensureIface(h.iface, h.initiator);
    const built = await lioLabBackend(lioLabConf({ ...paths, layout: 'per-host', lvmType: 'default' }), paths);
    if (!built.hasHostHelper) throw new Error('lioadm has no host target helper');
    driver = built.driver;
    exports = built.exports as HostTargetExports;
    expect(exports.sharedTargets).toBe(true);
    for (let i = 0; i < 6; i++) {
      const id = `${String(i + 1).repeat(8)}-0000-4000-8000-00000000000${i + 1}`;
      const v: DriverVolume = { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: true };
      await driver.createVolume(v);
      await writeAt(driver.exportPath(v), 0, pattern(`vol-${i + 1}`, 4096));
      const mu = await exports.createExport(v);
      expect(mu).toEqual({ provider_location: PER_HOST_LOCATION, provider_auth: null });
      vols.push({ ...v, providerLocation: PER_HOST_LOCATION });
    }
    timings.setup_s = (Date.now() - t) / 1000;
  });

  afterAll(() => {
    timings.suite_s = (Date.now() - t0) / 1000;
    writeFileSync(`${OUT}/timings.json`, JSON.stringify(timings, null, 1));
    if (existsSync(LOG)) writeFileSync(`${OUT}/agent.log`, readFileSync(LOG));
    writeFileSync(`${OUT}/dmesg.txt`, shTry(['dmesg', '-T']).out);
  });

  it('each host logs in to its own target and sees exactly its own LUNs, by serial; a stranger is refused', async () => {
    const t = Date.now();
    const [v1, v2, v3, v4, v5, v6] = vols as [DriverVolume, DriverVolume, DriverVolume, DriverVolume, DriverVolume, DriverVolume];
    expect(await attach(v1, H1)).toBe(0);
    expect(await attach(v2, H1)).toBe(1);
    expect(await attach(v3, H1)).toBe(2);
    expect(await attach(v4, H2)).toBe(0);
    expect(await attach(v5, H2)).toBe(1);
    expect(await attach(v3, H2)).toBe(2); // multi-attach: v3 on H1 and H2
    expect(await attach(v6, H3)).toBe(0);
    for (const h of HOSTS) await hostLogin(h);
    expect(serialsOf(view(H1, await iqnOf(H1)))).toEqual({ 0: serial(v1), 1: serial(v2), 2: serial(v3) });
    expect(serialsOf(view(H2, await iqnOf(H2)))).toEqual({ 0: serial(v4), 1: serial(v5), 2: serial(v3) });
    expect(serialsOf(view(H3, await iqnOf(H3)))).toEqual({ 0: serial(v6) });
    for (const h of HOSTS) expect(serialsOf(view(h, await iqnOf(h)))).toEqual(await lunsOf(h));
    // the data behind each device is that volume's
    const d = view(H2, await iqnOf(H2)).get(1)!.dev;
    expect((await readAt(`/dev/${d}`, 0, 4096)).equals(pattern('vol-5', 4096))).toBe(true);
    // one storage object for the multi-attached volume, linked by both hosts' targets
    expect((await configfs.listBackstores()).filter((b) => b.name === hostBackstoreName(v3.name))).toHaveLength(1);
    // H3's initiator with H1's CHAP: no ACL for it on H1's target
    const r1 = (await recordOf(H1))!;
    const cross = await login({ portal: PORTAL, iqn: r1.iqn, iface: H3.iface, user: requireChap(r1).username, password: requireChap(r1).password }, { loginTimeoutS: 5 });
    expect(cross.code).not.toBe(0);
    await logout({ portal: PORTAL, iqn: r1.iqn, iface: H3.iface });
    expect(sessionIds(H3, r1.iqn)).toEqual([]);
    writeFileSync(`${OUT}/iscsiadm-session-P3.txt`, (await iscsiadm('-m', 'session', '-P', '3')).out);
    timings.map_login_s = (Date.now() - t) / 1000;
  });

  it('unmap: the host\'s device for that LUN becomes unreadable, its number is not reused, everything else goes on', async () => {
    const t = Date.now();
    const [, v2, , , v5] = vols as [DriverVolume, DriverVolume, DriverVolume, DriverVolume, DriverVolume];
    const iqn1 = await iqnOf(H1);
    const iqn2 = await iqnOf(H2);
    const h2Sessions = sessionIds(H2, iqn2);
    const stale = view(H1, iqn1).get(1)!;
    expect(await readable(stale.dev)).toBe(true);
    await exports.terminateConnection(v2, connector(H1), { remaining: [] });
    expect(await lunsOf(H1)).not.toHaveProperty('1');
    const acl = (await configfs.readHostTarget(iqn1))!.acls.find((a) => a.initiator === H1.initiator)!;
    expect(Object.keys(acl.mapped).map(Number).sort()).toEqual([0, 2]);
    await rescanSessions(H1, iqn1);
    expect(await readable(stale.dev)).toBe(false);
    // H1's other LUNs and H2's sessions go on
    expect(await readable(view(H1, iqn1).get(0)!.dev)).toBe(true);
    expect(sessionIds(H2, iqn2)).toEqual(h2Sessions);
    expect(sessionState(h2Sessions[0]!)).toBe('LOGGED_IN');
    for (const x of view(H2, iqn2).values()) expect(await readable(x.dev)).toBe(true);
    // a new volume for H1 gets a new number, never 1
    const lun = await attach(v5, H1);
    expect(lun).toBe(3);
    await rescanSessions(H1, iqn1);
    const now = view(H1, iqn1);
    expect(now.get(3)?.serial).toBe(serial(v5));
    // the stale device still reads nothing: its LUN number maps nothing
    expect(await readable(stale.dev)).toBe(false);
    deleteDevice(stale.sdev);
    await until('stale device gone', 20_000, () => !view(H1, iqn1).has(1));
    expect(serialsOf(view(H1, iqn1))).toEqual(await lunsOf(H1));
    timings.unmap_s = (Date.now() - t) / 1000;
  });

  it('force detach without a connector takes the volume out of every host target; the hosts\' sessions stay', async () => {
    const v3 = vols[2]!;
    const iqn1 = await iqnOf(H1);
    const iqn2 = await iqnOf(H2);
    const devs = [view(H1, iqn1).get(2)!, view(H2, iqn2).get(2)!];
    await exports.terminateConnection(v3, null, { force: true });
    expect(await lunsOf(H1)).not.toHaveProperty('2');
    expect(await lunsOf(H2)).not.toHaveProperty('2');
    expect(await configfs.findBackstore(hostBackstoreName(v3.name))).toBeNull();
    await rescanSessions(H1, iqn1);
    await rescanSessions(H2, iqn2);
    for (const d of devs) {
      expect(await readable(d.dev)).toBe(false);
      deleteDevice(d.sdev);
    }
    expect(sessionIds(H1, iqn1).map(sessionState)).toEqual(['LOGGED_IN']);
    expect(sessionIds(H2, iqn2).map(sessionState)).toEqual(['LOGGED_IN']);
    await until('stale devices gone', 20_000, async () => JSON.stringify(serialsOf(view(H1, iqn1))) === JSON.stringify(await lunsOf(H1)));
  });

  it('the last LUN takes the target and its session with it', async () => {
    const v6 = vols[5]!;
    const iqn3 = await iqnOf(H3);
    await exports.terminateConnection(v6, connector(H3), { remaining: [] });
    expect(await configfs.readHostTarget(iqn3)).toBeNull();
    expect(await configfs.findBackstore(hostBackstoreName(v6.name))).toBeNull();
    await until('H3 session dropped', 30_000, () => sessionIds(H3, iqn3).every((s) => sessionState(s) !== 'LOGGED_IN'));
    await logout({ portal: PORTAL, iqn: iqn3, iface: H3.iface });
    // the record stays (CHAP, numbering) for the next attachment
    expect((await recordOf(H3))!.luns).toEqual([]);
  });

  it('configfs lost: ensureExport with the attached connectors restores the same LUN numbers, and the hosts\' sessions recover', async () => {
    const t = Date.now();
    const before = await state();
    const iqns = [await iqnOf(H1), await iqnOf(H2)];
    const views = await Promise.all([H1, H2].map(async (h) => serialsOf(view(h, await iqnOf(h)))));
    // simulate the loss: our target trees and storage objects gone from configfs
    const tr = Date.now();
    for (const iqn of iqns) await exports.helper.remove(iqn);
    timings.remove_two_targets_with_sessions_s = (Date.now() - tr) / 1000;
    for (const iqn of iqns) expect(await configfs.readHostTarget(iqn)).toBeNull();
    // the manager's restore: each exported volume with its attachments' connectors (from the DB)
    const te = Date.now();
    for (const v of vols) {
      const connectors = before.targets.filter((t) => t.luns.some((m) => m.volumeId === v.id)).map((t) => connector(HOSTS.find((h) => h.host === t.host)!));
      await exports.ensureExport(v, connectors.map((c) => c.initiator as string), connectors);
    }
    timings.ensure_export_all_s = (Date.now() - te) / 1000;
    expect(JSON.stringify((await state()).targets.map((t) => t.luns))).toBe(JSON.stringify(before.targets.map((t) => t.luns)));
    for (const t of before.targets.filter((x) => x.luns.length > 0)) {
      const live = (await configfs.readHostTarget(t.iqn))!;
      expect(live.luns.map((l) => [l.lun, l.serial])).toEqual(t.luns.map((m) => [m.lun, m.serial]).sort((a, b) => (a[0] as number) - (b[0] as number)));
    }
    // open-iscsi logs in again by itself (session recovery; the node records keep CHAP); if it gave
    // up (how long it retries a "target not found" is iscsid's choice), a fresh login, as os-brick
    // would on the next attach. Either way: same LUNs, same serials, readable.
    for (const [i, h] of [H1, H2].entries()) {
      const back = await until(`${h.host} session back`, 45_000, () => sessionIds(h, iqns[i]!).some((s) => sessionState(s) === 'LOGGED_IN')).catch(() => false);
      timings[`${h.host}_recovered_by_iscsid`] = back ? 1 : 0;
      if (!back) {
        await logout({ portal: PORTAL, iqn: iqns[i]!, iface: h.iface });
        await hostLogin(h);
      }
      await until(`${h.host} devices readable`, 60_000, async () => (await Promise.all([...view(h, iqns[i]!).values()].map((x) => readable(x.dev)))).every(Boolean));
      expect(serialsOf(view(h, iqns[i]!))).toEqual(views[i]);
    }
    timings.restore_s = (Date.now() - t) / 1000;
  });

  it('concurrent attach/detach across three hosts: each ACL maps exactly the registry\'s LUNs, with the right serials', async () => {
    const t = Date.now();
    for (const h of HOSTS) {
      const r = await recordOf(h);
      if (r) await logout({ portal: PORTAL, iqn: r.iqn, iface: h.iface });
    }
    // 40 operations; one chain per (host, volume) pair, chains side by side (the manager
    // serialises one volume's operations, never different hosts' or volumes')
    let seed = 12;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const chains = new Map<string, Array<'attach' | 'detach'>>();
    for (let i = 0; i < 40; i++) {
      const key = `${rnd(3)}/${rnd(6)}`;
      chains.set(key, [...(chains.get(key) ?? []), rnd(2) === 0 ? 'attach' : 'detach']);
    }
    await Promise.all(
      [...chains].map(async ([key, ops]) => {
        const [hi, vi] = key.split('/').map(Number) as [number, number];
        for (const op of ops) {
          if (op === 'attach') await attach(vols[vi]!, HOSTS[hi]!);
          else await exports.terminateConnection(vols[vi]!, connector(HOSTS[hi]!), { remaining: [] });
        }
      }),
    );
    timings.concurrent_ops_s = (Date.now() - t) / 1000;
    const s = await state();
    const mapped = new Set<string>();
    for (const r of s.targets) {
      const live = await configfs.readHostTarget(r.iqn);
      if (r.luns.length === 0) {
        expect(live).toBeNull();
        continue;
      }
      expect(new Set(r.luns.map((m) => m.lun)).size).toBe(r.luns.length);
      expect(live!.luns.map((l) => [l.lun, l.serial, l.udevPath])).toEqual(
        [...r.luns].sort((a, b) => a.lun - b.lun).map((m) => [m.lun, m.serial, m.backingPath]),
      );
      const h = HOSTS.find((x) => x.host === r.host)!;
      expect(live!.acls.map((a) => a.initiator)).toEqual([h.initiator]);
      expect(Object.keys(live!.acls[0]!.mapped).map(Number).sort((a, b) => a - b)).toEqual(r.luns.map((m) => m.lun).sort((a, b) => a - b));
      for (const m of r.luns) mapped.add(hostBackstoreName(m.volumeName));
    }
    // one storage object per mapped volume, none for the others
    const ours = (await configfs.listBackstores()).filter((b) => b.name.startsWith('cb-')).map((b) => b.name).sort();
    expect(ours).toEqual([...mapped].sort());
    // and through the kernel initiator: each host sees exactly its record, by serial
    for (const h of HOSTS) {
      const r = s.targets.find((x) => x.host === h.host);
      if (!r || r.luns.length === 0) continue;
      await hostLogin(h);
      expect(serialsOf(view(h, r.iqn))).toEqual(await lunsOf(h));
      await logout({ portal: PORTAL, iqn: r.iqn, iface: h.iface });
    }
    timings.concurrent_s = (Date.now() - t) / 1000;
    writeFileSync(`${OUT}/host-targets.json`, JSON.stringify((await state()).targets.map((x) => ({ host: x.host, luns: x.luns.map((m) => m.lun), nextLun: x.nextLun })), null, 1));
  });

  it('detaching everything leaves no host target and no storage object of ours; no CHAP secret reached a log line', async () => {
    for (const v of vols) await exports.removeExport(v);
    for (const t of (await state()).targets) expect(await configfs.readHostTarget(t.iqn)).toBeNull();
    expect((await configfs.listBackstores()).filter((b) => b.name.startsWith('cb-'))).toEqual([]);
    expect(await exports.helper.list()).toEqual([]);
    const text = readFileSync(LOG, 'utf8');
    for (const t of (await state()).targets) secrets.add(requireChap(t).password);
    expect(secrets.size).toBeGreaterThanOrEqual(3);
    for (const s of secrets) expect(text.includes(s)).toBe(false);
    expect(text).toMatch(/mapped LUN into host target/);
  });
});
