import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach } from 'vitest';
import { log, setRootLogger } from '../../../src/log.js';
import type { Logger } from '../../../src/log.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** Captures everything the config loader logs during each test. */
export function captureLogs(): LogLine[] {
  const lines: LogLine[] = [];
  let saved: Logger;
  beforeEach(() => {
    lines.length = 0;
    saved = log();
    setRootLogger(pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) }));
  });
  afterEach(() => setRootLogger(saved));
  return lines;
}

export const WARN = 40;
export const DEBUG = 20;

/** A temporary directory per test with a helper that writes files into it. */
export function tempDir(): { path: () => string; write: (rel: string, text: string) => string } {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cinderblock-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return {
    path: () => dir,
    write: (rel, text) => {
      const p = join(dir, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, text);
      return p;
    },
  };
}

/** The error `fn` throws; fails the test when it throws none. */
export function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}
