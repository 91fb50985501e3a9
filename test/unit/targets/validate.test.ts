import { describe, expect, it } from 'vitest';
import { assertBackingPath, assertBsoflags, assertNqn, assertVolumeName, isNqn } from '../../../drivers/targets/validate.js';
import { assertChapCredential, assertInitiatorName, assertTargetIqn, isIscsiName } from '../../../src/iscsi/index.js';

const SHELL = ['; rm -rf /', '$(reboot)', '`id`', '| cat', '&& true', '> /etc/passwd', "'quoted'", '"dq"', 'a b', '\\x'];

describe('iSCSI names', () => {
  it('accepts real initiator and target names', () => {
    for (const n of [
      'iqn.1994-05.com.redhat:compute1',
      'iqn.1994-05.com.redhat:4f8f6b2e3c1d',
      'iqn.2010-10.org.openstack:volume-9531a336-8b9f-4724-9d8d-d83f99b240e6',
      'iqn.1991-05.com.microsoft:host.example.org',
      'iqn.2004-10.com.ubuntu:01:7ec1c0d3f0a2',
      'iqn.2024-01.org.example',
      'eui.02004567A425678D',
      'naa.52004567BA64678D',
      'naa.52004567BA64678D0123456789ABCDEF',
    ]) {
      expect(isIscsiName(n), n).toBe(true);
      expect(() => assertInitiatorName(n)).not.toThrow();
    }
  });

  it('refuses shell metacharacters, whitespace, newlines and other garbage with a clear InvalidInput', () => {
    const bad = [
      ...SHELL.map((s) => `iqn.1994-05.com.redhat:x${s}`),
      'iqn.1994-05.com.redhat:x\ninitiator-address ALL',
      'iqn.1994-05.com.redhat:x\r',
      'iqn.1994-05.com.redhat:x/../y',
      'iqn.94-05.com.redhat:x',
      'iqn.1994-05.-bad:x',
      'ALL',
      '127.0.0.1',
      'eui.123',
      'naa.XYZ',
      '',
      `iqn.1994-05.com.redhat:${'a'.repeat(220)}`,
    ];
    for (const n of bad) {
      expect(() => assertInitiatorName(n), JSON.stringify(n)).toThrow(/Invalid input received: connector initiator must be an iSCSI name/);
    }
    expect(() => assertInitiatorName(undefined)).toThrow(/got a undefined/);
    expect(() => assertInitiatorName('iqn.1994-05.com.redhat:x\ny')).toThrow(/newline/);
    expect(() => assertInitiatorName('iqn.1994-05.com.redhat:x;y')).toThrow(/shell metacharacters/);
    expect(() => assertTargetIqn('iqn.2010-10.org.openstack:volume-x y')).toThrow(/target IQN/);
  });
});

describe('volume names', () => {
  it('accepts cinder volume names', () => {
    expect(() => assertVolumeName('volume-9531a336-8b9f-4724-9d8d-d83f99b240e6')).not.toThrow();
    expect(() => assertVolumeName('volume-00000001')).not.toThrow();
  });

  it('refuses path separators, dot-dot, metacharacters and newlines', () => {
    for (const n of ['../etc/passwd', 'a/b', '..', 'volume-..', '.hidden', 'vol\nume', 'vol;ume', 'vol ume', '', 'a:b', ...SHELL]) {
      expect(() => assertVolumeName(n), JSON.stringify(n)).toThrow(/volume name must be/);
    }
  });
});

describe('backing store paths', () => {
  it('accepts LVM and file paths', () => {
    for (const p of ['/dev/cinder-volumes/volume-1', '/dev/mapper/cinder--volumes-volume--1', '/var/lib/cinderblock/pool/volume-1', '/dev/disk/by-id/wwn-0x5000c500a1b2c3d4']) {
      expect(() => assertBackingPath(p), p).not.toThrow();
    }
  });

  it('refuses relative paths, .., //, whitespace, newlines, commas and metacharacters', () => {
    for (const p of ['dev/x', '/dev/../etc/shadow', '/dev/./x', '//x', '/dev/x y', '/dev/x\n', '/dev/x,online=1', '/dev/x=1', '/dev/x;id', '/dev/$(id)', '']) {
      expect(() => assertBackingPath(p), JSON.stringify(p)).toThrow(/backing store must be/);
    }
  });
});

describe('CHAP and flags', () => {
  it('CHAP credentials are alphanumeric, and the message never contains the value', () => {
    expect(() => assertChapCredential('2rX53svf7cbhNF4R2J3E', 'username')).not.toThrow();
    for (const v of ['with space', 'new\nline', 'semi;colon', '', 'x'.repeat(256), '--password']) {
      try {
        assertChapCredential(v, 'password');
        expect.unreachable(v);
      } catch (e) {
        expect((e as Error).message).toBe('Invalid input received: CHAP password must be 1-255 letters or digits');
      }
    }
  });

  it('bsoflags are sync, direct or both', () => {
    for (const f of ['sync', 'direct', 'sync:direct', 'direct:sync']) expect(() => assertBsoflags(f)).not.toThrow();
    for (const f of ['', 'sync,direct', 'direct; id', 'foo']) expect(() => assertBsoflags(f)).toThrow(/iscsi_target_flags/);
  });
});

describe('NVMe qualified names', () => {
  it('accepts host NQNs nvme-cli makes and cinder\'s subsystem NQNs', () => {
    for (const n of [
      'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b000a',
      'nqn.iqn.2010-10.org.openstack:-9531a336-8b9f-4724-9d8d-d83f99b240e6',
      'nqn.2016-06.io.spdk:cnode1',
      `nqn.${'a'.repeat(219)}`,
    ]) {
      expect(isNqn(n), n).toBe(true);
      expect(() => assertNqn(n, 'host NQN')).not.toThrow();
    }
  });

  it('refuses what would be a path, an option, a second argv word or the discovery subsystem', () => {
    for (const n of ['', 'nqn.', 'iqn.2010-10.org.openstack:x', 'nqn.a/b', 'nqn.a/../../etc', 'nqn.a..b', '-nqn.a', 'nqn.a\nb', `nqn.${'a'.repeat(220)}`, 'nqn.2014-08.org.nvmexpress.discovery', 42, null, ...SHELL.map((x) => `nqn.${x}`)]) {
      expect(isNqn(n), String(n)).toBe(false);
      expect(() => assertNqn(n, 'host NQN')).toThrow(/host NQN must be an NVMe qualified name/);
    }
  });
});
