// target_layout = per-host on a real tgtd, seen from real user-space initiators (libiscsi), each
// test initiator name standing for one compute host. What must hold (issue: per-host shared
// targets; CONTRACT-WAVE2 A6, A9; OpenStack bug 2004555):
//  - each host reaches exactly the volumes attached to it, on its own target, checked by serial;
//    another host's initiator is refused at login and does not see the target in discovery;
//  - an unmapped LUN is gone for that host while its other LUNs stay, and its number is not handed
//    to another volume (monotonic allocation); the target goes with its last LUN, and comes back
//    with the same IQN, CHAP and the numbering continued;
//  - another attachment from the same host keeps the LUN; force detach without a connector takes
//    the volume out of every host target;
//  - two hosts presenting one initiator name are refused;
//  - a tgtd killed -9 and restarted gets every host target back from the registry with the same
//    LUN numbers (the manager's restore calls ensureExport with the attached connectors).
import { mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DriverVolume } from '../../../drivers/driver.js';
import { TargetExports } from '../../../drivers/exports.js';
import { HostTargetExports, PER_HOST_LOCATION } from '../../../drivers/host-target-exports.js';
import { IscsiHostProtocol } from '../../../drivers/targets/iscsi-host-protocol.js';
import { hostTargetIqn } from '../../../drivers/targets/host-target/host-target-name.js';
import { HostTargetRegistry, requireChap } from '../../../drivers/targets/host-target/host-target-registry.js';
import { TgtHostTarget } from '../../../drivers/targets/tgt/tgt-host-target.js';
import { TgtTarget } from '../../../drivers/targets/tgt/tgt-target.js';
import { iscsiLs, iscsiSerial, libiscsiAvailable, type IscsiLogin } from '../../helpers/libiscsi.js';
import { startTgtd, tgtAvailable, type TgtdHandle } from '../../helpers/tgtd.js';

const haveTgt = await tgtAvailable();
const haveLibiscsi = await libiscsiAvailable();

const HOST_A = { host: 'compute-a', initiator: 'iqn.1994-05.com.redhat:compute-a' };
const HOST_B = { host: 'compute-b', initiator: 'iqn.1994-05.com.redhat:compute-b' };
const PREFIX = 'iqn.2010-10.org.openstack:';

