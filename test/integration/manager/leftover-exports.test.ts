// Issue 10 item 7, "leftovers after kill -9": an export cut short by a kill -9 leaves a CHAP
// account in tgtd that belongs to no volume and no target file, and nothing ever removes it, not
// even deleting every volume (delete_volume skips remove_export without a provider_location).
//
// The crash is reproduced in-process with the agent's own tgt helper on the harness's tgtd: its
// command runner "dies" right after a chosen tgtadm command has succeeded, so tgtd keeps exactly
// what a kill -9 at that point leaves (later commands, the helper's rollback included, never
// reach tgtd), and the database never hears of the export. Then: the volumes are deleted (the
// account survives: the bug), the agent restarts, and its start-up sweep removes what is ours
// while another owner's account and targets stay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { processRunner, type CommandRunner } from '../../../src/exec/run-command.js';
import { TgtTarget } from '../../../drivers/targets/tgt/tgt-target.js';
import { parseShowAccounts, parseShowTargets } from '../../../drivers/targets/tgt/tgtadm-parse.js';
import { seedAttachment, seedVolume } from '../../helpers/cinder-db.js';
import { startHarness, volumeObject, waitFor, type Harness } from './helpers.js';

const PREFIX = 'iqn.2010-10.org.openstack:';
const INITIATOR = 'iqn.1994-05.com.redhat:leftover01';
const FOREIGN_USER = 'ForeignOwner7Account';
const FOREIGN_IQN_OURS_PREFIX = `${PREFIX}volume-00000000-0000-4000-8000-00000000f00d`;
const FOREIGN_IQN_OTHER = 'iqn.2003-01.org.example:someone-elses-disk';

/** A runner that stops reaching tgtd once a command matching `fatal` has run: a kill -9 just after it. */
function dyingRunner(fatal: (argv: readonly string[]) => boolean): CommandRunner {
  const real = processRunner({ timeoutMs: 15_000 });
  let dead = false;
  return async (argv) => {
    if (dead) throw new Error('simulated kill -9: this command never ran');
    const r = await real(argv);
    if (r.exitCode === 0 && fatal(argv)) dead = true;
    return r;
  };
}

const isOp = (argv: readonly string[], op: string, mode: string) => argv.includes('--op') && argv[argv.indexOf('--op') + 1] === op && argv[argv.indexOf('--mode') + 1] === mode;

