// Opens Cinder's database the way oslo.db does for cinder-volume, on MySQL/MariaDB (mysql2 pool) or
// SQLite (better-sqlite3), and makes both look the same to the repositories:
//
//  - DATETIME values are naive UTC in the database and JS Dates here. MySQL: mysql2 with
//    timezone 'Z'. SQLite: SQLAlchemy stores the text 'YYYY-MM-DD HH:MM:SS.ffffff' (always six
//    fractional digits; SQLite compares these as text), so Dates are written in exactly that form
//    and every column declared DATETIME is parsed back as UTC.
//  - Boolean columns (MySQL TINYINT(1), SQLite BOOLEAN) come back as JS booleans; booleans are
//    written as 1/0 as SQLAlchemy does.
//  - Connecting retries per [database] max_retries / retry_interval with one log line per attempt
//    (oslo.db's _test_connection). On MySQL every pool checkout pings the connection first, as
//    oslo.db's pre-ping does, so a connection the server dropped or KILLed is replaced instead of
//    failing the next query; pool errors never reach the process as unhandled events.
//  - SQLite is shared with cinder-api/cinder-scheduler: busy timeout, WAL journal, and write
//    transactions start with BEGIN IMMEDIATE so a read-then-write transaction never fails with
//    SQLITE_BUSY_SNAPSHOT half way.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, MysqlDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import type { SqliteDatabase, SqliteStatement, MysqlPool, MysqlPoolConnection } from 'kysely';
import mysql from 'mysql2';
import type { Logger } from '../log.js';
import { log, logDropped } from '../log.js';
import { CINDER_ZED_ALEMBIC_HEAD, type CinderSchema } from './schema.js';
import { parseDatabaseUrl, type DatabaseUrl, type MysqlUrl, type SqliteUrl } from './url.js';
import { DatabaseConnectionError, DatabaseSchemaError } from './errors.js';

export type Executor = Kysely<CinderSchema> | Transaction<CinderSchema>;

export interface OpenDatabaseOptions {
  /** [database] max_pool_size (oslo.db default 5): connections kept in the MySQL pool. */
  maxPoolSize?: number;
  /** [database] max_overflow: extra connections allowed above max_pool_size (default 0). */
  maxOverflow?: number;
  /** [database] max_retries (default 10; -1 retries forever): connection attempts at start. */
  maxRetries?: number;
  /** [database] retry_interval in seconds (default 10) between connection attempts. */
  retryInterval?: number;
  /** [database] connection_recycle_time in seconds (default 3600): idle MySQL connections older are closed. */
  connectionRecycleTime?: number;
  /** TCP connect timeout for MySQL, ms (default 10000). */
  connectTimeoutMs?: number;
  /** SQLite busy timeout, ms (default 10000): how long to wait for cinder-api's write lock. */
  sqliteBusyTimeoutMs?: number;
  /** 'wal' (default) switches the SQLite file to WAL (persistent, fine for cinder's processes); 'keep' leaves the journal mode alone. */
  sqliteJournalMode?: 'wal' | 'keep';
  /** Fail unless the database holds cinder's schema (alembic_version + services). Default true. */
  checkSchema?: boolean;
  /** Logger; defaults to the process logger. */
  logger?: Logger;
  /** Clock for timestamps written to the database (tests). Defaults to `new Date()`. */
  clock?: () => Date;
  /** Stops the connect-retry loop early (shutdown while the database is still down). */
  signal?: AbortSignal;
  /** Working directory for relative SQLite paths. */
  cwd?: string;
}

/** The connection handle the repositories work on. */
export interface DbHandle {
  readonly dialect: 'mysql' | 'sqlite';
  /** The connection URL with its password masked. */
  readonly redactedUrl: string;
  readonly kysely: Kysely<CinderSchema>;
  /** Current time as cinder would write it (naive UTC), from the injected clock. */
  now(): Date;
  /**
   * Runs `fn` in one transaction (BEGIN IMMEDIATE on SQLite). The callback must only use `trx`.
   */
  transaction<T>(fn: (trx: Transaction<CinderSchema>) => Promise<T>): Promise<T>;
  /** SELECT 1 round trip; throws when the database is unreachable. */
  ping(): Promise<void>;
  /** alembic_version.version_num, or null when the table is missing/empty. */
  schemaVersion(): Promise<string | null>;
  close(): Promise<void>;
  readonly logger: Logger;
}

