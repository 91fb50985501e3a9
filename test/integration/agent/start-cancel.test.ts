// SIGTERM during start-up: serve aborts startAgent's signal, and startAgent must stop what it has
// started (here: the database pool, with the broker unreachable so start-up waits on it) and
// reject with StartCancelled, instead of the process exiting with the pool and connect loops
// still running (or, before the fix, startAgent never returning at all).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, StartCancelled } from '../../../src/agent/agent.js';
import { configFromText } from '../../../src/config/load.js';
import { createLogger } from '../../../src/log.js';
import { createCinderDatabase, mysqlSession, type TestCinderDb } from '../../helpers/cinder-db.js';
import { freePort } from '../../helpers/free-port.js';

describe('start-up cancelled by a signal', () => {
  let db: TestCinderDb;
  let dir: string;
  beforeAll(async () => {
    db = await createCinderDatabase('mysql');
    dir = await mkdtemp(join(tmpdir(), 'cb-start-cancel-'));
  });
  afterAll(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  async function ourConnections(): Promise<number> {
    const s = await mysqlSession(db);
    try {
      const [rows] = await s.query('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()', [db.database]);
      return Number((rows as Array<{ n: number }>)[0]!.n);
    } finally {
      await s.end();
    }
  }

  it('while waiting for the broker: rejects with StartCancelled and closes the database pool', async () => {
    const deadBroker = await freePort();
    const config = configFromText(
      [
        '[DEFAULT]',
        'host = cancel-test',
        `transport_url = rabbit://guest:guest@127.0.0.1:${deadBroker}/`,
        'enabled_backends = file',
        `state_path = ${dir}`,
        '[database]',
        `connection = ${db.url}`,
        '[file]',
        'volume_driver = file',
        'target_helper = fake',
        '',
      ].join('\n'),
    );
    const logger = createLogger({ level: 'info', pretty: false, destination: join(dir, 'agent.log') });
    const controller = new AbortController();
    const started = startAgent(config, { logger, signal: controller.signal });
    const outcome = started.then(
      () => 'started' as const,
      (err: unknown) => err,
    );
    // the database is open (a pooled connection exists) and the broker is being waited for
    await expect.poll(ourConnections, { timeout: 15_000 }).toBeGreaterThan(0);
    controller.abort();
    const result = await Promise.race([outcome, new Promise((r) => setTimeout(() => r('still starting after 10 s'), 10_000))]);
    expect(result).toBeInstanceOf(StartCancelled);
    await expect.poll(ourConnections, { timeout: 10_000 }).toBe(0);
  });
});
