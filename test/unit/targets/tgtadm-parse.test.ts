// Parsers against output captured from tgtd 1.0.85 (Debian bookworm) in fixtures/.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  findTarget,
  findTargetInShow,
  isInitiatorNameAcl,
  nextFreeTid,
  parseShowAccounts,
  parseShowConnections,
  parseShowPortals,
  parseShowSystem,
  parseShowTargets,
  TargetListing,
  targetHeaders,
} from '../../../drivers/targets/tgt/tgtadm-parse.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('tgtadm --mode target --op show', () => {
  const targets = parseShowTargets(fixture('tgtadm-show-target-sessions.txt'));

  it('finds every target with tid and IQN', () => {
    expect(targets.map((t) => [t.tid, t.iqn])).toEqual([
      [1, 'iqn.2010-10.org.openstack:volume-11111111-2222-3333-4444-555555555555'],
      [2, 'iqn.2010-10.org.openstack:volume-22222222-2222-3333-4444-555555555555'],
    ]);
    expect(targets[0]).toMatchObject({ driver: 'iscsi', state: 'ready' });
  });

  it('reads I_T nexus (sessions) with initiator and address, IPv6 included', () => {
    expect(targets[0]!.nexuses).toEqual([{ nexus: 7, initiator: 'iqn.1994-05.com.redhat:hostA', alias: null, connections: [{ cid: 0, address: '127.0.0.1' }] }]);
    expect(targets[1]!.nexuses).toEqual([
      { nexus: 6, initiator: 'iqn.1994-05.com.redhat:hostA', alias: null, connections: [{ cid: 0, address: '127.0.0.1' }] },
      { nexus: 8, initiator: 'iqn.1994-05.com.redhat:hostC', alias: null, connections: [{ cid: 0, address: '::1' }] },
    ]);
  });

  it('reads LUNs: controller LUN 0 without backing store, LUN 1 with path, size, flags, thin', () => {
    expect(targets[0]!.luns[0]).toMatchObject({ lun: 0, type: 'controller', backingStorePath: null, backingStoreType: 'null', sizeMb: 0, blockSize: 1, backingStoreFlags: [] });
    expect(targets[0]!.luns[1]).toEqual({
      lun: 1,
      type: 'disk',
      scsiId: 'IET     00010001',
      scsiSn: 'beaf11',
      sizeMb: 101,
      blockSize: 512,
      online: true,
      readonly: false,
      thinProvisioning: true,
      backingStoreType: 'rdwr',
      backingStorePath: '/tmp/cbt/f1.img',
      backingStoreFlags: [],
    });
    expect(targets[1]!.luns[1]).toMatchObject({ sizeMb: 34, backingStorePath: '/tmp/cbt/f2.img', backingStoreFlags: ['direct'] });
  });

  it('reads accounts and ACLs (names and addresses in one list, in tgtd\'s order)', () => {
    expect(targets[0]!.accounts).toEqual(['USER1abcdefghijkmnop']);
    expect(targets[0]!.acls).toEqual(['iqn.1994-05.com.redhat:hostA', 'iqn.1994-05.com.redhat:hostB']);
    expect(targets[1]!.acls).toEqual(['0.0.0.0', 'iqn.1994-05.com.redhat:hostA', 'iqn.1994-05.com.redhat:hostC']);
    expect(targets[1]!.acls.filter(isInitiatorNameAcl)).toEqual(['iqn.1994-05.com.redhat:hostA', 'iqn.1994-05.com.redhat:hostC']);
  });

  it('separates outgoing accounts and reads address ACLs (ALL, networks)', () => {
    const [t] = parseShowTargets(fixture('tgtadm-show-target-outgoing.txt'));
    expect(t).toMatchObject({ tid: 3, accounts: ['inuser'], outgoingAccounts: ['outuser'], acls: ['ALL', '10.0.0.0/24'], nexuses: [] });
    expect(t!.acls.some(isInitiatorNameAcl)).toBe(false);
  });

  it('empty output means no targets; a --tid parameter dump is not a target list', () => {
    expect(parseShowTargets('')).toEqual([]);
    expect(parseShowTargets(fixture('tgtadm-show-target-params.txt'))).toEqual([]);
  });

  it('findTarget and nextFreeTid', () => {
    expect(findTarget(targets, 'iqn.2010-10.org.openstack:volume-22222222-2222-3333-4444-555555555555')?.tid).toBe(2);
    expect(findTarget(targets, 'iqn.x')).toBeUndefined();
    expect(nextFreeTid(targets)).toBe(3);
    expect(nextFreeTid([])).toBe(1);
  });
});

