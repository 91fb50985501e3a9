// The LIO side of the attach soak (test/soak/soak-lio-side.ts) reads host targets as the soak's
// checks need them and makes the target-side fault, here on the configfs STAND-IN: what the lab
// run relies on before it spends forty minutes of emulated CPU.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostTargetIqn } from '../../../drivers/targets/host-target/host-target-name.js';
import { emptyHostTarget } from '../../../drivers/targets/host-target/host-target-registry.js';
import { LioHostTarget } from '../../../drivers/targets/lio/lio-host-target.js';
import { lioSoakSide } from '../../soak/soak-lio-side.js';
import { serialIsVolume } from '../../soak/soak-target-side.js';
import { makeStandIn } from '../targets/lio/configfs-standin.js';

const base = mkdtempSync('/tmp/cinderblock-soak-lio-unit-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const PREFIX = 'iqn.2010-10.org.openstack:';
const A = 'iqn.1994-05.com.redhat:soak-a';
const CHAP = { username: 'userAAAAAAAAAAAAAAAA', password: 'passAAAAAAAAAAAAAAAA' };
const ids = ['11111111-0000-4000-8000-000000000001', '22222222-0000-4000-8000-000000000002'];
const ctx = { logDir: base, manifest: null, say: () => undefined, finding: () => undefined };

async function hostTargetWithTwoLuns() {
  const root = join(base, `c${Math.random().toString(16).slice(2)}`);
  const si = await makeStandIn(root);
  const helper = new LioHostTarget({ targetPrefix: PREFIX, targetIpAddress: '127.0.0.1', targetSecondaryIpAddresses: [], targetPort: 3260, targetProtocol: 'iscsi', configfsRoot: root, io: si.io, isBlockDevice: async () => true });
  const luns = ids.map((id, lun) => ({ lun, volumeId: id, volumeName: `volume-${id}`, backingPath: `/dev/vg/volume-${id}`, serial: id, initiators: [A] }));
  const record = { ...emptyHostTarget('soak-a', hostTargetIqn(PREFIX, 'lvm', 'soak-a'), CHAP), luns };
  await helper.apply(record);
  return { side: lioSoakSide({ layout: 'per-host', configfsRoot: root, io: si.io }), iqn: record.iqn };
}

describe('the attach soak on LIO: its view of configfs and its fault', () => {
  it('lists a host target with its ACL and every LUN (0 included: LIO has no controller LUN) by serial', async () => {
    const { side, iqn } = await hostTargetWithTwoLuns();
    expect(side.controllerLun).toBeNull();
    expect(await side.targets()).toEqual([{ iqn, acls: [A], accounts: [], luns: [{ lun: 0, serial: ids[0] }, { lun: 1, serial: ids[1] }], serving: true }]);
    expect(await side.unboundAccounts()).toEqual([]);
  });

  it('the fault leaves no target and no storage object behind', async () => {
    const { side } = await hostTargetWithTwoLuns();
    const out = await side.injectFault(ctx, () => 0);
    expect(out.skipped).toBeUndefined();
    expect(out.notes).toEqual([]);
    expect(await side.targets()).toEqual([]);
  });

  it('a serial names its volume with or without dashes, in either case, and never when empty', () => {
    expect(serialIsVolume(ids[0]!, ids[0]!)).toBe(true);
    expect(serialIsVolume(ids[0]!.replaceAll('-', ''), ids[0]!)).toBe(true);
    expect(serialIsVolume(` ${ids[0]!.toUpperCase()}\n`, ids[0]!)).toBe(true);
    expect(serialIsVolume(ids[1]!, ids[0]!)).toBe(false);
    expect(serialIsVolume('', '')).toBe(false);
  });
});
