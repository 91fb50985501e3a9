// What lets the start-up sweep recognise a crash's leftovers on tgt: the record of the CHAP
// accounts the helper creates (written before the account exists), findExports and
// removeOrphanAccounts. Against the in-memory tgtd.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TgtAccountRecord, tgtAccountsPath, TGT_ACCOUNTS_FILE } from '../../../drivers/targets/tgt/tgt-accounts.js';
import { TgtTarget } from '../../../drivers/targets/tgt/tgt-target.js';
import type { ExportedVolume } from '../../../drivers/targets/target.js';
import { FakeTgtd, fakeTgtTargetOptions } from './fake-tgtd.js';

const root = mkdtempSync(join(tmpdir(), 'cb-tgt-leftovers-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const PREFIX = 'iqn.2010-10.org.openstack:';
let n = 0;

function setup() {
  const fake = new FakeTgtd();
  const volumesDir = join(root, `v${++n}`);
  const helper = new TgtTarget(fakeTgtTargetOptions(fake, volumesDir, { targetPrefix: PREFIX }));
  const vol = (id: string): ExportedVolume => ({ id, name: `volume-${id}`, providerLocation: null, providerAuth: null, backingPath: `/dev/vg/volume-${id}`, multiattach: false });
  return { fake, helper, vol, volumesDir, record: new TgtAccountRecord(tgtAccountsPath(volumesDir)) };
}

const ID1 = '11111111-1111-4111-8111-111111111111';
const ID2 = '22222222-2222-4222-8222-222222222222';

describe('the record of CHAP accounts', () => {
  it('is a 0600 dot file that keeps what it is told and drops what could not be ours', async () => {
    const dir = join(root, 'rec');
    await mkdir(dir);
    const r = new TgtAccountRecord(tgtAccountsPath(dir));
    await Promise.all([r.remember('User1abc', `${PREFIX}volume-a`), r.remember('User2abc', `${PREFIX}volume-b`), r.remember('User3abc', `${PREFIX}volume-c`)]);
    expect([...(await r.read()).entries()].sort()).toEqual([
      ['User1abc', `${PREFIX}volume-a`],
      ['User2abc', `${PREFIX}volume-b`],
      ['User3abc', `${PREFIX}volume-c`],
    ]);
    expect(TGT_ACCOUNTS_FILE.startsWith('.')).toBe(true);
    expect(statSync(tgtAccountsPath(dir)).mode & 0o777).toBe(0o600);
    await r.forget(['User2abc', 'nobody']);
    expect([...(await r.read()).keys()].sort()).toEqual(['User1abc', 'User3abc']);
    writeFileSync(tgtAccountsPath(dir), JSON.stringify({ version: 1, accounts: { 'bad user': { iqn: `${PREFIX}x` }, Good1: { iqn: 'not an iqn' }, Good2: { iqn: `${PREFIX}y` } } }));
    expect([...(await r.read()).entries()]).toEqual([['Good2', `${PREFIX}y`]]);
    writeFileSync(tgtAccountsPath(dir), 'garbage');
    expect((await r.read()).size).toBe(0);
  });
});

describe('TgtTarget and crash leftovers', () => {
  it('records an account before creating it, and forgets it when the export goes', async () => {
    const { fake, helper, vol, record, volumesDir } = setup();
    let recordedWhenCreated: boolean | null = null;
    fake.inject = (argv, op) => {
      if (op === 'account:new') {
        const user = argv[argv.indexOf('--user') + 1]!;
        recordedWhenCreated = existsSync(tgtAccountsPath(volumesDir)) && readFileSync(tgtAccountsPath(volumesDir), 'utf8').includes(user);
      }
      return undefined;
    };
    const m = await helper.createExport(vol(ID1));
    const user = m.provider_auth.split(' ')[1]!;
    expect(recordedWhenCreated).toBe(true);
    expect((await record.read()).get(user)).toBe(`${PREFIX}volume-${ID1}`);
    // the record holds names only, never the secret
    expect(readFileSync(tgtAccountsPath(volumesDir), 'utf8')).not.toContain(m.provider_auth.split(' ')[2]!);
    await helper.removeExport({ ...vol(ID1), providerLocation: m.provider_location, providerAuth: m.provider_auth });
    expect(fake.accounts.has(user)).toBe(false);
    expect((await record.read()).size).toBe(0);
  });

  it('removeOrphanAccounts deletes only the unbound accounts it recorded', async () => {
    const { fake, helper, vol, record } = setup();
    const kept = await helper.createExport(vol(ID1));
    const keptUser = kept.provider_auth.split(' ')[1]!;
    // a kill -9 right after `new account`: nothing after it reaches tgtd, rollback included
    let dead = false;
    fake.inject = (_argv, op) => {
      if (dead) return { stdout: '', stderr: 'simulated kill -9', exitCode: -1 };
      if (op === 'account:new') dead = true;
      return undefined;
    };
    await expect(helper.createExport(vol(ID2))).rejects.toThrow();
    fake.inject = null;
    const orphan = [...(await record.read()).keys()].find((u) => u !== keptUser)!;
    expect(fake.accounts.has(orphan)).toBe(true);
    // someone else's unbound account
    fake.accounts.set('SomeoneElse42', 'secret');
    expect(await helper.removeOrphanAccounts()).toBe(1);
    expect(fake.accounts.has(orphan)).toBe(false);
    expect(fake.accounts.has(keptUser)).toBe(true);
    expect(fake.accounts.has('SomeoneElse42')).toBe(true);
    expect([...(await record.read()).keys()]).toEqual([keptUser]);
    // with no tgtd running there is nothing to look at, and nothing is started
    fake.running = false;
    expect(await helper.removeOrphanAccounts()).toBe(0);
  });

  it('removeOrphanAccounts reads tgtd twice when every recorded account is bound, and forgets those a restart took once each', async () => {
    const { fake, helper, vol, record } = setup();
    const ids = Array.from({ length: 12 }, (_, i) => `${String(i).padStart(8, '0')}-1111-4111-8111-111111111111`);
    for (const id of ids) await helper.createExport(vol(id));
    fake.calls.length = 0;
    expect(await helper.removeOrphanAccounts()).toBe(0);
    // sys (is tgtd there?), the accounts, the listing: nothing per account
    expect(fake.ops()).toEqual(['sys:show', 'account:show', 'target:show']);
    expect((await record.read()).size).toBe(12);
    // tgtd restarted empty: every recorded name is forgotten, without asking tgtd about each
    fake.restart();
    fake.calls.length = 0;
    expect(await helper.removeOrphanAccounts()).toBe(0);
    expect(fake.ops()).toEqual(['sys:show', 'account:show', 'target:show']);
    expect((await record.read()).size).toBe(0);
  });

  it('findExports lists live targets and target files with our prefix, and never needs tgtd', async () => {
    const { fake, helper, vol, volumesDir } = setup();
    await helper.createExport(vol(ID1));
    fake.targets.set(50, { tid: 50, iqn: 'iqn.2003-01.org.example:other', luns: new Map(), accounts: [], acls: [], nexuses: [] });
    // an address entry (cinder's own tgt targets admit ALL and rely on CHAP) is not an admission by name
    fake.targets.set(51, { tid: 51, iqn: `${PREFIX}volume-${ID2}`, luns: new Map(), accounts: [], acls: ['ALL', 'iqn.1994-05.com.redhat:h2'], nexuses: [] });
    writeFileSync(join(volumesDir, 'README'), 'not a target file');
    expect((await helper.findExports()).sort((a, b) => a.iqn.localeCompare(b.iqn))).toEqual([
      { iqn: `${PREFIX}volume-${ID1}`, volumeName: `volume-${ID1}`, backingPath: `/dev/vg/volume-${ID1}`, live: true, recorded: true, admitted: [] },
      { iqn: `${PREFIX}volume-${ID2}`, volumeName: `volume-${ID2}`, backingPath: null, live: true, recorded: false, admitted: ['iqn.1994-05.com.redhat:h2'] },
    ]);
    fake.running = false;
    expect(await helper.findExports()).toEqual([{ iqn: `${PREFIX}volume-${ID1}`, volumeName: `volume-${ID1}`, backingPath: `/dev/vg/volume-${ID1}`, live: false, recorded: true }]);
  });
});
