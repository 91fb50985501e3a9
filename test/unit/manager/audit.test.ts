// The audit's judgement on hand-made inventories (the real target side and database are in
// test/soak/per-host-soak.test.ts, which runs `cinderblock audit` at quiescence): which mapping is
// an exposure, what a second look clears, and what --fix calls.
import { describe, expect, it } from 'vitest';
import type { ExportInventory } from '../../../drivers/exports.js';
import { PER_HOST_LOCATION } from '../../../drivers/host-target-exports.js';
import type { HostTargetRecord } from '../../../drivers/targets/host-target/host-target-registry.js';
import { ANY_HOST } from '../../../drivers/targets/nvmet/nvmet-configfs.js';
import { fixFindings, runAudit, type AuditPorts } from '../../../src/manager/audit.js';

const VOL = '11111111-2222-4333-8444-555555555555';
const GONE = '99999999-2222-4333-8444-555555555555';
const IQN = 'iqn.2010-10.org.openstack:cb-compute-a-0123456789ab';
const A = 'iqn.1994-05.com.redhat:compute-a';

function record(luns: HostTargetRecord['luns']): HostTargetRecord {
  return { host: 'compute-a', iqn: IQN, chap: { username: 'u'.repeat(20), password: 'p'.repeat(16) }, nextLun: 3, generation: 0, released: {}, luns };
}

function ports(inv: () => ExportInventory, attachments: Array<Record<string, unknown>>, calls: string[] = []): AuditPorts {
  const vol = { id: VOL, _name_id: null, deleted: false, provider_location: PER_HOST_LOCATION };
  return {
    backend: 'lvm',
    host: 'storage@lvm',
    db: {
      volumes: { listByHost: async () => [vol], find: async (id: string) => (id === VOL ? vol : undefined) },
      attachments: { listByVolume: async (id: string) => (id === VOL ? attachments : []) },
    } as unknown as AuditPorts['db'],
    exports: {
      inventory: async () => inv(),
      unmapFromHostTarget: async (iqn: string, id: string) => {
        calls.push(`unmap ${iqn} ${id}`);
      },
      reapplyHostTarget: async (iqn: string) => {
        calls.push(`reapply ${iqn}`);
      },
      removeExport: async () => undefined,
      terminateConnection: async (v, c) => {
        calls.push(`terminate ${v.name} ${JSON.stringify(c)} (${v.providerLocation})`);
      },
      ensureExport: async (v, _initiators, connectors) => {
        calls.push(`ensure ${v.name} ${JSON.stringify(connectors)}`);
      },
    },
  };
}

const mapped = (lun: number, volumeId: string) => ({ lun, volumeId, volumeName: `volume-${volumeId}`, backingPath: `/dev/vg/volume-${volumeId}`, serial: volumeId, initiators: [A] });
const live = (luns: Array<{ lun: number; serial: string }>, initiators = [A]) => [{ iqn: IQN, luns: luns.map((l) => ({ ...l, backingPath: '/dev/x' })), initiators, sessions: [], chapUsers: [] }];
const attached = { id: 'att-1', attach_status: 'attached', connector: JSON.stringify({ host: 'compute-a', initiator: A }) };

