// Boundary validation and per-resource locking shared by the manager's flows.
import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CinderError } from '../../../src/errors.js';
import { backendOf, newKeyedMutex, volumeNameOf, withLock, type FlowDeps } from '../../../src/manager/flows/common.js';
import { optionalStringList, requireDict, requireSize, requireUuid } from '../../../src/manager/rpc-arguments.js';

function className(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CinderError ? `${err.className}:${String(err.kwargs.code)}` : 'other';
  }
  return undefined;
}

describe('manager boundary checks', () => {
  it('UUIDs, sizes, dicts and lists', () => {
    expect(requireUuid('0f1ba910-af3f-4bc3-8f78-62911315a807', 'id')).toBe('0f1ba910-af3f-4bc3-8f78-62911315a807');
    for (const bad of ['x', '../0f1ba910-af3f-4bc3-8f78-62911315a807', '0f1ba910-af3f-4bc3-8f78-62911315a807; ls', 1, null, undefined]) {
      expect(className(() => requireUuid(bad, 'id'))).toBe('InvalidInput:400');
    }
    expect(requireSize(3, 'size')).toBe(3);
    for (const bad of [0, -1, 1.5, '2', Number.NaN, 2 ** 60, null]) expect(className(() => requireSize(bad, 'size'))).toBe('InvalidInput:400');
    expect(className(() => requireDict([], 'connector'))).toBe('InvalidInput:400');
    expect(className(() => requireDict('x', 'connector'))).toBe('InvalidInput:400');
    expect(className(() => optionalStringList([1], 'reservations'))).toBe('InvalidInput:400');
    expect(optionalStringList(null, 'reservations')).toEqual([]);
  });

  it('names and hosts', () => {
    expect(volumeNameOf({ id: 'a', _name_id: null })).toBe('volume-a');
    expect(volumeNameOf({ id: 'a', _name_id: 'b' })).toBe('volume-b');
    expect(backendOf('h@file#file')).toBe('h@file');
    expect(backendOf('h@file')).toBe('h@file');
    expect(backendOf(null)).toBeNull();
  });
});

describe('per-resource locks', () => {
  it('serialise one key (in-process and external) and let different keys run together', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cb-locks-'));
    try {
      const deps = { locks: newKeyedMutex(), lockPath: dir } as unknown as FlowDeps;
      const events: string[] = [];
      const job = (key: string, tag: string, ms: number) =>
        withLock(deps, key, true, async () => {
          events.push(`${tag}+`);
          await new Promise((r) => setTimeout(r, ms));
          events.push(`${tag}-`);
        });
      await Promise.all([job('v1-delete_volume', 'a', 40), job('v1-delete_volume', 'b', 10), job('v2-delete_volume', 'c', 10)]);
      // a and b never overlap; c runs while a holds v1
      expect(events.indexOf('a-')).toBeLessThan(events.indexOf('b+'));
      expect(events.indexOf('c+')).toBeLessThan(events.indexOf('a-'));
      // a failing holder releases the lock
      await expect(withLock(deps, 'v3', true, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
      await withLock(deps, 'v3', true, async () => undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
