// TgtTarget against FakeTgtd (an in-memory tgtd behind a fake tgtadm runner): ordering of steps,
// idempotence, and above all that no path which fails midway leaves an initiator ACL behind.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ExportedVolume } from '../../../drivers/targets/target.js';
import { TgtTarget, type TgtTargetOptions } from '../../../drivers/targets/tgt/tgt-target.js';
import { WRITE_CACHE_OFF_MODE_PAGE } from '../../../drivers/targets/tgt/tgtadm.js';
import { FakeTgtd, fakeTgtTargetOptions } from './fake-tgtd.js';

const root = mkdtempSync('/tmp/cinderblock-tgt-unit-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const A = 'iqn.1994-05.com.redhat:compute-a';
const B = 'iqn.1994-05.com.redhat:compute-b';
const ID = '9531a336-8b9f-4724-9d8d-d83f99b240e6';
const IQN = `iqn.2010-10.org.openstack:volume-${ID}`;
const AUTH = 'CHAP 2rX53svf7cbhNF4R2J3E MaftGu8RAUnJ27XQ';
const refuse = (msg: string) => ({ stdout: '', stderr: `tgtadm: ${msg}\n`, exitCode: 22 });

let n = 0;
function setup(over: Partial<TgtTargetOptions> = {}) {
  const fake = new FakeTgtd();
  const volumesDir = join(root, `v${++n}`);
  const helper = new TgtTarget(fakeTgtTargetOptions(fake, volumesDir, over));
  const vol: ExportedVolume = { id: ID, name: `volume-${ID}`, providerLocation: null, providerAuth: null, backingPath: `/dev/cinder-volumes/volume-${ID}`, multiattach: false };
  const file = () => join(volumesDir, vol.name);
  const fileText = () => readFileSync(file(), 'utf8');
  return { fake, helper, vol, volumesDir, file, fileText };
}

async function exported(over: Partial<TgtTargetOptions> = {}) {
  const s = setup(over);
  const u = await s.helper.createExport({ ...s.vol, providerAuth: AUTH });
  const vol = { ...s.vol, providerLocation: u.provider_location, providerAuth: u.provider_auth };
  s.fake.calls.length = 0;
  return { ...s, vol };
}

describe('createExport', () => {
  it('creates target, account, LUN 1 and the file, in an order that never exposes the LUN without CHAP', async () => {
    const { fake, helper, vol, fileText } = setup();
    const u = await helper.createExport(vol);
    expect(u.provider_location).toBe(`10.0.0.5:3260,1 ${IQN} 1`);
    expect(u.provider_auth).toMatch(/^CHAP [2-9A-HJ-NP-Za-km-z]{20} [2-9A-HJ-NP-Za-km-z]{16}$/);
    const mutations = fake.ops(/:(new|bind|update|delete|unbind)$/);
    expect(mutations).toEqual(['target:new', 'account:new', 'account:bind', 'logicalunit:new', 'logicalunit:update']);
    const t = fake.target(IQN)!;
    expect(t.acls).toEqual([]);
    expect(t.luns.get(1)).toMatchObject({ path: vol.backingPath, thin: true, flags: '' });
    expect(fileText()).toContain(`incominguser ${u.provider_auth.split(' ')[1]} ${u.provider_auth.split(' ')[2]}`);
  });

  it('reuses provider_auth, and a second call changes nothing', async () => {
    const { fake, helper, vol } = setup();
    const first = await helper.createExport({ ...vol, providerAuth: AUTH });
    expect(first.provider_auth).toBe(AUTH);
    const before = fake.calls.length;
    const second = await helper.createExport({ ...vol, providerAuth: AUTH });
    expect(second).toEqual(first);
    expect(fake.ops(/:(new|bind|update|delete|unbind)$/).length).toBe(5);
    expect(fake.calls.length).toBeGreaterThan(before);
    expect([...fake.accounts.keys()]).toEqual(['2rX53svf7cbhNF4R2J3E']);
  });

  it('write-cache off and iscsi_target_flags reach tgtd; iser uses --lld iser', async () => {
    const { fake, helper, vol, fileText } = setup({ iscsiWriteCache: 'off', iscsiTargetFlags: 'direct', targetProtocol: 'iser' });
    await helper.createExport(vol);
    const lu = fake.target(IQN)!.luns.get(1)!;
    expect(lu.flags).toBe('direct');
    expect(lu.params).toEqual(['thin_provisioning=1', `mode_page=${WRITE_CACHE_OFF_MODE_PAGE}`]);
    expect(fake.calls.every((c) => c.includes('iser'))).toBe(true);
    expect(fileText()).toMatch(/driver iser\n/);
    expect(fileText()).toMatch(/bsoflags direct\n/);
    expect(fileText()).toMatch(/write-cache off\n/);
  });

  it('allocates the next tid, and retries when another tool takes it first', async () => {
    const { fake, helper, vol } = setup();
    fake.targets.set(4, { tid: 4, iqn: 'iqn.2000-01.other:t', luns: new Map(), accounts: [], acls: [], nexuses: [] });
    let stolen = false;
    fake.inject = (argv, op) => {
      if (op === 'target:new' && !stolen) {
        stolen = true;
        fake.targets.set(5, { tid: 5, iqn: 'iqn.2000-01.other:u', luns: new Map(), accounts: [], acls: [], nexuses: [] });
        return refuse('this target already exists');
      }
      return undefined;
    };
    const u = await helper.createExport(vol);
    expect(u.provider_location).toBe(`10.0.0.5:3260,6 ${IQN} 1`);
  });

  it('rolls back a new target when a later step fails: no target, no account, no file', async () => {
    const { fake, helper, vol, file } = setup();
    fake.inject = (_argv, op) => (op === 'logicalunit:new' ? refuse('invalid request') : undefined);
    await expect(helper.createExport(vol)).rejects.toMatchObject({ className: 'ISCSITargetCreateFailed', message: `Failed to create iscsi target for volume ${ID}.` });
    expect(fake.targets.size).toBe(0);
    expect(fake.accounts.size).toBe(0);
    expect(existsSync(file())).toBe(false);
  });

  it('removes an initiator-address ALL rule left by tgt-admin', async () => {
    const { fake, helper, vol } = await exported();
    fake.target(IQN)!.acls.push('ALL');
    await helper.createExport(vol);
    expect(fake.target(IQN)!.acls).toEqual([]);
  });

  it('keeps the ACLs of live attachments (cinder calls create_export before every attach)', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    await helper.createExport(vol);
    expect(fake.target(IQN)!.acls).toEqual([A]);
  });

  it('refuses unsafe names and paths before running anything', async () => {
    const { fake, helper, vol } = setup();
    await expect(helper.createExport({ ...vol, name: '../../etc/x' })).rejects.toThrow(/volume name/);
    await expect(helper.createExport({ ...vol, backingPath: '/dev/vg/x y' })).rejects.toThrow(/backing store/);
    await expect(helper.createExport({ ...vol, providerAuth: 'CHAP a;b c' })).rejects.toThrow(/CHAP/);
    expect(fake.calls).toEqual([]);
  });
});

