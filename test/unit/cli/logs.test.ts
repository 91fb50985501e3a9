import { describe, expect, it } from 'vitest';
import { configFromText } from '../../../src/config/load.js';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { followFile, formatLogLines, logSource, matchRequest, normalizeLevel } from '../../../src/cli/logs.js';
import { CliFailure } from '../../../src/cli/output.js';

describe('logs --request-id', () => {
  const text = [
    JSON.stringify({ level: 20, time: 't1', pid: 1, name: 'cinderblock', backend: 'lvm', request_id: 'req-1', global_request_id: 'req-g', msg: 'create_volume', volume_id: 'v1' }),
    JSON.stringify({ level: 30, time: 't2', msg: 'mentions req-1 in the text only', request_id: 'req-2' }),
    JSON.stringify({ level: 50, time: 't3', backend: 'lvm', request_id: 'req-3', global_request_id: 'req-1', msg: 'failed' }),
    'Dec 02 12:00:00 storage1 cinderblock[1]: plain line with req-1',
    '',
  ].join('\n');

  it('matches request_id or global_request_id on JSON lines, the id anywhere on other lines', () => {
    const lines = matchRequest(text, 'req-1');
    expect(lines.map((l) => l.msg)).toEqual(['create_volume', 'failed', 'Dec 02 12:00:00 storage1 cinderblock[1]: plain line with req-1']);
    expect(lines[1]!.level).toBe('ERROR');
  });

  it('prints time, level, backend, message and the fields that are not already shown', () => {
    expect(formatLogLines(matchRequest(text, 'req-1').slice(0, 1))).toBe('t1 DEBUG    [lvm] create_volume {"volume_id":"v1"}\n');
  });

  it('reads [DEFAULT] log_file (under log_dir when relative), else the journal', () => {
    const conf = (extra: string) => configFromText(`[DEFAULT]\nenabled_backends = lvm\n${extra}\n[lvm]\nvolume_driver = lvm\n`);
    expect(logSource(conf(''))).toEqual({ journal: true });
    expect(logSource(conf('log_dir = /var/log/cinder\nlog_file = cinderblock.log'))).toEqual({ file: '/var/log/cinder/cinderblock.log' });
    expect(logSource(conf('log_file = /tmp/x.log'))).toEqual({ file: '/tmp/x.log' });
    expect(logSource(conf(''), '/given.log')).toEqual({ file: '/given.log' });
  });
});

describe('log-level names', () => {
  it("takes cinder's level names in any case and refuses others with exit code 2", () => {
    expect(normalizeLevel('debug')).toBe('DEBUG');
    expect(normalizeLevel('Warning')).toBe('WARNING');
    expect(() => normalizeLevel('verbose')).toThrow(CliFailure);
    try {
      normalizeLevel('verbose');
    } catch (err) {
      expect((err as CliFailure).exitCode).toBe(2);
    }
  });
});

describe('logs --follow', () => {
  it('hands over each complete line as it is appended, and starts over when the file is rotated', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cb-follow-'));
    const file = join(dir, 'agent.log');
    await writeFile(file, 'old line\n');
    const seen: string[] = [];
    const stop = new AbortController();
    const done = followFile(file, 9, (t) => seen.push(t), stop.signal, 20);
    const settle = () => new Promise((r) => setTimeout(r, 120));
    try {
      await appendFile(file, 'first req-1\nhalf');
      await settle();
      expect(seen).toEqual(['first req-1\n']);
      await appendFile(file, ' done\n');
      await settle();
      expect(seen).toEqual(['first req-1\n', 'half done\n']);
      await writeFile(file, 'new\n');
      await settle();
      expect(seen.at(-1)).toBe('new\n');
    } finally {
      stop.abort();
      await done;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
