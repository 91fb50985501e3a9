// tgtd as the supervisor watches it, against the in-memory tgtd and stand-ins for starting tgtd
// and for the pid holding its control lock: what counts as a loss (nothing answers; a new pid),
// what does not (a timeout, a tgtd still loading its targets), and who restarts it (cinderblock
// when it started it; its owner first otherwise).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { iscsiTargetCreateFailed } from '../../../src/errors.js';
import { lockHolderPid, servingTgtdPid, tgtdLockPath } from '../../../drivers/targets/tgt/tgtd-pid.js';
import { isNoTgtd, TgtdWatch } from '../../../drivers/targets/tgt/tgtd-watch.js';
import { Tgtadm, TgtadmError } from '../../../drivers/targets/tgt/tgtadm.js';
import type { EnsureTgtdOptions, EnsureTgtdResult } from '../../../drivers/targets/tgt/tgtd.js';
import { FakeTgtd } from './fake-tgtd.js';

const root = mkdtempSync(join(tmpdir(), 'cb-tgtd-watch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function setup(opts: { ourPidFile?: boolean; graceMs?: number } = {}) {
  const fake = new FakeTgtd();
  let pid: number | null = 100;
  const starts: EnsureTgtdOptions[] = [];
  const pidFile = join(root, `tgtd-${Math.random().toString(36).slice(2)}.pid`);
  const ensure = async (o: EnsureTgtdOptions): Promise<EnsureTgtdResult> => {
    starts.push(o);
    if (fake.running) return { started: false, pid: null, child: null, portals: [], readyMs: null };
    fake.running = true;
    fake.restart();
    pid = (pid ?? 100) + 1;
    writeFileSync(pidFile, `${pid}\n`);
    return { started: true, pid, child: null, portals: [], readyMs: 12 };
  };
  if (opts.ourPidFile) writeFileSync(pidFile, `${pid}\n`);
  const watch = new TgtdWatch({
    portals: ['127.0.0.1:3260'],
    controlPort: 3260,
    runner: fake.runner,
    ensure,
    servingPid: async () => (fake.running ? pid : null),
    pidFile,
    foreignGraceMs: opts.graceMs ?? 30_000,
  });
  return { fake, watch, starts, setPid: (p: number | null) => (pid = p) };
}

describe('TgtdWatch', () => {
  it('a tgtd cinderblock started is restarted as soon as nothing answers', async () => {
    const { fake, watch, starts } = setup();
    fake.running = false;
    await watch.prepare();
    expect(starts).toHaveLength(1);
    expect(watch.ownership()).toEqual({ pid: 101, owned: true });
    expect(await watch.probe()).toEqual({ state: 'up' });
    fake.running = false; // kill -9
    expect(await watch.probe()).toMatchObject({ state: 'down', detail: expect.stringMatching(/nothing answers on its control port \(pid 101 gone\)/) });
    const r = await watch.recover(0);
    expect(r).toEqual({ ok: true, detail: 'cinderblock restarted it (pid 102, answering after 12 ms)' });
    expect(starts[1]).toMatchObject({ portal: ['127.0.0.1:3260'], controlPort: 3260 });
    expect(await watch.probe()).toEqual({ state: 'up' });
  });

  it('a tgtd an earlier cinderblock started (its pid file names it) is ours to restart too', async () => {
    const { fake, watch, starts } = setup({ ourPidFile: true });
    await watch.prepare();
    expect(watch.ownership()).toEqual({ pid: 100, owned: true });
    fake.running = false;
    expect((await watch.recover(0)).ok).toBe(true);
    expect(starts).toHaveLength(2);
  });

  it("someone else's tgtd is left to its owner for the grace period, then started", async () => {
    const { fake, watch, starts } = setup({ graceMs: 1000 });
    await watch.prepare();
    expect(watch.ownership()).toEqual({ pid: 100, owned: false });
    fake.running = false;
    const wait = await watch.recover(10);
    expect(wait.ok).toBe(false);
    expect(wait.detail).toMatch(/did not start this tgtd.*systemctl restart tgt.*starts its own if none answers within 1 s/);
    expect(starts).toHaveLength(1);
    // its owner brings it back within the grace period
    fake.running = true;
    expect(await watch.recover(20)).toMatchObject({ ok: true, detail: 'restarted by its owner (pid 100)' });
    // or does not: after the grace period cinderblock starts its own
    fake.running = false;
    expect((await watch.recover(1500)).ok).toBe(true);
    expect(starts).toHaveLength(2);
    expect(watch.ownership().owned).toBe(true);
  });

  it('a tgtd restarted between two probes is a loss even though it answers every probe', async () => {
    const { watch, setPid } = setup();
    await watch.prepare();
    setPid(555);
    expect(await watch.probe()).toEqual({ state: 'lost', detail: 'tgtd was restarted (pid 100 is gone, pid 555 serves now) and has none of our targets' });
    expect(await watch.probe()).toEqual({ state: 'up' });
  });

  it('neither a timeout nor a tgtd still loading its targets is a loss', async () => {
    const { fake, watch } = setup();
    await watch.prepare();
    fake.inject = (_argv, op) => (op === 'sys:show' ? { stdout: '', stderr: 'timed out after 5000 ms', exitCode: -1 } : undefined);
    expect(await watch.probe()).toEqual({ state: 'unresponsive', detail: 'timed out after 5000 ms' });
    fake.inject = (_argv, op) => (op === 'sys:show' ? { stdout: 'System:\n    State: offline\n', stderr: '', exitCode: 0 } : undefined);
    expect(await watch.probe()).toEqual({ state: 'starting', detail: 'system state offline' });
  });

  it("tells an operation's error from tgtd being gone, through cinder's wrapping", async () => {
    const { fake, watch } = setup();
    fake.running = false;
    const gone = await new Tgtadm(fake.runner).showTargets().catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(TgtadmError);
    expect(watch.isDaemonGone(iscsiTargetCreateFailed('v', gone))).toBe(true);
    expect(isNoTgtd(iscsiTargetCreateFailed('v', new Error('LUN 1 is busy')))).toBe(false);
  });
});

describe('the pid serving a tgtd control port', () => {
  it('is the holder of the control lock in /proc/locks', () => {
    const locks = [
      '1: POSIX  ADVISORY  WRITE 15619 fe:00:16638547 0 0',
      '1: -> POSIX  ADVISORY  WRITE 777 fe:00:16638547 0 0',
      '2: POSIX  ADVISORY  WRITE 15604 fe:00:16638507 0 0',
      '3: FLOCK  ADVISORY  WRITE 3793 00:1a:1466553 0 EOF',
    ].join('\n');
    expect(lockHolderPid(locks, 16638547)).toBe(15619);
    expect(lockHolderPid(locks, 1466553)).toBe(3793);
    expect(lockHolderPid(locks, 42)).toBeNull();
  });

  it('reads the lock file and /proc/locks', async () => {
    const dir = mkdtempSync(join(root, 'sock-'));
    writeFileSync(tgtdLockPath(3261, dir), '');
    const { ino } = statSync(tgtdLockPath(3261, dir));
    writeFileSync(join(dir, 'locks'), `1: POSIX  ADVISORY  WRITE 4242 fe:00:${ino} 0 0\n`);
    expect(await servingTgtdPid(3261, { socketDir: dir, procLocksPath: join(dir, 'locks') })).toBe(4242);
    expect(await servingTgtdPid(3262, { socketDir: dir, procLocksPath: join(dir, 'locks') })).toBeNull();
  });
});
