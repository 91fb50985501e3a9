import { describe, expect, it } from 'vitest';
import { findInconsistencies, formatVolume, type VolumeReport } from '../../../src/cli/volume.js';

const GiB = 1024 ** 3;
const INIT = 'iqn.1994-05.com.redhat:compute1';
const PATH = '/dev/cinder-volumes/volume-1';

function base(): Omit<VolumeReport, 'inconsistencies'> {
  return {
    volume: {
      id: '1',
      name: 'db-data',
      backendName: 'volume-1',
      status: 'in-use',
      attachStatus: 'attached',
      migrationStatus: null,
      sizeGb: 1,
      host: 'storage1@lvm#lvm',
      multiattach: false,
      providerLocation: '10.0.0.5:3260,1 iqn.2010-10.org.openstack:volume-1 1',
      chapUser: 'userABC',
      updatedAt: null,
    },
    backend: 'lvm',
    object: { kind: 'lv', path: PATH, exists: true, sizeBytes: GiB, usedBytes: GiB / 4, thinPool: 'cinder-volumes-pool', active: true, open: true },
    export: {
      helper: 'tgtadm',
      iqn: 'iqn.2010-10.org.openstack:volume-1',
      portals: ['10.0.0.5:3260'],
      present: true,
      luns: [{ lun: 1, backingPath: PATH, sizeMb: 1074 }],
      acls: [INIT],
      chapUsers: ['userABC'],
      sessions: [{ initiator: INIT, addresses: ['10.0.0.9'] }],
    },
    hostTargets: [],
    attachments: [{ id: 'a', status: 'attached', host: 'compute1', instance: 'i', mountpoint: '/dev/vdb', mode: 'rw', initiator: INIT, attachedAt: null }],
  };
}

/** The same volume exported per host over NVMe/TCP: a namespace of compute1's subsystem. */
function perHost(): Omit<VolumeReport, 'inconsistencies'> {
  const r = base();
  const nqn = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b0001';
  r.volume.providerLocation = 'cinderblock:per-host';
  r.volume.chapUser = null;
  r.export = null;
  r.attachments[0]!.initiator = nqn;
  r.hostTargets = [
    { helper: 'nvmet', iqn: 'nqn.iqn.2010-10.org.openstack:-cb-compute1-0123456789ab', host: 'compute1', portals: [], present: true, luns: [{ lun: 10, backingPath: PATH, sizeMb: null }], acls: [nqn], chapUsers: [], sessions: [] },
  ];
  return r;
}

describe('volume show: what disagrees', () => {
  it('finds nothing when the row, the LV, the export and the attachment agree', () => {
    expect(findInconsistencies(base())).toEqual([]);
  });

  it('an in-use volume without a live attachment, and the ACL and session that outlived it', () => {
    const r = base();
    r.attachments[0]!.status = 'detached';
    expect(findInconsistencies(r)).toEqual([
      expect.stringMatching(/^status is in-use but no attachment is attached or attaching/),
      `ACL ${INIT} has no live attachment: a detach did not revoke it`,
      `session from ${INIT} (10.0.0.9) has no live attachment`,
    ]);
  });

  it('an export missing on the daemon, and an LV missing for an available volume', () => {
    const r = base();
    r.export = { ...r.export!, present: false, luns: [], acls: [], chapUsers: [], sessions: [] };
    r.object = { ...r.object!, exists: false, sizeBytes: null };
    const found = findInconsistencies(r);
    expect(found).toContain(`status is in-use but ${PATH} does not exist: the data is gone or the volume lives elsewhere`);
    expect(found.some((f) => f.startsWith('provider_location names iqn.2010-10.org.openstack:volume-1 but tgtadm has no such target'))).toBe(true);
  });

  it('a target serving another device, another CHAP user, an attached initiator outside the ACL, a short LV, an inactive LV', () => {
    const r = base();
    r.export = { ...r.export!, luns: [{ lun: 1, backingPath: '/dev/other', sizeMb: 1 }], chapUsers: ['someoneElse'], acls: [] };
    r.object = { ...r.object!, sizeBytes: GiB / 2, active: false };
    const found = findInconsistencies(r);
    expect(found).toEqual(
      expect.arrayContaining([
        `target iqn.2010-10.org.openstack:volume-1 serves /dev/other, not ${PATH}`,
        'provider_auth names CHAP user userABC but the target has someoneElse: logins with the stored credentials fail',
        `attached initiator ${INIT} is not in the target's ACL: it cannot log in again`,
        `${PATH} holds ${GiB / 2} bytes, less than the volume's 1 GiB: an extend did not finish`,
        `${PATH} is not active while attached: initiators read I/O errors; \`lvchange -ay cinder-volumes/volume-1\``,
      ]),
    );
  });

  it('a volume of another host is only looked at in the database', () => {
    const r = { ...base(), backend: null, object: null, export: null, hostTargets: [] };
    expect(findInconsistencies(r)).toEqual([expect.stringMatching(/is not one of this host's backends/)]);
  });
});

describe('volume show, per-host layout', () => {
  it('finds nothing when the host target of the attached host maps it', () => {
    expect(findInconsistencies(perHost())).toEqual([]);
  });

  it('a mapping the daemon lost, and an attached host whose target does not map it', () => {
    const r = perHost();
    r.hostTargets[0]!.present = false;
    r.attachments.push({ id: 'b', status: 'attached', host: 'compute2', instance: 'j', mountpoint: '/dev/vdc', mode: 'rw', initiator: null, attachedAt: null });
    r.volume.multiattach = true;
    expect(findInconsistencies(r)).toEqual([
      expect.stringMatching(/^the registry maps this volume into nqn\.iqn\.2010-10\.org\.openstack:-cb-compute1-0123456789ab \(host compute1\), but nvmet does not serve it there/),
      expect.stringMatching(/^attached to compute2 \(attachment b\) but no host target of compute2 maps it/),
    ]);
  });

  it('prints the host targets with their LUN and whom they admit', () => {
    const text = formatVolume({ ...perHost(), inconsistencies: [] });
    expect(text).toContain('per host: see host targets');
    expect(text).toContain('host targets (target_layout = per-host)');
    expect(text).toContain(`LUN:          10:${PATH}`);
  });
});

describe('volume show as text', () => {
  it('shows the LV, the export with its CHAP user and sessions, the attachment and the verdict', () => {
    const text = formatVolume({ ...base(), inconsistencies: [] });
    expect(text).toContain('CHAP user:         userABC');
    expect(text).toContain(`  LV:          ${PATH}`);
    expect(text).toContain('  used (thin): 0.25 GiB');
    expect(text).toContain(`  sessions:   ${INIT}@10.0.0.9`);
    expect(text).toContain(`  ACL:        ${INIT}`);
    expect(text).toMatch(/a\s+attached\s+compute1\s+i\s+\/dev\/vdb\s+rw/);
    expect(text).toMatch(/inconsistencies\n {2}none\n$/);
  });
});