describe('other show modes', () => {
  it('accounts', () => {
    expect(parseShowAccounts(fixture('tgtadm-show-account.txt'))).toEqual(['USER2abcdefghijkmnop', 'USER1abcdefghijkmnop']);
    expect(parseShowAccounts(fixture('tgtadm-show-account-outgoing.txt'))).toEqual(['outuser', 'inuser']);
    expect(parseShowAccounts('Account list:\n')).toEqual([]);
  });

  it('system', () => {
    const s = parseShowSystem(fixture('tgtadm-show-sys.txt'));
    expect(s.state).toBe('ready');
    expect(s.llds).toEqual({ iscsi: 'ready', iser: 'error' });
    expect(s.backingStores).toContain('rdwr');
    expect(s.backingStores).toContain('aio');
  });

  it('portals, IPv6 unbracketed', () => {
    expect(parseShowPortals(fixture('tgtadm-show-portal.txt'))).toEqual([
      { host: '::1', port: 13260, tpgt: 1 },
      { host: '127.0.0.2', port: 13260, tpgt: 1 },
      { host: '127.0.0.1', port: 13260, tpgt: 1 },
    ]);
  });

  it('connections of a target', () => {
    expect(parseShowConnections(fixture('tgtadm-show-conn.txt'))).toEqual([
      { sid: 8, cid: 0, initiator: 'iqn.1994-05.com.redhat:hostC', address: '::1' },
      { sid: 6, cid: 0, initiator: 'iqn.1994-05.com.redhat:hostA', address: '127.0.0.1' },
    ]);
  });
});

describe('one target out of a listing (TargetListing, findTargetInShow)', () => {
  const text = fixture('tgtadm-show-target-sessions.txt');
  const all = parseShowTargets(text);

  it('finds each target with exactly what the whole parse gives, first and last block alike', () => {
    for (const t of all) expect(findTargetInShow(text, t.iqn)).toEqual(t);
    expect(findTargetInShow(text, 'iqn.2010-10.org.openstack:volume-nope')).toBeUndefined();
    expect(findTargetInShow('', all[0]!.iqn)).toBeUndefined();
  });

  it('matches the whole IQN of a header line only: not a prefix, not an initiator or ACL line', () => {
    const a = 'iqn.2010-10.org.openstack:volume-1';
    const listing = [
      `Target 3: ${a}0`,
      '    ACL information:',
      `        ${a}`,
      'Target 4: iqn.2000-01.other:t',
      '    I_T nexus information:',
      '        I_T nexus: 2',
      `            Initiator: ${a} alias: none`,
      '    ACL information:',
      '        ALL',
      `Target 12: ${a}`,
      '    Account information:',
      '        user1',
      '    ACL information:',
      '        iqn.1994-05.com.redhat:h',
      '',
    ].join('\n');
    expect(findTargetInShow(listing, a)).toMatchObject({ tid: 12, iqn: a, accounts: ['user1'], acls: ['iqn.1994-05.com.redhat:h'] });
    expect(findTargetInShow(listing, `${a}0`)).toMatchObject({ tid: 3, acls: [a] });
    expect(findTargetInShow(listing, 'iqn.2010-10.org.openstack:volume-')).toBeUndefined();
    expect(targetHeaders(listing)).toEqual([
      { tid: 3, iqn: `${a}0` },
      { tid: 4, iqn: 'iqn.2000-01.other:t' },
      { tid: 12, iqn: a },
    ]);
    expect(new TargetListing(listing).nextFreeTid()).toBe(13);
    expect(new TargetListing('').nextFreeTid()).toBe(1);
  });

  it('tells whether another target uses an account, parsing only when the name appears at all', () => {
    const outgoing = fixture('tgtadm-show-target-outgoing.txt');
    const parsed = parseShowTargets(outgoing);
    const withIn = parsed.find((t) => t.accounts.length > 0)!;
    const l = new TargetListing(outgoing);
    expect(l.accountInUse('neverHeardOf')).toBe(false);
    expect(l.accountInUse(withIn.accounts[0]!)).toBe(true);
    expect(l.accountInUse(withIn.accounts[0]!, withIn.iqn)).toBe(parsed.some((t) => t !== withIn && (t.accounts.includes(withIn.accounts[0]!) || t.outgoingAccounts.includes(withIn.accounts[0]!))));
    const out = parsed.find((t) => t.outgoingAccounts.length > 0);
    if (out) expect(l.accountInUse(out.outgoingAccounts[0]!)).toBe(true);
    expect(l.all()).toEqual(parsed);
    expect(l.find(withIn.iqn)).toEqual(withIn);
  });
});