describe('start-up sweep of exports and CHAP accounts a kill -9 left (tgt)', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ withTgtd: true });
  }, 120_000);
  afterAll(async () => {
    await h?.close();
  });

  const accounts = async () => parseShowAccounts((await h.tgtd!.tgtadm('--lld', 'iscsi', '--mode', 'account', '--op', 'show')).stdout);
  const targets = async () => parseShowTargets((await h.tgtd!.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout);
  const createAvailable = async () => {
    const id = await seedVolume(h.db, { host: h.poolHost });
    await h.cast('create_volume', { volume: await volumeObject(h.db, id), request_spec: null, filter_properties: {}, allow_reschedule: false });
    await waitFor('available', async () => (await h.db.volumes.get(id)).status === 'available');
    return id;
  };
  const deleteVolume = async (id: string) => {
    await h.db.volumes.update(id, { status: 'deleting' });
    await h.cast('delete_volume', { volume: await volumeObject(h.db, id), unmanage_only: false, cascade: false });
    await waitFor('deleted', async () => (await h.db.volumes.find(id)) === undefined);
  };
  /** create_export of `id` by the agent's own helper, killed right after the command `fatal` matches */
  const crashedExport = async (id: string, fatal: (argv: readonly string[]) => boolean) => {
    const helper = new TgtTarget({
      targetPrefix: PREFIX,
      targetIpAddress: '127.0.0.1',
      targetSecondaryIpAddresses: [],
      targetPort: h.tgtd!.port,
      targetProtocol: 'iscsi',
      volumesDir: h.volumesDir,
      iscsiWriteCache: 'on',
      iscsiTargetFlags: '',
      controlPort: h.tgtd!.controlPort,
      runner: dyingRunner(fatal),
    });
    const v = { id, name: `volume-${id}`, providerLocation: null, providerAuth: null, backingPath: join(h.poolDir, `volume-${id}`), multiattach: false };
    await expect(helper.createExport(v)).rejects.toThrow();
    return `${PREFIX}volume-${id}`;
  };

  it('reproduces the leftover account, then removes only what is ours at start-up', async (t) => {
    if (!h.tgtd) return t.skip();
    const before = new Set(await accounts());

    // 1. kill -9 right after the CHAP account was made, before it was bound (and before the
    //    target file and provider_auth were written)
    const a = await createAvailable();
    const iqnA = await crashedExport(a, (argv) => isOp(argv, 'new', 'account'));
    // 2. kill -9 right after the account was bound to the target, before the LUN
    const b = await createAvailable();
    const iqnB = await crashedExport(b, (argv) => isOp(argv, 'bind', 'account'));
    const leftover = (await accounts()).filter((u) => !before.has(u));
    expect(leftover).toHaveLength(2);
    expect((await targets()).map((x) => x.iqn)).toEqual(expect.arrayContaining([iqnA, iqnB]));
    expect((await h.db.volumes.get(a)).provider_auth).toBeNull();

    // an in-use volume, whose export and account must survive the sweep
    const inUse = await createAvailable();
    const att = await seedAttachment(h.db, inUse, { instanceUuid: null });
    await h.db.volumes.update(inUse, { status: 'reserved' });
    await h.call('attachment_update', { vref: await volumeObject(h.db, inUse), connector: { initiator: INITIATOR, host: 'c' }, attachment_id: att }, '3.9');
    await h.db.attachments.volumeAttached(att, null, 'c', 'na', 'rw', true);
    const inUseUser = (await h.db.volumes.get(inUse)).provider_auth!.split(' ')[1]!;

    // another owner's objects on the same tgtd: an account nobody uses, a target with our prefix
    // whose LUN is not one of our volumes, and a target of its own naming
    const other = join(h.dir, 'someone-elses.img');
    await writeFile(other, Buffer.alloc(1024 * 1024));
    const adm = (...args: string[]) => h.tgtd!.tgtadm('--lld', 'iscsi', ...args);
    expect((await adm('--op', 'new', '--mode', 'account', '--user', FOREIGN_USER, '--password', 'ForeignSecret123')).exitCode).toBe(0);
    for (const [tid, iqn] of [[900, FOREIGN_IQN_OURS_PREFIX], [901, FOREIGN_IQN_OTHER]] as const) {
      expect((await adm('--op', 'new', '--mode', 'target', '--tid', String(tid), '-T', iqn)).exitCode).toBe(0);
      expect((await adm('--op', 'new', '--mode', 'logicalunit', '--tid', String(tid), '--lun', '1', '-b', other)).exitCode).toBe(0);
    }

    // The bug: deleting the volumes removes neither the targets nor the accounts a crash left
    // (no provider_location, so delete_volume skips remove_export), however long one waits.
    await deleteVolume(a);
    await deleteVolume(b);
    expect(await accounts()).toEqual(expect.arrayContaining(leftover));
    expect((await targets()).map((x) => x.iqn)).toEqual(expect.arrayContaining([iqnA, iqnB]));

    // The fix: the start-up sweep.
    await h.restartAgent();
    const after = await accounts();
    for (const u of leftover) expect(after).not.toContain(u);
    expect(after).toContain(FOREIGN_USER);
    expect(after).toContain(inUseUser);
    const iqns = (await targets()).map((x) => x.iqn);
    expect(iqns).not.toContain(iqnA);
    expect(iqns).not.toContain(iqnB);
    expect(iqns).toEqual(expect.arrayContaining([FOREIGN_IQN_OURS_PREFIX, FOREIGN_IQN_OTHER, `${PREFIX}volume-${inUse}`]));
    const inUseTarget = (await targets()).find((x) => x.iqn === `${PREFIX}volume-${inUse}`)!;
    expect(inUseTarget.acls).toEqual([INITIATOR]);
    expect(inUseTarget.accounts).toEqual([inUseUser]);

    // and a later start finds nothing more to remove
    await h.restartAgent();
    expect(await accounts()).toEqual(after);

    for (const tid of [900, 901]) await adm('--op', 'delete', '--force', '--mode', 'target', '--tid', String(tid));
    await adm('--op', 'delete', '--mode', 'account', '--user', FOREIGN_USER);
  }, 180_000);
});
