// Fresh Cinder databases for tests, with the schema the real `cinder-manage db sync` creates.
//
//   const t = await createCinderDatabase('sqlite');   // or 'mysql'
//   const db = await openDatabase(t.url, { maxRetries: 1 });
//   ...
//   await db.close(); await t.drop();
//
// SQLite: one synced file per cinder version is cached under $TMPDIR/cinderblock-test-cache and
// copied for each test. MariaDB (127.0.0.1:3306, root, no password): one template database per
// cinder version (`cinderblock_tmpl_<version>`, kept as a cache) is synced once under a server-side
// lock, and each test database (`cinderblock_test_<pid>_<random>`, dropped by drop()) is built from
// it with the template's own CREATE TABLE statements plus its rows (alembic_version, default quota
// classes, __DEFAULT__ volume type, workers SENTINEL). Test databases left by dead processes are
// dropped on the next run.
//
// Also here: seeding rows the way cinder-api/scheduler would (a type, a volume in 'creating' on a
// host, an attachment in 'reserved', quota usages and reservations), and an oracle that answers
// with cinder's own DB API (/usr/bin/python3 + python3-cinder) on the same database.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import mysql from 'mysql2/promise';
import type { DbHandle } from '../../src/db/connect.js';

export const SYSTEM_PYTHON = '/usr/bin/python3';
export const CINDER_MANAGE = '/usr/bin/cinder-manage';

export type Backend = 'sqlite' | 'mysql';
export const BACKENDS: readonly Backend[] = ['sqlite', 'mysql'];

export const MYSQL = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };

export interface TestCinderDb {
  backend: Backend;
  /** `[database] connection` URL of this test's database. */
  url: string;
  /** A cinder.conf naming this database (for cinder-manage / the oracle). */
  confPath: string;
  /** Private temp directory of this test database. */
  dir: string;
  /** MariaDB database name (mysql backend). */
  database?: string;
  /** SQLite file (sqlite backend). */
  file?: string;
  /** Milliseconds it took to provide this database (copy from the cached template). */
  setupMs: number;
  drop(): Promise<void>;
}

/** Timings of the template syncs done by this process (ms), for reports. */
export const syncTimings: Partial<Record<Backend, number>> = {};

function cinderVersion(): string {
  const entry = readdirSync('/usr/lib/python3/dist-packages').find((n) => /^cinder-[\d.]+.*\.(egg|dist)-info$/.test(n));
  return entry ? entry.replace(/^cinder-/, '').replace(/\.(egg|dist)-info$/, '') : 'unknown';
}

const VERSION_KEY = cinderVersion().replace(/[^0-9a-zA-Z]/g, '_');

/** A minimal cinder.conf for cinder-manage / cinder's DB API on `url`. */
export async function writeMinimalCinderConf(dir: string, url: string): Promise<string> {
  const state = join(dir, 'state');
  await mkdir(join(state, 'locks'), { recursive: true });
  const conf = [
    '[DEFAULT]',
    `state_path = ${state}`,
    `log_dir = ${state}`,
    'debug = false',
    '',
    '[database]',
    `connection = ${url}`,
    '',
    '[oslo_concurrency]',
    `lock_path = ${join(state, 'locks')}`,
    '',
  ].join('\n');
  const path = join(dir, 'cinder.conf');
  await writeFile(path, conf);
  return path;
}