// ---------------------------------------------------------------------------------------------
// SQLite datetime text, byte for byte what SQLAlchemy's SQLite DATETIME type writes.

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (microseconds from the Date's milliseconds). */
export function formatSqliteDateTime(d: Date): string {
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}000`
  );
}

const SQLITE_DT = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?(Z|[+-]00:?00)?$/;

/** Parses SQLAlchemy's SQLite datetime text as naive UTC. Unparseable text is returned unchanged. */
export function parseSqliteDateTime(text: string): Date | string {
  const m = SQLITE_DT.exec(text.trim());
  if (!m) return text;
  const frac = (m[7] ?? '').padEnd(3, '0').slice(0, 3);
  return new Date(
    Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0), Number(frac)),
  );
}

/** Converts a bound parameter the way SQLAlchemy would store it in SQLite. */
function sqliteParam(v: unknown): unknown {
  if (v instanceof Date) return formatSqliteDateTime(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  return v;
}

type Converter = (v: unknown) => unknown;
const toDate: Converter = (v) => (typeof v === 'string' ? parseSqliteDateTime(v) : v);
const toBool: Converter = (v) => (v === null || v === undefined ? v : typeof v === 'string' ? v !== '0' && v !== '' : Boolean(v));

/**
 * A better-sqlite3 Database as Kysely's SqliteDialect wants it, with parameters and results
 * converted by the declared column types (DATETIME, BOOLEAN) of the columns a statement reads.
 */
class ConvertingSqliteDatabase implements SqliteDatabase {
  private readonly cache = new Map<string, { stmt: BetterSqlite3.Statement; conv: Array<[string, Converter]> | null }>();

  constructor(readonly raw: BetterSqlite3.Database) {}

  close(): void {
    this.cache.clear();
    this.raw.close();
  }

  prepare(sqlText: string): SqliteStatement {
    // Kysely begins every transaction with a plain 'begin'; a deferred transaction that reads and
    // then writes can fail with SQLITE_BUSY_SNAPSHOT when cinder-api wrote in between.
    const text = sqlText.trim().toLowerCase() === 'begin' ? 'BEGIN IMMEDIATE' : sqlText;
    let entry = this.cache.get(text);
    if (!entry) {
      const stmt = this.raw.prepare(text);
      let conv: Array<[string, Converter]> | null = null;
      if (stmt.reader) {
        conv = [];
        for (const c of stmt.columns()) {
          const t = (c.type ?? '').toUpperCase();
          if (t === 'DATETIME' || t === 'TIMESTAMP') conv.push([c.name, toDate]);
          else if (t === 'BOOLEAN') conv.push([c.name, toBool]);
        }
        if (conv.length === 0) conv = null;
      }
      entry = { stmt, conv };
      if (this.cache.size > 500) this.cache.clear();
      this.cache.set(text, entry);
    }
    const { stmt, conv } = entry;
    const convertRow = (row: unknown): unknown => {
      if (!conv || row === null || typeof row !== 'object') return row;
      const r = row as Record<string, unknown>;
      for (const [name, f] of conv) if (name in r) r[name] = f(r[name]);
      return r;
    };
    const params = (p: ReadonlyArray<unknown>): unknown[] => p.map(sqliteParam);
    return {
      reader: stmt.reader,
      all: (p) => stmt.all(...params(p)).map(convertRow),
      run: (p) => stmt.run(...params(p)),
      iterate: function* (p) {
        for (const row of stmt.iterate(...params(p))) yield convertRow(row);
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL pool with a ping on checkout.

const PING_TIMEOUT_MS = 10_000;

/** mysql2 error codes that mean the connection (not the statement) failed. */
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_TOO_MANY_USER_CONNECTIONS',
]);

export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; fatal?: unknown; message?: unknown };
  if (typeof e.code === 'string' && CONNECTION_ERROR_CODES.has(e.code)) return true;
  if (e.fatal === true) return true;
  return typeof e.message === 'string' && /closed state|connection lost|server has gone away|Pool is closed/i.test(e.message);
}

/** Errors a caller should retry (oslo.db retry_on_deadlock; SQLite lock contention). */
export function isDeadlock(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT';
}

type RawPoolConnection = mysql.PoolConnection;

class PingingPool implements MysqlPool {
  constructor(
    readonly raw: mysql.Pool,
    private readonly logger: Logger,
  ) {}

  getConnection(callback: (error: unknown, connection: MysqlPoolConnection) => void): void {
    const attempt = (left: number): void => {
      this.raw.getConnection((err, conn) => {
        if (err) {
          callback(err, undefined as unknown as MysqlPoolConnection);
          return;
        }
        let done = false;
        const timer = setTimeout(() => finish(Object.assign(new Error('ping timed out'), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' })), PING_TIMEOUT_MS);
        timer.unref();
        const finish = (pingErr: unknown): void => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (!pingErr) {
            callback(null, conn as unknown as MysqlPoolConnection);
            return;
          }
          this.logger.warn(
            { err: pingErr, thread_id: (conn as RawPoolConnection).threadId },
            'database connection lost; discarding it and reconnecting',
          );
          conn.destroy();
          if (left > 0) attempt(left - 1);
          else callback(pingErr, undefined as unknown as MysqlPoolConnection);
        };
        conn.ping((pingErr) => finish(pingErr ?? null));
      });
    };
    // A pool full of dead connections is replaced one by one; the last attempt opens a new one.
    attempt(Math.max(2, this.size()));
  }

  private size(): number {
    const r = this.raw as unknown as { config?: { connectionLimit?: number } };
    return r.config?.connectionLimit ?? 10;
  }

  end(callback: (error: unknown) => void): void {
    this.raw.end((err) => callback(err ?? null));
  }
}

function mysqlPoolOptions(url: MysqlUrl, opts: OpenDatabaseOptions): mysql.PoolOptions {
  const limit = Math.max(1, (opts.maxPoolSize ?? 5) + Math.max(0, opts.maxOverflow ?? 0));
  const o: mysql.PoolOptions = {
    host: url.socketPath ? undefined : (url.host ?? 'localhost'),
    port: url.socketPath ? undefined : (url.port ?? 3306),
    socketPath: url.socketPath ?? undefined,
    user: url.user ?? undefined,
    password: url.password ?? undefined,
    database: url.database ?? undefined,
    charset: url.charset === 'utf8' ? 'UTF8_GENERAL_CI' : (url.charset ?? 'UTF8MB4_GENERAL_CI'),
    timezone: 'Z',
    dateStrings: false,
    supportBigNumbers: true,
    bigNumberStrings: false,
    decimalNumbers: true,
    connectionLimit: limit,
    maxIdle: Math.max(1, opts.maxPoolSize ?? 5),
    idleTimeout: Math.max(1, opts.connectionRecycleTime ?? 3600) * 1000,
    enableKeepAlive: true,
    keepAliveInitialDelay: 30_000,
    connectTimeout: opts.connectTimeoutMs ?? 10_000,
    waitForConnections: true,
    queueLimit: 0,
    // Kysely sends text queries (`query`), never prepared statements, yet mysql2 gives every
    // connection a statement cache preallocated for 16000 entries: 512 KiB each, unused
    // (heap snapshot of the agent, bench/attach-scale-bench.mts).
    maxPreparedStatements: 1,
    // TINYINT(1) is how SQLAlchemy's Boolean lands on MySQL.
    typeCast: (field, next) => {
      if (field.type === 'TINY' && field.length === 1) {
        const v = field.string();
        return v === null ? null : v !== '0';
      }
      return next();
    },
  };
  const q = url.query;
  if (q.connect_timeout && /^\d+$/.test(q.connect_timeout)) o.connectTimeout = Number(q.connect_timeout) * 1000;
  if (q.ssl_ca || q.ssl_cert || q.ssl_key || q.ssl === 'true') {
    const read = (p: string | undefined): string | undefined => (p ? readFileSync(p, 'utf8') : undefined);
    o.ssl = {
      ca: read(q.ssl_ca),
      cert: read(q.ssl_cert),
      key: read(q.ssl_key),
      rejectUnauthorized: q.ssl_check_hostname !== 'false' && q.ssl_verify_cert !== 'false',
    };
  }
  return o;
}

const KNOWN_MYSQL_QUERY = new Set(['charset', 'unix_socket', 'connect_timeout', 'ssl_ca', 'ssl_cert', 'ssl_key', 'ssl', 'ssl_check_hostname', 'ssl_verify_cert', 'plugin']);

// ---------------------------------------------------------------------------------------------

class Handle implements DbHandle {
  constructor(
    readonly dialect: 'mysql' | 'sqlite',
    readonly redactedUrl: string,
    readonly kysely: Kysely<CinderSchema>,
    readonly logger: Logger,
    private readonly clock: () => Date,
  ) {}

  now(): Date {
    return this.clock();
  }

  transaction<T>(fn: (trx: Transaction<CinderSchema>) => Promise<T>): Promise<T> {
    return this.kysely.transaction().execute(fn);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.kysely);
  }

  async schemaVersion(): Promise<string | null> {
    try {
      const row = await this.kysely.selectFrom('alembic_version').select('version_num').executeTakeFirst();
      return row?.version_num ?? null;
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    await this.kysely.destroy();
  }
}

function describe(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown };
    const msg = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
    return typeof e.code === 'string' && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
  }
  return String(err);
}

/** Errors retrying cannot fix: wrong credentials, unknown database, missing SQLite file is retried. */
function isPermanent(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_BAD_DB_ERROR' || code === 'ER_DBACCESS_DENIED_ERROR' || code === 'ER_NOT_SUPPORTED_AUTH_MODE';
}

async function withConnectRetry<T>(
  what: string,
  opts: OpenDatabaseOptions,
  logger: Logger,
  attemptFn: () => Promise<T>,
): Promise<T> {
  const maxRetries = opts.maxRetries ?? 10;
  const forever = maxRetries === -1;
  const attempts = forever ? Infinity : Math.max(1, maxRetries);
  const intervalMs = Math.max(0, opts.retryInterval ?? 10) * 1000;
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (opts.signal?.aborted) break;
    try {
      const result = await attemptFn();
      if (attempt > 1) logger.info({ attempt }, `connected to ${what}`);
      return result;
    } catch (err) {
      last = err;
      if (isPermanent(err)) {
        throw new DatabaseConnectionError(`cannot connect to ${what}: ${describe(err)} (not retrying: fix [database] connection)`, attempt, err);
      }
      const left = forever ? 'unlimited' : String(attempts - attempt);
      if (attempt < attempts) {
        logger.warn(
          { attempt, attempts_left: left, retry_in_s: intervalMs / 1000, error: describe(err) },
          `SQL connection to ${what} failed (attempt ${attempt}${forever ? '' : ` of ${attempts}`}): ${describe(err)}; ${left} attempts left, retrying in ${intervalMs / 1000}s`,
        );
        try {
          await delay(intervalMs, undefined, opts.signal ? { signal: opts.signal } : undefined);
        } catch {
          break; // aborted
        }
      } else {
        logger.error({ attempt, error: describe(err) }, `SQL connection to ${what} failed (attempt ${attempt} of ${attempts}): ${describe(err)}; giving up`);
      }
    }
  }
  const tried = forever ? 'retrying' : `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  throw new DatabaseConnectionError(
    `cannot connect to ${what} after ${tried}${opts.signal?.aborted ? ' (aborted)' : ''}: ${describe(last)}`,
    forever ? 0 : attempts,
    last,
  );
}

