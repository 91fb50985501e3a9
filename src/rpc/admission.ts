// What the RPC server decides about a delivery before anything else looks at it: decode it, check
// it against RPC_LIMITS, parse it. Either a request to handle, or a refusal that says (without
// quoting the message: its context carries auth_token) why, who to answer and with what.
//
// Everything here is linear in the size of the body, and the body is bounded before it is
// parsed, so no message can hold the event loop for long (issue 10).
import { createHash } from 'node:crypto';
import { CinderError, invalidInput } from '../errors.js';
import { decodeEnvelope, MalformedMessage, parseRequest, RPC_ENVELOPE_VERSION, TooDeeplyNested, UnsupportedEnvelopeVersion, type IncomingRequest } from './envelope.js';
import { RPC_LIMITS } from './limits.js';

export interface ReplyAddress {
  msgId: string;
  replyQueue: string;
}

export type RefusalKind =
  /** the body is not an oslo message at all (not JSON, oslo.message unreadable) */
  | 'unreadable'
  /** over one of RPC_LIMITS */
  | 'too-large'
  /** oslo.version other than 2.0 */
  | 'envelope-version'
  /** a call (_msg_id) whose _reply_q is missing or unusable: nobody can be answered */
  | 'no-reply-queue'
  /** parseRequest refused it (no method, args not an object, ...) */
  | 'malformed';

export interface Refusal {
  kind: RefusalKind;
  /** Why, for the log line and the failure: names fields and sizes, never content. */
  reason: string;
  /** The failure a waiting caller gets (sent only when `address` is known). */
  error: Error;
  address: ReplyAddress | null;
  /** Bounded identifying fields, for the log line; null when absent or unusable. */
  method: string | null;
  msgId: string | null;
  uniqueId: string | null;
  requestId: string | null;
  globalRequestId: string | null;
}

export type Admission = { ok: true; req: IncomingRequest } | { ok: false; refusal: Refusal };

export interface BoundViolation {
  /** e.g. "context field request_id", "args.volume.versioned_object.data.display_name" */
  field: string;
  size: number;
  limit: number;
  unit: 'characters' | 'levels' | 'bytes';
}

const HEADER_KEYS = new Set(['method', 'version', 'namespace', '_msg_id', '_reply_q', '_unique_id']);
const REQUEST_ID_KEYS = new Set(['_context_request_id', '_context_global_request_id']);

/** A string field usable as-is in a log line or a reply: present, short. */
function bounded(v: unknown, limit: number = RPC_LIMITS.maxHeaderChars): string | null {
  return typeof v === 'string' && v.length > 0 && v.length <= limit ? v : null;
}

/** A queue name the broker can route to: an AMQP short string (at most 255 bytes), not empty. */
function usableQueueName(v: unknown): string | null {
  const s = bounded(v);
  return s !== null && Buffer.byteLength(s) <= 255 ? s : null;
}

function describeType(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v.length === 0 ? 'an empty string' : `a ${v.length}-character string`;
  return `a ${typeof v === 'object' ? 'JSON object' : typeof v}`;
}

/** How a key shows in a field path: short keys as they are, long ones by length only. */
function keyLabel(k: string): string {
  return k.length <= 40 && /^[\w.@:-]*$/.test(k) ? k : `<${k.length}-character key>`;
}

function fieldName(topKey: string): string {
  if (topKey.startsWith('_context_')) return `context field ${keyLabel(topKey.slice(9))}`;
  return keyLabel(topKey);
}

function stringLimitFor(topKey: string): number {
  if (REQUEST_ID_KEYS.has(topKey)) return RPC_LIMITS.maxRequestIdChars;
  if (topKey.startsWith('_context_')) return RPC_LIMITS.maxContextStringChars;
  if (HEADER_KEYS.has(topKey)) return RPC_LIMITS.maxHeaderChars;
  return RPC_LIMITS.maxArgStringChars;
}

interface Frame {
  value: unknown;
  depth: number;
  parent: Frame | null;
  key: string;
}

function pathOf(f: Frame, top: string): string {
  const keys: string[] = [];
  for (let x: Frame | null = f; x && x.parent; x = x.parent) keys.push(x.key);
  const p = [fieldName(top), ...keys.reverse()].join('.');
  return p.length <= 200 ? p : `${p.slice(0, 100)}…${p.slice(-99)}`;
}

/**
 * The first field of `inner` over RPC_LIMITS, or null. Iterative (no recursion on a peer's
 * nesting) and linear: every value is visited once, paths are built only for the answer.
 */
