// loadConfig(): read cinder.conf (and friends) the way cinder-volume's oslo.config does and return
// the typed configuration. All files are read first; values are interpolated and converted after,
// so a later file can change what an earlier $reference expands to, as in oslo.
import { parseExtraCapabilities } from './backend-checks.js';
import { ConfigError } from '../errors.js';
import { log } from '../log.js';
import { BACKEND_OPTS } from './backend-options.js';
import { describeOrigin, maskSecret, rawOf } from './describe.js';
import { defaultHostname, defaultRouteIpv4, detectMyIpv4 } from './host-defaults.js';
import type { IniFile } from './ini-parser.js';
import { normalizeSectionName, parseIni, readIniFile } from './ini-parser.js';
import { CINDER_DEFAULT_NAMES, FOREIGN_GROUPS, REMOVED_NAMES } from './known-options.js';
import type { ComputedDefault, OptGroupDefs, OptionValues } from './opt.js';
import {
  BACKEND_DEFAULTS_GROUP,
  CINDERBLOCK_OPTS,
  CONCURRENCY_OPTS,
  COORDINATION_OPTS,
  DATABASE_OPTS,
  DEFAULT_OPTS,
  NOTIFICATION_OPTS,
  NOVA_OPTS,
  RABBIT_OPTS,
  STATIC_GROUPS,
} from './options.js';
import { Resolver } from './resolver.js';
import type { ConfigSourceArg, DefaultLocations } from './sources.js';
import { CINDER_VOLUME_LOCATIONS, expandConfigSources } from './sources.js';
import type { BackendConfig, CinderConfig, ConfigSourceEntry } from './types.js';

export interface LoadConfigOptions {
  /** --config-file arguments. Read before configDirs when `sources` is not given. */
  configFiles?: readonly string[];
  /** --config-dir arguments. */
  configDirs?: readonly string[];
  /** --config-file/--config-dir in command-line order; replaces configFiles/configDirs. */
  sources?: readonly ConfigSourceArg[];
  /**
   * oslo's default locations (~/.cinder, ~, /etc/cinder, /etc) for whichever kind of argument is
   * absent; `true` means cinder/cinder-volume. Off by default so tests never pick up /etc.
   */
  defaultLocations?: boolean | DefaultLocations;
  /** Overrides for machine-dependent defaults (tests). */
  hostname?: string;
  myIp?: string;
  env?: Readonly<Record<string, string | undefined>>;
}

/** Reads the configuration; my_ip's default is found as oslo does (UDP route lookup). */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<CinderConfig> {
  const files = readFiles(opts);
  let myIp = opts.myIp;
  if (myIp === undefined && !files.some((f) => f.sections.get('DEFAULT')?.entries.has('my_ip'))) {
    myIp = await detectMyIpv4();
  }
  return buildConfig(files, { ...opts, myIp });
}

/** Same as loadConfig; my_ip's default comes from the default route in /proc/net/route. */
export function loadConfigSync(opts: LoadConfigOptions = {}): CinderConfig {
  return buildConfig(readFiles(opts), opts);
}

/**
 * Builds a configuration from file contents, e.g. for tests of other modules. Machine-dependent
 * defaults are fixed unless given: host 'localhost', my_ip 127.0.0.1, no $OSLO_LOCK_PATH.
 */
export function configFromText(
  texts: string | ReadonlyArray<{ name: string; text: string }>,
  opts: Omit<LoadConfigOptions, 'configFiles' | 'configDirs' | 'sources' | 'defaultLocations'> = {},
): CinderConfig {
  const list = typeof texts === 'string' ? [{ name: 'cinder.conf', text: texts }] : texts;
  return buildConfig(
    list.map((t) => parseIni(t.text, t.name)),
    { hostname: 'localhost', myIp: '127.0.0.1', env: {}, ...opts },
  );
}

function readFiles(opts: LoadConfigOptions): IniFile[] {
  const args: ConfigSourceArg[] = opts.sources
    ? [...opts.sources]
    : [
        ...(opts.configFiles ?? []).map((path) => ({ kind: 'file' as const, path })),
        ...(opts.configDirs ?? []).map((path) => ({ kind: 'dir' as const, path })),
      ];
  const defaults = opts.defaultLocations === true ? CINDER_VOLUME_LOCATIONS : opts.defaultLocations || undefined;
  return expandConfigSources(args, defaults).map(readIniFile);
}

