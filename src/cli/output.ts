// What the operator's debug commands (status, volume, doctor, log-level, logs) share: the exit
// codes scripts test, the choice between JSON and a table, the table itself, and opening the
// configuration and the database the way `serve` does, with a message saying what to do when
// that fails.
import { loadConfig, type CinderConfig, type ConfigSourceArg } from '../config/index.js';
import { openDatabase, type CinderDb } from '../db/index.js';
import { ConfigError } from '../errors.js';
import type { LevelWithSilent } from 'pino';
import { createLogger, setRootLogger } from '../log.js';

/**
 * Exit codes of the debug commands. 1 means the command worked and found something wrong
 * (a backend down, an inconsistency, a failed check), so `cinderblock doctor && systemctl start
 * cinderblock` does what it reads like.
 */
export const EXIT = {
  ok: 0,
  problems: 1,
  /** cinder.conf cannot be read, or the arguments make no sense */
  usage: 2,
  /** the database (or the agent, where only it can answer) is unreachable */
  unreachable: 3,
  /** the volume asked for does not exist */
  notFound: 4,
} as const;

/** A failure the command reports and exits with, without a stack trace. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = 'CliFailure';
  }
}

export interface OutputOptions {
  json?: boolean;
}

/** Write what a command found: JSON when asked (or when stdout is not a terminal and --json given), else text. */
export function emit(opts: OutputOptions, data: unknown, text: () => string): void {
  if (opts.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
  else process.stdout.write(text());
}

/** Cells as an operator reads them: null/undefined as '-', numbers as written, dates in ISO. */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (v instanceof Date) return v.toISOString().replace(/\.\d{3}Z$/, 'Z');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map(cell).join(',');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** A plain-text table: a header row, then one row per record, columns padded to their widest cell. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly unknown[]>): string {
  const text = rows.map((r) => headers.map((_, i) => cell(r[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return `${[line(headers), ...text.map(line)].join('\n')}\n`;
}

/** `key: value` lines, keys aligned. */
export function keyValues(pairs: ReadonlyArray<readonly [string, unknown]>, indent = ''): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length));
  // an empty key continues the line above (a list under one heading)
  return pairs.map(([k, v]) => `${indent}${(k ? `${k}:` : '').padEnd(w + 1)} ${cell(v)}\n`).join('');
}

/** Loads cinder.conf as serve does; a configuration error becomes exit code 2 with its message. */
export async function loadCliConfig(sources: ConfigSourceArg[]): Promise<CinderConfig> {
  try {
    return await loadConfig({ sources });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliFailure(`configuration error: ${err.message}`, EXIT.usage);
    throw err;
  }
}

/**
 * Opens [database] connection once, without the agent's minutes of retries: a debug command that
 * cannot reach the database says so at once.
 */
export async function openCliDatabase(config: CinderConfig): Promise<CinderDb> {
  try {
    return await openDatabase(config.database.connection, {
      logger: createLogger({ level: 'silent', pretty: false }),
      maxPoolSize: 2,
      maxRetries: 0,
      retryInterval: 1,
      connectTimeoutMs: 5000,
      // a read-only look must not change the file's journal mode under cinder
      sqliteJournalMode: 'keep',
    });
  } catch (err) {
    throw new CliFailure(
      `cannot open the database: ${err instanceof Error ? err.message : String(err)}. ` +
        'Check [database] connection in cinder.conf, that the server is up, and run `cinderblock doctor`',
      EXIT.unreachable,
    );
  }
}

/** Runs a command body: a CliFailure prints its message and sets its exit code. */
export async function runCli(body: () => Promise<number>): Promise<void> {
  // stdout carries the answer (JSON for scripts); what the modules underneath log goes to stderr
  setRootLogger(createLogger({ level: (process.env.CINDERBLOCK_LOG_LEVEL as LevelWithSilent | undefined) ?? 'error', pretty: false, destination: 2 }));
  try {
    process.exitCode = await body();
  } catch (err) {
    if (err instanceof CliFailure) {
      process.stderr.write(`cinderblock: ${err.message}\n`);
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}

/**
 * For a connection's close in a command's `finally`: the answer is printed already, so a failed
 * close only gets a line on stderr saying so, never a changed exit code.
 */
export function reportCloseFailure(what: string): (err: unknown) => void {
  return (err: unknown) => process.stderr.write(`cinderblock: closing ${what} failed (${err instanceof Error ? err.message : String(err)}); the answer above stands\n`);
}
