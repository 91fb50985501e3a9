// String → typed value, with the acceptance rules of oslo_config/types.py, and the reverse
// (Python's str() of a value) used when a value is substituted into another with $name.
import { isIP } from 'node:net';

export type OptType = 'str' | 'int' | 'float' | 'bool' | 'list' | 'multistr' | 'port' | 'uri' | 'hostaddress';

export interface TypeSpec {
  readonly type: OptType;
  readonly choices?: readonly string[];
  /** String choices compared case-insensitively (cfg.StrOpt ignore_case). */
  readonly ignoreCase?: boolean;
  readonly min?: number;
  readonly max?: number;
  /** Unanchored search, as types.String does; write ^…$ to anchor. */
  readonly regex?: RegExp;
}

/** A value that oslo would reject; the resolver adds file, line, section and option. */
export class ValueError extends Error {}

const TRUE_VALUES = ['true', '1', 'on', 'yes'];
const FALSE_VALUES = ['false', '0', 'off', 'no'];

// Python's int() and float() accept surrounding whitespace and '_' between digits.
const INT_RE = /^\s*[+-]?\d+(?:_\d+)*\s*$/;
const DIGITS = String.raw`\d+(?:_\d+)*`;
const FLOAT_RE = new RegExp(
  String.raw`^\s*[+-]?(?:(?:${DIGITS}(?:\.(?:${DIGITS})?)?|\.${DIGITS})(?:[eE][+-]?${DIGITS})?|inf(?:inity)?|nan)\s*$`,
  'i',
);

/** Converts one string (a scalar option's value, or one value of a MultiStrOpt). */
export function convertScalar(spec: TypeSpec, raw: string): unknown {
  switch (spec.type) {
    case 'str':
    case 'multistr':
      return checkString(spec, raw);
    case 'bool':
      return toBool(raw);
    case 'int':
    case 'port':
      return toNumber(spec, raw, true);
    case 'float':
      return toNumber(spec, raw, false);
    case 'list':
      return toList(raw);
    case 'hostaddress':
      return toHostAddress(raw);
    case 'uri':
      return toUri(raw);
  }
}

/** Checks a typed default the way oslo checks a default that is not a string (range, choices). */
export function checkTyped(spec: TypeSpec, value: unknown): unknown {
  if (typeof value === 'number') return checkRange(spec, value);
  if (typeof value === 'string') return convertScalar(spec, value);
  return value;
}

export function describeAllowed(spec: TypeSpec): string {
  if (spec.choices) return `one of ${spec.choices.join(', ')}`;
  const base: Record<OptType, string> = {
    str: 'a string',
    multistr: 'a string',
    bool: 'a boolean (true/false, yes/no, on/off, 1/0)',
    int: 'an integer',
    port: 'a port number',
    float: 'a number',
    list: 'a comma-separated list',
    hostaddress: 'an IP address or host name',
    uri: 'a URI with scheme and host',
  };
  let text = base[spec.type];
  if (spec.min !== undefined && spec.max !== undefined) text += ` from ${spec.min} to ${spec.max}`;
  else if (spec.min !== undefined) text += ` ≥ ${spec.min}`;
  else if (spec.max !== undefined) text += ` ≤ ${spec.max}`;
  if (spec.regex) text += ` matching ${spec.regex.source}`;
  return text;
}

function checkString(spec: TypeSpec, value: string): string {
  if (spec.regex && !spec.regex.test(value)) {
    throw new ValueError(`${JSON.stringify(value)} does not match ${spec.regex.source}`);
  }
  if (!spec.choices) return value;
  const ok = spec.ignoreCase
    ? spec.choices.some((c) => c.toLowerCase() === value.toLowerCase())
    : spec.choices.includes(value);
  if (!ok) throw new ValueError(`valid values are [${spec.choices.join(', ')}], but found ${JSON.stringify(value)}`);
  return value;
}

function toBool(raw: string): boolean {
  const s = raw.toLowerCase();
  if (TRUE_VALUES.includes(s)) return true;
  if (FALSE_VALUES.includes(s)) return false;
  throw new ValueError(`unexpected boolean value ${JSON.stringify(raw)}`);
}

/** An empty (or blank) number is None for oslo, not an error; the caller decides what None means. */
function toNumber(spec: TypeSpec, raw: string, integer: boolean): number | null {
  if (raw.trim() === '') return null;
  if (!(integer ? INT_RE : FLOAT_RE).test(raw)) {
    throw new ValueError(`${JSON.stringify(raw)} is not ${integer ? 'an integer' : 'a number'}`);
  }
  const s = raw.trim().replace(/_/g, '').toLowerCase();
  const n = s.endsWith('inf') || s.endsWith('infinity') ? (s.startsWith('-') ? -Infinity : Infinity) : Number(s);
  return checkRange(spec, n);
}

function checkRange(spec: TypeSpec, n: number): number {
  const min = spec.type === 'port' ? Math.max(spec.min ?? 0, 0) : spec.min;
  const max = spec.type === 'port' ? Math.min(spec.max ?? 65535, 65535) : spec.max;
  if (min !== undefined && n < min) throw new ValueError(`${n} should be greater than or equal to ${min}`);
  if (max !== undefined && n > max) throw new ValueError(`${n} should be less than or equal to ${max}`);
  return n;
}

/** types.List(String()): strip, drop one trailing comma run, split on ',', strip each item. */
function toList(raw: string): string[] {
  const s = raw.trim().replace(/,+$/, '');
  if (s === '') return [];
  return s.split(',').map((item) => item.trim());
}

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** types.HostAddress: an IPv4/IPv6 address, else an RFC 1123 host name. */
function toHostAddress(raw: string): string {
  if (raw === '') throw new ValueError('an empty string is not a valid host address');
  if (isIP(raw)) return raw;
  const name = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  const labels = name.split('.');
  const tld = labels[labels.length - 1] ?? '';
  if (raw.length <= 253 && /[a-z-]/i.test(tld) && labels.every((l) => HOST_LABEL.test(l))) return raw;
  throw new ValueError(`${JSON.stringify(raw)} is not a valid host address`);
}

/** types.URI: scheme and host required. */
function toUri(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValueError(`${JSON.stringify(raw)} is not a valid URI`);
  }
  if (!url.host) throw new ValueError(`${JSON.stringify(raw)} has no host`);
  return raw;
}

/**
 * str() of a converted value as Python prints it: substitution ($name) inserts the *converted*
 * value of the referenced option, so `$debug` gives 'True', `$rpc_response_timeout` '60' and an
 * unset option ''.
 */
export function pythonStr(value: unknown, type: OptType): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') {
    if (type !== 'float') return String(value);
    if (Number.isNaN(value)) return 'nan';
    if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
    return Number.isInteger(value) && Math.abs(value) < 1e16 ? value.toFixed(1) : String(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => pythonRepr(String(v))).join(', ')}]`;
  return String(value);
}

function pythonRepr(s: string): string {
  if (s.includes("'") && !s.includes('"')) return `"${s}"`;
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
}
