// Start-up refuses two configurations that used to fail later: a bad extra_capabilities (a raw
// SyntaxError from the composition root) and a file pool inside tgt's volumes_dir (every attach
// failed, tgt reading volume files as target configs).
import { describe, expect, it } from 'vitest';
import { configFromText } from '../../../src/config/index.js';
import { checkFilePoolDirectory } from '../../../src/config/backend-checks.js';
import { createDriver } from '../../../src/agent/driver-factory.js';
import { ConfigError } from '../../../src/errors.js';
import { errorOf } from './helpers.js';

const fixed = { hostname: 'testhost', myIp: '198.51.100.7', env: {} };

describe('extra_capabilities', () => {
  it('not JSON: a ConfigError naming the section and option', () => {
    const err = errorOf(() => configFromText('[DEFAULT]\nenabled_backends = file\n[file]\nextra_capabilities = {replication: false}\n', fixed));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/^\[file\] extra_capabilities is not valid JSON/);
  });
  it('JSON but not an object: refused too', () => {
    const err = errorOf(() => configFromText('[DEFAULT]\nenabled_backends = file\n[file]\nextra_capabilities = [1, 2]\n', fixed));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('[file] extra_capabilities must be a JSON object');
  });
  it('a JSON object is accepted', () => {
    const c = configFromText('[DEFAULT]\nenabled_backends = file\n[file]\nextra_capabilities = {"replication": false}\n', fixed);
    expect(c.backends[0]!.extra_capabilities).toBe('{"replication": false}');
  });
});

describe('file_volume_dir against volumes_dir', () => {
  it('equal, inside or containing: refused with both options named', () => {
    for (const [pool, targets] of [
      ['/var/lib/cinder/volumes', '/var/lib/cinder/volumes'],
      ['/var/lib/cinder/volumes/pool', '/var/lib/cinder/volumes'],
      ['/var/lib/cinder', '/var/lib/cinder/volumes'],
      ['/var/lib/cinder/volumes/', '/var/lib/cinder/volumes'],
    ] as const) {
      const err = errorOf(() => checkFilePoolDirectory('file', pool, targets));
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(/^\[file\] file_volume_dir \(.*\) and volumes_dir \(.*\) overlap/);
    }
  });
  it('siblings with a shared prefix are fine', () => {
    expect(() => checkFilePoolDirectory('file', '/var/lib/cinder/volumes-file', '/var/lib/cinder/volumes')).not.toThrow();
  });
  it('stops the file driver from being built with cinder default volumes_dir as its pool', () => {
    const c = configFromText('[DEFAULT]\nenabled_backends = file\nstate_path = /srv/cinder\n[file]\nvolume_driver = file\nfile_volume_dir = $state_path/volumes\n', fixed);
    const err = errorOf(() => createDriver(c, c.backends[0]!));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('/srv/cinder/volumes');
  });
});
