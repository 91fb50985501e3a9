// The export side the manager holds (drivers/exports.ts) over a recording helper: the volume is
// handed over with the driver's export path after its activation hook, the revocation policy
// keeps an initiator's ACL only for another attachment of its own, a never-exported volume has
// nothing to revoke or remove, and without a helper exports are NotImplementedError while the
// connector is still checked as cinder's iSCSI targets check it.
import { describe, expect, it } from 'vitest';
import type { DriverVolume } from '../../../drivers/driver.js';
import { TargetExports, keepsAcl } from '../../../drivers/exports.js';
import type { ExportedVolume, FoundExport, TargetHelper, TerminateOptions } from '../../../drivers/targets/target.js';

const vol = (providerLocation: string | null = '127.0.0.1:3260,1 iqn.x 1'): DriverVolume => ({
  id: 'v1',
  name: 'volume-v1',
  size: 1,
  providerLocation,
  providerAuth: null,
  multiattach: true,
});

function recordingHelper(found: FoundExport[] = []) {
  const calls: Array<{ op: string; v?: ExportedVolume; opts?: TerminateOptions }> = [];
  const helper: TargetHelper = {
    validateConnector: () => undefined,
    createExport: async (v) => {
      calls.push({ op: 'create', v });
      return { provider_location: 'loc', provider_auth: 'CHAP u p' };
    },
    ensureExport: async (v) => void calls.push({ op: 'ensure', v }),
    removeExport: async (v) => void calls.push({ op: 'remove', v }),
    initializeConnection: async (v) => {
      calls.push({ op: 'init', v });
      return { driver_volume_type: 'iscsi', data: {} };
    },
    terminateConnection: async (v, _c, opts) => void calls.push({ op: 'terminate', v, opts }),
    extendTarget: async (v) => void calls.push({ op: 'extend', v }),
    listExports: async () => [],
    findExports: async () => found,
  };
  return { helper, calls };
}

function dataSide() {
  const prepared: string[] = [];
  return {
    prepared,
    driver: {
      exportPath: (v: Pick<DriverVolume, 'name'>) => `/dev/vg/${v.name}`,
      prepareExport: async (v: Pick<DriverVolume, 'name'>) => void prepared.push(v.name),
    },
  };
}

describe('TargetExports', () => {
  it('hands the helper the driver export path, after the activation hook', async () => {
    const { helper, calls } = recordingHelper();
    const data = dataSide();
    const e = new TargetExports({ target: helper, supervisor: null, driver: data.driver });
    expect(await e.createExport(vol(null))).toEqual({ provider_location: 'loc', provider_auth: 'CHAP u p' });
    await e.ensureExport(vol(), ['iqn.a']);
    expect(data.prepared).toEqual(['volume-v1', 'volume-v1']);
    expect(calls.map((c) => [c.op, c.v?.backingPath])).toEqual([
      ['create', '/dev/vg/volume-v1'],
      ['ensure', '/dev/vg/volume-v1'],
    ]);
  });

  it('keeps the ACL only when a remaining attachment is the same initiator', async () => {
    const { helper, calls } = recordingHelper();
    const e = new TargetExports({ target: helper, supervisor: null, driver: dataSide().driver });
    await e.terminateConnection(vol(), { initiator: 'iqn.a' }, { remaining: [{ initiator: 'iqn.b' }, { initiator: 'iqn.a' }] });
    await e.terminateConnection(vol(), { initiator: 'iqn.a' }, { remaining: [{ initiator: 'iqn.b' }] });
    await e.terminateConnection(vol(), null, { force: true, remaining: [{ initiator: 'iqn.b' }] });
    expect(calls.map((c) => c.opts)).toEqual([
      { force: false, keepAcl: true },
      { force: false, keepAcl: false },
      { force: true, keepAcl: false },
    ]);
    expect(keepsAcl({ initiator: 'iqn.a' }, [])).toBe(false);
    // an NVMe-only compute host is itself by its nqn (what the nvmet helper admits)
    expect(keepsAcl({ nqn: 'nqn.h:a' }, [{ nqn: 'nqn.h:a' }])).toBe(true);
    expect(keepsAcl({ nqn: 'nqn.h:a' }, [{ nqn: 'nqn.h:b' }])).toBe(false);
    expect(keepsAcl({ initiator: 'iqn.a', nqn: 'nqn.h:a' }, [{ initiator: 'iqn.b', nqn: 'nqn.h:a' }])).toBe(false);
  });

  it('a volume never exported has nothing to revoke or remove', async () => {
    const { helper, calls } = recordingHelper();
    const e = new TargetExports({ target: helper, supervisor: null, driver: dataSide().driver });
    await e.terminateConnection(vol(null), { initiator: 'iqn.a' }, {});
    await e.removeExport(vol(null));
    expect(calls).toEqual([]);
  });

  it('without a helper: exports are NotImplementedError, the connector is still checked', async () => {
    const e = new TargetExports({ target: null, supervisor: null, driver: dataSide().driver });
    await expect(e.createExport(vol())).rejects.toMatchObject({ className: 'NotImplementedError' });
    await expect(e.initializeConnection(vol(), { initiator: 'iqn.a' })).rejects.toMatchObject({ className: 'NotImplementedError' });
    expect(() => e.validateConnector({ host: 'h' })).toThrow(/initiator/);
    await e.removeExport(vol());
    await e.extendTarget(vol());
    expect(await e.findExports()).toEqual([]);
    expect(await e.removeOrphanAccounts()).toBe(0);
  });

  it('findExports keeps what serves this driver path, and a LUN-less target only when recorded', async () => {
    const found: FoundExport[] = [
      { iqn: 'iqn.x:volume-a', volumeName: 'volume-a', backingPath: '/dev/vg/volume-a', live: true, recorded: false },
      { iqn: 'iqn.x:volume-b', volumeName: 'volume-b', backingPath: '/dev/othervg/volume-b', live: true, recorded: true },
      { iqn: 'iqn.x:volume-c', volumeName: 'volume-c', backingPath: null, live: true, recorded: true },
      { iqn: 'iqn.x:volume-d', volumeName: 'volume-d', backingPath: null, live: true, recorded: false },
    ];
    const { helper } = recordingHelper(found);
    const e = new TargetExports({ target: helper, supervisor: null, driver: dataSide().driver });
    expect((await e.findExports()).map((f) => f.volumeName)).toEqual(['volume-a', 'volume-c']);
  });
});
