// Connection layer on the real schema: dialect set-up, UTC datetimes and booleans as SQLAlchemy
// reads/writes them, connect retries, and surviving MariaDB killing our connections.
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CINDER_ZED_ALEMBIC_HEAD, DatabaseConnectionError, DatabaseSchemaError, openDatabase } from '../../../src/db/index.js';
import { BACKENDS, MYSQL, createCinderDatabase, mysqlSession, seedVolume, type TestCinderDb } from '../../helpers/cinder-db.js';
import { freePort } from '../../helpers/free-port.js';
import { captureLogger, pyIso, setUpBackend, stored, type BackendContext } from './support.js';

describe.each(BACKENDS)('connection on %s', (backend) => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend(backend);
  });
  afterAll(async () => c?.close());

  it('opens the synced schema and answers ping', async () => {
    expect(c.db.dialect).toBe(backend);
    await c.db.ping();
    expect(await c.db.schemaVersion()).toBe(CINDER_ZED_ALEMBIC_HEAD);
    expect(c.log.lines().some((l) => /open$/.test(l.msg))).toBe(true);
  });

  it('writes datetimes as naive UTC that cinder reads back unchanged', async () => {
    const id = await seedVolume(c.db);
    const launched = new Date('2024-01-02T03:04:05.678Z');
    await c.db.volumes.update(id, { launched_at: launched });
    const theirs = await c.oracle.call('volume_get', id);
    expect(theirs.launched_at).toBe(pyIso(launched, backend));
    expect((await c.db.volumes.get(id)).launched_at).toEqual(stored(launched, backend));
    if (backend === 'sqlite') {
      // byte for byte what SQLAlchemy's SQLite DATETIME writes
      const [raw] = await c.oracle.sql('SELECT launched_at FROM volumes WHERE id = :id', { id });
      expect(raw.launched_at).toBe('2024-01-02 03:04:05.678000');
    }
  });

  it('reads datetimes cinder wrote (microseconds) as UTC', async () => {
    const id = await seedVolume(c.db);
    await c.oracle.call('volume_update', id, { terminated_at: { $dt: '2023-07-08T09:10:11.123456' } });
    const v = await c.db.volumes.get(id);
    expect(v.terminated_at?.toISOString()).toBe(backend === 'sqlite' ? '2023-07-08T09:10:11.123Z' : '2023-07-08T09:10:11.000Z');
  });

  it('keeps UTC whatever the process time zone is', async () => {
    const saved = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      const id = await seedVolume(c.db);
      const t = new Date('2024-03-10T06:30:00.000Z'); // inside a DST switch in New York
      await c.db.volumes.update(id, { scheduled_at: t });
      expect((await c.oracle.call('volume_get', id)).scheduled_at).toBe(pyIso(t, backend));
      expect((await c.db.volumes.get(id)).scheduled_at?.toISOString()).toBe(t.toISOString());
    } finally {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    }
  });

  it('maps Boolean columns to booleans both ways', async () => {
    const id = await seedVolume(c.db);
    await c.oracle.call('volume_update', id, { bootable: true, multiattach: false });
    let v = await c.db.volumes.get(id);
    expect(v.bootable).toBe(true);
    expect(v.multiattach).toBe(false);
    expect(v.deleted).toBe(false);
    await c.db.volumes.update(id, { multiattach: true, shared_targets: false });
    const obj = await c.oracle.request({ op: 'volume_obj', id });
    expect(obj.ok).toBe(true);
    expect(obj.result['versioned_object.data'].multiattach).toBe(true);
    expect(obj.result['versioned_object.data'].shared_targets).toBe(false);
    const [raw] = await c.oracle.sql('SELECT multiattach, shared_targets FROM volumes WHERE id = :id', { id });
    expect(raw).toEqual({ multiattach: 1, shared_targets: 0 });
    v = await c.db.volumes.get(id);
    expect(v.multiattach).toBe(true);
  });
});