export function checkRequestBounds(inner: Record<string, unknown>): BoundViolation | null {
  for (const [top, value] of Object.entries(inner)) {
    if (top.length > RPC_LIMITS.maxKeyChars) return { field: 'a top-level key', size: top.length, limit: RPC_LIMITS.maxKeyChars, unit: 'characters' };
    const limit = stringLimitFor(top);
    const stack: Frame[] = [{ value, depth: 1, parent: null, key: top }];
    while (stack.length > 0) {
      const f = stack.pop() as Frame;
      const v = f.value;
      if (typeof v === 'string') {
        if (v.length > limit) return { field: pathOf(f, top), size: v.length, limit, unit: 'characters' };
        continue;
      }
      if (v === null || typeof v !== 'object') continue;
      if (f.depth > RPC_LIMITS.maxDepth) return { field: pathOf(f, top), size: f.depth, limit: RPC_LIMITS.maxDepth, unit: 'levels' };
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], depth: f.depth + 1, parent: f, key: String(i) });
        continue;
      }
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (k.length > RPC_LIMITS.maxKeyChars) return { field: `a key in ${pathOf(f, top)}`, size: k.length, limit: RPC_LIMITS.maxKeyChars, unit: 'characters' };
        stack.push({ value: x, depth: f.depth + 1, parent: f, key: k });
      }
    }
  }
  return null;
}

const BOUND_HINT = 'the agent refuses messages over its bounds (src/rpc/limits.ts) without handling them';

function tooLargeReason(v: BoundViolation): string {
  return `${v.field} is ${v.size} ${v.unit} long; at most ${v.limit} are accepted`;
}

/** What a Python caller gets for an envelope it should not have sent: oslo's own exception. */
export function unsupportedEnvelopeVersionError(version: unknown): CinderError {
  // Python's str() of the value, as oslo's msg_fmt % kwargs would print it
  let text: string;
  if (typeof version === 'string') text = version.length <= 64 ? version : `<${version.length}-character string>`;
  else if (version === null || version === undefined) text = 'None';
  else if (typeof version === 'boolean') text = version ? 'True' : 'False';
  else if (typeof version === 'number') text = String(version);
  else text = `<JSON ${Array.isArray(version) ? 'array' : 'object'}>`;
  // oslo_messaging/_drivers/common.py: class UnsupportedRpcEnvelopeVersion(RPCException); its
  // serialize_remote_exception writes args (message,) and kwargs {'version': ...}.
  return new CinderError(`Specified RPC envelope version, ${text}, not supported by this endpoint.`, {
    className: 'UnsupportedRpcEnvelopeVersion',
    module: 'oslo_messaging._drivers.common',
    kwargs: { version: text },
  });
}

/** A JSON string value after `key` in a body too large to parse, read from a small window. */
function sniffField(content: Buffer, key: string, fromEnd: boolean): string | null {
  const needle = Buffer.from(key);
  let at = fromEnd ? content.lastIndexOf(needle) : content.indexOf(needle);
  for (let tries = 0; at >= 0 && tries < 8; tries++) {
    const window = content.subarray(at + needle.length, at + needle.length + 300).toString('latin1');
    // escaped inside oslo.message (\"key\": \"value\") or plain ("key": "value")
    const m = /^\\?"\s*:\s*\\?"([\w.@-]{1,255})\\?"/.exec(window);
    if (m) return m[1] as string;
    at = fromEnd ? (at > 0 ? content.lastIndexOf(needle, at - 1) : -1) : content.indexOf(needle, at + 1);
  }
  return null;
}

function refusalFromInner(kind: RefusalKind, reason: string, error: Error, inner: Record<string, unknown> | null, answerable = true): Refusal {
  const msgId = inner ? bounded(inner._msg_id) : null;
  const replyQueue = inner ? usableQueueName(inner._reply_q) : null;
  return {
    kind,
    reason,
    error,
    address: answerable && msgId !== null && replyQueue !== null ? { msgId, replyQueue } : null,
    method: inner ? bounded(inner.method) : null,
    msgId,
    uniqueId: inner ? bounded(inner._unique_id) : null,
    requestId: inner ? bounded(inner._context_request_id, RPC_LIMITS.maxRequestIdChars) : null,
    globalRequestId: inner ? bounded(inner._context_global_request_id, RPC_LIMITS.maxRequestIdChars) : null,
  };
}

