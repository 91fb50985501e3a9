// TgtTarget at scale (issue 10 item 8): every operation reads tgtd's listing of all targets once
// and parses only its own target; what it changes afterwards it tracks instead of reading it back;
// checks that need no listing are one small request. And nothing per export stays in the
// helper's per-tgtd state once the exports are gone.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { ExportedVolume } from '../../../drivers/targets/target.js';
import { HANDOFF_MS, TgtTarget, tgtLockKeys, type TgtTargetOptions } from '../../../drivers/targets/tgt/tgt-target.js';
import { FakeTgtd, fakeTgtTargetOptions } from './fake-tgtd.js';

const root = mkdtempSync('/tmp/cinderblock-tgt-listing-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const A = 'iqn.1994-05.com.redhat:compute-a';
const AUTH = 'CHAP 2rX53svf7cbhNF4R2J3E MaftGu8RAUnJ27XQ';
let n = 0;

function setup(over: Partial<TgtTargetOptions> = {}) {
  const fake = new FakeTgtd();
  const volumesDir = join(root, `v${++n}`);
  const helper = new TgtTarget(fakeTgtTargetOptions(fake, volumesDir, over));
  const volume = (i: number): ExportedVolume => {
    const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
    return { id, name: `volume-${id}`, providerLocation: null, providerAuth: null, backingPath: `/dev/cinder-volumes/volume-${id}`, multiattach: false };
  };
  /** listings read: `--op show --mode target` without --tid */
  const listings = () => fake.calls.filter((c) => c.includes('show') && c.includes('target') && !c.includes('--tid')).length;
  return { fake, helper, volume, listings, volumesDir };
}

async function attach(helper: TgtTarget, v: ExportedVolume, initiator: string): Promise<ExportedVolume> {
  const m = await helper.createExport(v);
  const row = { ...v, providerLocation: m.provider_location, providerAuth: m.provider_auth };
  await helper.initializeConnection(row, { initiator });
  return row;
}

describe('one listing per operation', () => {
  it('an attach reads the listing once in create_export and once in initialize_connection, however many targets there are', async () => {
    const { fake, helper, volume, listings } = setup();
    for (let i = 0; i < 40; i++) await attach(helper, volume(i), `iqn.1994-05.com.redhat:h${i}`);
    fake.calls.length = 0;
    const v = volume(99);
    const m = await helper.createExport(v);
    expect(listings()).toBe(1);
    expect(fake.ops(/:(new|bind|update)$/)).toEqual(['target:new', 'account:new', 'account:bind', 'logicalunit:new', 'logicalunit:update']);
    fake.calls.length = 0;
    await helper.initializeConnection({ ...v, providerLocation: m.provider_location, providerAuth: m.provider_auth }, { initiator: A });
    expect(listings()).toBe(1);
    expect(fake.target(`iqn.2010-10.org.openstack:${v.name}`)!.acls).toEqual([A]);
    // an existing export with its account bound: create_export reads the listing and nothing else
    fake.calls.length = 0;
    await helper.createExport({ ...v, providerAuth: m.provider_auth });
    expect(fake.calls.map((c) => `${c[c.indexOf('--mode') + 1]}:${c[c.indexOf('--op') + 1]}`)).toEqual(['target:show']);
  });

  it('a detach reads it for the revocation and its check, and removes the target checking with one small request', async () => {
    const { fake, helper, volume, listings } = setup();
    const row = await attach(helper, { ...volume(1), providerAuth: AUTH }, A);
    fake.login(`iqn.2010-10.org.openstack:${row.name}`, A);
    fake.calls.length = 0;
    await helper.terminateConnection(row, { initiator: A }, {});
    expect(listings()).toBe(2);
    fake.calls.length = 0;
    await helper.removeExport(row);
    expect(listings()).toBe(1);
    expect(fake.calls.filter((c) => c.includes('--tid') && c.includes('show'))).toHaveLength(1);
    expect(fake.targets.size).toBe(0);
    expect(fake.accounts.size).toBe(0);
  });

  it('a forced delete that tgtd silently ignores is found by the small check and retried without --force', async () => {
    const { fake, helper, volume } = setup();
    const row = await attach(helper, { ...volume(1), providerAuth: AUTH }, A);
    fake.inject = (argv, op) => (op === 'target:delete' && argv.includes('--force') ? { stdout: '', stderr: '', exitCode: 0 } : undefined);
    await helper.removeExport(row);
    expect(fake.targets.size).toBe(0);
    expect(fake.calls.filter((c) => c.includes('delete') && c.includes('target')).map((c) => c.includes('--force'))).toEqual([true, false]);
  });

  it('a tid taken by another target after the delete is not deleted again', async () => {
    const { fake, helper, volume } = setup();
    const row = await attach(helper, { ...volume(1), providerAuth: AUTH }, A);
    const tid = fake.target(`iqn.2010-10.org.openstack:${row.name}`)!.tid;
    fake.inject = (_argv, op) => {
      if (op !== 'target:delete') return undefined;
      fake.inject = null;
      // ours goes, and someone else's target takes its tid at once
      fake.targets.set(tid, { tid, iqn: 'iqn.2000-01.other:t', luns: new Map(), accounts: [], acls: [], nexuses: [] });
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    await helper.removeExport(row);
    expect(fake.targets.get(tid)?.iqn).toBe('iqn.2000-01.other:t');
    expect(fake.calls.filter((c) => c.includes('delete') && c.includes('target'))).toHaveLength(1);
  });

  it('concurrent creates get distinct tids without a refused request, and no listing read beyond one each', async () => {
    const { fake, helper, volume, listings } = setup();
    fake.targets.set(7, { tid: 7, iqn: 'iqn.2000-01.other:t', luns: new Map(), accounts: [], acls: [], nexuses: [] });
    const inner = fake.runner;
    const h = new TgtTarget({ ...(helper as unknown as { o: TgtTargetOptions }).o, runner: async (argv) => {
      await new Promise((r) => setTimeout(r, 1));
      return inner(argv);
    } });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => h.createExport(volume(i))));
    const tids = results.map((r) => Number(r.provider_location.split(',')[1]!.split(' ')[0]));
    expect(new Set(tids).size).toBe(8);
    expect(Math.min(...tids)).toBe(8);
    expect(fake.ops(/target:new/)).toHaveLength(8);
    expect(listings()).toBe(8);
  });

  it('ensure_export leaves a target file that says the same alone', async () => {
    const { helper, volume, volumesDir } = setup();
    const row = await attach(helper, { ...volume(1), providerAuth: AUTH }, A);
    const file = join(volumesDir, row.name);
    const before = statSync(file).ino;
    await helper.ensureExport(row, { initiators: [A] });
    expect(statSync(file).ino).toBe(before);
    await helper.ensureExport(row, { initiators: [] });
    expect(statSync(file).ino).not.toBe(before);
  });
});

