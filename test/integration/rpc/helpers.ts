// Shared helpers for the RPC integration tests. They run against the real RabbitMQ on
// 127.0.0.1:5672 (guest/guest) that other engineers' tests use too: every test names its
// topics/hosts `t-<random>` and deletes what it created.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { createLogger, log, setRootLogger, type Logger } from '../../../src/log.js';

const run = promisify(execFile);

export const BROKER = process.env.CINDERBLOCK_TEST_RABBIT_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/';
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

export function uniq(prefix = 't'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args], { timeout: 120_000, maxBuffer: 32 * 1024 * 1024 });
  return stdout;
}

export interface QueueRow {
  name: string;
  durable: boolean;
  auto_delete: boolean;
  arguments: Array<[string, string, unknown]>;
}

export async function listQueues(vhost = '/'): Promise<QueueRow[]> {
  const out = await rabbitmqctl('list_queues', '-p', vhost, 'name', 'durable', 'auto_delete', 'arguments', '--formatter', 'json');
  return JSON.parse(out || '[]') as QueueRow[];
}

export interface BindingRow {
  source_name: string;
  destination_name: string;
  routing_key: string;
}

export async function listBindings(vhost = '/'): Promise<BindingRow[]> {
  const out = await rabbitmqctl('list_bindings', '-p', vhost, 'source_name', 'destination_name', 'routing_key', '--formatter', 'json');
  return JSON.parse(out || '[]') as BindingRow[];
}

export interface ExchangeRow {
  name: string;
  type: string;
  durable: boolean;
  auto_delete: boolean;
}

export async function listExchanges(vhost = '/'): Promise<ExchangeRow[]> {
  const out = await rabbitmqctl('list_exchanges', '-p', vhost, 'name', 'type', 'durable', 'auto_delete', '--formatter', 'json');
  return JSON.parse(out || '[]') as ExchangeRow[];
}

export function argsOf(q: QueueRow): Record<string, unknown> {
  return Object.fromEntries(q.arguments.map(([k, , v]) => [k, v]));
}

/** Raw amqplib access for assertions and cleanup. */
export async function withRawChannel<T>(fn: (ch: amqp.Channel) => Promise<T>, vhost = '/'): Promise<T> {
  const conn = await amqp.connect(`${AMQP_URL}/${encodeURIComponent(vhost)}`);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return await fn(ch);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Deletes queues and exchanges (each on its own channel: a 404 closes a channel). */
export async function cleanup(queues: string[], exchanges: string[] = [], vhost = '/'): Promise<void> {
  const conn = await amqp.connect(`${AMQP_URL}/${encodeURIComponent(vhost)}`).catch(() => null);
  if (!conn) return;
  try {
    for (const q of queues) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteQueue(q).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
    for (const e of exchanges) {
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      await ch.deleteExchange(e).catch(() => undefined);
      await ch.close().catch(() => undefined);
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sends the process logger to a file for the duration of a test file; returns reader + restore. */
export function captureLogs(): { read: () => string; lines: () => Array<Record<string, unknown>>; restore: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'cb-rpc-log-'));
  const file = path.join(dir, 'log.jsonl');
  const previous: Logger = log();
  setRootLogger(createLogger({ level: 'debug', pretty: false, destination: file }));
  return {
    read: () => {
      try {
        return readFileSync(file, 'utf8');
      } catch {
        return '';
      }
    },
    lines: () => {
      let text = '';
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    restore: () => {
      setRootLogger(previous);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A cinder-like request context, auth_token included (it must never reach a log). */
export function context(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user: null,
    project_id: 'p1',
    is_admin: true,
    auth_token: 'SECRET-TOKEN-4242',
    request_id: `req-${randomBytes(8).toString('hex')}`,
    global_request_id: `req-${randomBytes(8).toString('hex')}`,
    roles: ['admin'],
    read_deleted: 'no',
    ...extra,
  };
}
