// One logger for the whole agent. Two things matter to an operator reading it:
//  - every line written while serving an RPC carries that request's request_id and
//    global_request_id (taken from an AsyncLocalStorage scope, so no code has to pass them along);
//  - no secret ever reaches the log: CHAP credentials, passwords, tokens and URL passwords are
//    masked by key name and by pattern before the line is written.
// And one thing matters to the agent itself: writing a line must never stall the event loop,
// whatever a peer put into a field (issue 10: a 1 MiB request_id in an RPC context hung the agent
// in the URL-password regex, which backtracked quadratically). So masking is linear in the input
// (a small scanner for URLs, regexes that cannot backtrack more than a token), and no string
// field of a line is longer than LOG_STRING_LIMIT.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import type { Bindings, ChildLoggerOptions, LevelWithSilent, Logger, LoggerOptions as PinoLoggerOptions } from 'pino';

// pino and pino-pretty are loaded when the first logger is made, not when this module is: a
// command that never logs (`cinderblock copy`, `--version`) does not pay their ~150 ms.
const requireCjs = createRequire(import.meta.url);
type PinoFactory = typeof import('pino');
const loadPino = (): PinoFactory => requireCjs('pino') as PinoFactory;
const loadPretty = (): typeof import('pino-pretty') => requireCjs('pino-pretty') as typeof import('pino-pretty');

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

/**
 * Longest string a log line carries in one field (and in its message): 8 KiB keeps a long error
 * stack readable, and a field a peer inflated (a 1 MiB request_id) costs the log 8 KiB, not 1 MiB.
 * Longer strings are cut, with a marker saying how long they were.
 */
export const LOG_STRING_LIMIT = 8192;

/** `s` cut to `limit` characters with a marker; never splits a surrogate pair. */
export function truncateForLog(s: string, limit = LOG_STRING_LIMIT): string {
  if (s.length <= limit) return s;
  let end = limit;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}…[truncated, ${s.length} chars]`;
}

const isLetter = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
/** RFC 3986 scheme characters after the first: letters, digits, '+', '.', '-'. */
const isSchemeChar = (c: number): boolean => isLetter(c) || isDigit(c) || c === 0x2b || c === 0x2e || c === 0x2d;
/** Exactly the characters JavaScript's `\s` matches. */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}
const COLON = 0x3a;
const SLASH = 0x2f;
const AT = 0x40;
const endsUser = (c: number): boolean => c === COLON || c === SLASH || c === AT || isSpace(c);
const endsPassword = (c: number): boolean => c === AT || c === SLASH || isSpace(c);

/**
 * `scheme://user:password@` → `scheme://user:***@`, in one pass. Same matches as the regex
 * /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^@/\s]+@/gi it replaces, which backtracked quadratically on
 * a long run of scheme characters (every start position scanned to the end of the run). Here
 * each "://" is looked at once: its scheme is the run of scheme characters before it (starting
 * at its first letter, and not before the end of the previous match), then user and password are
 * read forward. Scheme runs, users and passwords never overlap the next "://", so the whole scan
 * is linear.
 */