describe('initializeConnection', () => {
  it('binds the initiator, records it in the file and returns connection_info', async () => {
    const { fake, helper, vol, fileText } = await exported();
    const info = await helper.initializeConnection(vol, { initiator: A, multipath: false });
    expect(info).toEqual({
      driver_volume_type: 'iscsi',
      data: {
        target_discovered: false,
        target_portal: '10.0.0.5:3260',
        target_iqn: IQN,
        target_lun: 1,
        volume_id: ID,
        auth_method: 'CHAP',
        auth_username: '2rX53svf7cbhNF4R2J3E',
        auth_password: 'MaftGu8RAUnJ27XQ',
      },
    });
    expect(fake.target(IQN)!.acls).toEqual([A]);
    expect(fileText()).toContain(`initiator-name ${A}\n`);
    // again: no duplicate
    await helper.initializeConnection(vol, { initiator: A });
    expect(fake.target(IQN)!.acls).toEqual([A]);
    expect(fileText().match(/^\s*initiator-name /gm)).toHaveLength(1);
  });

  it('multipath connector or secondary IPs give the portal lists', async () => {
    const { helper, vol } = await exported({ targetSecondaryIpAddresses: ['fd00::5'] });
    expect(vol.providerLocation).toBe(`10.0.0.5:3260;[fd00::5]:3260,1 ${IQN} 1`);
    const info = await helper.initializeConnection(vol, { initiator: A });
    expect(info.data).toMatchObject({ target_portals: ['10.0.0.5:3260', '[fd00::5]:3260'], target_luns: [1, 1], target_portal: '10.0.0.5:3260' });
    const s = await exported();
    const mp = await s.helper.initializeConnection(s.vol, { initiator: A, multipath: true });
    expect(mp.data).toMatchObject({ target_portals: ['10.0.0.5:3260'], target_iqns: [IQN], target_luns: [1] });
  });

  it('without provider_location it finds the live target (cinder\'s discovery fallback)', async () => {
    const { helper, vol } = await exported();
    const info = await helper.initializeConnection({ ...vol, providerLocation: null }, { initiator: A });
    expect(info.data).toMatchObject({ target_discovered: true, target_portal: '10.0.0.5:3260', target_lun: 1 });
  });

  it('InvalidConnectorException without initiator; InvalidInput for a malformed one; nothing bound', async () => {
    const { fake, helper, vol } = await exported();
    await expect(helper.initializeConnection(vol, { host: 'h' })).rejects.toMatchObject({ className: 'InvalidConnectorException' });
    await expect(helper.initializeConnection(vol, { initiator: `${A} ALL` })).rejects.toMatchObject({ className: 'InvalidInput' });
    expect(fake.calls).toEqual([]);
  });

  it('no export: InvalidVolume "Could not find iSCSI export", nothing bound', async () => {
    const { fake, helper, vol } = setup();
    await expect(helper.initializeConnection({ ...vol, providerAuth: AUTH }, { initiator: A })).rejects.toMatchObject({
      className: 'InvalidVolume',
      message: `Invalid volume: Could not find iSCSI export for volume volume-${ID}`,
    });
    expect(fake.ops(/bind/)).toEqual([]);
  });

  it('refuses to admit anyone to a target that has no CHAP account', async () => {
    const { fake, helper, vol } = await exported();
    fake.target(IQN)!.accounts = [];
    await expect(helper.initializeConnection(vol, { initiator: A })).rejects.toMatchObject({ className: 'InvalidVolume' });
    expect(fake.target(IQN)!.acls).toEqual([]);
  });

  it('undoes the bind when recording the initiator fails (no ACL left behind)', async () => {
    const { fake, helper, vol, file } = await exported();
    unlinkSync(file());
    mkdirSync(file()); // reading the file now fails with EISDIR
    await expect(helper.initializeConnection(vol, { initiator: A })).rejects.toMatchObject({ className: 'ISCSITargetAttachFailed' });
    expect(fake.target(IQN)!.acls).toEqual([]);
    expect(fake.ops(/target:(bind|unbind)/)).toEqual(['target:bind', 'target:unbind']);
  });

  it('a malformed provider_location fails before any change', async () => {
    const { fake, helper, vol } = await exported();
    await expect(helper.initializeConnection({ ...vol, providerLocation: 'garbage' }, { initiator: A })).rejects.toMatchObject({ className: 'ISCSITargetAttachFailed' });
    expect(fake.target(IQN)!.acls).toEqual([]);
  });
});

