// One logger for the whole agent. Two things matter to an operator reading it:
//  - every line written while serving an RPC carries that request's request_id and
//    global_request_id (taken from an AsyncLocalStorage scope, so no code has to pass them along);
//  - no secret ever reaches the log: CHAP credentials, passwords, tokens and URL passwords are
//    masked by key name and by pattern before the line is written.
import { AsyncLocalStorage } from 'node:async_hooks';
import pino, { type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export interface RequestScope {
  request_id?: string | null;
  global_request_id?: string | null;
  [key: string]: unknown;
}

const scope = new AsyncLocalStorage<RequestScope>();

/** Run `fn` with the ids of an RPC request attached to every log line it writes. */
export function withRequestScope<T>(ids: RequestScope, fn: () => T): T {
  return scope.run(ids, fn);
}

export function currentRequestScope(): RequestScope | undefined {
  return scope.getStore();
}

export const MASK = '***';

const SECRET_KEY = /(pass(word)?|secret|token|provider_auth|auth_username|chap_user|incominguser|credential|^_?context_service_catalog$)/i;

/** Masks credentials inside free text: URL passwords, CHAP triples, `password=...` pairs. */
export function scrubText(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]+@/gi, `$1${MASK}@`)
    .replace(/\bCHAP\s+\S+\s+\S+/g, `CHAP ${MASK} ${MASK}`)
    .replace(/\b(incominguser|outgoinguser)\s+\S+\s+\S+/gi, `$1 ${MASK} ${MASK}`)
    .replace(/((?:pass(?:word)?|secret|token)["']?\s*[=:]\s*["']?)[^\s"',}]+/gi, `$1${MASK}`);
}

/** Deep copy of `value` with every secret masked. Cycles and depth are bounded. */
export function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 12 || seen.has(value)) return '[…]';
  seen.add(value);
  if (value instanceof Error) {
    return { type: value.name, message: scrubText(value.message), stack: value.stack ? scrubText(value.stack) : undefined };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1, seen));
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== null && v !== undefined && v !== '' ? MASK : scrub(v, depth + 1, seen);
  }
  return out;
}

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Human-readable output; defaults to true when stdout is a terminal. */
  pretty?: boolean;
  /** Destination file descriptor or path; stdout by default. */
  destination?: number | string;
  name?: string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const usePretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const options: pino.LoggerOptions = {
    name: opts.name ?? 'cinderblock',
    level: opts.level ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => {
      const ids = scope.getStore();
      return ids ? { ...ids } : {};
    },
    formatters: {
      log: (obj) => scrub(obj) as Record<string, unknown>,
    },
    hooks: {
      // Message strings are scrubbed too: an error text may quote a command line with a secret.
      logMethod(args, method) {
        const cleaned = args.map((a) => (typeof a === 'string' ? scrubText(a) : a)) as typeof args;
        return method.apply(this, cleaned);
      },
    },
  };
  const destination = opts.destination ?? 1;
  if (usePretty) {
    return pino(options, pretty({ sync: true, destination, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }));
  }
  return pino(options, pino.destination({ dest: destination, sync: true }));
}

/** Process-wide logger; the CLI replaces it once options are read. */
let root: Logger = createLogger({ level: (process.env.CINDERBLOCK_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info' });

export function log(): Logger {
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}