describe('the export audit', () => {
  it('is clean when each LUN is backed by an attachment of its host and carries its serial', async () => {
    const inv = { hostTargets: { records: [record([mapped(1, VOL)])], live: live([{ lun: 1, serial: VOL.replaceAll('-', '') }]) }, perVolume: [] };
    expect(await runAudit(ports(() => inv, [attached]), { settleMs: 0 })).toEqual([]);
  });

  it('calls a mapping without an attachment of that host an exposure, and --fix unmaps it', async () => {
    const inv = { hostTargets: { records: [record([mapped(1, VOL)])], live: live([{ lun: 1, serial: VOL }]) }, perVolume: [] };
    const other = { ...attached, connector: JSON.stringify({ host: 'compute-b', initiator: 'iqn.1994-05.com.redhat:compute-b' }) };
    const calls: string[] = [];
    const p = ports(() => inv, [other], calls);
    const f = await runAudit(p, { settleMs: 0 });
    // and compute-b, attached, has no LUN: lost access, reported, never "fixed" by adding access
    expect(f.map((x) => [x.class, x.kind, x.fix === null])).toEqual([
      ['mapping-without-attachment', 'exposure', false],
      ['attachment-without-mapping', 'lost-access', true],
    ]);
    const actions = await fixFindings(p, f);
    expect(actions.every((a) => a.done)).toBe(true);
    expect(calls).toEqual([`unmap ${IQN} ${VOL}`]);
  });

  it('does not call the attachment being made (attaching, no connector yet) an exposure', async () => {
    const inv = { hostTargets: { records: [record([mapped(1, VOL)])], live: live([{ lun: 1, serial: VOL }]) }, perVolume: [] };
    expect(await runAudit(ports(() => inv, [{ id: 'att-2', attach_status: 'attaching', connector: null }]), { settleMs: 0 })).toEqual([]);
  });

  it('finds unrecorded LUNs, wrong serials, unadmitted initiators, orphan targets and exports of deleted volumes', async () => {
    const inv: ExportInventory = {
      hostTargets: {
        records: [record([mapped(1, VOL), mapped(2, GONE)])],
        live: [
          ...live([{ lun: 1, serial: 'deadbeef' }, { lun: 2, serial: GONE }, { lun: 7, serial: 'x' }], [A, 'iqn.1994-05.com.redhat:intruder']),
          { iqn: 'iqn.2010-10.org.openstack:cb-old-0123456789ab', luns: [], initiators: [], sessions: [], chapUsers: [] },
        ],
      },
      perVolume: [],
    };
    const calls: string[] = [];
    const p = ports(() => inv, [attached], calls);
    const classes = (await runAudit(p, { settleMs: 0 })).map((f) => f.class).sort();
    expect(classes).toEqual(['export-of-deleted-volume', 'orphan-host-target', 'serial-mismatch', 'unadmitted-initiator', 'unrecorded-lun']);
    await fixFindings(p, await runAudit(p, { settleMs: 0 }));
    // one reapply per host target however many drifts it has, the orphan removed through a reapply too
    expect(calls.sort()).toEqual([`reapply ${IQN}`, 'reapply iqn.2010-10.org.openstack:cb-old-0123456789ab', `unmap ${IQN} ${GONE}`]);
  });

  it('reports a volume object no row names, never offering to delete it, and ignores names cinder does not give', async () => {
    const inv = { hostTargets: null, perVolume: [] };
    const p = ports(() => inv, [attached]);
    const obj = (name: string) => ({ name, cinderName: name, size: 1, inUse: false, isSnapshot: false, origin: null });
    p.driver = { listBackendObjects: async () => [obj(`volume-${VOL}`), obj(`volume-${GONE}`), obj('swap'), { ...obj(`volume-${GONE}`), isSnapshot: true }] };
    const f = await runAudit(p, { settleMs: 0 });
    expect(f.map((x) => [x.class, x.volumeId, x.fix])).toEqual([['object-without-volume', GONE, null]]);
  });

  describe('per-volume targets (cinder\'s layout): whom each admits', () => {
    const VIQN = `iqn.2010-10.org.openstack:volume-${VOL}`;
    const HOST_NQN = 'nqn.2014-08.org.nvmexpress:uuid:0f0e0d0c-0b0a-0908-0706-050403020100';
    const exported = (admitted: string[]): ExportInventory => ({ hostTargets: null, perVolume: [{ volumeName: `volume-${VOL}`, iqn: VIQN, live: true, admitted }] });

    it('is clean when every admitted initiator or host NQN has a live attachment of the volume', async () => {
      const nvme = { id: 'att-3', attach_status: 'attached', connector: JSON.stringify({ host: 'compute-c', nqn: HOST_NQN }) };
      expect(await runAudit(ports(() => exported([A.toUpperCase(), HOST_NQN]), [attached, nvme]), { settleMs: 0 })).toEqual([]);
    });

    it('calls an initiator admitted without an attachment an exposure, and --fix revokes it through the per-volume path', async () => {
      const calls: string[] = [];
      const detached = { ...attached, attach_status: 'detached' };
      const p = ports(() => exported([A, HOST_NQN]), [detached], calls);
      const f = await runAudit(p, { settleMs: 0 });
      expect(f.map((x) => [x.class, x.kind, x.initiator, x.iqn])).toEqual([
        ['unadmitted-initiator', 'exposure', A, VIQN],
        ['unadmitted-initiator', 'exposure', HOST_NQN, VIQN],
      ]);
      expect((await fixFindings(p, f)).every((a) => a.done)).toBe(true);
      // the row says per-host (ports' volume): the revoke still takes the per-volume target's path
      expect(calls).toEqual([
        `terminate volume-${VOL} {"initiator":"${A}"} (per-volume target found by the audit)`,
        `terminate volume-${VOL} {"nqn":"${HOST_NQN}"} (per-volume target found by the audit)`,
      ]);
    });

    it('calls an NVMe subsystem open to any host (attr_allow_any_host = 1, as cinder leaves it) an exposure; --fix closes it to the attached NQNs', async () => {
      const calls: string[] = [];
      const nvme = { id: 'att-5', attach_status: 'attached', connector: JSON.stringify({ host: 'compute-c', nqn: HOST_NQN }) };
      const p = ports(() => exported([ANY_HOST]), [nvme], calls);
      const f = await runAudit(p, { settleMs: 0 });
      expect(f.map((x) => [x.class, x.kind, x.initiator])).toEqual([['unadmitted-initiator', 'exposure', ANY_HOST]]);
      expect(f[0]!.meaning).toMatch(/any machine that reaches its port can connect and read volume/);
      expect((await fixFindings(p, f)).every((a) => a.done)).toBe(true);
      expect(calls).toEqual([`ensure volume-${VOL} [{"host":"compute-c","nqn":"${HOST_NQN}"}]`]);
    });

    it('does not judge admissions while an attachment of the volume is being made (no connector yet)', async () => {
      expect(await runAudit(ports(() => exported([A]), [{ id: 'att-4', attach_status: 'attaching', connector: null }]), { settleMs: 0 })).toEqual([]);
    });
  });

  it('keeps only what a second look still sees', async () => {
    let n = 0;
    const clean = { hostTargets: { records: [record([mapped(1, VOL)])], live: live([{ lun: 1, serial: VOL }]) }, perVolume: [] };
    const transient = { hostTargets: { records: [record([mapped(1, VOL)])], live: live([{ lun: 1, serial: VOL }, { lun: 2, serial: 'x' }]) }, perVolume: [] };
    expect(await runAudit(ports(() => (n++ === 0 ? transient : clean), [attached]), { settleMs: 1 })).toEqual([]);
  });
});