describe('terminateConnection', () => {
  it('unbinds the initiator, closes its sessions only, and drops it from the file', async () => {
    const { fake, helper, vol, fileText } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    await helper.initializeConnection(vol, { initiator: B });
    fake.login(IQN, A);
    fake.login(IQN, B);
    await helper.terminateConnection(vol, { initiator: A }, {});
    const t = fake.target(IQN)!;
    expect(t.acls).toEqual([B]);
    expect(t.nexuses.map((x) => x.initiator)).toEqual([B]);
    expect(fileText()).not.toContain(A);
    expect(fileText()).toContain(B);
    // idempotent
    await helper.terminateConnection(vol, { initiator: A }, {});
  });

  it('matches the initiator name case-insensitively', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: 'iqn.1994-05.com.redhat:Compute-A' });
    await helper.terminateConnection(vol, { initiator: A }, {});
    expect(fake.target(IQN)!.acls).toEqual([]);
  });

  it('keepAcl: nothing changes', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.calls.length = 0;
    await helper.terminateConnection(vol, { initiator: A }, { keepAcl: true });
    expect(fake.calls).toEqual([]);
    expect(fake.target(IQN)!.acls).toEqual([A]);
  });

  it('no connector: nothing without force, every initiator with force', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    await helper.initializeConnection(vol, { initiator: B });
    await helper.terminateConnection(vol, null, {});
    expect(fake.target(IQN)!.acls).toEqual([A, B]);
    await helper.terminateConnection(vol, null, { force: true });
    expect(fake.target(IQN)!.acls).toEqual([]);
  });

  it('when tgtd refuses the unbind: ISCSITargetDetachFailed, and the file no longer lists the initiator', async () => {
    const { fake, helper, vol, fileText } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.inject = (_argv, op) => (op === 'target:unbind' ? refuse('invalid request') : undefined);
    await expect(helper.terminateConnection(vol, { initiator: A }, {})).rejects.toMatchObject({ className: 'ISCSITargetDetachFailed' });
    expect(fileText()).not.toContain(`initiator-name ${A}`);
    // a later ensure_export (or retry) removes the live ACL
    fake.inject = null;
    await helper.ensureExport(vol);
    expect(fake.target(IQN)!.acls).toEqual([]);
  });

  it('an unbind that "succeeds" but leaves the ACL is caught by the verification', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.inject = (_argv, op) => (op === 'target:unbind' ? { stdout: '', stderr: '', exitCode: 0 } : undefined);
    await expect(helper.terminateConnection(vol, { initiator: A }, {})).rejects.toMatchObject({ className: 'ISCSITargetDetachFailed' });
  });

  it('a connector whose initiator is not an iSCSI name is a no-op (it can never have been bound)', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.calls.length = 0;
    await helper.terminateConnection(vol, { initiator: 'not a name; id' }, {});
    expect(fake.calls).toEqual([]);
    expect(fake.target(IQN)!.acls).toEqual([A]);
  });

  it('missing target: success', async () => {
    const { helper, vol } = setup();
    await helper.terminateConnection({ ...vol, providerAuth: AUTH }, { initiator: A }, {});
  });
});

