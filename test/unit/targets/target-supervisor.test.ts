// The target supervisor against a scripted daemon watch: readiness is prepared once and then
// re-checked by probes (never cached for good), a loss is logged, repaired and followed by one
// restore, failures are retried, and an operation that meets a dead daemon gets it back and runs
// again. No daemon, no timers beyond a short probe interval in one test.
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../../src/log.js';
import type { DriverVolume } from '../../../drivers/driver.js';
import { TargetExports } from '../../../drivers/exports.js';
import { TargetSupervisor, type DaemonWatch, type ProbeOutcome, type RestoreCounts } from '../../../drivers/targets/target-supervisor.js';
import type { TargetHelper } from '../../../drivers/targets/target.js';

interface Line {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

function captureLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (a: unknown, b?: unknown) => {
    const fields = typeof a === 'object' && a !== null ? (a as Record<string, unknown>) : {};
    lines.push({ level, msg: String(typeof a === 'string' ? a : b ?? ''), fields });
  };
  const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger;
  return { logger, lines };
}

class ScriptedWatch implements DaemonWatch {
  readonly name = 'fake daemon';
  prepares = 0;
  recovers = 0;
  settles = 0;
  next: ProbeOutcome = { state: 'up' };
  recoverResult = { ok: true, detail: 'restarted it' };
  prepareError: Error | null = null;
  async prepare(): Promise<void> {
    this.prepares += 1;
    if (this.prepareError) throw this.prepareError;
  }
  async probe(): Promise<ProbeOutcome> {
    return this.next;
  }
  async recover(): Promise<{ ok: boolean; detail: string }> {
    this.recovers += 1;
    if (this.recoverResult.ok) this.next = { state: 'up' };
    return this.recoverResult;
  }
  isDaemonGone(err: unknown): boolean {
    return err instanceof Error && err.message === 'daemon gone';
  }
  async settle(): Promise<void> {
    this.settles += 1;
  }
}

function setup(opts: { intervalMs?: number; retryMs?: number } = {}) {
  const watch = new ScriptedWatch();
  const { logger, lines } = captureLogger();
  const sup = new TargetSupervisor(watch, { logger, intervalMs: opts.intervalMs ?? 0, retryMs: opts.retryMs ?? 10 });
  const restores: string[] = [];
  let result: RestoreCounts = { volumes: 3, restored: 3, failed: 0 };
  sup.setRestore(async (reason) => {
    restores.push(reason);
    return result;
  });
  return { watch, sup, lines, restores, setResult: (r: RestoreCounts) => (result = r) };
}

