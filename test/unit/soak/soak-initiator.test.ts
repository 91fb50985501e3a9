// What the attach soak's initiators make of their tools' answers: the judgement of every sample
// rests on these (a read that reached data where the host had no attachment is an exposure; a
// refusal is what must happen), so they are pinned here before a lab run spends its emulated CPU.
import { describe, expect, it } from 'vitest';
import { serialFromVpd80 } from '../../helpers/kernel-iscsi-view.js';
import { classifyQemuRead, isRefusal, reachedData } from '../../soak/soak-initiator.js';
import { classifyLogin } from '../../soak/soak-kernel-initiator.js';

const failedLogin = (code: number, words: string): string =>
  [
    'Logging in to [iface: soak-b, target: iqn.2010-10.org.openstack:cb-lvm-soak-a-3f2a, portal: 127.0.0.1,3260]',
    'iscsiadm: Could not login to [iface: soak-b, target: iqn.2010-10.org.openstack:cb-lvm-soak-a-3f2a, portal: 127.0.0.1,3260].',
    `iscsiadm: initiator reported error (${code} - ${words})`,
    'iscsiadm: Could not log into all portals',
  ].join('\n');

describe('the kernel initiator: what a failed login came to', () => {
  it('the target refusing the initiator (no node ACL), its CHAP or a target it does not have is a refusal', () => {
    expect(classifyLogin(failedLogin(24, 'iSCSI login failed due to authorization failure'))).toBe('refused');
    expect(classifyLogin(failedLogin(19, 'encountered non-retryable iSCSI login failure'))).toBe('refused');
  });

  it('nothing answering on the portal is no target; anything else is an error, never a refusal', () => {
    expect(classifyLogin(failedLogin(8, 'connection timed out'))).toBe('no-target');
    expect(classifyLogin(failedLogin(4, 'encountered connection failure'))).toBe('no-target');
    // LIO's "service unavailable" (769) while a target is being made: retryable, not a refusal
    expect(classifyLogin(failedLogin(5, 'encountered iSCSI login failure'))).toBe('error');
    expect(classifyLogin('iscsiadm node update node.session.auth.username: iscsiadm: No records found')).toBe('error');
  });
});

describe('libiscsi: what a qemu-io read came to', () => {
  const tool = (exitCode: number, stdout: string, stderr = '', outcome: 'ok' | 'target-not-found' | 'auth-failure' | 'error' = 'ok') => ({ exitCode, stdout, stderr, ms: 1, outcome });

  it('the pattern read back is data; a wrong pattern is data too (a corruption)', () => {
    expect(classifyQemuRead(tool(0, 'read 65536/65536 bytes at offset 0\n64 KiB, 1 ops; 00.01 sec'))).toBe('read-ok');
    expect(classifyQemuRead(tool(1, 'Pattern verification failed at offset 0, 65536 bytes'))).toBe('read-mismatch');
    expect(reachedData('read-ok') && reachedData('read-mismatch') && reachedData('opened-read-failed')).toBe(true);
  });

  it('a refused login and an unmapped LUN reach no data', () => {
    expect(classifyQemuRead(tool(1, '', "qemu-io: can't open device iscsi://...: Failed to login with target iqn... (Authorization failure(514))", 'auth-failure'))).toBe('refused');
    expect(classifyQemuRead(tool(1, '', 'read failed: Input/output error'))).toBe('lun-refused');
    expect(classifyQemuRead(tool(1, '', "can't open device: LOGICAL_UNIT_NOT_SUPPORTED"))).toBe('lun-refused');
    for (const r of ['refused', 'lun-refused'] as const) {
      expect(isRefusal(r)).toBe(true);
      expect(reachedData(r)).toBe(false);
    }
    expect(reachedData('no-target') || reachedData('error')).toBe(false);
  });
});

describe('VPD page 0x80', () => {
  it('the serial is the page after its 4-byte header; the NUL LIO counts in is dropped', () => {
    const serial = '6a3c1e0c-2b1f-4d8e-9a55-0f1e2d3c4b5a';
    const page = Buffer.concat([Buffer.from([0x00, 0x80, 0x00, serial.length + 1]), Buffer.from(`${serial}\0`, 'latin1')]);
    expect(serialFromVpd80(page)).toBe(serial);
    expect(serialFromVpd80(Buffer.from([0x00, 0x80, 0x00, 0x00]))).toBe('');
  });
});
