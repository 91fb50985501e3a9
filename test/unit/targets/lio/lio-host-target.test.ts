// LioHostTarget (target_layout = per-host on LIO) against the configfs STAND-IN (configfs-standin.ts:
// no kernel validation, no sessions). What is checked here is the shape it writes and that it edits
// minimally; the real kernel and initiators are in test/lab/host-target-lio.lab.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostTargetIqn } from '../../../../drivers/targets/host-target/host-target-name.js';
import { emptyHostTarget, type HostTargetRecord } from '../../../../drivers/targets/host-target/host-target-registry.js';
import { parseAclSession, parseUnitSerial } from '../../../../drivers/targets/lio/configfs.js';
import { hostBackstoreName, LioHostTarget, wantedAcls } from '../../../../drivers/targets/lio/lio-host-target.js';
import { LioTarget } from '../../../../drivers/targets/lio/lio-target.js';
import { LioWatch } from '../../../../drivers/targets/lio/lio-watch.js';
import { HostTargetExports, PER_HOST_LOCATION } from '../../../../drivers/host-target-exports.js';
import { IscsiHostProtocol } from '../../../../drivers/targets/iscsi-host-protocol.js';
import { HostTargetRegistry } from '../../../../drivers/targets/host-target/host-target-registry.js';
import { TargetExports } from '../../../../drivers/exports.js';
import type { DriverVolume } from '../../../../drivers/driver.js';
import { TargetSupervisor } from '../../../../drivers/targets/target-supervisor.js';
import type { Logger } from '../../../../src/log.js';
import { makeStandIn } from './configfs-standin.js';

