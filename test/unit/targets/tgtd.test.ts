import { describe, expect, it } from 'vitest';
import type { CommandResult } from '../../../src/exec/run-command.js';
import { ensureTgtd, portalCovered } from '../../../drivers/targets/tgt/tgtd.js';

describe('ensureTgtd with a tgtd already running', () => {
  it('only checks, and adds a configured portal tgtd does not listen on', async () => {
    const calls: string[][] = [];
    let portals = 'Portal: 127.0.0.1:3260,1\n';
    const runner = async (argv: readonly string[]): Promise<CommandResult> => {
      calls.push([...argv]);
      if (argv.includes('sys')) return { stdout: 'System:\n    State: ready\n', stderr: '', exitCode: 0 };
      if (argv.includes('portal') && argv.includes('show')) return { stdout: portals, stderr: '', exitCode: 0 };
      if (argv.includes('portal') && argv.includes('new')) {
        portals += 'Portal: [::1]:3260,1\n';
        return { stdout: '', stderr: '', exitCode: 0 };
      }
      return { stdout: '', stderr: 'unexpected', exitCode: 1 };
    };
    const r = await ensureTgtd({ portal: ['127.0.0.1:3260', '[::1]:3260'], controlPort: 7, runner });
    expect(r.started).toBe(false);
    expect(r.portals).toEqual([
      { host: '127.0.0.1', port: 3260, tpgt: 1 },
      { host: '::1', port: 3260, tpgt: 1 },
    ]);
    expect(calls).toContainEqual(['tgtadm', '-C', '7', '--lld', 'iscsi', '--op', 'new', '--mode', 'portal', '--param', 'portal=[::1]:3260']);
  });

  it('refuses a host name portal', async () => {
    await expect(ensureTgtd({ portal: 'storage.example:3260', runner: async () => ({ stdout: '', stderr: '', exitCode: 0 }) })).rejects.toThrow(/IP address/);
  });
});

describe('portalCovered', () => {
  it('counts the wildcard of the same family and port', () => {
    expect(portalCovered([{ host: '0.0.0.0', port: 3260, tpgt: 1 }], { host: '10.0.0.5', port: 3260 })).toBe(true);
    expect(portalCovered([{ host: '::', port: 3260, tpgt: 1 }], { host: 'fd00::1', port: 3260 })).toBe(true);
    expect(portalCovered([{ host: '0.0.0.0', port: 3260, tpgt: 1 }], { host: 'fd00::1', port: 3260 })).toBe(false);
    expect(portalCovered([{ host: '10.0.0.5', port: 3261, tpgt: 1 }], { host: '10.0.0.5', port: 3260 })).toBe(false);
  });
});
