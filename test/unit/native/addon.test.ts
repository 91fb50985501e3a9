// The loader: where it looks for the addon and what it says when the addon is missing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { ADDON_RELATIVE_PATH, NativeAddonError, addon, addonPath, findPackageRoot, loadAddonFrom } from '../../../src/native/addon.js';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

describe('native addon loader', () => {
  it('finds the repo root from src/native/ and from dist/src/native/', () => {
    expect(findPackageRoot(path.join(repoRoot, 'src', 'native'))).toBe(repoRoot);
    expect(findPackageRoot(path.join(repoRoot, 'dist', 'src', 'native'))).toBe(repoRoot);
    expect(findPackageRoot()).toBe(repoRoot);
  });

  it("finds an installed root (the Debian package's /usr/lib/cinderblock) that has no binding.gyp", () => {
    const root = mkdtempSync(path.join(tmpdir(), 'cb-root-'));
    try {
      mkdirSync(path.join(root, 'dist', 'src', 'native'), { recursive: true });
      writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'cinderblock', version: '9.9.9~test' }));
      // a dependency's package.json on the way up is not ours
      writeFileSync(path.join(root, 'dist', 'package.json'), JSON.stringify({ name: 'something-else' }));
      expect(findPackageRoot(path.join(root, 'dist', 'src', 'native'))).toBe(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('looks in build/Release unless CINDERBLOCK_NATIVE_ADDON says otherwise', () => {
    expect(addonPath({})).toBe(path.join(repoRoot, ADDON_RELATIVE_PATH));
    expect(addonPath({ CINDERBLOCK_NATIVE_ADDON: '/opt/cinderblock/native.node' })).toBe('/opt/cinderblock/native.node');
  });

  it('tells the operator to run npm run build:native when the addon is missing', () => {
    const missing = path.join(repoRoot, 'build', 'Nope', 'cinderblock_native.node');
    expect(() => loadAddonFrom(missing)).toThrow(NativeAddonError);
    expect(() => loadAddonFrom(missing)).toThrow(/not built: .*Nope.*npm run build:native/);
  });

  it('says to rebuild when the file is there but is not a loadable addon', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-addon-'));
    try {
      const bogus = path.join(dir, 'cinderblock_native.node');
      writeFileSync(bogus, 'not an ELF file');
      expect(() => loadAddonFrom(bogus)).toThrow(/failed to load .*npm run build:native/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads the built addon (run `npm run build:native` first) with every function the facade uses', () => {
    const a = addon();
    for (const fn of [
      'blkGetSize64', 'blkSszGet', 'blkPbszGet', 'blkFlsBuf', 'blkRrPart', 'blkDiscard', 'blkZeroOut',
      'ficlone', 'reflinkProbe', 'tryLockFile', 'unlockFile', 'sdNotify',
    ] as const) {
      expect(typeof a[fn]).toBe('function');
    }
  });
});