const base = mkdtempSync('/tmp/cinderblock-lio-host-unit-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const PREFIX = 'iqn.2010-10.org.openstack:';
const A1 = 'iqn.1994-05.com.redhat:compute-a';
const A2 = 'iqn.1994-05.com.redhat:compute-a-2';
const B = 'iqn.1994-05.com.redhat:compute-b';
const CHAP = { username: 'userAAAAAAAAAAAAAAAA', password: 'passAAAAAAAAAAAAAAAA' };
const ids = ['11111111-0000-4000-8000-000000000001', '22222222-0000-4000-8000-000000000002', '33333333-0000-4000-8000-000000000003'];

const silent = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

let n = 0;
async function setup() {
  const dir = join(base, `t${++n}`);
  const root = join(dir, 'configfs');
  const si = await makeStandIn(root);
  const iscsi = { targetPrefix: PREFIX, targetIpAddress: '10.0.0.5', targetSecondaryIpAddresses: ['10.0.1.5'], targetPort: 3260, targetProtocol: 'iscsi' as const };
  const helper = new LioHostTarget({ ...iscsi, configfsRoot: root, io: si.io, isBlockDevice: async () => true });
  return { si, helper, fs: helper.fs, root, dir, iscsi };
}

/** HostTargetExports over `helper`, watched as the agent wires it: LioWatch with the host targets, a supervisor. */
function supervisedExports(helper: LioHostTarget, { root, si, dir, iscsi }: Pick<Awaited<ReturnType<typeof setup>>, 'root' | 'si' | 'dir' | 'iscsi'>) {
  const driver = { exportPath: (v: Pick<DriverVolume, 'name'>) => `/dev/vg/${v.name}`, prepareExport: async () => undefined };
  const lio = new LioTarget({ ...iscsi, volumesDir: join(dir, 'volumes'), configfsRoot: root, io: si.io, backend: 'configfs' });
  const watch = new LioWatch(lio);
  const supervisor = new TargetSupervisor(watch, { logger: silent, intervalMs: 0 });
  const exports = new HostTargetExports({
    protocol: new IscsiHostProtocol(iscsi, 'lvm'),
    helper,
    registry: new HostTargetRegistry({ path: join(dir, 'state', 'host-targets-lvm.json'), backend: 'lvm', lockPath: null }),
    supervisor,
    lockPath: null,
    driver,
    perVolume: new TargetExports({ target: lio, supervisor, driver }),
  });
  watch.watchHostTargets(() => exports.missingHostTargets());
  return { watch, supervisor, exports };
}

function mapping(i: number, lun: number, initiators: string[]) {
  const id = ids[i]!;
  return { lun, volumeId: id, volumeName: `volume-${id}`, backingPath: `/dev/vg/volume-${id}`, serial: id, initiators };
}

function record(host: string, luns: HostTargetRecord['luns']): HostTargetRecord {
  return { ...emptyHostTarget(host, hostTargetIqn(PREFIX, 'lvm', host), CHAP), luns };
}

describe('LioHostTarget on the configfs stand-in', () => {
  it('builds one target per host: LUNs with the volumes\' serials, an ACL per initiator mapping only its LUNs, CHAP in the ACL', async () => {
    const { helper, fs } = await setup();
    const t = record('compute-a', [mapping(0, 0, [A1]), mapping(1, 1, [A1, A2])]);
    await helper.apply(t);
    const live = (await fs.readHostTarget(t.iqn))!;
    expect(live.enabled).toBe(true);
    expect(live.attribs).toEqual({ authentication: '1', generate_node_acls: '0', demo_mode_write_protect: '0' });
    expect(live.portals.sort()).toEqual(['10.0.0.5:3260', '10.0.1.5:3260']);
    expect(live.luns.map((l) => [l.lun, l.udevPath, l.serial])).toEqual([
      [0, `/dev/vg/volume-${ids[0]}`, ids[0]],
      [1, `/dev/vg/volume-${ids[1]}`, ids[1]],
    ]);
    expect(live.acls.map((a) => [a.initiator, a.userid, a.password, a.mapped]).sort()).toEqual([
      [A1, CHAP.username, CHAP.password, { 0: 0, 1: 1 }],
      [A2, CHAP.username, CHAP.password, { 1: 1 }],
    ]);
    expect((await fs.findBackstore(hostBackstoreName(`volume-${ids[0]}`)))!.udevPath).toBe(`/dev/vg/volume-${ids[0]}`);
    const listed = await helper.list();
    expect(listed).toEqual([
      {
        iqn: t.iqn,
        luns: [
          { lun: 0, backingPath: `/dev/vg/volume-${ids[0]}`, serial: ids[0] },
          { lun: 1, backingPath: `/dev/vg/volume-${ids[1]}`, serial: ids[1] },
        ],
        initiators: expect.arrayContaining([A1, A2]),
        mappedLuns: { [A1]: [0, 1], [A2]: [1] },
        sessions: [],
        chapUsers: [CHAP.username],
      },
    ]);
  });

  it('is idempotent and edits minimally: an unmap touches that LUN\'s mappings, the LUN and its backstore only', async () => {
    const { helper, fs, si } = await setup();
    const t = record('compute-a', [mapping(0, 0, [A1]), mapping(1, 1, [A1, A2])]);
    await helper.apply(t);
    si.log.length = 0;
    await helper.apply(t);
    expect(si.log).toEqual([]);
    await helper.apply({ ...t, luns: [mapping(0, 0, [A1])] });
    const bs = hostBackstoreName(`volume-${ids[1]}`);
    // mapped LUNs first, then A2's ACL (it has nothing left), then the LUN, then the storage object
    expect(si.log.map((l) => l.replace(/\/[0-9a-f]{10}$/, '/<link>').replace(t.iqn, 'T'))).toEqual([
      'unlink iscsi/T/tpgt_1/acls/' + A1 + '/lun_1/<link>',
      'rmdir iscsi/T/tpgt_1/acls/' + A1 + '/lun_1',
      'unlink iscsi/T/tpgt_1/acls/' + A2 + '/lun_1/<link>',
      'rmdir iscsi/T/tpgt_1/acls/' + A2 + '/lun_1',
      'rmdir iscsi/T/tpgt_1/acls/' + A2,
      'unlink iscsi/T/tpgt_1/lun/lun_1/<link>',
      'rmdir iscsi/T/tpgt_1/lun/lun_1',
      `rmdir core/iblock_1/${bs}`,
    ]);
    const live = (await fs.readHostTarget(t.iqn))!;
    expect(live.acls.map((a) => [a.initiator, a.mapped])).toEqual([[A1, { 0: 0 }]]);
  });

  it('multi-attach: one storage object per volume, shared by both hosts\' targets and removed with its last LUN', async () => {
    const { helper, fs } = await setup();
    const a = record('compute-a', [mapping(0, 0, [A1]), mapping(2, 1, [A1])]);
    const b = record('compute-b', [mapping(2, 0, [B])]);
    await Promise.all([helper.apply(a), helper.apply(b)]);
    const name = hostBackstoreName(`volume-${ids[2]}`);
    const backstores = (await fs.listBackstores()).filter((x) => x.name === name);
    expect(backstores).toHaveLength(1);
    const la = (await fs.readHostTarget(a.iqn))!.luns.find((l) => l.lun === 1)!;
    const lb = (await fs.readHostTarget(b.iqn))!.luns.find((l) => l.lun === 0)!;
    expect(la.backstore).toBe(backstores[0]!.path);
    expect(lb.backstore).toBe(backstores[0]!.path);
    // A lets it go: B still uses it
    await helper.apply({ ...a, luns: [mapping(0, 0, [A1])] });
    expect(await fs.findBackstore(name)).not.toBeNull();
    // B's last LUN: target and object go
    await helper.apply({ ...b, luns: [] });
    expect(await fs.readHostTarget(b.iqn)).toBeNull();
    expect(await fs.findBackstore(name)).toBeNull();
    expect(await fs.findBackstore(hostBackstoreName(`volume-${ids[0]}`))).not.toBeNull();
  });

  it('mends a drift: a wrong mapping, a stranger\'s ACL and a changed CHAP are put back as recorded', async () => {
    const { helper, fs } = await setup();
    const t = record('compute-a', [mapping(0, 0, [A1]), mapping(1, 1, [A1])]);
    await helper.apply(t);
    await fs.ensureAcl(t.iqn, B, 'x', 'y');
    await fs.mapLun(t.iqn, B, 1, 1);
    await fs.unmapLun(t.iqn, A1, 0);
    await helper.apply({ ...t, chap: { username: 'userBBBBBBBBBBBBBBBB', password: 'passBBBBBBBBBBBBBBBB' } });
    const live = (await fs.readHostTarget(t.iqn))!;
    expect(live.acls.map((a) => [a.initiator, a.userid, a.mapped])).toEqual([[A1, 'userBBBBBBBBBBBBBBBB', { 0: 0, 1: 1 }]]);
  });

  it('reads back what a change made: a LUN or a mapping the kernel silently did not take fails the apply', async () => {
    const { si, iscsi, root } = await setup();
    let drop: RegExp | null = null;
    // a configfs whose symlink "succeeds" without linking: what the read-back is there to catch
    const io = { ...si.io, symlink: async (t: string, p: string) => (drop?.test(p) ? undefined : si.io.symlink(t, p)) };
    const helper = new LioHostTarget({ ...iscsi, configfsRoot: root, io, isBlockDevice: async () => true });
    const t = record('compute-a', [mapping(0, 0, [A1])]);
    await helper.apply(t);
    drop = /\/tpgt_1\/lun\/lun_1\//;
    await expect(helper.apply({ ...t, luns: [...t.luns, mapping(1, 1, [A1])] })).rejects.toThrow(/does not match its record after the change: .*LUN 1 not \/dev\/vg\/volume-2/);
    drop = /\/acls\/.*\/lun_2\//;
    await expect(helper.apply({ ...t, luns: [...t.luns, mapping(2, 2, [A1])] })).rejects.toThrow(/does not match its record after the change: ACL .*compute-a's LUN 2 links nothing/);
  });

  it('a failure while building a new target leaves nothing behind', async () => {
    const { helper, fs, si } = await setup();
    si.failOn = (op, rel) => (op === 'symlink' && rel.includes('/acls/') ? 'EIO' : null);
    const t = record('compute-a', [mapping(0, 0, [A1])]);
    await expect(helper.apply(t)).rejects.toThrow(/EIO/);
    expect(await fs.readHostTarget(t.iqn)).toBeNull();
    expect(await fs.listBackstores()).toEqual([]);
  });

  it('refuses a backing path that is not a block device, and remove() only takes host targets', async () => {
    const { si, root, iscsi } = await setup();
    const helper = new LioHostTarget({ ...iscsi, configfsRoot: root, io: si.io, isBlockDevice: async () => false });
    await expect(helper.apply(record('compute-a', [mapping(0, 0, [A1])]))).rejects.toThrow(/not a block device/);
    await expect(helper.remove(`${PREFIX}volume-${ids[0]}`)).rejects.toThrow(/not a host target/);
  });

  it('the per-volume LioTarget neither lists nor sweeps host targets', async () => {
    const { helper, root, si, dir, iscsi } = await setup();
    await helper.apply(record('compute-a', [mapping(0, 0, [A1])]));
    const lio = new LioTarget({ ...iscsi, volumesDir: join(dir, 'volumes'), configfsRoot: root, io: si.io, backend: 'configfs' });
    expect(await lio.listExports()).toEqual([]);
    expect(await lio.findExports()).toEqual([]);
    expect(await lio.missingExports()).toEqual([]);
  });
});

describe('a lost host target is noticed', () => {
  it('missingHostTargets and LioWatch report a host target gone from configfs, and nothing once ensureExport rebuilt it', async () => {
    const { helper, fs, root, si, dir, iscsi } = await setup();
    // the supervisor's first ready() runs inside the first map, which holds the host target's lock:
    // the probe must not wait for that lock
    const { watch, supervisor, exports } = supervisedExports(helper, { root, si, dir, iscsi });
    const v: DriverVolume = { id: ids[0]!, name: `volume-${ids[0]}`, size: 1, providerLocation: PER_HOST_LOCATION, providerAuth: null, multiattach: false };
    const info = await exports.initializeConnection(v, { host: 'compute-a', initiator: A1 });
    expect(supervisor.status()).toMatchObject({ armed: true, up: true });
    const iqn = info.data.target_iqn as string;
    await watch.settle();
    expect(await watch.probe()).toEqual({ state: 'up' });
    await fs.removeTarget(iqn);
    expect(await exports.missingHostTargets()).toEqual([iqn]);
    expect((await watch.probe()).state).toBe('lost');
    // the restore the supervisor has the manager run
    await exports.ensureExport(v, [A1], [{ host: 'compute-a', initiator: A1 }]);
    expect(await exports.missingHostTargets()).toEqual([]);
    expect(await watch.probe()).toEqual({ state: 'up' });
    // a host whose last LUN went has no target to miss
    await exports.terminateConnection(v, { host: 'compute-a', initiator: A1 }, { remaining: [] });
    expect(await exports.missingHostTargets()).toEqual([]);
  });
  it('configfs cleared in the middle of an unmap: the detach succeeds on the rebuilt target, the other LUN keeps its number', async () => {
    const { fs, root, si, dir, iscsi } = await setup();
    let clearing = false;
    let cleared = false;
    // the loss lands as the unmap drops the leaving volume's storage object
    const io = {
      ...si.io,
      async rmdir(p: string) {
        await si.io.rmdir(p);
        if (clearing && p.includes('/core/') && p.includes(ids[0]!)) {
          clearing = false;
          cleared = true;
          for (const t of await fs.listTargets()) await fs.removeTarget(t);
          for (const id of ids) {
            const bs = await fs.findBackstore(hostBackstoreName(`volume-${id}`));
            if (bs) await fs.removeBackstore(bs);
          }
        }
      },
    };
    const helper = new LioHostTarget({ ...iscsi, configfsRoot: root, io, isBlockDevice: async () => true });
    const { watch, supervisor, exports } = supervisedExports(helper, { root, si, dir, iscsi });
    const vol = (i: number): DriverVolume => ({ id: ids[i]!, name: `volume-${ids[i]}`, size: 1, providerLocation: PER_HOST_LOCATION, providerAuth: null, multiattach: false });
    const connector = { host: 'compute-a', initiator: A1 };
    // the restore the supervisor has the manager run: what the database still has attached
    supervisor.setRestore(async () => {
      await exports.ensureExport(vol(1), [A1], [connector]);
      return { volumes: 2, restored: 1, failed: 0 };
    });
    const info = await exports.initializeConnection(vol(0), connector);
    expect((await exports.initializeConnection(vol(1), connector)).data.target_lun).toBe(1);
    await watch.settle();
    clearing = true;
    await exports.terminateConnection(vol(0), connector, { remaining: [] });
    expect(cleared).toBe(true);
    await supervisor.idle();
    const live = (await fs.readHostTarget(info.data.target_iqn as string))!;
    expect(live.luns.map((l) => [l.lun, l.serial])).toEqual([[1, ids[1]]]);
    expect(live.acls.map((a) => [a.initiator, a.mapped])).toEqual([[A1, { 1: 1 }]]);
    // the apply reconciles the whole record, so it rebuilt what the loss took; the watch had
    // nothing to restore (a loss between the edits and the read-back is the ENOENT the watch
    // turns into a probe: lio-watch.test.ts)
    expect(supervisor.status()).toMatchObject({ up: true, losses: 0 });
  });
});

describe('pure parts', () => {
  it('wantedAcls: each initiator maps exactly the LUNs it attached', () => {
    expect(wantedAcls({ luns: [mapping(0, 3, [A1]), mapping(1, 1, [A2, A1.toUpperCase()])] })).toEqual([
      { initiator: A1, luns: [1, 3] },
      { initiator: A2, luns: [1] },
    ]);
  });

  it('parses the kernel\'s unit serial and ACL session info', () => {
    expect(parseUnitSerial('T10 VPD Unit Serial Number: 11111111-0000-4000-8000-000000000001\n')).toBe('11111111-0000-4000-8000-000000000001');
    expect(parseUnitSerial('abc')).toBe('abc');
    expect(parseAclSession('No active iSCSI Session for Initiator Endpoint: iqn.x:y')).toBeNull();
    const text = [
      'InitiatorName: iqn.x:y',
      'LIO Session ID: 3   ISID: 0x00023d000001  TSIH: 3  SessionType: Normal',
      'Session State: TARG_SESS_STATE_LOGGED_IN',
      '---------------------[iSCSI Connections]-------------------------',
      'CID: 0  Connection State: TARG_CONN_STATE_LOGGED_IN',
      '   Address 127.0.0.1 TCP  StatSN: 0x5a1ac6c2',
    ].join('\n');
    expect(parseAclSession(text)).toEqual({ state: 'TARG_SESS_STATE_LOGGED_IN', address: '127.0.0.1' });
  });
});