function maskUrlPasswords(text: string): string {
  let out = '';
  let emitted = 0; // text before this index is already in `out`
  let from = 0; // like a global regex's lastIndex: no match starts before it
  for (let q = text.indexOf('://', from); q !== -1; q = text.indexOf('://', q + 1)) {
    let s = q;
    while (s > from && isSchemeChar(text.charCodeAt(s - 1))) s--;
    while (s < q && !isLetter(text.charCodeAt(s))) s++;
    if (s === q) continue; // no scheme
    let i = q + 3;
    while (i < text.length && !endsUser(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== COLON) continue; // no user:password
    const pw = ++i;
    while (i < text.length && !endsPassword(text.charCodeAt(i))) i++;
    if (i === pw || text.charCodeAt(i) !== AT) continue;
    out += `${text.slice(emitted, pw)}${MASK}@`;
    emitted = i + 1;
    from = i + 1;
    q = i; // the next "://" starts after the '@'
  }
  return emitted === 0 ? text : out + text.slice(emitted);
}

// These three are linear as written: each can only start at a keyword, and what follows the
// keyword is a fixed sequence of whitespace / non-whitespace runs (or one character class) with
// no nested repetition, so a failed start costs at most the runs right after its own keyword.
const CHAP_RE = /\bCHAP\s+\S+\s+\S+/g;
const TGT_USER_RE = /\b(incominguser|outgoinguser)\s+\S+\s+\S+/gi;
const KEY_VALUE_RE = /((?:pass(?:word)?|secret|token)["']?\s*[=:]\s*["']?)[^\s"',}]+/gi;

/** Masks credentials inside free text: URL passwords, CHAP triples, `password=...` pairs. Linear time. */
export function scrubText(text: string): string {
  return maskUrlPasswords(text)
    .replace(CHAP_RE, `CHAP ${MASK} ${MASK}`)
    .replace(TGT_USER_RE, `$1 ${MASK} ${MASK}`)
    .replace(KEY_VALUE_RE, `$1${MASK}`);
}

function scrubValue(value: unknown, depth: number, seen: WeakSet<object>, limit: number): unknown {
  if (typeof value === 'string') return truncateForLog(scrubText(value), limit);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 12 || seen.has(value)) return '[…]';
  seen.add(value);
  if (value instanceof Error) {
    return {
      type: truncateForLog(value.name, limit),
      message: truncateForLog(scrubText(value.message), limit),
      stack: value.stack ? truncateForLog(scrubText(value.stack), limit) : undefined,
    };
  }
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, depth + 1, seen, limit));
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const key = truncateForLog(k, limit);
    out[key] = SECRET_KEY.test(k) && v !== null && v !== undefined && v !== '' ? MASK : scrubValue(v, depth + 1, seen, limit);
  }
  return out;
}

/** Deep copy of `value` with every secret masked. Cycles and depth are bounded. */
export function scrub(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  return scrubValue(value, depth, seen, Number.POSITIVE_INFINITY);
}

/** What a log line carries: scrub(), and no string (key or value) longer than LOG_STRING_LIMIT. */
export function scrubForLog(value: unknown): unknown {
  return scrubValue(value, 0, new WeakSet<object>(), LOG_STRING_LIMIT);
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
  const pino = loadPino();
  const usePretty = opts.pretty ?? Boolean(process.stdout.isTTY);
  const options: PinoLoggerOptions = {
    name: opts.name ?? 'cinderblock',
    level: opts.level ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: () => {
      const ids = scope.getStore();
      return ids ? { ...ids } : {};
    },
    formatters: {
      log: (obj) => scrubForLog(obj) as Record<string, unknown>,
    },
    hooks: {
      // Message strings are scrubbed (an error text may quote a command line with a secret) and
      // bounded like every other field.
      logMethod(args, method) {
        const cleaned = args.map((a) => (typeof a === 'string' ? truncateForLog(scrubText(a)) : a)) as typeof args;
        return method.apply(this, cleaned);
      },
    },
  };
  const destination = opts.destination ?? 1;
  const logger = usePretty
    ? pino(options, loadPretty()({ sync: true, destination, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name' }))
    : pino(options, pino.destination({ dest: destination, sync: true }));
  return boundChildBindings(logger);
}

/**
 * A child logger's bindings go on every line it writes but not through formatters.log (pino
 * serializes them once, in child(), and ignores a bindings formatter for children), so child()
 * scrubs and bounds them first. Set on the root only: children are Object.create(parent) in
 * pino, so they inherit this child(), and `this` is the logger being extended.
 */
function boundChildBindings(logger: Logger): Logger {
  type ChildFn = (this: Logger, bindings: Bindings, childOptions?: ChildLoggerOptions) => Logger;
  const pinoChild = logger.child as unknown as ChildFn;
  const child: ChildFn = function (this: Logger, bindings, childOptions) {
    return pinoChild.call(this, scrubForLog(bindings) as Bindings, childOptions);
  };
  logger.child = child as unknown as typeof logger.child;
  return logger;
}

/** Process-wide logger, made on first use; the CLI replaces it once options are read. */
let root: Logger | undefined;

export function log(): Logger {
  root ??= createLogger({ level: (process.env.CINDERBLOCK_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info' });
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}

/**
 * The catch handler of a step whose failure may be dropped: it logs what was dropped and why that
 * is safe (or, with level 'error', what the operator must do about it), never nothing.
 */
export function logDropped(logger: Logger, what: string, consequence: string, level: 'warn' | 'error' = 'warn'): (err: unknown) => void {
  return (err: unknown) => logger[level]({ err }, `${what} failed (${err instanceof Error ? err.message : String(err)}); ${consequence}`);
}
