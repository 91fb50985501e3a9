// Printable views of a loaded configuration with secrets masked: describeConfig() for a debug dump,
// and the source labels used by CinderConfig.sources() (`cinderblock config show`).
import { MASK } from '../log.js';
import { STATIC_GROUPS } from './options.js';
import type { ValueOrigin } from './resolver.js';
import type { CinderConfig } from './types.js';

/**
 * Masks a secret value. A URL keeps its scheme, user, hosts and path so an operator can still see
 * where it points (`rabbit://guest:***@10.0.0.5:5672/`); anything else is replaced entirely.
 */
export function maskSecret(value: unknown): unknown {
  if (value === null || value === undefined || value === '') return value;
  if (Array.isArray(value)) return value.map(maskSecret);
  const s = String(value);
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(s);
  if (!m) return MASK;
  const rest = m[2]!;
  const lastAt = rest.lastIndexOf('@');
  if (lastAt < 0) return s;
  const pathAt = rest.slice(lastAt).search(/[/?#]/);
  const end = pathAt < 0 ? rest.length : lastAt + pathAt;
  // oslo splits the host part of a transport URL on ',' (one user:pass@host:port per broker).
  const hosts = rest
    .slice(0, end)
    .split(',')
    .map((entry) => {
      const at = entry.lastIndexOf('@');
      if (at < 0) return /^(\[[^\]]*\]|[^:]*)(:\d*)?$/.test(entry) ? entry : MASK;
      const user = entry.slice(0, at);
      const colon = user.indexOf(':');
      return (colon < 0 ? user : `${user.slice(0, colon)}:${MASK}`) + entry.slice(at);
    });
  return m[1] + hosts.join(',') + rest.slice(end);
}

/**
 * The whole configuration as a plain object, grouped as in cinder.conf, secrets masked (including
 * values interpolated from a secret).
 */
export function describeConfig(config: CinderConfig): Record<string, unknown> {
  const groups = new Map<string, Record<string, unknown>>();
  for (const e of config.sources()) {
    const g = groups.get(e.group) ?? {};
    g[e.option] = e.value;
    groups.set(e.group, g);
  }
  const backends: Record<string, unknown> = {};
  for (const b of config.backends) {
    backends[b.name] = { host: b.host, cluster: b.cluster, availability_zone: b.availability_zone, ...groups.get(b.name) };
  }
  const out: Record<string, unknown> = { files: [...config.files] };
  for (const name of STATIC_GROUP_ORDER) out[name] = groups.get(name) ?? {};
  out.backends = backends;
  return out;
}

const STATIC_GROUP_ORDER = Object.keys(STATIC_GROUPS);

/** "file:line", "default", or "default (via [backend_defaults])" for one value. */
export function describeOrigin(origin: ValueOrigin): string {
  switch (origin.kind) {
    case 'file':
      return origin.locations.map((l) => `${l.file}:${l.line} [${l.section}] ${l.key}`).join(', ');
    case 'default':
      return typeof origin.raw === 'object' && origin.raw !== null && 'computed' in origin.raw
        ? `default (${origin.raw.computed})`
        : 'default';
    case 'inherited':
      return `${describeOrigin(origin.origin)} (via [${origin.group}])`;
  }
}

/** The value as written (before interpolation) when interpolation changed it. */
export function rawOf(origin: ValueOrigin): unknown {
  if (origin.kind === 'inherited') return rawOf(origin.origin);
  if (origin.kind === 'file') return origin.raw.length === 1 ? origin.raw[0] : [...origin.raw];
  return origin.raw;
}
