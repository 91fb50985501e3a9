// The per-host layout's pure rules: host target names, the LUN allocator that never hands a number
// back within the generation it was released in, and the registry file's checks.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostLabel, hostTargetIqn, volumeSerial, HOST_LABEL_MAX } from '../../../drivers/targets/host-target/host-target-name.js';
import {
  admittedInitiators,
  allocateLun,
  emptyHostTarget,
  HostTargetRegistry,
  parseHostTargetState,
  releaseLun,
  type HostTargetRecord,
} from '../../../drivers/targets/host-target/host-target-registry.js';

const PREFIX = 'iqn.2010-10.org.openstack:';
const CHAP = { username: 'abcdefghijkmnopqrstu', password: 'ABCDEFGHJKLMNPQR' };

function record(): HostTargetRecord {
  return emptyHostTarget('compute-1', hostTargetIqn(PREFIX, 'lvm', 'compute-1'), CHAP);
}

function map(t: HostTargetRecord, volumeId: string, range = { min: 1, max: 255 }): number {
  const lun = allocateLun(t, range);
  t.luns.push({ lun, volumeId, volumeName: `volume-${volumeId}`, backingPath: `/dev/vg/volume-${volumeId}`, serial: Buffer.from(volumeId).toString('hex'), initiators: ['iqn.1994-05.com.redhat:c1'] });
  return lun;
}

describe('host target names', () => {
  it('are lower case IQN characters with a bounded readable part', () => {
    expect(hostLabel('Compute_01.Example.COM')).toBe('compute-01.example.com');
    expect(hostLabel('___')).toBe('host');
    expect(hostLabel('x'.repeat(300)).length).toBe(HOST_LABEL_MAX);
    const iqn = hostTargetIqn(PREFIX, 'lvm', 'Compute_01');
    expect(iqn).toMatch(/^iqn\.2010-10\.org\.openstack:cb-compute-01-[0-9a-f]{12}$/);
  });

  it('stay distinct for hosts that sanitise alike, and per backend', () => {
    const names = ['compute-1', 'Compute-1', 'compute_1', 'compute 1'].map((h) => hostTargetIqn(PREFIX, 'lvm', h));
    expect(new Set(names).size).toBe(4);
    expect(hostTargetIqn(PREFIX, 'lvm', 'compute-1')).not.toBe(hostTargetIqn(PREFIX, 'lvm2', 'compute-1'));
    expect(hostTargetIqn(PREFIX, 'lvm', 'compute-1')).toBe(hostTargetIqn(PREFIX, 'lvm', 'compute-1'));
  });

  it('serials follow the name id (migration keeps the backing object), else the id', () => {
    const id = '11111111-2222-3333-4444-555555555555';
    const nameId = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';
    expect(volumeSerial({ id, name: `volume-${nameId}` })).toBe(nameId);
    expect(volumeSerial({ id, name: 'custom-name' })).toBe(id);
  });
});

describe('LUN allocation', () => {
  it('is monotonic: a released number is not handed out again before the range wraps', () => {
    const t = record();
    expect(map(t, 'a')).toBe(1);
    expect(map(t, 'b')).toBe(2);
    releaseLun(t, 1);
    expect(map(t, 'c')).toBe(3);
    expect(map(t, 'd')).toBe(4);
    expect(t.luns.map((m) => m.lun)).toEqual([2, 3, 4]);
  });

  it('wraps past the highest number into a new generation, skipping mapped numbers', () => {
    const t = record();
    const range = { min: 1, max: 4 };
    for (const v of ['a', 'b', 'c', 'd']) map(t, v, range);
    releaseLun(t, 2); // released in generation 0
    expect(map(t, 'e', range)).toBe(2); // wrapped: generation 1, 1 is still mapped
    expect(t.generation).toBe(1);
  });

  it('never reuses a number released in the current generation, even when it is the only free one', () => {
    const t = record();
    const range = { min: 1, max: 3 };
    map(t, 'a', range);
    map(t, 'b', range);
    map(t, 'c', range);
    releaseLun(t, 1);
    expect(map(t, 'd', range)).toBe(1); // wrap: generation 1
    releaseLun(t, 1); // released in generation 1
    // 2 and 3 mapped, 1 released in this generation: wait for the next wrap
    expect(map(t, 'e', range)).toBe(1);
    expect(t.generation).toBe(2);
  });

  it('refuses when every number is mapped, naming the host', () => {
    const t = record();
    const range = { min: 1, max: 2 };
    map(t, 'a', range);
    map(t, 'b', range);
    expect(() => allocateLun(t, range)).toThrow(/no LUN number left in 1\.\.2.*compute-1/);
  });

  it('a target admits the union of its mappings\' initiators, once each', () => {
    const t = record();
    map(t, 'a');
    map(t, 'b');
    t.luns[1]!.initiators.push('IQN.1994-05.com.redhat:C1', 'iqn.1994-05.com.redhat:c2');
    expect(admittedInitiators(t)).toEqual(['iqn.1994-05.com.redhat:c1', 'iqn.1994-05.com.redhat:c2']);
  });
});

describe('the registry file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cb-registry-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is written 0600 and read back; unchanged state is not rewritten', async () => {
    const path = join(dir, 'cinderblock', 'host-targets-lvm.json');
    const reg = new HostTargetRegistry({ path, backend: 'lvm', lockPath: null });
    await reg.update((s) => {
      const t = record();
      map(t, 'v1');
      s.targets.push(t);
    });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const mtime = statSync(path).mtimeMs;
    await reg.update(() => undefined);
    expect(statSync(path).mtimeMs).toBe(mtime);
    const s = await reg.read();
    expect(s.targets[0]?.luns[0]?.lun).toBe(1);
  });

  it('refuses a record whose names could reach a command line unchecked', () => {
    const bad = { version: 1, targets: [{ ...record(), luns: [{ lun: 1, volumeId: 'x', volumeName: 'volume-x', backingPath: '/dev/vg/a b', serial: 'ab', initiators: [] }] }] };
    expect(() => parseHostTargetState(JSON.stringify(bad), 'f')).toThrow(/backing store/);
    expect(() => parseHostTargetState('{', 'f')).toThrow(/not JSON.*move it away/);
    expect(() => parseHostTargetState('{"version":2,"targets":[]}', 'f')).toThrow(/unknown format/);
  });
});