describe('ensureExport', () => {
  it('rebuilds target, CHAP and ACLs from the file after tgtd lost everything', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.restart();
    fake.calls.length = 0;
    await helper.ensureExport(vol);
    const t = fake.target(IQN)!;
    expect(t.accounts).toEqual(['2rX53svf7cbhNF4R2J3E']);
    expect(fake.accounts.get('2rX53svf7cbhNF4R2J3E')).toBe('MaftGu8RAUnJ27XQ');
    expect(t.acls).toEqual([A]);
    expect(t.luns.get(1)?.path).toBe(vol.backingPath);
    const order = fake.ops(/:(new|bind)$/);
    expect(order.indexOf('account:bind')).toBeLessThan(order.indexOf('logicalunit:new'));
    expect(order.indexOf('logicalunit:new')).toBeLessThan(order.indexOf('target:bind'));
  });

  it('the initiator list from the database wins over the file and over live ACLs', async () => {
    const { fake, helper, vol, fileText } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.login(IQN, A);
    await helper.ensureExport(vol, { initiators: [B] });
    expect(fake.target(IQN)!.acls).toEqual([B]);
    expect(fake.target(IQN)!.nexuses).toEqual([]);
    expect(fileText()).toContain(`initiator-name ${B}`);
    expect(fileText()).not.toContain(`initiator-name ${A}`);
  });

  it('restores from the live target when the file is gone', async () => {
    const { fake, helper, vol, file } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    unlinkSync(file());
    await helper.ensureExport(vol);
    expect(fake.target(IQN)!.acls).toEqual([A]);
    expect(readFileSync(file(), 'utf8')).toContain(`initiator-name ${A}`);
  });

  it('a never-exported volume is left alone; an exported one without CHAP is refused', async () => {
    const { fake, helper, vol } = setup();
    await helper.ensureExport(vol);
    expect(fake.calls).toEqual([]);
    await expect(helper.ensureExport({ ...vol, providerLocation: `10.0.0.5:3260,1 ${IQN} 1` })).rejects.toMatchObject({ className: 'ISCSITargetCreateFailed' });
    expect(fake.targets.size).toBe(0);
  });

  it('puts a LUN back on the right backing store when nobody is logged in', async () => {
    const { fake, helper, vol } = await exported();
    fake.target(IQN)!.luns.get(1)!.path = '/dev/cinder-volumes/wrong';
    await helper.ensureExport(vol);
    expect(fake.target(IQN)!.luns.get(1)!.path).toBe(vol.backingPath);
    fake.target(IQN)!.luns.get(1)!.path = '/dev/cinder-volumes/wrong';
    fake.login(IQN, A);
    await expect(helper.ensureExport(vol)).rejects.toMatchObject({ className: 'ISCSITargetCreateFailed' });
  });

  it('fails with ISCSITargetCreateFailed when tgtd is down', async () => {
    const { fake, helper, vol } = await exported();
    fake.running = false;
    await expect(helper.ensureExport(vol)).rejects.toMatchObject({ className: 'ISCSITargetCreateFailed' });
  });
});