async function checkSchema(handle: Handle): Promise<void> {
  const version = await handle.schemaVersion();
  let hasServices = true;
  try {
    await handle.kysely.selectFrom('services').select('id').limit(1).execute();
  } catch {
    hasServices = false;
  }
  if (!hasServices) {
    throw new DatabaseSchemaError(
      `${handle.redactedUrl} holds no Cinder schema (table services missing); run \`cinder-manage db sync\` first`,
    );
  }
  if (version !== CINDER_ZED_ALEMBIC_HEAD) {
    handle.logger.warn(
      { alembic_version: version, expected: CINDER_ZED_ALEMBIC_HEAD },
      `Cinder schema revision ${version ?? '(none)'} differs from the Zed head ${CINDER_ZED_ALEMBIC_HEAD} cinderblock was built against`,
    );
  }
}

async function openMysql(url: MysqlUrl, opts: OpenDatabaseOptions, logger: Logger, clock: () => Date): Promise<Handle> {
  const unknown = Object.keys(url.query).filter((k) => !KNOWN_MYSQL_QUERY.has(k));
  if (unknown.length) logger.warn({ ignored: unknown }, `[database] connection: ignoring URL parameters ${unknown.join(', ')}`);
  const raw = mysql.createPool(mysqlPoolOptions(url, opts));
  // Defensive: mysql2 pools do not normally emit 'error', but an unhandled one would kill the process.
  (raw as unknown as NodeJS.EventEmitter).on('error', (err: unknown) => logger.warn({ err }, 'database pool error'));
  const pool = new PingingPool(raw, logger);
  const kysely = new Kysely<CinderSchema>({
    dialect: new MysqlDialect({
      pool,
      // oslo.db's default mysql_sql_mode; keeps MySQL from silently truncating what we write.
      onCreateConnection: async (conn) => {
        await conn.executeQuery(CompiledQuery.raw("SET SESSION sql_mode = 'TRADITIONAL'"));
      },
    }),
  });
  const handle = new Handle('mysql', url.redacted, kysely, logger, clock);
  try {
    await withConnectRetry(url.redacted, opts, logger, () => handle.ping());
  } catch (err) {
    await kysely.destroy().catch(logDropped(logger, 'closing the pool after the database could not be reached', 'its sockets close with the process; the connect error is what is reported'));
    throw err;
  }
  return handle;
}

