// oslo.messaging rabbit wire format: the 2.0 envelope and the inner request/reply dicts.
// Byte layout follows oslo exactly (oslo_messaging/_drivers/common.py serialize_msg,
// amqpdriver.py _send/_send_reply, amqp.py pack_context/_add_unique_id): Python's json.dumps
// defaults, i.e. ", " / ": " separators, ASCII-only output, keys in insertion order.
import { randomUUID } from 'node:crypto';
import { formatPerfectTime, serializeEntity } from './ovo.js';

export class MalformedMessage extends Error {
  constructor(reason: string) {
    super(`malformed RPC message: ${reason}`);
    this.name = 'MalformedMessage';
  }
}

/**
 * oslo.version is not one this agent speaks (oslo's deserialize_msg raises
 * UnsupportedRpcEnvelopeVersion). `inner` is the request when oslo.message could still be read,
 * so that a caller waiting for an answer can be told.
 */
export class UnsupportedEnvelopeVersion extends MalformedMessage {
  constructor(
    readonly version: unknown,
    readonly inner: Record<string, unknown> | null,
  ) {
    super(`unsupported oslo.version ${describeVersion(version)} (this agent speaks ${RPC_ENVELOPE_VERSION})`);
    this.name = 'UnsupportedEnvelopeVersion';
  }
}

/** A version for a message: quoted when short, its length when not (it came from a peer). */
function describeVersion(v: unknown): string {
  if (typeof v === 'string') return v.length <= 32 ? JSON.stringify(v) : `(a ${v.length}-character string)`;
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return `(a JSON ${Array.isArray(v) ? 'array' : typeof v})`;
}

export const RPC_ENVELOPE_VERSION = '2.0';
const VERSION_KEY = 'oslo.version';
const MESSAGE_KEY = 'oslo.message';
/** oslo's dispatcher uses this when a request carries no `version` (rpc/dispatcher.py dispatch). */
export const DEFAULT_REQUEST_VERSION = '1.0';

/**
 * A float that must be written the way Python writes a float (`3.0`, not `3`). JS numbers lose
 * the int/float distinction; capability reports (free_capacity_gb...) are floats in cinder.
 */
export class PyFloat {
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value;
  }
}
export const pyFloat = (v: number): PyFloat => new PyFloat(v);

