// oslo.messaging transport_url parsing, as oslo_messaging/transport.py TransportURL.parse does it,
// plus the defaults kombu applies when the rabbit driver turns each host into a connection
// (impl_rabbit.Connection._transform_transport_url + kombu.transport.pyamqp default_connection_params).
//
//   rabbit://user:pass@host1:5672,user2:pass2@host2:5673/vhost?heartbeat_timeout_threshold=30&ssl=true
//
// Query parameters are [oslo_messaging_rabbit] options that override the configuration file
// (oslo_messaging/_drivers/common.py ConfigOptsProxy). An unknown name is an error, as in oslo.
//
// The password is never printed: use `redacted` / redactTransportUrl() for anything a human sees.
import { ConfigError } from '../errors.js';

export interface TransportHost {
  /** As written in the URL (brackets of an IPv6 literal removed); null when absent. */
  hostname: string | null;
  port: number | null;
  username: string | null;
  password: string | null;
}

export interface TransportUrl {
  /** URL scheme: 'rabbit' (or 'amqp', accepted as an alias here). */
  transport: string;
  /** Path without its leading '/', URL-decoded; null when the URL has no path. */
  virtualHost: string | null;
  hosts: TransportHost[];
  /** Query parameters; repeated keys are joined with ',' as oslo does. */
  query: Record<string, string>;
  /** The URL with every password replaced by '***'. */
  redacted: string;
}

/** One broker to connect to, with kombu's defaults filled in. */
export interface BrokerEndpoint {
  hostname: string;
  port: number;
  username: string;
  password: string;
  vhost: string;
  /** "host:port" for log lines (IPv6 bracketed). Never contains credentials. */
  label: string;
}

export class InvalidTransportURL extends ConfigError {
  constructor(url: string, reason: string) {
    super(`Invalid transport_url ${redactTransportUrl(url)}: ${reason}`);
    this.name = 'InvalidTransportURL';
  }
}

const ACCEPTED_SCHEMES = new Set(['rabbit', 'amqp', 'kombu', 'kombu+rabbit', 'kombu+amqp']);