describe('removeExport', () => {
  it('revokes ACLs, closes sessions, deletes target, account and file; twice is fine', async () => {
    const { fake, helper, vol, file } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.login(IQN, A);
    await helper.removeExport(vol);
    expect(fake.targets.size).toBe(0);
    expect(fake.accounts.size).toBe(0);
    expect(existsSync(file())).toBe(false);
    const mut = fake.ops(/:(unbind|delete)$/);
    expect(mut.slice(0, 3)).toEqual(['target:unbind', 'conn:delete', 'target:delete']);
    await helper.removeExport(vol);
  });

  it('retries while tgtd says the logical unit is still active', async () => {
    const { fake, helper, vol } = await exported();
    let busy = 2;
    fake.inject = (_argv, op) => (op === 'target:delete' && busy-- > 0 ? refuse('this logical unit is still active') : undefined);
    await helper.removeExport(vol);
    expect(fake.targets.size).toBe(0);
    expect(fake.ops(/target:delete/)).toHaveLength(3);
  });

  it('gives up with ISCSITargetRemoveFailed when it stays busy, with the ACLs already revoked', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.inject = (_argv, op) => (op === 'target:delete' ? refuse('this logical unit is still active') : undefined);
    await expect(helper.removeExport(vol)).rejects.toMatchObject({ className: 'ISCSITargetRemoveFailed' });
    expect(fake.target(IQN)!.acls).toEqual([]);
  });

  it('keeps an account another target still uses', async () => {
    const { fake, helper, vol } = await exported();
    fake.targets.set(9, { tid: 9, iqn: 'iqn.2000-01.other:t', luns: new Map(), accounts: ['2rX53svf7cbhNF4R2J3E'], acls: [], nexuses: [] });
    await helper.removeExport(vol);
    expect(fake.accounts.has('2rX53svf7cbhNF4R2J3E')).toBe(true);
  });
});