describe('handoff from one operation to the next on the same target', () => {
  const pid = { now: 4242 as number | null };
  const withPid = () => setup({ servingPid: async () => pid.now });

  it('an attach (create_export, then initialize_connection) reads the listing once; a detach (terminate, remove) twice', async () => {
    pid.now = 4242;
    const { fake, helper, volume, listings } = withPid();
    for (let i = 0; i < 20; i++) await attach(helper, volume(i), `iqn.1994-05.com.redhat:h${i}`);
    fake.calls.length = 0;
    const row = await attach(helper, { ...volume(99), providerAuth: AUTH }, A);
    expect(listings()).toBe(1);
    const t = fake.target(`iqn.2010-10.org.openstack:${row.name}`)!;
    expect(t.acls).toEqual([A]);
    expect(t.accounts).toEqual(['2rX53svf7cbhNF4R2J3E']);
    fake.login(t.iqn, A);
    fake.calls.length = 0;
    await helper.terminateConnection(row, { initiator: A }, {});
    await helper.removeExport(row);
    expect(listings()).toBe(2);
    expect(fake.target(t.iqn)).toBeUndefined();
    expect(fake.accounts.has('2rX53svf7cbhNF4R2J3E')).toBe(false);
    expect(tgtLockKeys().handoffs).toEqual([]);
  });

  it('another tgtd process, or too long a pause, and the next operation reads the listing again', async () => {
    pid.now = 4242;
    const { fake, helper, volume, listings } = withPid();
    const v = { ...volume(1), providerAuth: AUTH };
    let m = await helper.createExport(v);
    // tgtd restarted meanwhile (and someone made another target with our tid: the old state would bind there)
    pid.now = 4343;
    fake.restart();
    fake.targets.set(1, { tid: 1, iqn: 'iqn.2000-01.other:t', luns: new Map(), accounts: ['x'], acls: [], nexuses: [] });
    fake.calls.length = 0;
    await expect(helper.initializeConnection({ ...v, providerLocation: m.provider_location }, { initiator: A })).rejects.toMatchObject({ className: 'InvalidVolume' });
    expect(listings()).toBe(1);
    expect(fake.targets.get(1)!.acls).toEqual([]);
    // too old
    m = await helper.createExport(v);
    const realNow = performance.now.bind(performance);
    const spy = vi.spyOn(performance, 'now').mockImplementation(() => realNow() + HANDOFF_MS + 1);
    try {
      fake.calls.length = 0;
      await helper.initializeConnection({ ...v, providerLocation: m.provider_location }, { initiator: A });
      expect(listings()).toBe(1);
    } finally {
      spy.mockRestore();
    }
    // no pid known: no handoff at all
    pid.now = null;
    await helper.createExport(v);
    fake.calls.length = 0;
    await helper.initializeConnection({ ...v, providerLocation: m.provider_location }, { initiator: A });
    expect(listings()).toBe(1);
  });

  it('any other operation in between drops it', async () => {
    pid.now = 4242;
    const { fake, helper, volume, listings } = withPid();
    const v = { ...volume(1), providerAuth: AUTH };
    const m = await helper.createExport(v);
    await helper.extendTarget(v);
    fake.calls.length = 0;
    await helper.initializeConnection({ ...v, providerLocation: m.provider_location }, { initiator: A });
    expect(listings()).toBe(1);
  });
});

describe('per-export state', () => {
  it('the per-tgtd mutexes and handoffs hold no key once 30 exports have come and gone', async () => {
    const { fake, helper, volume } = setup({ servingPid: async () => 4242 });
    const rows = await Promise.all(Array.from({ length: 30 }, (_, i) => attach(helper, volume(i), `iqn.1994-05.com.redhat:h${i % 3}`)));
    expect(fake.targets.size).toBe(30);
    await Promise.all(rows.map(async (r, i) => {
      await helper.terminateConnection(r, { initiator: `iqn.1994-05.com.redhat:h${i % 3}` }, {});
      await helper.removeExport(r);
    }));
    expect(fake.targets.size).toBe(0);
    expect(fake.accounts.size).toBe(0);
    expect(tgtLockKeys()).toEqual({ targets: [], tids: [], handoffs: [] });
  });
});