function decode(s: string): string {
  // Python's urllib.parse.unquote never fails; keep malformed escapes literally like it does.
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

/** Python parse_qs semantics: '+' is a space, blank values dropped, repeated keys joined by ','. */
function parseQuery(q: string): Record<string, string> {
  const acc = new Map<string, string[]>();
  for (const part of q.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    if (eq < 0) continue; // parse_qs drops "key" without '=' (strict_parsing=False)
    const k = decode(part.slice(0, eq).replace(/\+/g, ' '));
    const v = decode(part.slice(eq + 1).replace(/\+/g, ' '));
    if (v === '') continue; // keep_blank_values=False
    const list = acc.get(k) ?? [];
    list.push(v);
    acc.set(k, list);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of acc) out[k] = v.join(',');
  return out;
}

/** Replaces passwords in any URL-ish text (also several comma-separated userinfo parts). */
export function redactTransportUrl(url: string): string {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/)([^/?#]*)(.*)$/s.exec(url);
  if (!m) return url.replace(/:[^:@/]*@/g, ':***@');
  const [, scheme, netloc, rest] = m as unknown as [string, string, string, string];
  const hosts = netloc.split(',').map((h) => {
    const at = h.lastIndexOf('@');
    if (at < 0) return h;
    const userinfo = h.slice(0, at);
    const colon = userinfo.indexOf(':');
    return colon < 0 ? h : `${userinfo.slice(0, colon)}:***${h.slice(at)}`;
  });
  return `${scheme}${hosts.join(',')}${rest}`;
}

export function parseTransportUrl(url: string): TransportUrl {
  if (typeof url !== 'string') throw new InvalidTransportURL(String(url), 'Wrong URL type');
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/s.exec(url.trim());
  if (!m) throw new InvalidTransportURL(url, 'No scheme specified');
  const transport = (m[1] as string).toLowerCase();
  if (!ACCEPTED_SCHEMES.has(transport)) {
    throw new InvalidTransportURL(url, `unsupported transport '${transport}' (expected rabbit://)`);
  }
  let rest = m[2] as string;
  // urlparse: fragment, then query, then netloc (after '//'), then path.
  const hashAt = rest.indexOf('#');
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  let queryText = '';
  const qAt = rest.indexOf('?');
  if (qAt >= 0) {
    queryText = rest.slice(qAt + 1);
    rest = rest.slice(0, qAt);
  }
  let netloc = '';
  let path = rest;
  if (rest.startsWith('//')) {
    const after = rest.slice(2);
    const slash = after.indexOf('/');
    netloc = slash < 0 ? after : after.slice(0, slash);
    path = slash < 0 ? '' : after.slice(slash);
  }
  const virtualHost = path.startsWith('/') ? decode(path.slice(1)) : null;

  const hosts: TransportHost[] = [];
  for (const raw of netloc.split(',')) {
    if (!raw) continue;
    let hostname: string | null = raw;
    let username: string | null = null;
    let password: string | null = null;
    let portText: string | null = null;
    const at = raw.lastIndexOf('@');
    if (at >= 0) {
      let user = raw.slice(0, at);
      hostname = raw.slice(at + 1);
      const colon = user.indexOf(':');
      if (colon >= 0) {
        password = decode(user.slice(colon + 1));
        user = user.slice(0, colon);
      }
      username = decode(user);
    }
    if (!hostname) {
      hostname = null;
    } else if (hostname.startsWith('[')) {
      const end = hostname.indexOf(']');
      if (end < 0) throw new InvalidTransportURL(url, 'Invalid IPv6 URL');
      const tail = hostname.slice(end);
      hostname = hostname.slice(1, end);
      const c = tail.indexOf(':');
      portText = c >= 0 ? tail.slice(c + 1) : null;
    } else if (hostname.includes(':')) {
      const c = hostname.indexOf(':');
      portText = hostname.slice(c + 1);
      hostname = hostname.slice(0, c);
    }
    let port: number | null = null;
    if (portText !== null && portText !== '') {
      if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
        throw new InvalidTransportURL(url, `invalid port '${portText}'`);
      }
      port = Number(portText);
    }
    hosts.push({ hostname, port, username, password });
  }
  return { transport, virtualHost, hosts, query: parseQuery(queryText), redacted: redactTransportUrl(url) };
}

/**
 * The brokers the rabbit driver would try, in URL order, with kombu's defaults:
 * missing user or password → 'guest' (each separately, kombu's `if not value: default`),
 * missing host → 'localhost' (kombu then connects to 127.0.0.1), missing port → 5672 (oslo always
 * passes 5672, even with ssl), empty vhost → '/'.
 */
export function brokerEndpoints(url: TransportUrl): BrokerEndpoint[] {
  const vhost = url.virtualHost ? url.virtualHost : '/';
  const hosts = url.hosts.length > 0 ? url.hosts : [{ hostname: null, port: null, username: null, password: null }];
  return hosts.map((h) => {
    let hostname = h.hostname || 'localhost';
    if (hostname === 'localhost') hostname = '127.0.0.1';
    const port = h.port || 5672;
    const label = `${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
    return { hostname, port, username: h.username || 'guest', password: h.password || 'guest', vhost, label };
  });
}

/** Hosts given with and without credentials at the same time: oslo logs a warning for this. */
export function hasMixedCredentials(url: TransportUrl): boolean {
  const withCreds = url.hosts.filter((h) => h.username !== null && h.password !== null).length;
  return withCreds > 0 && withCreds < url.hosts.length;
}

// ---------------------------------------------------------------------------------------------
// [oslo_messaging_rabbit] options (impl_rabbit.rabbit_opts + amqp.amqp_opts + base.base_opts)

export interface RabbitOptions {
  ssl: boolean;
  ssl_version: string;
  ssl_key_file: string;
  ssl_cert_file: string;
  ssl_ca_file: string;
  ssl_enforce_hostname_verification: boolean;
  kombu_reconnect_delay: number;
  kombu_missing_consumer_retry_timeout: number;
  kombu_failover_strategy: 'round-robin' | 'shuffle';
  rabbit_login_method: 'PLAIN' | 'AMQPLAIN' | 'EXTERNAL' | 'RABBIT-CR-DEMO';
  rabbit_retry_interval: number;
  rabbit_retry_backoff: number;
  rabbit_interval_max: number;
  rabbit_ha_queues: boolean;
  rabbit_quorum_queue: boolean;
  rabbit_quorum_delivery_limit: number;
  rabbit_quroum_max_memory_length: number;
  rabbit_quroum_max_memory_bytes: number;
  rabbit_transient_queues_ttl: number;
  rabbit_qos_prefetch_count: number;
  heartbeat_timeout_threshold: number;
  heartbeat_rate: number;
  direct_mandatory_flag: boolean;
  enable_cancel_on_failover: boolean;
  amqp_durable_queues: boolean;
  amqp_auto_delete: boolean;
}

export const DEFAULT_RABBIT_OPTIONS: Readonly<RabbitOptions> = Object.freeze({
  ssl: false,
  ssl_version: '',
  ssl_key_file: '',
  ssl_cert_file: '',
  ssl_ca_file: '',
  ssl_enforce_hostname_verification: false,
  kombu_reconnect_delay: 1.0,
  kombu_missing_consumer_retry_timeout: 60,
  kombu_failover_strategy: 'round-robin',
  rabbit_login_method: 'AMQPLAIN',
  rabbit_retry_interval: 1,
  rabbit_retry_backoff: 2,
  rabbit_interval_max: 30,
  rabbit_ha_queues: false,
  rabbit_quorum_queue: false,
  rabbit_quorum_delivery_limit: 0,
  rabbit_quroum_max_memory_length: 0,
  rabbit_quroum_max_memory_bytes: 0,
  rabbit_transient_queues_ttl: 1800,
  rabbit_qos_prefetch_count: 0,
  heartbeat_timeout_threshold: 60,
  heartbeat_rate: 2,
  direct_mandatory_flag: true,
  enable_cancel_on_failover: false,
  amqp_durable_queues: false,
  amqp_auto_delete: false,
});

type OptKind = 'bool' | 'int' | 'float' | 'str';
const OPT_KINDS: Record<keyof RabbitOptions, OptKind> = {
  ssl: 'bool',
  ssl_version: 'str',
  ssl_key_file: 'str',
  ssl_cert_file: 'str',
  ssl_ca_file: 'str',
  ssl_enforce_hostname_verification: 'bool',
  kombu_reconnect_delay: 'float',
  kombu_missing_consumer_retry_timeout: 'int',
  kombu_failover_strategy: 'str',
  rabbit_login_method: 'str',
  rabbit_retry_interval: 'int',
  rabbit_retry_backoff: 'int',
  rabbit_interval_max: 'int',
  rabbit_ha_queues: 'bool',
  rabbit_quorum_queue: 'bool',
  rabbit_quorum_delivery_limit: 'int',
  rabbit_quroum_max_memory_length: 'int',
  rabbit_quroum_max_memory_bytes: 'int',
  rabbit_transient_queues_ttl: 'int',
  rabbit_qos_prefetch_count: 'int',
  heartbeat_timeout_threshold: 'int',
  heartbeat_rate: 'int',
  direct_mandatory_flag: 'bool',
  enable_cancel_on_failover: 'bool',
  amqp_durable_queues: 'bool',
  amqp_auto_delete: 'bool',
};

/** Options of the group that exist in oslo but have no effect here (connection pool sizing, ...). */
const ACCEPTED_IGNORED = new Set([
  'rpc_conn_pool_size',
  'conn_pool_min_size',
  'conn_pool_ttl',
  'kombu_compression',
  'heartbeat_in_pthread',
  'ssl_enforce_fips_mode',
]);

const CHOICES: Partial<Record<keyof RabbitOptions, readonly string[]>> = {
  kombu_failover_strategy: ['round-robin', 'shuffle'],
  rabbit_login_method: ['PLAIN', 'AMQPLAIN', 'EXTERNAL', 'RABBIT-CR-DEMO'],
};

/** oslo.config types.Boolean */
function parseBool(name: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (['true', '1', 'on', 'yes'].includes(s)) return true;
  if (['false', '0', 'off', 'no'].includes(s)) return false;
  throw new ConfigError(`transport_url query option ${name}: unexpected boolean value '${v}'`);
}

/**
 * Config values overridden by the URL query, as ConfigOptsProxy does. Unknown names and values
 * that don't convert are errors (oslo raises at driver load).
 */
export function resolveRabbitOptions(
  url: TransportUrl | null,
  base: Partial<RabbitOptions> = {},
): RabbitOptions {
  const out: RabbitOptions = { ...DEFAULT_RABBIT_OPTIONS, ...stripUndefined(base) };
  for (const [name, raw] of Object.entries(url?.query ?? {})) {
    if (ACCEPTED_IGNORED.has(name)) continue;
    if (!(name in OPT_KINDS)) {
      throw new ConfigError(`transport_url query option '${name}' is not an [oslo_messaging_rabbit] option`);
    }
    const key = name as keyof RabbitOptions;
    const kind = OPT_KINDS[key];
    let value: unknown;
    if (kind === 'bool') value = parseBool(name, raw);
    else if (kind === 'int') {
      if (!/^\s*[-+]?\d+\s*$/.test(raw)) throw new ConfigError(`transport_url query option ${name}: not an integer: '${raw}'`);
      value = Number.parseInt(raw, 10);
    } else if (kind === 'float') {
      const f = Number(raw);
      if (raw.trim() === '' || Number.isNaN(f)) throw new ConfigError(`transport_url query option ${name}: not a number: '${raw}'`);
      value = f;
    } else value = raw;
    const choices = CHOICES[key];
    if (choices && !choices.includes(String(value))) {
      throw new ConfigError(`transport_url query option ${name}: '${raw}' is not one of ${choices.join(', ')}`);
    }
    (out as unknown as Record<string, unknown>)[key] = value;
  }
  validateRabbitOptions(out);
  return out;
}

export function validateRabbitOptions(o: RabbitOptions): void {
  if (o.rabbit_quorum_queue && o.rabbit_ha_queues) {
    // impl_rabbit._get_queue_arguments raises this at the first declare; we refuse at start-up.
    throw new ConfigError(
      'Configuration Error: rabbit_quorum_queue and rabbit_ha_queues both enabled, queue type is quorum or HA (mirrored) not both',
    );
  }
  if (o.rabbit_transient_queues_ttl < 1) throw new ConfigError('rabbit_transient_queues_ttl must be >= 1');
  if (o.kombu_reconnect_delay < 0 || o.kombu_reconnect_delay > 4.5) {
    throw new ConfigError('kombu_reconnect_delay must be between 0 and 4.5');
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