describe('extendTarget and listExports', () => {
  it('reopens LUN 1 in one request: online=0,path=<same>', async () => {
    const { fake, helper, vol } = await exported();
    await helper.extendTarget(vol);
    expect(fake.calls.filter((c) => c.includes('--params')).map((c) => c.at(-1))).toEqual([`online=0,path=${vol.backingPath}`]);
    expect(fake.target(IQN)!.luns.get(1)!.online).toBe(true);
  });

  it('with sessions: offline, close them, reopen, ready (and ready again even when the reopen fails)', async () => {
    const { fake, helper, vol } = await exported();
    await helper.initializeConnection(vol, { initiator: A });
    fake.login(IQN, A);
    fake.calls.length = 0;
    await helper.extendTarget(vol);
    expect(fake.calls.filter((c) => !c.includes('show')).map((c) => c.slice(c.indexOf('--op')).join(' '))).toEqual([
      '--op update --mode target --tid 1 --name state --value offline',
      '--op delete --mode conn --tid 1 --sid 1 --cid 0',
      `--op update --mode logicalunit --tid 1 --lun 1 --params online=0,path=${vol.backingPath}`,
      '--op update --mode target --tid 1 --name state --value ready',
    ]);
    const t = fake.target(IQN)!;
    expect(t.state).toBe('ready');
    expect(t.acls).toEqual([A]);
    fake.login(IQN, A);
    fake.inject = (_argv, op) => (op === 'logicalunit:update' ? refuse('invalid request') : undefined);
    await expect(helper.extendTarget(vol)).rejects.toMatchObject({ className: 'TargetUpdateFailed' });
    expect(fake.target(IQN)!.state).toBe('ready');
  });

  it('ensureExport puts a target left offline back to ready', async () => {
    const { fake, helper, vol } = await exported();
    fake.target(IQN)!.state = 'offline';
    await helper.ensureExport(vol);
    expect(fake.target(IQN)!.state).toBe('ready');
  });

  it('is a no-op without a target, and TargetUpdateFailed when tgtd refuses', async () => {
    const s = setup();
    await s.helper.extendTarget(s.vol);
    const { fake, helper, vol } = await exported();
    fake.inject = (_argv, op) => (op === 'logicalunit:update' ? refuse('invalid request') : undefined);
    await expect(helper.extendTarget(vol)).rejects.toMatchObject({ className: 'TargetUpdateFailed', message: `Failed to update target for volume ${ID}.` });
  });

  it('lists only IQNs with the target prefix', async () => {
    const { fake, helper } = await exported();
    fake.targets.set(9, { tid: 9, iqn: 'iqn.2000-01.other:t', luns: new Map(), accounts: [], acls: [], nexuses: [] });
    expect(await helper.listExports()).toEqual([IQN]);
  });
});

describe('concurrency', () => {
  it('serialises operations on one target and creates different targets with distinct tids', async () => {
    const { fake, helper, vol } = setup();
    let active = 0;
    let maxActive = 0;
    const inner = fake.runner;
    const slow = async (argv: readonly string[]) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 1));
      try {
        return await inner(argv);
      } finally {
        active--;
      }
    };
    const h = new TgtTarget({ ...(helper as unknown as { o: TgtTargetOptions }).o, runner: slow });
    const vols = Array.from({ length: 5 }, (_, i) => ({ ...vol, id: `${i}`, name: `volume-${i}` }));
    const results = await Promise.all(vols.map((v) => h.createExport(v)));
    const tids = results.map((r) => r.provider_location.split(',')[1]!.split(' ')[0]);
    expect(new Set(tids).size).toBe(5);
    expect(maxActive).toBeGreaterThan(1);
    // same volume, many concurrent binds: one ACL each, no error
    const v0 = { ...vols[0]!, providerLocation: results[0]!.provider_location, providerAuth: results[0]!.provider_auth };
    await Promise.all([A, B, A, B].map((i) => h.initializeConnection(v0, { initiator: i })));
    expect(fake.target('iqn.2010-10.org.openstack:volume-0')!.acls.sort()).toEqual([A, B]);
  });
});

