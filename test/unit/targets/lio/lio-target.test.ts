// LioTarget and its configfs layer against a temp directory that STANDS IN for configfs
// (configfs-standin.ts says what it models and what it does not: no kernel validation of links
// or values, no sessions). Real LIO behaviour is checked by test/lab/lio-iscsi.lab.test.ts in the qemu lab.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { targetcliArgv } from '../../../../drivers/targets/lio/backend.js';
import { redactArgv as redactTargetcliArgv } from '../../../../src/exec/redact-argv.js';
import { Configfs, portalName } from '../../../../drivers/targets/lio/configfs.js';
import { LioTarget, type LioTargetOptions } from '../../../../drivers/targets/lio/lio-target.js';
import type { ExportedVolume } from '../../../../drivers/targets/target.js';
import type { CommandRunner } from '../../../../src/exec/run-command.js';
import { makeStandIn, type ConfigfsStandIn } from './configfs-standin.js';

const base = mkdtempSync('/tmp/cinderblock-lio-unit-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const A = 'iqn.1994-05.com.redhat:compute-a';
const B = 'iqn.1994-05.com.redhat:compute-b';
const ID = '9531a336-8b9f-4724-9d8d-d83f99b240e6';
const IQN = `iqn.2010-10.org.openstack:volume-${ID}`;
const AUTH = 'CHAP 2rX53svf7cbhNF4R2J3E MaftGu8RAUnJ27XQ';
const DEV = `/dev/cinder-volumes/volume-${ID}`;

let n = 0;
async function setup(over: Partial<LioTargetOptions> = {}) {
  const dir = join(base, `t${++n}`);
  const root = join(dir, 'configfs');
  const si = await makeStandIn(root);
  const opts: LioTargetOptions = {
    targetPrefix: 'iqn.2010-10.org.openstack:',
    targetIpAddress: '10.0.0.5',
    targetSecondaryIpAddresses: ['10.0.1.5'],
    targetPort: 3260,
    targetProtocol: 'iscsi',
    volumesDir: join(dir, 'volumes'),
    configfsRoot: root,
    io: si.io,
    backend: 'configfs',
    ...over,
  };
  const helper = new LioTarget(opts);
  const fs = new Configfs(root, si.io);
  const vol: ExportedVolume = { id: ID, name: `volume-${ID}`, providerLocation: null, providerAuth: null, backingPath: DEV, multiattach: false };
  const state = async () => JSON.parse(await readFile(helper.statePath(), 'utf8')) as { exports: Record<string, { initiators: string[]; chap: { username: string } }> };
  return { si, helper, fs, vol, root, state, opts };
}

async function exported(s: Awaited<ReturnType<typeof setup>>) {
  const r = await s.helper.createExport({ ...s.vol, providerAuth: AUTH });
  const v = { ...s.vol, providerAuth: r.provider_auth, providerLocation: r.provider_location };
  return { r, v };
}

describe('configfs layer', () => {
  it('names portals as configfs does, IPv6 bracketed', () => {
    expect(portalName('10.0.0.5', 3260)).toBe('10.0.0.5:3260');
    expect(portalName('::1', 3260)).toBe('[::1]:3260');
    expect(portalName('[fd00::5]', 3261)).toBe('[fd00::5]:3261');
  });
});

describe('LioTarget createExport', () => {
  it('builds backstore, target, TPG attribs, LUN 0, portals and enables the TPG last', async () => {
    const s = await setup();
    const r = await s.helper.createExport(s.vol);
    expect(r.provider_location).toBe(`10.0.0.5:3260;10.0.1.5:3260,${IQN} ${IQN} 0`);
    expect(r.provider_auth).toMatch(/^CHAP [A-Za-z0-9]{20} [A-Za-z0-9]{16}$/);
    const bs = await s.fs.findBackstore(IQN);
    expect(bs).toMatchObject({ hba: 'iblock_0', udevPath: DEV, enabled: true });
    // the volume's own serial, not a random one: multipath and os-brick compare it
    expect(await s.fs.readUnitSerial(bs!.path)).toBe(ID);
    const t = await s.fs.readTarget(IQN);
    expect(t).toMatchObject({
      enabled: true,
      attribs: { authentication: '1', generate_node_acls: '0', demo_mode_write_protect: '0' },
      lun0Backstore: bs!.path,
      acls: [],
    });
    expect(t!.portals.sort()).toEqual(['10.0.0.5:3260', '10.0.1.5:3260']);
    const writes = s.si.log.filter((l) => l.startsWith('writeFile') && l.includes('tpgt_1/'));
    expect(writes.at(-1)).toBe(`writeFile iscsi/${IQN}/tpgt_1/enable`);
    const authAt = s.si.log.indexOf(`writeFile iscsi/${IQN}/tpgt_1/attrib/authentication`);
    const lunAt = s.si.log.findIndex((l) => l.startsWith(`symlink iscsi/${IQN}/tpgt_1/lun/lun_0/`));
    expect(authAt).toBeGreaterThan(-1);
    expect(authAt).toBeLessThan(lunAt);
    const st = await s.state();
    expect(st.exports[IQN]).toMatchObject({ initiators: [], chap: { username: r.provider_auth.split(' ')[1] } });
    expect(statSync(s.helper.statePath()).mode & 0o777).toBe(0o600);
  });

  it('is idempotent: a second call changes nothing and returns the same', async () => {
    const s = await setup();
    const { r } = await exported(s);
    const before = await s.si.snapshot();
    const logLen = s.si.log.length;
    const again = await s.helper.createExport({ ...s.vol, providerAuth: AUTH });
    expect(again).toEqual(r);
    expect(await s.si.snapshot()).toEqual(before);
    // only the TPG attributes are re-asserted (and mkdir of existing directories, EEXIST, ignored)
    expect(s.si.log.slice(logLen).filter((l) => !(l.startsWith('writeFile') && l.includes('/attrib/')) && !l.startsWith('mkdir '))).toEqual([]);
  });

  it('reuses the recorded CHAP when provider_auth is empty', async () => {
    const s = await setup();
    const { r } = await exported(s);
    const again = await s.helper.createExport({ ...s.vol, providerAuth: null });
    expect(again.provider_auth).toBe(r.provider_auth);
  });

  it('rolls back target and backstore when a step fails midway (portal)', async () => {
    const s = await setup();
    const snap0 = await s.si.snapshot();
    s.si.failOn = (op, rel) => (op === 'mkdir' && rel.includes('/np/10.0.1.5') ? 'EADDRINUSE' : null);
    await expect(s.helper.createExport(s.vol)).rejects.toMatchObject({ className: 'ISCSITargetCreateFailed' });
    s.si.failOn = null;
    expect(await s.fs.readTarget(IQN)).toBeNull();
    expect(await s.fs.findBackstore(IQN)).toBeNull();
    // only the empty iblock_0 HBA is left (rtslib leaves HBAs too)
    expect((await s.si.snapshot()).filter((x) => !snap0.includes(x) && !x.startsWith('core/iblock_0/hba') && x !== 'core/iblock_0/' && !x.startsWith('iscsi/'))).toEqual([]);
    expect(await s.fs.listTargets()).toEqual([]);
    await expect(readFile(s.helper.statePath(), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    // and it works afterwards
    await s.helper.createExport(s.vol);
    expect((await s.fs.readTarget(IQN))?.enabled).toBe(true);
  });

  it('refuses a backstore of the same name on another device', async () => {
    const s = await setup();
    await exported(s);
    await expect(s.helper.createExport({ ...s.vol, providerAuth: AUTH, backingPath: '/dev/other/lv' })).rejects.toMatchObject({ className: 'ISCSITargetCreateFailed' });
    expect((await s.fs.findBackstore(IQN))?.udevPath).toBe(DEV);
  });
});

describe('LioTarget connections', () => {
  it('initializeConnection adds an ACL with the CHAP of the volume and mapped LUN 0', async () => {
    const s = await setup();
    const { v } = await exported(s);
    const info = await s.helper.initializeConnection(v, { initiator: A });
    expect(info).toEqual({
      driver_volume_type: 'iscsi',
      data: {
        target_discovered: false,
        target_portals: ['10.0.0.5:3260', '10.0.1.5:3260'],
        target_iqns: [IQN, IQN],
        target_luns: [0, 0],
        target_portal: '10.0.0.5:3260',
        target_iqn: IQN,
        target_lun: 0,
        volume_id: ID,
        auth_method: 'CHAP',
        auth_username: '2rX53svf7cbhNF4R2J3E',
        auth_password: 'MaftGu8RAUnJ27XQ',
      },
    });
    const t = await s.fs.readTarget(IQN);
    expect(t!.acls).toEqual([{ initiator: A, userid: '2rX53svf7cbhNF4R2J3E', password: 'MaftGu8RAUnJ27XQ', mappedLun0: true }]);
    const link = (await s.si.snapshot(`iscsi/${IQN}/tpgt_1/acls/${A}/lun_0`)).find((x) => x.includes(' -> '));
    expect(link).toMatch(new RegExp(`-> iscsi/${IQN.replace(/\./g, '\\.')}/tpgt_1/lun/lun_0$`));
    expect((await s.state()).exports[IQN]!.initiators).toEqual([A]);
    // idempotent, case-insensitive
    const before = await s.si.snapshot();
    await s.helper.initializeConnection(v, { initiator: A.toUpperCase().replace('IQN', 'iqn') });
    expect(await s.si.snapshot()).toEqual(before);
    expect((await s.state()).exports[IQN]!.initiators).toEqual([A]);
  });

  it('undoes the ACL when mapping the LUN fails', async () => {
    const s = await setup();
    const { v } = await exported(s);
    s.si.failOn = (op, rel) => (op === 'symlink' && rel.includes('/acls/') ? 'EIO' : null);
    await expect(s.helper.initializeConnection(v, { initiator: A })).rejects.toMatchObject({ className: 'ISCSITargetAttachFailed' });
    s.si.failOn = null;
    expect((await s.fs.readTarget(IQN))!.acls).toEqual([]);
    expect((await s.state()).exports[IQN]!.initiators).toEqual([]);
  });

  it('refuses a volume without an export, and a connector without initiator', async () => {
    const s = await setup();
    await expect(s.helper.initializeConnection(s.vol, { initiator: A })).rejects.toMatchObject({ className: 'InvalidVolume' });
    await expect(s.helper.initializeConnection(s.vol, {})).rejects.toMatchObject({ className: 'InvalidConnectorException' });
  });

  it('terminateConnection removes the mapped LUN then the ACL; keepAcl keeps it; force removes all', async () => {
    const s = await setup();
    const { v } = await exported(s);
    await s.helper.initializeConnection(v, { initiator: A });
    await s.helper.initializeConnection(v, { initiator: B });
    await s.helper.terminateConnection(v, { initiator: A }, { keepAcl: true });
    expect((await s.fs.readTarget(IQN))!.acls.map((a) => a.initiator).sort()).toEqual([A, B]);
    const mark = s.si.log.length;
    await s.helper.terminateConnection(v, { initiator: A }, {});
    const ops = s.si.log.slice(mark).filter((l) => !l.startsWith('writeFile'));
    expect(ops[0]).toMatch(new RegExp(`^unlink iscsi/.*/acls/${A.replace(/\./g, '\\.')}/lun_0/`));
    expect(ops.slice(1)).toEqual([`rmdir iscsi/${IQN}/tpgt_1/acls/${A}/lun_0`, `rmdir iscsi/${IQN}/tpgt_1/acls/${A}`]);
    expect((await s.fs.readTarget(IQN))!.acls.map((a) => a.initiator)).toEqual([B]);
    expect((await s.state()).exports[IQN]!.initiators).toEqual([B]);
    // missing ACL is fine
    await s.helper.terminateConnection(v, { initiator: A }, {});
    await s.helper.terminateConnection(v, null, { force: true });
    expect((await s.fs.readTarget(IQN))!.acls).toEqual([]);
    expect((await s.state()).exports[IQN]!.initiators).toEqual([]);
  });
});

describe('LioTarget removeExport / ensureExport / reconcile', () => {
  it('removes in order: mapped LUNs, ACLs, LUNs, portals, TPG, target, backstore; idempotent', async () => {
    const s = await setup();
    const { v } = await exported(s);
    await s.helper.initializeConnection(v, { initiator: A });
    const mark = s.si.log.length;
    await s.helper.removeExport(v);
    const ops = s.si.log.slice(mark).filter((l) => !l.startsWith('writeFile')).map((l) => l.replace(/lun_0\/[^/]+$/, 'lun_0/<link>'));
    const T = `iscsi/${IQN}/tpgt_1`;
    expect(ops).toEqual([
      `unlink ${T}/acls/${A}/lun_0/<link>`,
      `rmdir ${T}/acls/${A}/lun_0`,
      `rmdir ${T}/acls/${A}`,
      `unlink ${T}/lun/lun_0/<link>`,
      `rmdir ${T}/lun/lun_0`,
      expect.stringMatching(new RegExp(`^rmdir ${T.replace(/\./g, '\\.')}/np/10\\.0\\.[01]\\.5:3260$`)),
      expect.stringMatching(new RegExp(`^rmdir ${T.replace(/\./g, '\\.')}/np/10\\.0\\.[01]\\.5:3260$`)),
      `rmdir ${T}`,
      `rmdir iscsi/${IQN}`,
      `rmdir core/iblock_0/${IQN}`,
    ]);
    expect(s.si.log.slice(mark).find((l) => l.startsWith('writeFile'))).toBe(`writeFile ${T}/enable`);
    expect(await s.fs.readTarget(IQN)).toBeNull();
    expect(await s.fs.findBackstore(IQN)).toBeNull();
    expect((await s.state()).exports).toEqual({});
    await s.helper.removeExport(v);
  });

  it('ensureExport rebuilds from the volume row and the DB initiators', async () => {
    const s = await setup();
    const { v } = await exported(s);
    await s.helper.initializeConnection(v, { initiator: A });
    await s.fs.removeTarget(IQN);
    await s.helper.ensureExport(v, { initiators: [B] });
    const t = await s.fs.readTarget(IQN);
    expect(t!.enabled).toBe(true);
    expect(t!.acls.map((a) => a.initiator)).toEqual([B]);
    expect((await s.state()).exports[IQN]!.initiators).toEqual([B]);
  });

  it('reconcile mends a missing ACL and a lost configuration, and leaves a foreign target alone', async () => {
    const s = await setup();
    const { v } = await exported(s);
    await s.helper.initializeConnection(v, { initiator: A });
    // a target somebody else made (targetcli by hand), with an ACL not in our record
    const FOREIGN = 'iqn.2003-01.org.linux-iscsi.lab:other';
    await s.fs.createTarget(FOREIGN);
    await s.fs.addPortal(FOREIGN, '10.9.9.9', 3260, false);
    await s.fs.addAcl(FOREIGN, B, 'u', 'p');
    const foreign = await s.si.snapshot(`iscsi/${FOREIGN}`);
    // nothing to do when all is in place
    expect(await s.helper.reconcile()).toEqual({ mended: [], failed: [] });
    // someone removed our ACL
    await s.fs.removeAcl(IQN, A);
    expect(await s.helper.reconcile()).toEqual({ mended: [IQN], failed: [] });
    expect((await s.fs.readTarget(IQN))!.acls.map((a) => a.initiator)).toEqual([A]);
    // a reboot: everything of ours gone from configfs
    await s.fs.removeTarget(IQN);
    const bs = await s.fs.findBackstore(IQN);
    await s.fs.removeBackstore(bs!);
    const fresh = new LioTarget(s.opts);
    expect(await fresh.reconcile()).toEqual({ mended: [IQN], failed: [] });
    const t = await s.fs.readTarget(IQN);
    expect(t).toMatchObject({ enabled: true, acls: [{ initiator: A, userid: '2rX53svf7cbhNF4R2J3E', mappedLun0: true }] });
    expect(await s.si.snapshot(`iscsi/${FOREIGN}`)).toEqual(foreign);
    expect(await fresh.listExports()).toEqual([IQN]);
  });

  it('extendTarget is a no-op (iblock reads the device size itself)', async () => {
    const s = await setup();
    const { v } = await exported(s);
    const before = await s.si.snapshot();
    await s.helper.extendTarget(v);
    expect(await s.si.snapshot()).toEqual(before);
  });
});

describe('targetcli fallback', () => {
  it('builds argv arrays and masks CHAP in logs', () => {
    expect(targetcliArgv.createBackstore(IQN, DEV, 'abc')).toEqual(['targetcli', '/backstores/block', 'create', `name=${IQN}`, `dev=${DEV}`, 'wwn=abc']);
    expect(targetcliArgv.createTarget(IQN)).toEqual(['targetcli', '/iscsi', 'create', IQN]);
    expect(targetcliArgv.setTpgAttribs(IQN)).toEqual(['targetcli', `/iscsi/${IQN}/tpg1`, 'set', 'attribute', 'authentication=1', 'generate_node_acls=0', 'demo_mode_write_protect=0']);
    expect(targetcliArgv.createLun0(IQN, IQN)).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/luns`, 'create', `/backstores/block/${IQN}`, 'lun=0', 'add_mapped_luns=false']);
    expect(targetcliArgv.createPortal(IQN, '::1', 3260)).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/portals`, 'create', '::1', '3260']);
    expect(targetcliArgv.deletePortal(IQN, '[::1]:3260')).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/portals`, 'delete', '::1', '3260']);
    expect(targetcliArgv.deletePortal(IQN, '0.0.0.0:3260')).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/portals`, 'delete', '0.0.0.0', '3260']);
    expect(targetcliArgv.createAcl(IQN, A)).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/acls`, 'create', A, 'add_mapped_luns=false']);
    const auth = targetcliArgv.setAclAuth(IQN, A, 'user', 'secret');
    expect(auth).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/acls/${A}`, 'set', 'auth', 'userid=user', 'password=secret']);
    expect(redactTargetcliArgv(auth).join(' ')).not.toMatch(/user$|secret/);
    expect(targetcliArgv.createMappedLun0(IQN, A)).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/acls/${A}`, 'create', 'mapped_lun=0', 'tpg_lun_or_backstore=0']);
    expect(targetcliArgv.deleteAcl(IQN, A)).toEqual(['targetcli', `/iscsi/${IQN}/tpg1/acls`, 'delete', A]);
    expect(targetcliArgv.deleteTarget(IQN)).toEqual(['targetcli', '/iscsi', 'delete', IQN]);
    expect(targetcliArgv.deleteBackstore(IQN)).toEqual(['targetcli', '/backstores/block', 'delete', IQN]);
  });

  it('is chosen when the configfs root is absent, and drives a whole lifecycle through targetcli', async () => {
    // a fake targetcli that applies each command to the stand-in, so the helper can read back
    const calls: string[][] = [];
    let fs!: Configfs;
    let si!: ConfigfsStandIn;
    const runner: CommandRunner = async (argv) => {
      calls.push([...argv]);
      const [, path, cmd, ...args] = argv as string[];
      const m = /^\/iscsi\/([^/]+)\/tpg1(?:\/(luns|portals|acls)(?:\/(.+))?)?$/.exec(path!);
      if (path === '/backstores/block' && cmd === 'create') {
        await fs.createIblockBackstore(await fs.freeIblockHba(), args[0]!.slice(5), args[1]!.slice(4), args[2]!.slice(4));
      } else if (path === '/backstores/block' && cmd === 'delete') await fs.removeBackstore((await fs.findBackstore(args[0]!))!);
      else if (path === '/iscsi' && cmd === 'create') {
        await fs.createTarget(args[0]!);
        await fs.addPortal(args[0]!, '0.0.0.0', 3260, false); // auto_add_default_portal
      } else if (path === '/iscsi' && cmd === 'delete') await fs.removeTarget(args[0]!);
      else if (m && !m[2] && cmd === 'set') await fs.setTpgAttribs(m[1]!);
      else if (m && !m[2] && cmd === 'enable') await fs.setTpgEnabled(m[1]!, true);
      else if (m && m[2] === 'luns') await fs.createLun0(m[1]!, (await fs.findBackstore(args[0]!.split('/').pop()!))!.path);
      else if (m && m[2] === 'portals' && cmd === 'create') await fs.addPortal(m[1]!, args[0]!, Number(args[1]), false);
      else if (m && m[2] === 'portals' && cmd === 'delete') await fs.removePortal(m[1]!, portalName(args[0]!, Number(args[1])));
      else if (m && m[2] === 'acls' && !m[3] && cmd === 'create') await si.io.mkdir(fs.aclPath(m[1]!, args[0]!));
      else if (m && m[2] === 'acls' && m[3] && cmd === 'set') {
        await si.io.writeFile(join(fs.aclPath(m[1]!, m[3]), 'auth', 'userid'), args[1]!.slice('userid='.length));
        await si.io.writeFile(join(fs.aclPath(m[1]!, m[3]), 'auth', 'password'), args[2]!.slice('password='.length));
      } else if (m && m[2] === 'acls' && m[3] && cmd === 'create') {
        const a = (await fs.readTarget(m[1]!))!.acls.find((x) => x.initiator === m[3])!;
        await fs.addAcl(m[1]!, m[3], a.userid, a.password);
      }
      else if (m && m[2] === 'acls' && cmd === 'delete') await fs.removeAcl(m[1]!, args[0]!);
      else return { stdout: '', stderr: `unexpected ${argv.join(' ')}`, exitCode: 1 };
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    const dir = join(base, `tc${++n}`);
    const root = join(dir, 'configfs-absent');
    const helper = new LioTarget({
      targetPrefix: 'iqn.2010-10.org.openstack:',
      targetIpAddress: '127.0.0.1',
      targetSecondaryIpAddresses: [],
      targetPort: 3260,
      targetProtocol: 'iscsi',
      volumesDir: join(dir, 'volumes'),
      configfsRoot: root,
      runner,
    });
    expect((await helper.backend()).kind).toBe('targetcli');
    // from here on the fake "targetcli" writes a stand-in at that root; the helper reads it with node:fs
    si = await makeStandIn(root);
    fs = new Configfs(root, si.io);
    const vol: ExportedVolume = { id: ID, name: `volume-${ID}`, providerLocation: null, providerAuth: AUTH, backingPath: DEV, multiattach: false };
    const r = await helper.createExport(vol);
    expect(r.provider_location).toBe(`127.0.0.1:3260,${IQN} ${IQN} 0`);
    expect(calls.map((c) => c.slice(1, 3).join(' '))).toEqual([
      '/backstores/block create',
      '/iscsi create',
      `/iscsi/${IQN}/tpg1/portals delete`,
      `/iscsi/${IQN}/tpg1 set`,
      `/iscsi/${IQN}/tpg1/luns create`,
      `/iscsi/${IQN}/tpg1/portals create`,
      `/iscsi/${IQN}/tpg1 enable`,
    ]);
    calls.length = 0;
    await helper.initializeConnection({ ...vol, providerLocation: r.provider_location }, { initiator: A });
    expect(calls).toEqual([targetcliArgv.createAcl(IQN, A), targetcliArgv.setAclAuth(IQN, A, '2rX53svf7cbhNF4R2J3E', 'MaftGu8RAUnJ27XQ'), targetcliArgv.createMappedLun0(IQN, A)]);
    calls.length = 0;
    await helper.terminateConnection(vol, { initiator: A }, {});
    expect(calls).toEqual([targetcliArgv.deleteAcl(IQN, A)]);
    calls.length = 0;
    await helper.removeExport(vol);
    expect(calls).toEqual([targetcliArgv.deleteTarget(IQN), targetcliArgv.deleteBackstore(IQN)]);
  });
});

describe('LioTarget odds and ends', () => {
  it('auto backend: configfs when the root is a writable directory', async () => {
    const s = await setup({ backend: 'auto' });
    expect((await s.helper.backend()).kind).toBe('configfs');
  });

  it('refuses host names as portals (configfs np/ needs IP literals)', () => {
    expect(() => new LioTarget({ targetPrefix: 'iqn.2010-10.org.openstack:', targetIpAddress: 'storage.example', targetSecondaryIpAddresses: [], targetPort: 3260, targetProtocol: 'iscsi', volumesDir: '/tmp/x' })).toThrow(/IP addresses/);
  });

  it('ensureExport of a volume that was never exported does nothing', async () => {
    const s = await setup();
    await s.helper.ensureExport(s.vol);
    expect(await s.fs.listTargets()).toEqual([]);
  });

  it('rejects a malformed record file instead of trusting it', async () => {
    const s = await setup();
    await exported(s);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(s.helper.statePath(), JSON.stringify({ version: 1, exports: { [IQN]: { volumeId: ID, backingPath: '/dev/x y', chap: { username: 'a', password: 'b' }, initiators: [] } } }));
    await expect(s.helper.reconcile()).rejects.toMatchObject({ className: 'InvalidInput' });
  });
});
