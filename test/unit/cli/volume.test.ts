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
    attachments: [{ id: 'a', status: 'attached', host: 'compute1', instance: 'i', mountpoint: '/dev/vdb', mode: 'rw', initiator: INIT, attachedAt: null }],
  };
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
    const r = { ...base(), backend: null, object: null, export: null };
    expect(findInconsistencies(r)).toEqual([expect.stringMatching(/is not one of this host's backends/)]);
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