/** Runs the real `cinder-manage db sync` against `url`; returns the time it took (ms). */
export async function cinderManageDbSync(url: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'cinderblock-sync-'));
  try {
    const conf = await writeMinimalCinderConf(dir, url);
    const t0 = Date.now();
    await execa(CINDER_MANAGE, ['--config-file', conf, 'db', 'sync'], { timeout: 300_000 });
    return Date.now() - t0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// SQLite

const CACHE_DIR = join(tmpdir(), 'cinderblock-test-cache');

async function sqliteTemplate(): Promise<string> {
  const file = join(CACHE_DIR, `cinder-${VERSION_KEY}.sqlite`);
  if (existsSync(file)) return file;
  await mkdir(CACHE_DIR, { recursive: true });
  const building = join(CACHE_DIR, `building-${process.pid}-${randomBytes(4).toString('hex')}.sqlite`);
  syncTimings.sqlite = await cinderManageDbSync(`sqlite:///${building}`);
  await rename(building, file); // atomic: concurrent builders just overwrite with an equal file
  return file;
}

async function createSqlite(): Promise<TestCinderDb> {
  const t0 = Date.now();
  const template = await sqliteTemplate();
  const dir = await mkdtemp(join(tmpdir(), 'cinderblock-db-'));
  const file = join(dir, 'cinder.sqlite');
  await copyFile(template, file);
  const url = `sqlite:///${file}`;
  const confPath = await writeMinimalCinderConf(dir, url);
  return {
    backend: 'sqlite',
    url,
    confPath,
    dir,
    file,
    setupMs: Date.now() - t0,
    drop: () => rm(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------
// MariaDB

const TEMPLATE_DB = `cinderblock_tmpl_${VERSION_KEY}`;
const TEMPLATE_MARKER = 'cinderblock_template_complete';

async function rootConnection(database?: string): Promise<mysql.Connection> {
  return mysql.createConnection({ ...MYSQL, database, multipleStatements: false });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Drops cinderblock_test_<pid>_* databases whose process is gone. */
async function dropStaleTestDatabases(conn: mysql.Connection): Promise<void> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW DATABASES LIKE 'cinderblock\\_test\\_%'");
  for (const r of rows) {
    const name = String(Object.values(r)[0]);
    const m = /^cinderblock_test_(\d+)_/.exec(name);
    if (m && !pidAlive(Number(m[1]))) await conn.query(`DROP DATABASE IF EXISTS ${conn.escapeId(name)}`);
  }
}

let templateReady: Promise<void> | null = null;

async function ensureMysqlTemplate(): Promise<void> {
  templateReady ??= (async () => {
    const conn = await rootConnection();
    try {
      const [[lock]] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 600) AS l', ['cinderblock_test_template']);
      if (!lock || Number(lock.l) !== 1) throw new Error('could not take the template lock on MariaDB');
      try {
        await dropStaleTestDatabases(conn);
        const [marker] = await conn.query<mysql.RowDataPacket[]>(
          'SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?',
          [TEMPLATE_DB, TEMPLATE_MARKER],
        );
        if (Number(marker[0]?.n ?? 0) === 1) return;
        await conn.query(`DROP DATABASE IF EXISTS ${conn.escapeId(TEMPLATE_DB)}`);
        await conn.query(`CREATE DATABASE ${conn.escapeId(TEMPLATE_DB)} CHARACTER SET utf8mb3`);
        syncTimings.mysql = await cinderManageDbSync(`mysql+pymysql://${MYSQL.user}@${MYSQL.host}:${MYSQL.port}/${TEMPLATE_DB}?charset=utf8`);
        await conn.query(`CREATE TABLE ${conn.escapeId(TEMPLATE_DB)}.${conn.escapeId(TEMPLATE_MARKER)} (id INT)`);
      } finally {
        await conn.query('SELECT RELEASE_LOCK(?)', ['cinderblock_test_template']);
      }
    } finally {
      await conn.end();
    }
  })();
  try {
    await templateReady;
  } catch (err) {
    templateReady = null;
    throw err;
  }
}

/** Copies the template's tables (DDL from SHOW CREATE TABLE, then the rows) into `name`. */
async function cloneTemplate(name: string): Promise<void> {
  const conn = await rootConnection();
  try {
    await conn.query(`CREATE DATABASE ${conn.escapeId(name)} CHARACTER SET utf8mb3`);
    await conn.query(`USE ${conn.escapeId(name)}`);
    await conn.query('SET FOREIGN_KEY_CHECKS = 0');
    const [tables] = await conn.query<mysql.RowDataPacket[]>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name",
      [TEMPLATE_DB],
    );
    for (const row of tables) {
      const t = String(row.t);
      if (t === TEMPLATE_MARKER) continue;
      const [[ddl]] = await conn.query<mysql.RowDataPacket[]>(`SHOW CREATE TABLE ${conn.escapeId(TEMPLATE_DB)}.${conn.escapeId(t)}`);
      await conn.query(String(ddl!['Create Table']));
      await conn.query(`INSERT INTO ${conn.escapeId(t)} SELECT * FROM ${conn.escapeId(TEMPLATE_DB)}.${conn.escapeId(t)}`);
    }
    await conn.query('SET FOREIGN_KEY_CHECKS = 1');
  } catch (err) {
    await conn.query(`DROP DATABASE IF EXISTS ${conn.escapeId(name)}`).catch(() => undefined);
    throw err;
  } finally {
    await conn.end();
  }
}

async function createMysql(): Promise<TestCinderDb> {
  const t0 = Date.now();
  await ensureMysqlTemplate();
  const name = `cinderblock_test_${process.pid}_${randomBytes(5).toString('hex')}`;
  await cloneTemplate(name);
  const dir = await mkdtemp(join(tmpdir(), 'cinderblock-db-'));
  const url = `mysql+pymysql://${MYSQL.user}@${MYSQL.host}:${MYSQL.port}/${name}?charset=utf8`;
  const confPath = await writeMinimalCinderConf(dir, url);
  return {
    backend: 'mysql',
    url,
    confPath,
    dir,
    database: name,
    setupMs: Date.now() - t0,
    drop: async () => {
      const conn = await rootConnection();
      try {
        await conn.query(`DROP DATABASE IF EXISTS ${conn.escapeId(name)}`);
      } finally {
        await conn.end();
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database with cinder's real schema on `backend`. */
export async function createCinderDatabase(backend: Backend): Promise<TestCinderDb> {
  return backend === 'sqlite' ? createSqlite() : createMysql();
}

/** Runs SQL on the test database as root (MariaDB) — for tests that need a second session. */
export async function mysqlSession(t: TestCinderDb): Promise<mysql.Connection> {
  if (t.backend !== 'mysql') throw new Error('mysqlSession: not a MariaDB test database');
  return rootConnection(t.database);
}

// ---------------------------------------------------------------------------------------------
// Rows as cinder-api / cinder-scheduler write them

export const PROJECT_ID = 'b4b7d5f1c8f64d3f9d6b7f6d2f0a1c11';
export const USER_ID = 'c5a9f0d2e1b34c7d8e9f0a1b2c3d4e55';

export async function defaultVolumeTypeId(db: DbHandle): Promise<string> {
  const row = await db.kysely.selectFrom('volume_types').select('id').where('name', '=', '__DEFAULT__').executeTakeFirstOrThrow();
  return row.id;
}

/** volume_type_create: a public type with extra specs (volume_backend_name by default). */
export async function seedVolumeType(
  db: DbHandle,
  opts: { name?: string; extraSpecs?: Record<string, string>; qosSpecsId?: string | null; id?: string } = {},
): Promise<string> {
  const id = opts.id ?? randomUUID();
  const now = db.now();
  await db.kysely
    .insertInto('volume_types')
    .values({ id, name: opts.name ?? `type-${id.slice(0, 8)}`, description: null, qos_specs_id: opts.qosSpecsId ?? null, is_public: true, created_at: now, updated_at: null, deleted_at: null, deleted: false })
    .execute();
  for (const [key, value] of Object.entries(opts.extraSpecs ?? { volume_backend_name: 'lvm' })) {
    await db.kysely.insertInto('volume_type_extra_specs').values({ volume_type_id: id, key, value, created_at: now, updated_at: null, deleted_at: null, deleted: false }).execute();
  }
  return id;
}

/** qos_specs_create: the QoS_Specs_Name root row plus one child per spec. */
export async function seedQosSpecs(db: DbHandle, name: string, consumer: string, specs: Record<string, string>): Promise<string> {
  const id = randomUUID();
  const now = db.now();
  await db.kysely.insertInto('quality_of_service_specs').values({ id, specs_id: null, key: 'QoS_Specs_Name', value: name, created_at: now, updated_at: null, deleted_at: null, deleted: false }).execute();
  for (const [key, value] of Object.entries({ consumer, ...specs })) {
    await db.kysely.insertInto('quality_of_service_specs').values({ id: randomUUID(), specs_id: id, key, value, created_at: now, updated_at: null, deleted_at: null, deleted: false }).execute();
  }
  return id;
}

export interface SeedVolume {
  id?: string;
  size?: number;
  status?: string;
  host?: string | null;
  volumeTypeId?: string;
  projectId?: string;
  availabilityZone?: string;
  createdAt?: Date;
  attachStatus?: string;
  migrationStatus?: string | null;
  useQuota?: boolean | null;
  bootable?: boolean;
}

/**
 * What cinder-api's EntryCreateTask + the scheduler leave: status 'creating', attach_status
 * 'detached', host `storage1@lvm#lvm` with scheduled_at, use_quota true.
 */
export async function seedVolume(db: DbHandle, opts: SeedVolume = {}): Promise<string> {
  const id = opts.id ?? randomUUID();
  const now = opts.createdAt ?? db.now();
  await db.kysely
    .insertInto('volumes')
    .values({
      id,
      created_at: now,
      updated_at: now,
      deleted_at: null,
      deleted: false,
      _name_id: null,
      use_quota: opts.useQuota === undefined ? true : opts.useQuota,
      ec2_id: null,
      user_id: USER_ID,
      project_id: opts.projectId ?? PROJECT_ID,
      snapshot_id: null,
      cluster_name: null,
      host: opts.host === undefined ? 'storage1@lvm#lvm' : opts.host,
      size: opts.size ?? 1,
      availability_zone: opts.availabilityZone ?? 'nova',
      status: opts.status ?? 'creating',
      attach_status: opts.attachStatus ?? 'detached',
      migration_status: opts.migrationStatus ?? null,
      scheduled_at: now,
      launched_at: null,
      terminated_at: null,
      display_name: `vol-${id.slice(0, 8)}`,
      display_description: null,
      provider_location: null,
      provider_auth: null,
      provider_geometry: null,
      provider_id: null,
      volume_type_id: opts.volumeTypeId ?? (await defaultVolumeTypeId(db)),
      source_volid: null,
      encryption_key_id: null,
      consistencygroup_id: null,
      group_id: null,
      bootable: opts.bootable ?? false,
      multiattach: false,
      replication_status: null,
      replication_extended_status: null,
      replication_driver_data: null,
      previous_status: null,
      service_uuid: null,
      shared_targets: true,
    })
    .execute();
  return id;
}

/** attachment_create at the API: attach_status 'reserved', volume 'reserved'. */
export async function seedAttachment(db: DbHandle, volumeId: string, opts: { id?: string; instanceUuid?: string | null; attachStatus?: string } = {}): Promise<string> {
  const id = opts.id ?? randomUUID();
  await db.kysely
    .insertInto('volume_attachment')
    .values({
      id,
      volume_id: volumeId,
      created_at: db.now(),
      updated_at: null,
      deleted_at: null,
      deleted: false,
      instance_uuid: opts.instanceUuid === undefined ? randomUUID() : opts.instanceUuid,
      attached_host: null,
      mountpoint: null,
      attach_time: null,
      detach_time: null,
      attach_status: opts.attachStatus ?? 'reserved',
      attach_mode: 'null',
      connection_info: null,
      connector: null,
    })
    .execute();
  return id;
}

/** snapshot_create at the API: status 'creating', progress '0%'. */
export async function seedSnapshot(db: DbHandle, volumeId: string, opts: { id?: string; status?: string; volumeSize?: number; projectId?: string; useQuota?: boolean } = {}): Promise<string> {
  const id = opts.id ?? randomUUID();
  const vol = await db.kysely.selectFrom('volumes').select(['volume_type_id', 'size']).where('id', '=', volumeId).executeTakeFirstOrThrow();
  await db.kysely
    .insertInto('snapshots')
    .values({
      id,
      created_at: db.now(),
      updated_at: null,
      deleted_at: null,
      deleted: false,
      use_quota: opts.useQuota ?? true,
      user_id: USER_ID,
      project_id: opts.projectId ?? PROJECT_ID,
      volume_id: volumeId,
      cgsnapshot_id: null,
      group_snapshot_id: null,
      status: opts.status ?? 'creating',
      progress: '0%',
      volume_size: opts.volumeSize ?? vol.size,
      scheduled_at: null,
      display_name: `snap-${id.slice(0, 8)}`,
      display_description: null,
      encryption_key_id: null,
      volume_type_id: vol.volume_type_id,
      provider_location: null,
      provider_id: null,
      provider_auth: null,
    })
    .execute();
  return id;
}

/** A live quota_usages row; returns its id. */
export async function seedQuotaUsage(db: DbHandle, resource: string, inUse: number, reserved = 0, projectId = PROJECT_ID): Promise<number> {
  const res = await db.kysely
    .insertInto('quota_usages')
    .values({ created_at: db.now(), updated_at: null, deleted_at: null, deleted: false, project_id: projectId, resource, in_use: inUse, reserved, until_refresh: null, race_preventer: true })
    .executeTakeFirstOrThrow();
  return Number(res.insertId);
}

/**
 * A reservation the API made (e.g. extend: gigabytes +n): the row plus reserved += delta on its
 * usage for positive deltas, as quota_reserve does. Returns the reservation uuid.
 */
export async function seedReservation(db: DbHandle, usageId: number, resource: string, delta: number, projectId = PROJECT_ID): Promise<string> {
  const uuid = randomUUID();
  const now = db.now();
  await db.kysely
    .insertInto('reservations')
    .values({ created_at: now, updated_at: null, deleted_at: null, deleted: false, uuid, usage_id: usageId, allocated_id: null, project_id: projectId, resource, delta, expire: new Date(now.getTime() + 86400_000) })
    .execute();
  if (delta > 0) await db.kysely.updateTable('quota_usages').set((eb) => ({ reserved: eb('reserved', '+', delta) })).where('id', '=', usageId).execute();
  return uuid;
}

// ---------------------------------------------------------------------------------------------
// cinder's own DB API as an oracle

export interface OracleReply {
  ok: boolean;
  result?: any;
  error?: string;
  message?: string;
  trace?: string;
}

export interface CinderOracle {
  /** Raw request (see cinder_oracle.py). */
  request(req: Record<string, unknown>): Promise<OracleReply>;
  /** cinder.db.api.<fn>(admin_context, ...args); rejects with the Python exception class name. */
  call(fn: string, ...args: unknown[]): Promise<any>;
  /** Same with keyword arguments. */
  callKw(fn: string, args: unknown[], kwargs: Record<string, unknown>): Promise<any>;
  /** Raw rows of a SELECT on cinder's engine (SQLite values exactly as stored). */
  sql(query: string, params?: Record<string, unknown>): Promise<any[]>;
  close(): Promise<void>;
}

const ORACLE_SCRIPT = fileURLToPath(new URL('../integration/db/cinder_oracle.py', import.meta.url));

/** Starts one python process running cinder's DB API against `confPath` (≈1.5 s). */
export async function startCinderOracle(confPath: string): Promise<CinderOracle> {
  const child: ChildProcessWithoutNullStreams = spawn(SYSTEM_PYTHON, [ORACLE_SCRIPT, confPath], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-20_000);
  });
  const rl = createInterface({ input: child.stdout });
  const waiting: Array<{ resolve: (r: OracleReply) => void; reject: (e: Error) => void }> = [];
  rl.on('line', (line) => {
    const w = waiting.shift();
    if (!w) return;
    try {
      w.resolve(JSON.parse(line) as OracleReply);
    } catch (err) {
      w.reject(new Error(`oracle answered non-JSON: ${line}`));
    }
  });
  child.on('exit', (code) => {
    while (waiting.length) waiting.shift()!.reject(new Error(`cinder oracle exited (${code}): ${stderr}`));
  });
  const request = (req: Record<string, unknown>): Promise<OracleReply> =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null) {
        reject(new Error(`cinder oracle is not running: ${stderr}`));
        return;
      }
      waiting.push({ resolve, reject });
      child.stdin.write(`${JSON.stringify(req)}\n`);
    });
  const unwrap = (r: OracleReply): any => {
    if (!r.ok) throw Object.assign(new Error(`${r.error}: ${r.message}`), { pythonClass: r.error, trace: r.trace });
    return r.result;
  };
  return {
    request,
    call: async (fn, ...args) => unwrap(await request({ op: 'call', fn, args })),
    callKw: async (fn, args, kwargs) => unwrap(await request({ op: 'call', fn, args, kwargs })),
    sql: async (query, params = {}) => unwrap(await request({ op: 'sql', sql: query, params })),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGTERM'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Lists what this helper leaves on the server (for reports/cleanup). */
export async function listTestDatabases(): Promise<string[]> {
  const conn = await rootConnection();
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>("SHOW DATABASES LIKE 'cinderblock\\_%'");
    return rows.map((r) => String(Object.values(r)[0]));
  } finally {
    await conn.end();
  }
}

