import { describe, expect, it } from 'vitest';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { doctorExitCode, formatChecks, onPath, processesMatching, type Check } from '../../../src/cli/doctor.js';

describe('doctor output and exit code', () => {
  const checks: Check[] = [
    { name: 'database', status: 'ok', detail: 'mysql+pymysql://cinder:***@db/cinder' },
    { name: '[lvm] thin pool', status: 'warn', detail: 'data 85%', fix: 'lvextend -L +<size> cinder-volumes/cinder-volumes-pool' },
    { name: 'cinder-volume', status: 'fail', detail: 'running on this host: pid 42', fix: 'systemctl disable --now cinder-volume' },
    { name: 'iscsiadm', status: 'skip', detail: 'not installed' },
  ];

  it('exits 1 when a check failed, 0 with only warnings', () => {
    expect(doctorExitCode(checks)).toBe(1);
    expect(doctorExitCode(checks.filter((c) => c.status !== 'fail'))).toBe(0);
  });

  it('prints each check with what to do under each failure and warning', () => {
    const text = formatChecks(checks);
    expect(text).toContain('FAIL  cinder-volume    running on this host: pid 42\n');
    expect(text).toContain('-> systemctl disable --now cinder-volume\n');
    expect(text).toContain('WARN  [lvm] thin pool  data 85%\n');
    expect(text).toContain('skip  iscsiadm         not installed\n');
    expect(text).toMatch(/1 failed, 1 warning\(s\), 4 checks\n$/);
  });
});

describe('doctor helpers', () => {
  it('finds processes by command line in a /proc tree, never itself', async () => {
    const proc = await mkdtemp(join(tmpdir(), 'cb-proc-'));
    try {
      const add = async (pid: number, argv: string[]) => {
        await mkdir(join(proc, String(pid)));
        await writeFile(join(proc, String(pid), 'cmdline'), `${argv.join('\0')}\0`);
      };
      await add(10, ['/usr/bin/python3', '/usr/bin/cinder-volume', '--config-file', '/etc/cinder/cinder.conf']);
      await add(11, ['/usr/bin/node', '/usr/lib/cinderblock/bin/cinderblock.js', 'serve']);
      await add(process.pid, ['cinder-volume-lookalike']);
      await mkdir(join(proc, 'self'));
      expect(await processesMatching(/cinder-volume/, proc)).toEqual([{ pid: 10, cmdline: '/usr/bin/python3 /usr/bin/cinder-volume --config-file /etc/cinder/cinder.conf' }]);
    } finally {
      await rm(proc, { recursive: true, force: true });
    }
  });

  it('looks for a program on PATH and in the sbin directories', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cb-path-'));
    try {
      await writeFile(join(dir, 'tool'), '#!/bin/sh\n');
      await chmod(join(dir, 'tool'), 0o755);
      await writeFile(join(dir, 'notexec'), '');
      expect(await onPath('tool', dir)).toBe(join(dir, 'tool'));
      expect(await onPath('notexec', dir)).toBeNull();
      expect(await onPath('sh', dir)).toMatch(/\/sh$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