function buildConfig(files: IniFile[], opts: LoadConfigOptions): CinderConfig {
  const env = opts.env ?? process.env;
  const computedDefaults: Record<ComputedDefault, () => string | null> = {
    hostname: () => opts.hostname ?? defaultHostname(),
    my_ipv4: () => opts.myIp ?? defaultRouteIpv4(),
    'env:OSLO_LOCK_PATH': () => env.OSLO_LOCK_PATH ?? null,
  };
  const resolver = new Resolver(files, {
    computed: (what) => computedDefaults[what](),
    warn: (message) => log().warn(message),
  });

  const backendNames = enabledBackends(resolver);
  resolver.setBackends(backendNames);

  const group = <R extends OptGroupDefs>(g: string, defs: R): OptionValues<R> => {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(defs)) out[name] = resolver.value(g, name);
    return Object.freeze(out) as OptionValues<R>;
  };

  const def = group('DEFAULT', DEFAULT_OPTS);
  const backends = backendNames.map((name): BackendConfig => {
    const o = group(normalizeSectionName(name), BACKEND_OPTS);
    parseExtraCapabilities(name, o.extra_capabilities);
    const cluster = def.cluster?.trim();
    return Object.freeze({
      ...o,
      name,
      host: `${o.backend_host || def.host}@${name}`,
      cluster: cluster ? `${cluster}@${name}` : null,
      availability_zone: o.backend_availability_zone || def.storage_availability_zone,
    });
  });

  const config: CinderConfig = Object.freeze({
    default: def,
    database: group('database', DATABASE_OPTS),
    rabbit: group('oslo_messaging_rabbit', RABBIT_OPTS),
    concurrency: group('oslo_concurrency', CONCURRENCY_OPTS),
    coordination: group('coordination', COORDINATION_OPTS),
    notifications: group('oslo_messaging_notifications', NOTIFICATION_OPTS),
    nova: group('nova', NOVA_OPTS),
    backendDefaults: group(BACKEND_DEFAULTS_GROUP, BACKEND_OPTS),
    backends: Object.freeze(backends),
    cinderblock: group('cinderblock', CINDERBLOCK_OPTS),
    files: Object.freeze(files.map((f) => f.file)),
    backend: (name: string) => backends.find((b) => normalizeSectionName(b.name) === normalizeSectionName(name)),
    sources: () => sourceEntries(resolver, backendNames),
    rawValue: (section: string, key: string) => resolver.rawValues(section, key)?.at(-1)?.value,
  });

  reportUnused(files, resolver, backendNames);
  return config;
}

function enabledBackends(resolver: Resolver): string[] {
  const raw = (resolver.value('DEFAULT', 'enabled_backends') as string[] | null) ?? [];
  const names: string[] = [];
  for (const n of raw) {
    if (n === '') {
      log().warn('[DEFAULT] enabled_backends has an empty entry; ignoring it');
    } else if (names.some((m) => normalizeSectionName(m) === normalizeSectionName(n))) {
      log().warn(`[DEFAULT] enabled_backends names ${n} twice; using it once`);
    } else if (normalizeSectionName(n) === 'DEFAULT' || normalizeSectionName(n) in STATIC_GROUPS) {
      throw new ConfigError(`[DEFAULT] enabled_backends: '${n}' is not usable as a backend section name`);
    } else {
      names.push(n);
    }
  }
  return names;
}

function sourceEntries(resolver: Resolver, backendNames: readonly string[]): ConfigSourceEntry[] {
  const groups: Array<[string, string, OptGroupDefs]> = [
    ...Object.entries(STATIC_GROUPS).map(([g, defs]): [string, string, OptGroupDefs] => [g, g, defs]),
    ...backendNames.map((n): [string, string, OptGroupDefs] => [n, normalizeSectionName(n), BACKEND_OPTS]),
  ];
  const out: ConfigSourceEntry[] = [];
  for (const [label, g, defs] of groups) {
    for (const [option, d] of Object.entries(defs)) {
      const r = resolver.resolve(g, option);
      const secret = Boolean(d.secret) || r.secret;
      const raw = rawOf(r.origin);
      const show = (v: unknown): unknown => (secret ? maskSecret(v) : v);
      const entry: ConfigSourceEntry = { group: label, option, value: show(r.value), secret, source: describeOrigin(r.origin), origin: r.origin };
      out.push(typeof raw === 'string' && raw.includes('$') ? { ...entry, raw: show(raw) } : entry);
    }
  }
  return out;
}

/**
 * Options no registry entry consumes: removed names get a warning (cinder ignores them too),
 * names cinder knows but the volume service does not use are skipped silently, anything else is
 * logged at debug level with file, line, section and option.
 */
function reportUnused(files: readonly IniFile[], resolver: Resolver, backendNames: readonly string[]): void {
  const consumed = consumedNames(backendNames);
  for (const file of files) {
    for (const [g, section] of file.sections) {
      const isBackendish = resolver.isBackend(g) || g === BACKEND_DEFAULTS_GROUP || g === 'DEFAULT';
      for (const [key, vals] of section.entries) {
        if (consumed.get(g)?.has(key)) continue;
        const at = vals[vals.length - 1]!;
        const where = `${at.file}:${at.line}: [${section.name}] ${key}`;
        const replacement = REMOVED_NAMES[key];
        if (replacement !== undefined && isBackendish) {
          const now = resolver.defs(g)?.[replacement] ? ` (${replacement} here is ${JSON.stringify(resolver.value(g, replacement))})` : '';
          log().warn(`${where} is ignored: cinder 21 does not read it; use ${replacement}${now}`);
          continue;
        }
        if (g === 'DEFAULT' && CINDER_DEFAULT_NAMES.has(key)) continue;
        if (FOREIGN_GROUPS.has(g)) continue;
        const why = resolver.defs(g) ? 'option not used by cinderblock' : 'section not read by cinderblock';
        log().debug({ file: at.file, line: at.line, section: section.name, option: key }, `${where}: ${why}, ignored`);
      }
    }
  }
}

/** (normalized group → names) read by the registry, deprecated aliases included. */
function consumedNames(backendNames: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const add = (g: string, n: string): void => {
    const set = out.get(g) ?? new Set<string>();
    set.add(n);
    out.set(g, set);
  };
  const addGroup = (g: string, defs: OptGroupDefs): void => {
    for (const [name, d] of Object.entries(defs)) {
      add(g, name);
      for (const dep of d.deprecated ?? []) add(dep.group ? normalizeSectionName(dep.group) : g, dep.name ?? name);
    }
  };
  for (const [g, defs] of Object.entries(STATIC_GROUPS)) addGroup(g, defs);
  for (const n of backendNames) addGroup(normalizeSectionName(n), BACKEND_OPTS);
  return out;
}