describe.skipIf(!haveTgt || !haveLibiscsi)('per-host targets on a real tgtd', () => {
  let tgtd: TgtdHandle;
  let dir: string;
  let exports: HostTargetExports;
  let registry: HostTargetRegistry;
  const vols: DriverVolume[] = [];

  const iqnOf = (host: string): string => hostTargetIqn(PREFIX, 'lvm', host);
  const chapOf = async (host: string) => requireChap((await registry.read()).targets.find((t) => t.host === host)!);
  const lunOf = async (host: string, v: DriverVolume) => (await registry.read()).targets.find((t) => t.host === host)?.luns.find((m) => m.volumeId === v.id)?.lun;
  const login = async (who: { host: string; initiator: string }, targetHost: string, lun: number): Promise<IscsiLogin> => {
    const chap = await chapOf(targetHost);
    return { portal: tgtd.portal, iqn: iqnOf(targetHost), lun, initiator: who.initiator, user: chap.username, password: chap.password };
  };
  /** What `who` discovers and can read: target -> LUN -> serial, through its own host's CHAP. */
  const view = async (who: { host: string; initiator: string }): Promise<Record<string, Record<number, string | null>>> => {
    const chap = (await registry.read()).targets.find((t) => t.host === who.host)?.chap;
    const ls = await iscsiLs({ portal: tgtd.portal, initiator: who.initiator, ...(chap ? { user: chap.username, password: chap.password } : {}) });
    const out: Record<string, Record<number, string | null>> = {};
    for (const t of ls.targets) {
      out[t.iqn] = {};
      for (const l of t.luns) {
        if (l.lun === 0) continue;
        const s = await iscsiSerial({ portal: tgtd.portal, iqn: t.iqn, lun: l.lun, initiator: who.initiator, ...(chap ? { user: chap.username, password: chap.password } : {}) });
        out[t.iqn]![l.lun] = s.serial;
      }
    }
    return out;
  };
  const serialOf = (v: DriverVolume): string => v.name.replace(/^volume-/, '').replaceAll('-', '');
  const connector = (h: { host: string; initiator: string }) => ({ host: h.host, initiator: h.initiator });

  beforeAll(async () => {
    tgtd = await startTgtd();
    dir = mkdtempSync('/tmp/cb-host-targets-');
    const iscsi = { targetPrefix: PREFIX, targetIpAddress: '127.0.0.1', targetSecondaryIpAddresses: [], targetPort: tgtd.port, targetProtocol: 'iscsi' as const };
    const tgtOpts = { ...iscsi, volumesDir: join(dir, 'volumes'), iscsiWriteCache: 'on' as const, iscsiTargetFlags: '', controlPort: tgtd.controlPort };
    const driver = { exportPath: (v: Pick<DriverVolume, 'name'>) => join(dir, v.name), prepareExport: async () => undefined };
    registry = new HostTargetRegistry({ path: join(dir, 'state', 'host-targets-lvm.json'), backend: 'lvm', lockPath: join(dir, 'locks') });
    exports = new HostTargetExports({
      protocol: new IscsiHostProtocol(iscsi, 'lvm'),
      helper: new TgtHostTarget(tgtOpts),
      registry,
      supervisor: null,
      lockPath: join(dir, 'locks'),
      driver,
      perVolume: new TargetExports({ target: new TgtTarget(tgtOpts), supervisor: null, driver }),
    });
    for (let i = 0; i < 6; i++) {
      const id = `0000000${i}-1111-4222-8333-44444444444${i}`;
      const v: DriverVolume = { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false };
      writeFileSync(join(dir, v.name), '');
      truncateSync(join(dir, v.name), 8 * 1024 * 1024);
      const model = await exports.createExport(v);
      expect(model).toEqual({ provider_location: PER_HOST_LOCATION, provider_auth: null });
      vols.push({ ...v, providerLocation: PER_HOST_LOCATION });
    }
  }, 60_000);

  afterAll(async () => {
    await tgtd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives each host its own target with exactly its volumes, by serial, and nothing of the other host', async () => {
    const [v0, v1, v2, v3] = vols as [DriverVolume, DriverVolume, DriverVolume, DriverVolume];
    const info = await exports.initializeConnection(v0, connector(HOST_A));
    await exports.initializeConnection(v1, connector(HOST_A));
    await exports.initializeConnection(v2, connector(HOST_B));
    // multi-attach: one volume in both host targets
    await exports.initializeConnection({ ...v3, multiattach: true }, connector(HOST_A));
    await exports.initializeConnection({ ...v3, multiattach: true }, connector(HOST_B));

    expect(info.driver_volume_type).toBe('iscsi');
    expect(info.data).toMatchObject({ target_iqn: iqnOf('compute-a'), target_lun: 1, target_portal: tgtd.portal, auth_method: 'CHAP', volume_id: v0.id });
    expect(info.data.auth_username).toBe((await chapOf('compute-a')).username);

    const a = await view(HOST_A);
    const b = await view(HOST_B);
    expect(a).toEqual({ [iqnOf('compute-a')]: { 1: serialOf(v0), 2: serialOf(v1), 3: serialOf(v3) } });
    expect(b).toEqual({ [iqnOf('compute-b')]: { 1: serialOf(v2), 2: serialOf(v3) } });

    // B's initiator, even with A's secret, cannot log in to A's target
    const cross = await iscsiSerial({ ...(await login(HOST_A, 'compute-a', 1)), initiator: HOST_B.initiator });
    expect(cross.outcome).toBe('target-not-found');
    // the right initiator with a wrong secret is refused too
    const wrong = await iscsiSerial({ ...(await login(HOST_A, 'compute-a', 1)), password: 'WrongPassword2345' });
    expect(wrong.outcome).toBe('auth-failure');
    // the registry holds the secrets: 0600
    expect(statSync(registry.path).mode & 0o777).toBe(0o600);
  }, 120_000);

  it('unmaps only the detached LUN, never hands its number to another volume, and keeps a LUN another attachment of the host uses', async () => {
    const [v0, v1, , v3, v4] = vols as [DriverVolume, DriverVolume, DriverVolume, DriverVolume, DriverVolume];
    const oldLun = (await lunOf('compute-a', v0))!;
    await exports.terminateConnection(v0, connector(HOST_A), { remaining: [] });
    expect((await iscsiSerial(await login(HOST_A, 'compute-a', oldLun))).serial).toBeNull();
    const newLun = await (async () => {
      await exports.initializeConnection(v4, connector(HOST_A));
      return (await lunOf('compute-a', v4))!;
    })();
    expect(newLun).toBeGreaterThan(3);
    expect(newLun).not.toBe(oldLun);
    expect((await view(HOST_A))[iqnOf('compute-a')]).toEqual({ 2: serialOf(v1), 3: serialOf(v3), [newLun]: serialOf(v4) });

    // another attachment of v1 from the same host (another instance, or a second connector) keeps it
    await exports.terminateConnection(v1, connector(HOST_A), { remaining: [connector(HOST_A)] });
    expect((await iscsiSerial(await login(HOST_A, 'compute-a', 2))).serial).toBe(serialOf(v1));
  }, 120_000);

  it('keeps a volume exported per volume before the switch on its own target until it is removed, then exports it per host', async () => {
    const id = '0000000f-1111-4222-8333-44444444444f';
    let v: DriverVolume = { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: true };
    writeFileSync(join(dir, v.name), '');
    truncateSync(join(dir, v.name), 8 * 1024 * 1024);
    const perVolume = (exports as unknown as { o: { perVolume: TargetExports } }).o.perVolume;
    // exported under the old layout: its own target, provider_location naming it
    const old = await perVolume.createExport(v);
    v = { ...v, providerLocation: old!.provider_location!, providerAuth: old!.provider_auth! };
    await perVolume.initializeConnection(v, connector(HOST_A));
    // after the switch: a new attachment of it (another host) joins the old target
    const again = await exports.createExport(v);
    v = { ...v, providerLocation: again?.provider_location ?? v.providerLocation, providerAuth: again?.provider_auth ?? v.providerAuth };
    const ciB = await exports.initializeConnection(v, connector(HOST_B));
    expect(ciB.data.target_iqn).toBe(`${PREFIX}${v.name}`);
    // both detach: the old target goes; the next export is per host
    await exports.terminateConnection(v, connector(HOST_A), { remaining: [connector(HOST_B)] });
    await exports.terminateConnection(v, connector(HOST_B), { remaining: [] });
    await exports.removeExport(v);
    const next = await exports.createExport(v);
    expect(next).toEqual({ provider_location: PER_HOST_LOCATION, provider_auth: null });
    v = { ...v, providerLocation: PER_HOST_LOCATION, providerAuth: null };
    const ci = await exports.initializeConnection(v, connector(HOST_A));
    expect(ci.data.target_iqn).toBe(iqnOf('compute-a'));
    await exports.terminateConnection(v, connector(HOST_A), { remaining: [] });
    await exports.removeExport(v);
    expect((await tgtd.tgtadm('--lld', 'iscsi', '--op', 'show', '--mode', 'target')).stdout).not.toContain(v.name);
  }, 120_000);

  it('refuses a second host presenting an initiator another host uses', async () => {
    const v5 = vols[5]!;
    await expect(exports.initializeConnection(v5, { host: 'compute-c', initiator: HOST_A.initiator })).rejects.toThrow(/already attached through host compute-a.*must not share/);
    expect((await registry.read()).targets.find((t) => t.host === 'compute-c')?.luns ?? []).toEqual([]);
  }, 60_000);

  it('restores every host target after tgtd is killed, with the same LUN numbers and CHAP', async () => {
    const before = await registry.read();
    await tgtd.kill();
    await tgtd.start();
    expect(await view(HOST_A)).toEqual({});
    const attached = new Map<string, Array<{ host: string; initiator: string }>>();
    for (const t of before.targets) for (const m of t.luns) attached.set(m.volumeId, [...(attached.get(m.volumeId) ?? []), t.host === 'compute-a' ? HOST_A : HOST_B]);
    for (const v of vols) {
      const conns = (attached.get(v.id) ?? []).map(connector);
      if (conns.length > 0) await exports.ensureExport(v, conns.map((c) => c.initiator), conns);
    }
    const after = await registry.read();
    expect(after.targets.map((t) => [t.host, t.chap, t.luns.map((m) => [m.lun, m.volumeId])])).toEqual(before.targets.map((t) => [t.host, t.chap, t.luns.map((m) => [m.lun, m.volumeId])]));
    const a = await view(HOST_A);
    expect(Object.keys(a[iqnOf('compute-a')]!).map(Number).sort((x, y) => x - y)).toEqual(before.targets.find((t) => t.host === 'compute-a')!.luns.map((m) => m.lun).sort((x, y) => x - y));
  }, 120_000);

  it('a lost registry is rebuilt from what the attachments told their hosts: same LUN numbers and CHAP', async () => {
    const before = await registry.read();
    // what cinder-api stored per attachment: the flat connection_info attachment_update returned
    const rows = before.targets.flatMap((t) =>
      t.luns.map((m) => ({ volumeId: m.volumeId, connector: connector(t.host === 'compute-a' ? HOST_A : HOST_B), given: { driver_volume_type: 'iscsi', target_iqn: t.iqn, target_lun: m.lun, auth_method: 'CHAP', auth_username: requireChap(t).username, auth_password: requireChap(t).password } })),
    );
    rmSync(registry.path);
    await tgtd.kill();
    await tgtd.start();
    for (const v of vols) {
      const mine = rows.filter((r) => r.volumeId === v.id);
      if (mine.length > 0) await exports.ensureExport(v, mine.map((r) => r.connector.initiator), mine.map((r) => r.connector), mine.map((r) => r.given));
    }
    const after = await registry.read();
    const shape = (st: typeof before) => st.targets.map((t) => [t.host, t.chap, t.luns.map((m) => [m.lun, m.volumeId]).sort()]).sort();
    expect(shape(after)).toEqual(shape(before));
    // and the host logs in with the credentials it already had and reads its volumes at their old numbers
    for (const m of before.targets.find((t) => t.host === 'compute-a')!.luns) {
      expect((await iscsiSerial(await login(HOST_A, 'compute-a', m.lun))).serial).toBe(m.serial.replaceAll('-', ''));
    }
  }, 120_000);

  it('force detach without a connector takes the volume out of every host target; the last LUN takes the target with it', async () => {
    const v3 = vols[3]!;
    await exports.terminateConnection(v3, null, { force: true });
    expect(Object.values(await view(HOST_B))[0] ?? {}).toEqual({ 1: serialOf(vols[2]!) });
    // B's last volume: its target goes, and B can no longer log in
    const chapB = await chapOf('compute-b');
    await exports.terminateConnection(vols[2]!, connector(HOST_B), { remaining: [] });
    await exports.removeExport(vols[2]!);
    expect(await view(HOST_B)).toEqual({});
    const show = await tgtd.tgtadm('--lld', 'iscsi', '--op', 'show', '--mode', 'target');
    expect(show.stdout).not.toContain(iqnOf('compute-b'));
    expect(show.stdout).not.toContain(chapB.username);
    // back: same IQN and CHAP, numbering continued past every number B had used
    await exports.initializeConnection(vols[5]!, connector(HOST_B));
    expect((await chapOf('compute-b'))).toEqual(chapB);
    expect(await lunOf('compute-b', vols[5]!)).toBe(3);
  }, 120_000);
});