async function openSqlite(url: SqliteUrl, opts: OpenDatabaseOptions, logger: Logger, clock: () => Date): Promise<Handle> {
  const target = url.path ?? ':memory:';
  const what = url.path ? `sqlite:///${url.path}` : 'sqlite:// (in memory)';
  const raw = await withConnectRetry(what, opts, logger, async () => {
    if (url.path && !existsSync(url.path)) {
      throw Object.assign(new Error(`SQLite database file ${url.path} does not exist (run \`cinder-manage db sync\` first)`), {
        code: 'ENOENT',
      });
    }
    return new BetterSqlite3(target, { fileMustExist: url.path !== null, timeout: opts.sqliteBusyTimeoutMs ?? 10_000 });
  });
  if (url.path && (opts.sqliteJournalMode ?? 'wal') === 'wal') {
    try {
      const mode = raw.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') logger.warn({ journal_mode: mode }, 'could not switch the SQLite database to WAL');
    } catch (err) {
      logger.warn({ err }, 'could not switch the SQLite database to WAL; keeping its journal mode');
    }
  }
  const db = new ConvertingSqliteDatabase(raw);
  const kysely = new Kysely<CinderSchema>({ dialect: new SqliteDialect({ database: db }) });
  return new Handle('sqlite', url.redacted, kysely, logger, clock);
}

