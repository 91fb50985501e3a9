// argv building and output parsing for iscsiadm, against output captured in the lab guest
// (open-iscsi 2.1.8, kernel 6.1, LIO target on 127.0.0.1 and 127.0.0.2; fixtures/README.md).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  describeIscsiadmExit,
  loginArgv,
  logoutArgv,
  nodeAuthArgvs,
  nodeDeleteArgv,
  nodeNewArgv,
  normalisePortal,
  parseSessionsP3,
  scsiDeviceDeletePath,
  scsiDeviceRescanPath,
  sessionListArgv,
  sessionRescanArgv,
  nodeManualScanArgv,
  scsiHostScanPath,
  targetedScanText,
} from '../../../src/connector/iscsiadm-commands.js';
import { redactArgv as redactIscsiadmArgv } from '../../../src/exec/redact-argv.js';

const fx = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const IQN = 'iqn.2010-10.org.openstack:volume-11111111-2222-3333-4444-555555555555';
const node = { iqn: IQN, portal: '127.0.0.1:3260' };

describe('iscsiadm argv', () => {
  it('node record, login, logout, delete as os-brick builds them', () => {
    const base = ['iscsiadm', '-m', 'node', '-T', IQN, '-p', '127.0.0.1:3260', '--interface', 'default'];
    expect(nodeNewArgv(node)).toEqual([...base, '--op', 'new']);
    expect(loginArgv(node)).toEqual([...base, '--login']);
    expect(logoutArgv(node)).toEqual([...base, '--logout']);
    expect(nodeDeleteArgv({ ...node, iface: 'hostb' })).toEqual([...base.slice(0, -1), 'hostb', '--op', 'delete']);
  });

  it('CHAP goes in three updates after node.startup=manual; no CHAP sets authmethod None', () => {
    const u = (k: string, v: string) => ['iscsiadm', '-m', 'node', '-T', IQN, '-p', '127.0.0.1:3260', '--interface', 'default', '--op', 'update', '-n', k, '-v', v];
    expect(nodeAuthArgvs(node, { username: 'user20charsxxxxxxxxx', password: 'Secret16charsxyz' })).toEqual([
      u('node.startup', 'manual'),
      u('node.session.auth.authmethod', 'CHAP'),
      u('node.session.auth.username', 'user20charsxxxxxxxxx'),
      u('node.session.auth.password', 'Secret16charsxyz'),
    ]);
    expect(nodeAuthArgvs(node, null)).toEqual([u('node.startup', 'manual'), u('node.session.auth.authmethod', 'None')]);
  });

  it('sessions, rescan, sysfs paths', () => {
    expect(sessionListArgv()).toEqual(['iscsiadm', '-m', 'session', '-P', '3']);
    expect(sessionRescanArgv(3)).toEqual(['iscsiadm', '-m', 'session', '-r', '3', '--rescan']);
    expect(scsiDeviceRescanPath('2:0:0:0')).toBe('/sys/class/scsi_device/2:0:0:0/device/rescan');
    expect(scsiDeviceDeletePath('3:0:0:1', '/x')).toBe('/x/class/scsi_device/3:0:0:1/device/delete');
  });

  it('portals: default port, IPv6 brackets, normalised', () => {
    expect(normalisePortal('10.0.0.5')).toBe('10.0.0.5:3260');
    expect(normalisePortal('10.0.0.5:3261')).toBe('10.0.0.5:3261');
    expect(normalisePortal('[fd00::5]:3260')).toBe('[fd00::5]:3260');
    expect(normalisePortal('[fd00::5]')).toBe('[fd00::5]:3260');
  });

  it('refuses values that would become options, extra record lines or another target', () => {
    expect(() => nodeNewArgv({ iqn: '--op=delete', portal: '1.2.3.4:3260' })).toThrow(/target IQN must be an iSCSI name/);
    expect(() => nodeNewArgv({ iqn: `${IQN}\nnode.startup = automatic`, portal: '1.2.3.4:3260' })).toThrow(/newline/);
    expect(() => nodeNewArgv({ iqn: IQN, portal: '-p:3260' })).toThrow(/portal address/);
    expect(() => nodeNewArgv({ iqn: IQN, portal: '1.2.3.4:99999' })).toThrow(/port/);
    expect(() => nodeNewArgv({ iqn: IQN, portal: '1.2.3.4; rm -rf /:3260' })).toThrow(/portal/);
    expect(() => nodeNewArgv({ ...node, iface: '-I' })).toThrow(/interface name/);
    expect(() => nodeAuthArgvs(node, { username: 'user', password: 'pass word' })).toThrow(/CHAP password .* printable ASCII/);
    expect(() => nodeAuthArgvs(node, { username: 'u\nnode.startup = automatic', password: 'x' })).toThrow(/CHAP username/);
    expect(() => nodeAuthArgvs(node, { username: 'user', password: '' })).toThrow(/CHAP password/);
    expect(() => sessionRescanArgv(-1)).toThrow(/session id/);
    expect(() => scsiDeviceRescanPath('../../x')).toThrow(/H:C:T:L/);
  });

  it('CHAP errors never quote the value', () => {
    try {
      nodeAuthArgvs(node, { username: 'user', password: 'hunter2 secret' });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });

  it('redaction masks the CHAP name and secret of an update and nothing else', () => {
    const [, , user, pass] = nodeAuthArgvs(node, { username: 'theuser', password: 'TheSecret1234567' });
    expect(redactIscsiadmArgv(pass!)).toEqual([...pass!.slice(0, -1), '***']);
    expect(redactIscsiadmArgv(user!).at(-1)).toBe('***');
    expect(redactIscsiadmArgv(loginArgv(node))).toEqual(loginArgv(node));
  });

  it('exit codes read as what to check', () => {
    expect(describeIscsiadmExit(24)).toMatch(/authorization failure/);
    expect(describeIscsiadmExit(21)).toMatch(/no matching/);
    expect(describeIscsiadmExit(8)).toMatch(/did not answer/);
  });
});

describe('iscsiadm -m session -P 3 (captured)', () => {
  it('two sessions to one target, one disk each', () => {
    const s = parseSessionsP3(fx('iscsiadm-session-P3-two-paths.txt'));
    expect(s).toEqual([
      {
        sid: 2, iqn: IQN, portal: '127.0.0.1:3260', tpgt: 1, iface: 'default', initiatorName: 'iqn.2024-01.org.example:host1',
        connectionState: 'LOGGED IN', sessionState: 'LOGGED_IN', iscsidState: 'NO CHANGE', hostNumber: 2,
        disks: [{ hctl: '2:0:0:0', lun: 0, name: 'sda', state: 'running' }],
      },
      {
        sid: 3, iqn: IQN, portal: '127.0.0.2:3260', tpgt: 1, iface: 'default', initiatorName: 'iqn.2024-01.org.example:host1',
        connectionState: 'LOGGED IN', sessionState: 'LOGGED_IN', iscsidState: 'NO CHANGE', hostNumber: 3,
        disks: [{ hctl: '3:0:0:0', lun: 0, name: 'sdb', state: 'running' }],
      },
    ]);
  });

  it('one session left after logging out of the other portal', () => {
    const s = parseSessionsP3(fx('iscsiadm-session-P3-one-path.txt'));
    expect(s.map((x) => [x.sid, x.portal, x.disks.map((d) => d.name)])).toEqual([[3, '127.0.0.2:3260', ['sdb']]]);
  });

  it('two initiator interfaces on one portal share the portal heading; a revoked session reads FAILED/blocked', () => {
    const s = parseSessionsP3(fx('iscsiadm-session-P3-two-hosts-one-revoked.txt'));
    const V2 = 'iqn.2010-10.org.openstack:volume-b2b2b2b2-0000-4000-8000-000000000002';
    expect(s.map((x) => [x.sid, x.iqn, x.portal, x.iface, x.initiatorName, x.sessionState, x.iscsidState, x.disks.map((d) => `${d.hctl} ${d.name} ${d.state}`)])).toEqual([
      [10, V2, '127.0.0.1:3260', 'hostb', 'iqn.2024-01.org.example:host-b', 'LOGGED_IN', 'NO CHANGE', ['3:0:0:0 sdb running']],
      [9, V2, '127.0.0.1:3260', 'default', 'iqn.2024-01.org.example:host-a', 'FAILED', 'REOPEN', ['2:0:0:0 sda blocked']],
    ]);
    expect(s[1]!.connectionState).toBe('TRANSPORT WAIT');
  });

  it('no sessions: iscsiadm says so on stderr and prints nothing', () => {
    expect(fx('iscsiadm-session-none.stderr.txt')).toMatch(/No active sessions/);
    expect(parseSessionsP3('')).toEqual([]);
  });

  it('the CHAP block of the output is not mistaken for anything', () => {
    const s = parseSessionsP3(fx('iscsiadm-session-P3-two-paths.txt'));
    expect(JSON.stringify(s)).not.toContain('username');
  });
});

describe('iscsiadm login failures (captured stderr)', () => {
  it('wrong CHAP and an initiator without ACL both end in error 24', () => {
    expect(fx('iscsiadm-login-auth-failed.stderr.txt')).toMatch(/\(24 - iSCSI login failed due to authorization failure\)/);
    expect(fx('iscsiadm-login-not-authorized.stderr.txt')).toMatch(/\(24 - iSCSI login failed due to authorization failure\)/);
    expect(fx('iscsiadm-login-session-exists.stderr.txt')).toMatch(/already present/);
  });
});

describe('manual scan and the targeted LUN scan', () => {
  it('sets node.session.scan = manual on the record, and scans one LUN through its SCSI host', () => {
    expect(nodeManualScanArgv({ iqn: 'iqn.2010-10.org.openstack:cb-h-0123456789ab', portal: '10.0.0.5:3260' }).slice(-4)).toEqual(['-n', 'node.session.scan', '-v', 'manual']);
    expect(scsiHostScanPath(7)).toBe('/sys/class/scsi_host/host7/scan');
    expect(targetedScanText(12)).toBe('- - 12');
    expect(() => scsiHostScanPath(-1)).toThrow(/host number/);
    expect(() => targetedScanText(1.5)).toThrow(/LUN/);
  });
});
