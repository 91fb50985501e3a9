import { describe, expect, it } from 'vitest';
import { formatPortal, formatProviderLocation, parsePortal, parseProviderLocation, sanitizeHost } from '../../../src/iscsi/provider-location.js';

const IQN = 'iqn.2010-10.org.openstack:volume-9531a336-8b9f-4724-9d8d-d83f99b240e6';

describe('provider_location', () => {
  it('matches what cinder stored for a tgt export', () => {
    expect(formatProviderLocation({ ips: ['127.0.0.1'], port: 3260, tid: 1, iqn: IQN, lun: 1 })).toBe(`127.0.0.1:3260,1 ${IQN} 1`);
  });

  it('joins secondary portals with ; and brackets IPv6', () => {
    const loc = formatProviderLocation({ ips: ['10.0.0.1', 'fd00::5', '10.0.1.1'], port: 3261, tid: 12, iqn: IQN, lun: 1 });
    expect(loc).toBe(`10.0.0.1:3261;[fd00::5]:3261;10.0.1.1:3261,12 ${IQN} 1`);
    expect(parseProviderLocation(loc)).toEqual({ portals: ['10.0.0.1:3261', '[fd00::5]:3261', '10.0.1.1:3261'], tid: '12', iqn: IQN, lun: 1 });
  });

  it('round-trips IPv6-only and host-name portals', () => {
    for (const ips of [['::1'], ['fe80::1', '2001:db8::7'], ['storage1.example.org'], ['127.0.0.1', '::1']]) {
      const loc = formatProviderLocation({ ips, port: 3260, tid: 3, iqn: IQN, lun: 1 });
      const parsed = parseProviderLocation(loc);
      expect(parsed.portals.map(parsePortal)).toEqual(ips.map((host) => ({ host, port: 3260 })));
      expect(parsed.tid).toBe('3');
      expect(parsed.iqn).toBe(IQN);
    }
  });

  it('LIO style: the tid is the IQN and the LUN 0', () => {
    const loc = formatProviderLocation({ ips: ['127.0.0.1'], port: 3260, tid: IQN, iqn: IQN, lun: 0 });
    expect(parseProviderLocation(loc)).toEqual({ portals: ['127.0.0.1:3260'], tid: IQN, iqn: IQN, lun: 0 });
  });

  it('reads the LUN as 0 when missing or not a number, as cinder does', () => {
    expect(parseProviderLocation(`127.0.0.1:3260,1 ${IQN}`).lun).toBe(0);
    expect(parseProviderLocation(`127.0.0.1:3260,1 ${IQN} x`).lun).toBe(0);
  });

  it('refuses a value without an IQN', () => {
    expect(() => parseProviderLocation('127.0.0.1:3260,1')).toThrow(/provider_location/);
    expect(() => parseProviderLocation('')).toThrow();
  });

  it('sanitize_host brackets only IPv6 literals', () => {
    expect(sanitizeHost('::1')).toBe('[::1]');
    expect(sanitizeHost('10.1.2.3')).toBe('10.1.2.3');
    expect(sanitizeHost('host')).toBe('host');
    expect(formatPortal({ host: '::ffff:10.0.0.1', port: 1 })).toBe('[::ffff:10.0.0.1]:1');
  });

  it('parsePortal refuses garbage', () => {
    expect(() => parsePortal('::1:3260')).toThrow();
    expect(() => parsePortal('10.0.0.1')).toThrow();
    expect(() => parsePortal('10.0.0.1:99999')).toThrow();
  });
});