/** A body refused before parsing (too long, too deep): ids and reply address sniffed from it. */
function unparsedRefusal(content: Buffer, reason: string): Refusal {
  // The reply address and ids sit in short fields oslo writes after the args, so a bounded look
  // from the end finds them without parsing.
  const msgId = sniffField(content, '_msg_id', true);
  const replyQueue = sniffField(content, '_reply_q', true);
  return {
    kind: 'too-large',
    reason,
    error: invalidInput(`RPC request refused: ${reason} (${BOUND_HINT})`),
    address: msgId && replyQueue ? { msgId, replyQueue } : null,
    method: sniffField(content, 'method', false),
    msgId,
    uniqueId: sniffField(content, '_unique_id', true),
    requestId: null,
    globalRequestId: null,
  };
}

/** Decode, bound-check and parse one delivery's body. Never throws. */
export function admit(content: Buffer): Admission {
  if (content.length > RPC_LIMITS.maxMessageBytes) {
    return { ok: false, refusal: unparsedRefusal(content, `the message is ${content.length} bytes long; at most ${RPC_LIMITS.maxMessageBytes} are accepted`) };
  }
  let inner: Record<string, unknown>;
  try {
    inner = decodeEnvelope(content, { maxDepth: RPC_LIMITS.maxDepth });
  } catch (err) {
    if (err instanceof TooDeeplyNested) {
      return { ok: false, refusal: unparsedRefusal(content, `the request nests objects or arrays deeper than ${err.limit} levels`) };
    }
    if (err instanceof UnsupportedEnvelopeVersion) {
      const version = err.version;
      const reason = `envelope version (oslo.version) ${typeof version === 'string' && version.length <= 32 ? JSON.stringify(version) : describeType(version)} is not ${RPC_ENVELOPE_VERSION}, the only one this agent speaks`;
      // refusalFromInner reads only short fields, so the unchecked request is safe to look at
      return { ok: false, refusal: refusalFromInner('envelope-version', reason, unsupportedEnvelopeVersionError(version), err.inner) };
    }
    const reason = safeReason(err);
    return { ok: false, refusal: refusalFromInner('unreadable', reason, new MalformedMessage(reason), null) };
  }
  const violation = checkRequestBounds(inner);
  if (violation) {
    const reason = tooLargeReason(violation);
    return { ok: false, refusal: refusalFromInner('too-large', reason, invalidInput(`RPC request refused: ${reason} (${BOUND_HINT})`), inner) };
  }
  if (inner._msg_id !== undefined && inner._msg_id !== null && usableQueueName(inner._reply_q) === null) {
    const reason = `it is a call (_msg_id is set) but its _reply_q is ${describeType(inner._reply_q)}, so no reply can reach the caller, which will time out; the caller's RPC client is broken`;
    return { ok: false, refusal: refusalFromInner('no-reply-queue', reason, new MalformedMessage(reason), inner, false) };
  }
  try {
    return { ok: true, req: parseRequest(inner) };
  } catch (err) {
    const reason = safeReason(err);
    return { ok: false, refusal: refusalFromInner('malformed', reason, err instanceof Error ? err : new MalformedMessage(reason), inner) };
  }
}

/**
 * A key for the poison guard: the message's _unique_id (oslo gives every message one), else its
 * _msg_id, else a digest of the body (of its length, first and last MiB: a body can be as large
 * as the broker allows, and hashing all of it would be the kind of stall this is here to avoid).
 */
export function messageKey(adm: Admission, content: Buffer): string {
  const id = adm.ok ? (adm.req.uniqueId ?? adm.req.msgId) : (adm.refusal.uniqueId ?? adm.refusal.msgId);
  if (id) return `id:${id}`;
  const h = createHash('sha256').update(String(content.length));
  if (content.length <= 2 * 1024 * 1024) h.update(content);
  else h.update(content.subarray(0, 1024 * 1024)).update(content.subarray(content.length - 1024 * 1024));
  return `sha256:${h.digest('hex')}`;
}

/**
 * An error text safe to log for a malformed message: every quoted fragment (which may come from
 * the body) replaced by "…", at most 300 characters. One pass; an unterminated quote hides the rest.
 */
export function safeReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  let out = '';
  let i = 0;
  while (i < text.length && out.length < 300) {
    const c = text[i] as string;
    if (c !== '"' && c !== "'") {
      out += c;
      i++;
      continue;
    }
    let j = i + 1;
    while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
    out += j < text.length ? '"…"' : '"…';
    i = j + 1;
  }
  return out.slice(0, 300);
}