describe('database down at start', () => {
  let t: TestCinderDb;
  beforeAll(async () => {
    t = await createCinderDatabase('mysql');
  });
  afterAll(async () => t?.drop());

  it('retries per max_retries/retry_interval with a log line per attempt, then fails clearly (password never shown)', async () => {
    const port = await freePort();
    const cap = captureLogger();
    const url = `mysql+pymysql://cinder:s3cretPW@127.0.0.1:${port}/cinder?charset=utf8`;
    const t0 = Date.now();
    const err = await openDatabase(url, { maxRetries: 3, retryInterval: 0.1, logger: cap.logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseConnectionError);
    const e = err as DatabaseConnectionError;
    expect(e.attempts).toBe(3);
    expect(e.message).toMatch(/cannot connect to mysql\+pymysql:\/\/cinder:\*\*\*@127\.0\.0\.1:\d+\/cinder\?charset=utf8 after 3 attempts/);
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    const lines = cap.lines();
    const warns = lines.filter((l) => l.level === 40 && /SQL connection/.test(l.msg));
    expect(warns.map((l) => l.msg)).toEqual([
      expect.stringMatching(/failed \(attempt 1 of 3\).*ECONNREFUSED.*2 attempts left, retrying in 0\.1s/),
      expect.stringMatching(/failed \(attempt 2 of 3\).*1 attempts left/),
    ]);
    expect(lines.filter((l) => l.level === 50 && /attempt 3 of 3.*giving up/.test(l.msg))).toHaveLength(1);
    expect(JSON.stringify(lines) + e.message).not.toContain('s3cretPW');
  });

  it('connects once the server appears during the retries', async () => {
    const port = await freePort();
    const cap = captureLogger();
    // A TCP relay to MariaDB that only starts listening after the first attempt failed.
    const sockets: Socket[] = [];
    let relay: Server | undefined;
    const timer = setTimeout(() => {
      relay = createServer((client) => {
        const upstream = netConnect(MYSQL.port, MYSQL.host);
        sockets.push(client, upstream);
        client.pipe(upstream).pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
      });
      relay.listen(port, '127.0.0.1');
    }, 150);
    try {
      const db = await openDatabase(t.url.replace(`:${MYSQL.port}/`, `:${port}/`), { maxRetries: 20, retryInterval: 0.1, logger: cap.logger });
      await db.ping();
      await db.close();
      const lines = cap.lines();
      expect(lines.filter((l) => /SQL connection .* failed \(attempt 1 of 20\)/.test(l.msg)).length).toBe(1);
      expect(lines.some((l) => /^connected to /.test(l.msg))).toBe(true);
    } finally {
      clearTimeout(timer);
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((r) => (relay ? relay.close(() => r()) : r()));
    }
  });

  it('does not retry when the credentials are refused', async () => {
    const cap = captureLogger();
    const err = await openDatabase(`mysql+pymysql://nosuchuser:pw@127.0.0.1:${MYSQL.port}/${t.database}`, { maxRetries: 5, retryInterval: 5, logger: cap.logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseConnectionError);
    expect((err as DatabaseConnectionError).attempts).toBe(1);
    expect((err as Error).message).toMatch(/Access denied.*not retrying/);
  });

  it('SQLite: a missing file is reported with what to do', async () => {
    const cap = captureLogger();
    const err = await openDatabase('sqlite:////nonexistent/dir/cinder.sqlite', { maxRetries: 2, retryInterval: 0.01, logger: cap.logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseConnectionError);
    expect((err as Error).message).toMatch(/cinder\.sqlite does not exist \(run `cinder-manage db sync` first\)/);
    expect(cap.lines().filter((l) => l.level === 40)).toHaveLength(1);
  });

  it('refuses a database without cinder schema', async () => {
    const file = join(t.dir, 'empty.sqlite');
    await writeFile(file, '');
    const err = await openDatabase(`sqlite:///${file}`, { maxRetries: 1, logger: captureLogger().logger }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseSchemaError);
    expect((err as Error).message).toMatch(/no Cinder schema.*cinder-manage db sync/);
  });
});

describe('MariaDB connections killed during operation', () => {
  let c: BackendContext;
  beforeAll(async () => {
    c = await setUpBackend('mysql', { maxPoolSize: 3, oracle: false });
  });
  afterAll(async () => c?.close());

  async function killOurConnections(): Promise<number> {
    const admin = await mysqlSession(c.t);
    try {
      const [rows] = await admin.query<any[]>('SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()', [c.t.database]);
      for (const r of rows) await admin.query('KILL ?', [Number(r.id)]);
      return rows.length;
    } finally {
      await admin.end();
    }
  }

  it('the next query after KILL works (dead pool connections are replaced)', async () => {
    const id = await seedVolume(c.db);
    // open several pool connections
    await Promise.all([c.db.ping(), c.db.volumes.get(id), c.db.volumes.get(id)]);
    expect(await killOurConnections()).toBeGreaterThanOrEqual(1);
    // immediately, without waiting for the client to notice
    await c.db.volumes.update(id, { status: 'available' });
    expect((await c.db.volumes.get(id)).status).toBe('available');
    // and again, with concurrent queries
    await killOurConnections();
    await new Promise((r) => setTimeout(r, 50));
    const results = await Promise.all([c.db.volumes.get(id), c.db.ping(), c.db.volumes.get(id)]);
    expect(results[0].status).toBe('available');
    // No assertion on the "database connection lost" line: it is written only when the checkout
    // ping meets a dead connection, and mysql2 sometimes drops a killed one from the pool first.
  });

  it('queries fail cleanly while the server is unreachable and work again once it is back', async () => {
    // MariaDB reached through a TCP relay we can cut (the shared server itself is never stopped).
    const port = await freePort();
    const sockets = new Set<Socket>();
    const startRelay = () =>
      new Promise<Server>((resolve) => {
        const srv = createServer((client) => {
          const upstream = netConnect(MYSQL.port, MYSQL.host);
          sockets.add(client).add(upstream);
          client.pipe(upstream).pipe(client);
          const drop = () => {
            client.destroy();
            upstream.destroy();
          };
          client.on('error', drop).on('close', drop);
          upstream.on('error', drop).on('close', drop);
        });
        srv.listen(port, '127.0.0.1', () => resolve(srv));
      });
    const stopRelay = async (srv: Server) => {
      sockets.forEach((s) => s.destroy());
      sockets.clear();
      await new Promise<void>((r) => srv.close(() => r()));
    };
    let relay = await startRelay();
    const cap = captureLogger();
    const db = await openDatabase(c.t.url.replace(`:${MYSQL.port}/`, `:${port}/`), { maxRetries: 1, logger: cap.logger, connectTimeoutMs: 2000 });
    try {
      const id = await seedVolume(db);
      await stopRelay(relay);
      await expect(db.volumes.get(id)).rejects.toThrow(/ECONNREFUSED|connection/i);
      await expect(db.services.reportState(1)).rejects.toThrow();
      relay = await startRelay();
      expect((await db.volumes.get(id)).id).toBe(id);
    } finally {
      await db.close();
      await stopRelay(relay);
    }
  });

  it('a transaction after KILL runs on a fresh connection', async () => {
    const id = await seedVolume(c.db);
    await killOurConnections();
    await c.db.volumes.destroy(id);
    expect((await c.db.volumes.get(id, { readDeleted: 'yes' })).status).toBe('deleted');
  });
});