describe('TargetSupervisor', () => {
  it('prepares the daemon once, on first use, and retries a failed preparation', async () => {
    const { watch, sup } = setup();
    expect(sup.status().armed).toBe(false);
    watch.prepareError = new Error('tgtd would not start');
    await expect(sup.ready()).rejects.toThrow('tgtd would not start');
    expect(sup.status().armed).toBe(false);
    watch.prepareError = null;
    await Promise.all([sup.ready(), sup.ready(), sup.ready()]);
    expect(watch.prepares).toBe(2);
    expect(sup.status()).toMatchObject({ armed: true, up: true, losses: 0 });
    await sup.ready();
    expect(watch.prepares).toBe(2);
  });

  it('on a dead daemon: logs the loss, restarts it, restores every export once and logs the recovery with counts', async () => {
    const { watch, sup, lines, restores } = setup();
    await sup.ready();
    watch.next = { state: 'down', detail: 'nothing answers on its control port' };
    await sup.checkNow();
    await sup.idle();
    expect(watch.recovers).toBe(1);
    expect(restores).toEqual(['fake daemon lost: nothing answers on its control port']);
    expect(watch.settles).toBe(1);
    const lost = lines.find((l) => l.msg.startsWith('target daemon lost: fake daemon: nothing answers'))!;
    expect(lost.level).toBe('error');
    const recovered = lines.find((l) => l.msg.startsWith('target daemon recovered: fake daemon'))!;
    expect(recovered.fields).toMatchObject({ volumes: 3, restored: 3, failed: 0 });
    expect(sup.status()).toMatchObject({ up: true, losses: 1, restoring: false });
    // nothing more to do while it stays up
    await sup.checkNow();
    await sup.idle();
    expect(restores).toHaveLength(1);
  });

  it('a daemon that answers without our exports is restored without a restart', async () => {
    const { watch, sup, restores } = setup();
    await sup.ready();
    watch.next = { state: 'lost', detail: 'tgtd was restarted (pid 10 is gone, pid 11 serves now)' };
    await sup.checkNow();
    watch.next = { state: 'up' };
    await sup.idle();
    expect(watch.recovers).toBe(0);
    expect(restores).toHaveLength(1);
  });

  it('is not ready while the daemon stays down, and is again once it is back: readiness is never cached', async () => {
    const { watch, sup, lines, restores } = setup();
    await sup.ready();
    watch.next = { state: 'down', detail: 'nothing answers' };
    watch.recoverResult = { ok: false, detail: 'its owner should restart it (systemctl restart tgt)' };
    await sup.checkNow();
    await expect(sup.ready()).rejects.toThrow(/fake daemon is not answering \(nothing answers\)/);
    expect(lines.filter((l) => l.msg.includes('is still down: its owner should restart it'))).toHaveLength(1);
    expect(restores).toEqual([]);
    watch.next = { state: 'up' }; // its owner restarted it
    await sup.ready();
    await sup.idle();
    expect(restores).toHaveLength(1);
    expect(sup.status()).toMatchObject({ up: true, losses: 1 });
  });

  it('leaves an unresponsive daemon alone and says so once', async () => {
    const { watch, sup, lines, restores } = setup();
    await sup.ready();
    watch.next = { state: 'unresponsive', detail: 'timed out after 5000 ms' };
    await sup.checkNow();
    await sup.checkNow();
    expect(lines.filter((l) => l.level === 'warn' && l.msg.includes('does not answer in time'))).toHaveLength(1);
    expect(watch.recovers).toBe(0);
    expect(restores).toEqual([]);
    await sup.ready(); // not declared down
    watch.next = { state: 'up' };
    await sup.checkNow();
    expect(lines.some((l) => l.msg === 'fake daemon answers again')).toBe(true);
  });

  it('retries a restore that left failures until it has none', async () => {
    const { watch, sup, lines, restores, setResult } = setup({ retryMs: 5 });
    await sup.ready();
    setResult({ volumes: 3, restored: 2, failed: 1 });
    watch.next = { state: 'down', detail: 'nothing answers' };
    await sup.checkNow();
    await sup.idle();
    expect(restores).toHaveLength(1);
    expect(lines.some((l) => l.level === 'error' && /1 export\(s\) could not be restored/.test(l.msg))).toBe(true);
    setResult({ volumes: 3, restored: 3, failed: 0 });
    await new Promise((r) => setTimeout(r, 10));
    await sup.checkNow();
    await sup.idle();
    expect(restores).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 20));
    await sup.checkNow();
    await sup.idle();
    expect(restores).toHaveLength(2);
  });

  it('never makes ready() wait for the restore (the restore takes locks a caller may hold)', async () => {
    const { watch, sup } = setup();
    let release!: () => void;
    sup.setRestore(() => new Promise<RestoreCounts>((r) => (release = () => r({ volumes: 1, restored: 1, failed: 0 }))));
    await sup.ready();
    watch.next = { state: 'down', detail: 'nothing answers' };
    await sup.checkNow();
    expect(sup.status().restoring).toBe(true);
    await sup.ready();
    release();
    await sup.idle();
    expect(sup.status().restoring).toBe(false);
  });

  it('notices a loss by itself within the probe interval', async () => {
    const { watch, sup, restores } = setup({ intervalMs: 20 });
    try {
      await sup.ready();
      watch.next = { state: 'down', detail: 'nothing answers' };
      const t0 = Date.now();
      while (restores.length === 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
      expect(restores).toHaveLength(1);
    } finally {
      sup.stop();
    }
  });
});

// The exports of a backend run every helper operation under the supervisor (drivers/exports.ts).
describe('supervised exports', () => {
  const vol: DriverVolume = { id: 'v', name: 'volume-v', size: 1, providerLocation: null, providerAuth: null, multiattach: false };
  const data = { exportPath: () => '/dev/x', prepareExport: async () => undefined };
  const supervised = (inner: TargetHelper, sup: TargetSupervisor) => new TargetExports({ target: inner, supervisor: sup, driver: data });

  it('an operation that finds the daemon gone has it brought back and runs once more', async () => {
    const { watch, sup, restores } = setup();
    let calls = 0;
    const inner = {
      validateConnector: () => undefined,
      createExport: async () => {
        calls += 1;
        if (calls === 1) {
          watch.next = { state: 'down', detail: 'nothing answers' };
          throw new Error('wrapped', { cause: new Error('daemon gone') }) as Error;
        }
        return { provider_location: 'loc', provider_auth: 'CHAP a b' };
      },
    } as unknown as TargetHelper;
    watch.isDaemonGone = (err: unknown) => (err as { cause?: Error }).cause?.message === 'daemon gone';
    const t = supervised(inner, sup);
    await expect(t.createExport(vol)).resolves.toEqual({ provider_location: 'loc', provider_auth: 'CHAP a b' });
    expect(calls).toBe(2);
    expect(watch.recovers).toBe(1);
    await sup.idle();
    expect(restores).toHaveLength(1);
  });

  it('other errors are the operation\'s own and are not retried', async () => {
    const { sup } = setup();
    let calls = 0;
    const inner = {
      createExport: async () => {
        calls += 1;
        throw new Error('no CHAP credentials');
      },
    } as unknown as TargetHelper;
    await expect(supervised(inner, sup).createExport(vol)).rejects.toThrow('no CHAP credentials');
    expect(calls).toBe(1);
  });

  it('the start-up sweep reads never start the daemon', async () => {
    const { watch, sup } = setup();
    const inner = { findExports: async () => [], removeOrphanAccounts: async () => 2 } as unknown as TargetHelper;
    const t = supervised(inner, sup);
    expect(await t.findExports()).toEqual([]);
    expect(await t.removeOrphanAccounts()).toBe(2);
    expect(watch.prepares).toBe(0);
  });
});
