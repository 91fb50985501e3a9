import { describe, expect, it } from 'vitest';
import { configFromText } from '../../../src/config/index.js';
import { DEFAULT_NOVA_TIMEOUT_SECONDS, novaAccessFrom } from '../../../src/nova/nova-access.js';

const nova = (section: string) => configFromText(`[DEFAULT]\n[nova]\n${section}\n`).nova;

describe('[nova] as cinder reads it, for the keyless plugins', () => {
  it('admin_token: endpoint and token, session options', () => {
    const a = novaAccessFrom(nova('auth_type = admin_token\nendpoint = http://127.0.0.1:8774/v2.1/\ntoken = admin:admin\ntimeout = 7\ninsecure = true\ncafile = /ca.pem'));
    expect(a).toEqual({
      usable: true,
      authType: 'admin_token',
      endpoint: 'http://127.0.0.1:8774/v2.1',
      token: 'admin:admin',
      timeoutMs: 7000,
      tls: { caFile: '/ca.pem', certFile: null, keyFile: null, insecure: true },
    });
  });

  it("deprecated names: auth_plugin for auth_type, url for admin_token's endpoint", () => {
    const a = novaAccessFrom(nova('auth_plugin = admin_token\nurl = https://nova/v2.1\ntoken = t'));
    expect(a).toMatchObject({ usable: true, endpoint: 'https://nova/v2.1', token: 't' });
  });

  it('none: endpoint, no token; no timeout means the agent default', () => {
    const a = novaAccessFrom(nova('auth_type = none\nendpoint = http://nova:8774/v2.1\ntoken = ignored'));
    expect(a).toMatchObject({ usable: true, token: null, timeoutMs: DEFAULT_NOVA_TIMEOUT_SECONDS * 1000 });
  });

  it('unusable without auth_type, with a keystone plugin, or without endpoint, and says why', () => {
    expect(novaAccessFrom(nova(''))).toMatchObject({ usable: false, reason: expect.stringMatching(/auth_type is not set/) });
    expect(novaAccessFrom(nova('auth_type = password\nauth_url = http://ks/v3'))).toMatchObject({ usable: false, reason: expect.stringMatching(/needs keystone/) });
    expect(novaAccessFrom(nova('auth_type = admin_token\ntoken = t'))).toMatchObject({ usable: false, reason: expect.stringMatching(/needs \[nova\] endpoint/) });
    expect(novaAccessFrom(nova('auth_type = none\nendpoint = ftp://x'))).toMatchObject({ usable: false });
  });

  it('interface is checked against its choices, token is a secret', () => {
    expect(() => nova('interface = private')).toThrow();
    const shown = configFromText('[nova]\nauth_type = admin_token\ntoken = s3cret\n').sources().find((e) => e.group === 'nova' && e.option === 'token');
    expect(shown?.secret).toBe(true);
    expect(JSON.stringify(shown?.value)).not.toContain('s3cret');
  });
});
