import { describe, expect, it } from 'vitest';
import { launcherNodeFlags, parseLauncherNodeFlags } from '../../helpers/launcher-node-flags.js';

describe('the node flags on the launcher line', () => {
  it('are read from bin/cinderblock.js, which ships the 1 MiB semi-space', () => {
    expect(launcherNodeFlags()).toEqual(['--max-semi-space-size=1']);
  });
  it('parse a bare launcher and several flags, and refuse a line they cannot read', () => {
    expect(parseLauncherNodeFlags('#!/usr/bin/env -S node')).toEqual([]);
    expect(parseLauncherNodeFlags('#!/usr/bin/env -S node --a=1 --b')).toEqual(['--a=1', '--b']);
    expect(() => parseLauncherNodeFlags('#!/usr/bin/env node')).toThrow(/first line/);
  });
});
