// Shared set-up for the src/db integration tests: one fresh Cinder database per backend and test
// file, our facade on it, and cinder's own DB API (the oracle) on the same database.
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../../src/log.js';
import { openDatabase, type CinderDb, type CinderDbOptions } from '../../../src/db/index.js';
import { createCinderDatabase, startCinderOracle, type Backend, type CinderOracle, type TestCinderDb } from '../../helpers/cinder-db.js';

export interface CapturedLogger {
  logger: Logger;
  lines(): Array<Record<string, unknown> & { msg: string; level: number }>;
  clear(): void;
}

/** A pino logger whose JSON lines are kept in memory. */
export function captureLogger(): CapturedLogger {
  let buf: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, stream) as unknown as Logger;
  return { logger, lines: () => buf.map((l) => JSON.parse(l)), clear: () => (buf = []) };
}

export interface BackendContext {
  backend: Backend;
  t: TestCinderDb;
  db: CinderDb;
  oracle: CinderOracle;
  log: CapturedLogger;
  close(): Promise<void>;
}

export async function setUpBackend(backend: Backend, opts: CinderDbOptions & { oracle?: boolean } = {}): Promise<BackendContext> {
  const t = await createCinderDatabase(backend);
  const log = captureLogger();
  const db = await openDatabase(t.url, { maxRetries: 1, logger: log.logger, ...opts });
  const oracle = opts.oracle === false ? (null as unknown as CinderOracle) : await startCinderOracle(t.confPath);
  return {
    backend,
    t,
    db,
    oracle,
    log,
    close: async () => {
      await oracle?.close();
      await db.close();
      await t.drop();
    },
  };
}

/** A DATETIME as cinder's oracle prints it: 'YYYY-MM-DDTHH:MM:SS[.ffffff]'. */
export function pyIso(d: Date, backend: Backend): string {
  const iso = d.toISOString().replace('Z', '');
  if (backend === 'mysql' || d.getUTCMilliseconds() === 0) return iso.slice(0, 19); // DATETIME(0) keeps whole seconds; isoformat() drops a zero fraction
  return `${iso}000`;
}

/** Date as stored by the backend (MySQL DATETIME truncates to whole seconds). */
export function stored(d: Date, backend: Backend): Date {
  return backend === 'mysql' ? new Date(Math.floor(d.getTime() / 1000) * 1000) : d;
}

/** Raw row via cinder's engine (values exactly as the driver returns them). */
export async function rawRow(oracle: CinderOracle, table: string, column: string, value: unknown): Promise<Record<string, unknown>> {
  const rows = await oracle.sql(`SELECT * FROM ${table} WHERE ${column} = :v`, { v: value });
  if (rows.length !== 1) throw new Error(`expected one ${table} row with ${column}=${String(value)}, got ${rows.length}`);
  return rows[0];
}

/**
 * Compares two rows the way the differential tests need: same values except the listed columns;
 * for timestamp columns only whether each is set.
 */
export function diffRows(ours: Record<string, unknown>, theirs: Record<string, unknown>, opts: { ignore?: string[]; presence?: string[] } = {}): string[] {
  const ignore = new Set(opts.ignore ?? []);
  const presence = new Set(opts.presence ?? []);
  const out: string[] = [];
  for (const k of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
    if (ignore.has(k)) continue;
    const a = ours[k];
    const b = theirs[k];
    if (presence.has(k)) {
      if ((a === null) !== (b === null)) out.push(`${k}: ours ${String(a)} cinder ${String(b)}`);
      continue;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(`${k}: ours ${JSON.stringify(a)} cinder ${JSON.stringify(b)}`);
  }
  return out;
}

export const TIMESTAMPS = ['created_at', 'updated_at', 'deleted_at', 'launched_at', 'terminated_at', 'scheduled_at', 'attach_time', 'detach_time', 'expire', 'expires_at', 'modified_at'];
