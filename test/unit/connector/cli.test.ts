// `cinderblock connector`: reading connection_info from a file or stdin.
import { describe, expect, it } from 'vitest';
import { loadConnectionInfo } from '../../../src/cli/connector.js';

describe('loadConnectionInfo', () => {
  it('reads JSON from a file or from stdin (-)', async () => {
    expect(await loadConnectionInfo('/x.json', async () => '{"a":1}')).toEqual({ a: 1 });
    expect(await loadConnectionInfo('-', async () => '', async () => '{"b":2}')).toEqual({ b: 2 });
  });
  it('says which file failed and why, without quoting its content', async () => {
    const enoent = Object.assign(new Error('nope'), { code: 'ENOENT' });
    await expect(loadConnectionInfo('/missing.json', async () => Promise.reject(enoent))).rejects.toThrow('cannot read --connection-info /missing.json: ENOENT');
    const err = await loadConnectionInfo('/bad.json', async () => '{"auth_password": "s3cret", ').catch((e: Error) => e);
    expect(String(err)).toMatch(/is not JSON/);
    expect(String(err)).not.toContain('s3cret');
  });
});