/**
 * Opens the database named by a `[database] connection` URL (or an already parsed one), retrying
 * the first connection per max_retries/retry_interval, and checks it holds cinder's schema.
 */
export async function openHandle(url: string | DatabaseUrl, opts: OpenDatabaseOptions = {}): Promise<DbHandle> {
  const parsed = typeof url === 'string' ? parseDatabaseUrl(url, opts.cwd) : url;
  const logger = (opts.logger ?? log()).child({ component: 'db' });
  const clock = opts.clock ?? (() => new Date());
  const handle = parsed.dialect === 'mysql' ? await openMysql(parsed, opts, logger, clock) : await openSqlite(parsed, opts, logger, clock);
  if (opts.checkSchema ?? true) {
    try {
      await checkSchema(handle);
    } catch (err) {
      await handle.close().catch(logDropped(logger, 'closing the database after the schema check failed', 'its connections close with the process; the schema error is what is reported'));
      throw err;
    }
  }
  logger.info({ dialect: handle.dialect }, `database ${handle.redactedUrl} open`);
  return handle;
}

/**
 * Runs `fn` again when it fails with a deadlock / lock timeout (MySQL) or SQLITE_BUSY, like
 * oslo.db's wrap_db_retry(max_retries=5, retry_on_deadlock=True): waits 1, 2, 4, 8 s between tries
 * (`baseDelayMs` scales them for tests).
 */
export async function retryOnDeadlock<T>(fn: () => Promise<T>, opts: { maxRetries?: number; baseDelayMs?: number; retryIf?: (err: unknown) => boolean } = {}): Promise<T> {
  const maxRetries = opts.maxRetries ?? 5;
  const base = opts.baseDelayMs ?? 1000;
  const retryIf = opts.retryIf ?? isDeadlock;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= maxRetries || !retryIf(err)) throw err;
      await delay(Math.min(base * 2 ** attempt, base * 10));
    }
  }
}