/** Python's repr(float): shortest round-trip digits, exponent form outside 1e-4 <= |x| < 1e16. */
function floatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expStr] = Math.abs(x).toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  const digits = mant.replace('.', '');
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, '0');
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = digits.slice(exp + 1);
  return `${sign}${intPart}.${frac || '0'}`;
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** json.dumps(ensure_ascii=True) string quoting: everything outside ' '..'~' becomes \uXXXX. */
function quote(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what json.dumps escapes
  return `"${s.replace(/[\\"\u0000-\u001f\u007f-\uffff]/g, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
}

/**
 * Python json.dumps (as used by oslo jsonutils and kombu). Integral JS numbers are written as
 * ints, PyFloat as floats, Date like jsonutils.to_primitive; undefined object members are left out.
 */
export function pyDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return quote(value);
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isInteger(value) ? BigInt(value).toString() : floatRepr(value);
    case 'object':
      break;
    default:
      throw new TypeError(`Object of type ${typeof value} is not JSON serializable`);
  }
  if (value instanceof PyFloat) return floatRepr(value.value);
  if (value instanceof Date) return quote(formatPerfectTime(value));
  if (Array.isArray(value)) return `[${value.map((v) => pyDumps(v)).join(', ')}]`;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`Object of type ${(value as object).constructor?.name ?? 'unknown'} is not JSON serializable`);
  }
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) parts.push(`${quote(k)}: ${pyDumps(v)}`);
  }
  return `{${parts.join(', ')}}`;
}

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** oslo _utils.version_is_compatible('2.0', v): same major, minor (and revision) not newer. */
function envelopeVersionOk(v: string): boolean {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(v);
  if (!m) return false;
  return Number(m[1]) === 2 && Number(m[2]) === 0 && Number(m[3] ?? 0) === 0;
}

/** A message nested deeper than the reader accepts; found before parsing it (see decodeEnvelope). */
export class TooDeeplyNested extends MalformedMessage {
  constructor(readonly limit: number) {
    super(`nesting deeper than ${limit} levels`);
    this.name = 'TooDeeplyNested';
  }
}

/**
 * Whether objects/arrays in a JSON text nest deeper than `limit`, without parsing it: one pass,
 * strings skipped. V8 parses deep nesting slowly (about 0.7 s per million levels), so a crafted
 * body is refused before JSON.parse gets to spend that.
 */
export function jsonNestingExceeds(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: jump to its closing quote, stepping over escapes
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** oslo.message of an envelope that is refused anyway: the request if it reads as one, else null. */
function readableInner(packed: unknown, maxDepth: number | undefined): Record<string, unknown> | null {
  if (typeof packed !== 'string') return null;
  if (maxDepth !== undefined && jsonNestingExceeds(packed, maxDepth)) return null;
  try {
    const inner: unknown = JSON.parse(packed);
    return isDict(inner) ? inner : null;
  } catch {
    return null;
  }
}

export interface DecodeOptions {
  /**
   * Refuse (TooDeeplyNested) a body whose request nests objects/arrays deeper than this, counted
   * from the request's top-level values (the request dict itself is level 0), before parsing it.
   */
  maxDepth?: number;
}

export function decodeEnvelope(body: Buffer | string, opts: DecodeOptions = {}): Record<string, unknown> {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  // +1: the request dict's own braces
  const textDepth = opts.maxDepth === undefined ? undefined : opts.maxDepth + 1;
  if (textDepth !== undefined && jsonNestingExceeds(text, textDepth)) throw new TooDeeplyNested(opts.maxDepth as number);
  let outer: unknown;
  try {
    outer = JSON.parse(text);
  } catch (e) {
    throw new MalformedMessage(`body is not JSON (${(e as Error).message})`);
  }
  if (!isDict(outer)) throw new MalformedMessage('body is not a JSON object');
  // Without both envelope keys oslo treats the dict itself as the message (common.deserialize_msg).
  if (!(VERSION_KEY in outer) || !(MESSAGE_KEY in outer)) return outer;
  const version = outer[VERSION_KEY];
  if (typeof version !== 'string' || !envelopeVersionOk(version)) throw new UnsupportedEnvelopeVersion(version, readableInner(outer[MESSAGE_KEY], textDepth));
  const packed = outer[MESSAGE_KEY];
  if (typeof packed !== 'string') throw new MalformedMessage('oslo.message is not a string');
  if (textDepth !== undefined && jsonNestingExceeds(packed, textDepth)) throw new TooDeeplyNested(opts.maxDepth as number);
  let inner: unknown;
  try {
    inner = JSON.parse(packed);
  } catch (e) {
    throw new MalformedMessage(`oslo.message is not JSON (${(e as Error).message})`);
  }
  if (!isDict(inner)) throw new MalformedMessage('oslo.message is not a JSON object');
  return inner;
}

/** Body text for `inner`; VersionedObjects and Dates in it are serialized on the way. */
export function encodeEnvelope(inner: Record<string, unknown>): string {
  return pyDumps({ [VERSION_KEY]: RPC_ENVELOPE_VERSION, [MESSAGE_KEY]: pyDumps(serializeEntity(inner)) });
}

export function newUniqueId(): string {
  return randomUUID().replace(/-/g, '');
}

export interface IncomingRequest {
  method: string;
  args: Record<string, unknown>;
  /** As sent; null when absent (oslo then dispatches as DEFAULT_REQUEST_VERSION). */
  version: string | null;
  namespace: string | null;
  uniqueId: string | null;
  msgId: string | null;
  replyQueue: string | null;
  /** call-monitor timeout (seconds); null when the caller sent none (cinder always sends null). */
  timeout: number | null;
  /** the _context_* keys without the prefix */
  context: Record<string, unknown>;
}

function optString(inner: Record<string, unknown>, key: string): string | null {
  const v = inner[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new MalformedMessage(`${key} must be a string, got ${typeof v}`);
  return v;
}

export function parseRequest(inner: Record<string, unknown>): IncomingRequest {
  const method = inner.method;
  if (typeof method !== 'string' || method === '') throw new MalformedMessage('request has no method');
  const args = inner.args ?? {};
  if (!isDict(args)) throw new MalformedMessage(`args of ${method} must be an object, got ${Array.isArray(args) ? 'array' : typeof args}`);
  const version = optString(inner, 'version');
  if (version !== null && !/^\d+\.\d+(\.\d+)?$/.test(version)) throw new MalformedMessage(`bad version ${JSON.stringify(version)}`);
  const msgId = optString(inner, '_msg_id');
  const replyQueue = optString(inner, '_reply_q');
  if (msgId !== null && replyQueue === null) throw new MalformedMessage(`call ${method} has _msg_id but no _reply_q`);
  // oslo ignores a call-monitor timeout it cannot use as a positive integer.
  const t = inner._timeout;
  const timeout = typeof t === 'number' && Number.isFinite(t) && t > 0 ? t : null;
  const context: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(inner)) {
    if (k.startsWith('_context_')) context[k.slice(9)] = v;
  }
  return {
    method,
    args,
    version,
    namespace: optString(inner, 'namespace'),
    uniqueId: optString(inner, '_unique_id'),
    msgId,
    replyQueue,
    timeout,
    context,
  };
}

/**
 * Key order as oslo builds it: method, args, [namespace], version, [_msg_id, _reply_q, _timeout],
 * _unique_id, _context_*. Args go through serializeEntity, so VersionedObjects and Dates may be
 * passed directly (already-serialized primitives pass through unchanged).
 */
export function buildRequest(r: {
  method: string;
  args: Record<string, unknown>;
  version?: string;
  namespace?: string | null;
  context: Record<string, unknown>;
  call?: { msgId: string; replyQueue: string; timeout: number | null };
}): Record<string, unknown> {
  const msg: Record<string, unknown> = { method: r.method, args: serializeEntity(r.args) };
  if (r.namespace !== undefined && r.namespace !== null) msg.namespace = r.namespace;
  if (r.version !== undefined) msg.version = r.version;
  if (r.call) {
    msg._msg_id = r.call.msgId;
    msg._reply_q = r.call.replyQueue;
    msg._timeout = r.call.timeout;
  }
  msg._unique_id = newUniqueId();
  for (const [k, v] of Object.entries(r.context)) msg[`_context_${k}`] = v;
  return msg;
}

/** `{"result","failure","ending","_msg_id","_unique_id"}` as AMQPIncomingMessage._send_reply. */
export function buildReply(r: { msgId: string; result: unknown; failure: string | null; ending: boolean }): Record<string, unknown> {
  return { result: serializeEntity(r.result), failure: r.failure, ending: r.ending, _msg_id: r.msgId, _unique_id: newUniqueId() };
}
