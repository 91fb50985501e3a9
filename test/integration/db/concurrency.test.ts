// Concurrent writers: row locks on MariaDB keep quota arithmetic exact; on SQLite we wait for
// another process's write lock (cinder-api sharing the file) instead of failing.
import { execa } from 'execa';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, SYSTEM_PYTHON, seedQuotaUsage, seedReservation, seedVolume } from '../../helpers/cinder-db.js';
import { setUpBackend, type BackendContext } from './support.js';

describe.each(BACKENDS)('concurrent quota updates on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend, { oracle: false, maxPoolSize: 5 });
  });
  afterAll(async () => c?.close());

  it('parallel commits on one usage row add up exactly', async () => {
    const usage = await seedQuotaUsage(c.db, 'gigabytes', 0, 0, 'pconc');
    const res: string[] = [];
    for (let i = 0; i < 12; i++) res.push(await seedReservation(c.db, usage, 'gigabytes', 1, 'pconc'));
    await Promise.all(res.map((r) => c.db.quotas.reservationCommit([r], 'pconc')));
    expect(await c.db.quotas.usagesByProject('pconc')).toEqual({ gigabytes: { in_use: 12, reserved: 0 } });
  });

  it('parallel reserves that create the same usage rows end with one row each', async () => {
    for (let i = 0; i < 3; i++) await seedVolume(c.db, { projectId: 'pdup', size: 2, status: 'available' });
    const results = await Promise.all(Array.from({ length: 4 }, () => c.db.quotas.reserve('pdup', { volumes: -1, gigabytes: -2 })));
    expect(results.every((r) => r.length === 2)).toBe(true);
    const rows = await c.db.kysely.selectFrom('quota_usages').select(['resource', 'in_use']).where('project_id', '=', 'pdup').orderBy('resource').execute();
    expect(rows).toEqual([
      { resource: 'gigabytes', in_use: 6 },
      { resource: 'volumes', in_use: 3 },
    ]);
    for (const r of results) await c.db.quotas.commit(r, 'pdup');
    expect(await c.db.quotas.usagesByProject('pdup')).toEqual({ gigabytes: { in_use: 0, reserved: 0 }, volumes: { in_use: 0, reserved: 0 } });
  }, 60_000);
});

describe('SQLite shared with another process', () => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend('sqlite', { oracle: false });
  });
  afterAll(async () => c?.close());

  it('waits for another process’s write lock (busy timeout) instead of failing', async () => {
    const id = await seedVolume(c.db);
    const holder = execa(SYSTEM_PYTHON, [
      '-c',
      [
        'import sqlite3, sys, time',
        'c = sqlite3.connect(sys.argv[1], isolation_level=None)',
        "c.execute('BEGIN IMMEDIATE')",
        "c.execute(\"UPDATE volumes SET display_name = 'held' WHERE id = ?\", (sys.argv[2],))",
        "print('locked', flush=True)",
        'time.sleep(1.0)',
        "c.execute('COMMIT')",
      ].join('\n'),
      c.t.file!,
      id,
    ]);
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    const t0 = Date.now();
    await c.db.volumes.update(id, { status: 'available' });
    expect(Date.now() - t0).toBeGreaterThan(500);
    await holder;
    const v = await c.db.volumes.get(id);
    expect(v).toMatchObject({ status: 'available', display_name: 'held' });
    const { rows } = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(c.db.kysely);
    expect(rows[0]?.journal_mode).toBe('wal');
  });
});
