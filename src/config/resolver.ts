// Looks option values up in the parsed files the way cfg.ConfigOpts._do_get does, once every file
// has been read:
//   - files are searched newest first; in each, the option's own (group, name) and then its
//     deprecated names; the first file that has any of them decides, and within it the last value
//     given counts (a MultiStrOpt instead collects the values of every file, oldest first);
//   - the value (or the default) is interpolated in the option's own group, then converted by type;
//   - backend sections follow cinder's BackendGroupConfiguration (see backend-options.ts).
// Results are cached; interpolation loops are reported with the chain that forms them.
import { ConfigError } from '../errors.js';
import { BACKEND_LOOKUP, BACKEND_OPTS } from './backend-options.js';
import { convertScalar, checkTyped, describeAllowed, pythonStr, ValueError } from './convert.js';
import type { IniFile, IniValue } from './ini-parser.js';
import { normalizeSectionName } from './ini-parser.js';
import { parseTemplate } from './interpolate.js';
import type { ComputedDefault, DefaultSpec, OptDef, OptGroupDefs } from './opt.js';
import { BACKEND_DEFAULTS_GROUP, STATIC_GROUPS } from './options.js';

export interface ValueLocation {
  readonly file: string;
  readonly line: number;
  /** Section and key as written, which may be a deprecated name. */
  readonly section: string;
  readonly key: string;
}

export type ValueOrigin =
  | { readonly kind: 'file'; readonly locations: readonly ValueLocation[]; readonly raw: readonly string[] }
  | { readonly kind: 'default'; readonly raw: DefaultSpec }
  /** A backend's value taken from [backend_defaults] or [DEFAULT]. */
  | { readonly kind: 'inherited'; readonly group: string; readonly origin: ValueOrigin };

export interface ResolvedValue {
  readonly value: unknown;
  readonly origin: ValueOrigin;
  /** The value is, or was interpolated from, a secret option: mask it wherever it is shown. */
  readonly secret: boolean;
}

interface Expansion {
  readonly text: string;
  readonly secret: boolean;
}

export interface ResolverHooks {
  /** Machine-dependent defaults; called only when a default is actually needed. */
  computed(what: ComputedDefault): string | null;
  warn(message: string, fields?: Record<string, unknown>): void;
}

type Key = readonly [group: string, name: string];

/** Names of options that hold credentials (password, transport_url, [database] connection, …). */
const SECRET_NAME = /pass|secret|token|credential|key|connection|url/i;

export class Resolver {
  /** Newest first, the order oslo searches them. */
  private readonly files: readonly IniFile[];
  private readonly backends = new Map<string, string>();
  private readonly cache = new Map<string, ResolvedValue | null>();
  /** Values being resolved right now, outermost first (for loop detection). */
  private readonly stack: Array<{ key: string; label: string }> = [];
  private readonly warned = new Set<string>();

  /** `files` in the order they were read (later ones override earlier ones). */
  constructor(
    files: readonly IniFile[],
    private readonly hooks: ResolverHooks,
  ) {
    this.files = [...files].reverse();
  }

  /** Declares the backend sections (enabled_backends); names as written there. */
  setBackends(names: readonly string[]): void {
    for (const n of names) this.backends.set(normalizeSectionName(n), n);
  }

  isBackend(group: string): boolean {
    return this.backends.has(group);
  }

  /** Option definitions of a (normalized) group, backend sections included. */
  defs(group: string): OptGroupDefs | undefined {
    return this.backends.has(group) ? BACKEND_OPTS : STATIC_GROUPS[group];
  }

  value(group: string, name: string): unknown {
    return this.resolve(group, name).value;
  }

  resolve(group: string, name: string): ResolvedValue {
    const g = normalizeSectionName(group);
    const def = this.defs(g)?.[name];
    if (!def) throw new Error(`config: no option ${name} in group ${g}`);
    return this.cached(`${g}\0${name}`, `[${g}] ${name}`, () =>
      this.backends.has(g) ? this.resolveBackend(g, name, def) : this.resolvePlain(g, name, def),
    )!;
  }

  /** The newest file's values for (section, key), uninterpolated; for options cinderblock does not type. */
  rawValues(section: string, key: string): IniValue[] | undefined {
    const g = normalizeSectionName(section);
    for (const f of this.files) {
      const vals = f.sections.get(g)?.entries.get(key);
      if (vals) return vals;
    }
    return undefined;
  }

  private resolvePlain(group: string, name: string, def: OptDef): ResolvedValue {
    const own = this.lookupFile(group, name, def);
    if (own) {
      if (own.value === null && def.default !== null) this.emptyNumber(group, name, def, own);
      return own;
    }
    return this.resolveDefault(group, name, def);
  }

  private resolveBackend(group: string, name: string, def: OptDef): ResolvedValue {
    const mode = BACKEND_LOOKUP[name as keyof typeof BACKEND_LOOKUP];
    if (mode === 'DEFAULT-only') {
      const ignored = this.lookupOwn(group, name) ?? this.lookupFile(BACKEND_DEFAULTS_GROUP, name, def);
      if (ignored?.origin.kind === 'file') {
        const at = ignored.origin.locations[0]!;
        this.warnOnce(
          `${group}.${name}`,
          `${at.file}:${at.line}: [${at.section}] ${name} has no effect: cinder's LVM driver reads it from [DEFAULT] only`,
        );
      }
      return inherit('DEFAULT', this.resolve('DEFAULT', name));
    }
    const own = this.lookupOwn(group, name);
    if (mode === 'section-only') return own ?? { value: null, origin: { kind: 'default', raw: null }, secret: false };
    let r = own && own.value !== null ? own : inherit(BACKEND_DEFAULTS_GROUP, this.resolve(BACKEND_DEFAULTS_GROUP, name));
    if (mode === 'or-DEFAULT-if-falsy' && !r.value) r = inherit('DEFAULT', this.resolve('DEFAULT', name));
    return r;
  }

  /** A backend section's own value: cinder overrides the default to None in backend groups. */
  private lookupOwn(group: string, name: string): ResolvedValue | null {
    const def = BACKEND_OPTS[name as keyof typeof BACKEND_OPTS];
    return this.cached(`own\0${group}\0${name}`, `[${group}] ${name}`, () => this.lookupFile(group, name, def));
  }

  private cached(key: string, label: string, compute: () => ResolvedValue | null): ResolvedValue | null {
    if (this.cache.has(key)) return this.cache.get(key)!;
    return this.guard(key, label, () => {
      const r = compute();
      this.cache.set(key, r);
      return r;
    });
  }

  /** Runs `fn` with `key` on the interpolation stack, reporting a loop if it is already there. */
  private guard<T>(key: string, label: string, fn: () => T): T {
    const at = this.stack.findIndex((e) => e.key === key);
    if (at >= 0) {
      const chain = [...this.stack.slice(at).map((e) => e.label), label].join(' → ');
      throw new ConfigError(`Interpolation loop: ${chain}`);
    }
    this.stack.push({ key, label });
    try {
      return fn();
    } finally {
      this.stack.pop();
    }
  }

  private names(group: string, name: string, def: OptDef): Key[] {
    const keys: Key[] = [[group, name]];
    for (const d of def.deprecated ?? []) keys.push([d.group ? normalizeSectionName(d.group) : group, d.name ?? name]);
    return keys;
  }

  /** The option's value from the files, interpolated and converted; null if no file sets it. */
  private lookupFile(group: string, name: string, def: OptDef): ResolvedValue | null {
    const keys = this.names(group, name, def);
    let found: IniValue[] = [];
    for (const f of this.files) {
      for (const [g, n] of keys) {
        const vals = f.sections.get(g)?.entries.get(n);
        if (!vals) continue;
        if (def.type === 'multistr') found = [...vals, ...found];
        else if (found.length === 0) found = [vals[vals.length - 1]!];
      }
      if (found.length > 0 && def.type !== 'multistr') break;
    }
    if (found.length === 0) return null;
    for (const v of found) {
      if (v.key !== name || normalizeSectionName(v.section) !== group) {
        this.warnOnce(
          `dep\0${v.section}\0${v.key}`,
          `${v.file}:${v.line}: [${v.section}] ${v.key} is a deprecated name; use [${group}] ${name}`,
        );
      }
    }
    let secret = Boolean(def.secret);
    const converted = found.map((v) => {
      const c = this.convertAt(group, name, def, v);
      secret ||= c.secret;
      return c.value;
    });
    const origin: ValueOrigin = {
      kind: 'file',
      locations: found.map((v) => ({ file: v.file, line: v.line, section: v.section, key: v.key })),
      raw: found.map((v) => v.value),
    };
    return { value: def.type === 'multistr' ? converted : converted[0]!, origin, secret };
  }

  private convertAt(group: string, name: string, def: OptDef, at: IniValue): { value: unknown; secret: boolean } {
    const expanded = this.expand(at.value, group, () => `${at.file}:${at.line}: [${at.section}] ${at.key}`);
    try {
      return { value: convertScalar(def, expanded.text), secret: expanded.secret };
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      const secret = def.secret || expanded.secret;
      const shown = secret
        ? '<secret>'
        : JSON.stringify(at.value) + (expanded.text !== at.value ? ` (expands to ${JSON.stringify(expanded.text)})` : '');
      const reason = secret && expanded.text !== '' ? err.message.replaceAll(expanded.text, '…') : err.message;
      const alias = at.key !== name || normalizeSectionName(at.section) !== group ? ` (deprecated name of [${group}] ${name})` : '';
      throw new ConfigError(
        `${at.file}:${at.line}: [${at.section}] ${at.key}${alias} = ${shown}: ${reason}; allowed: ${describeAllowed(def)}`,
      );
    }
  }

  private emptyNumber(group: string, name: string, def: OptDef, r: ResolvedValue): never {
    const at = r.origin.kind === 'file' ? r.origin.locations[0]! : undefined;
    const where = at ? `${at.file}:${at.line}: [${at.section}] ${at.key}` : `[${group}] ${name}`;
    // oslo turns an empty number into None, which cinder then trips over somewhere later.
    throw new ConfigError(`${where} is empty; allowed: ${describeAllowed(def)} (remove the line to use the default)`);
  }

  private resolveDefault(group: string, name: string, def: OptDef): ResolvedValue {
    const d = def.default;
    const origin: ValueOrigin = { kind: 'default', raw: d };
    const label = (): string => `default of [${group}] ${name}`;
    let value: unknown;
    let secret = Boolean(def.secret);
    const expand = (text: string): string => {
      const e = this.expand(text, group, label);
      secret ||= e.secret;
      return e.text;
    };
    try {
      if (d === null) value = null;
      else if (typeof d === 'object' && 'computed' in d) {
        const v = this.hooks.computed(d.computed);
        value = v === null ? null : convertScalar(def, v);
      } else if (typeof d === 'string') value = convertScalar(def, expand(d));
      else if (Array.isArray(d)) value = d.map((item: string) => convertScalar({ type: 'str' }, expand(item)));
      else value = checkTyped(def, d);
    } catch (err) {
      if (!(err instanceof ValueError)) throw err;
      throw new ConfigError(`${label()} (${JSON.stringify(d)}): ${err.message}; allowed: ${describeAllowed(def)}`);
    }
    if (value === null && d !== null && !(typeof d === 'object' && 'computed' in d)) {
      throw new ConfigError(`${label()} (${JSON.stringify(d)}) expands to an empty value; allowed: ${describeAllowed(def)}`);
    }
    return { value, origin, secret };
  }

  /** Expands $name / ${name} / $group.name in `text`, read in `group`. */
  private expand(text: string, group: string, where: () => string): Expansion {
    if (!text.includes('$')) return { text, secret: false };
    let out = '';
    let secret = false;
    for (const piece of parseTemplate(text)) {
      if ('text' in piece) {
        out += piece.text;
        continue;
      }
      const e = this.reference(piece.ref, piece.source, group, where);
      out += e.text;
      secret ||= e.secret;
    }
    return { text: out, secret };
  }

  private reference(ref: string, source: string, group: string, where: () => string): Expansion {
    const dot = ref.indexOf('.');
    const candidates: Key[] =
      dot >= 0 ? [[normalizeSectionName(ref.slice(0, dot)), ref.slice(dot + 1)]] : [[group, ref], ['DEFAULT', ref]];
    for (const [g, n] of candidates) {
      const def = this.defs(g)?.[n];
      if (def) return this.templateValue(g, n, def, where);
    }
    // Not an option cinderblock types (cinder may still know it): use what the file says.
    for (const [g, n] of candidates) {
      const vals = this.rawValues(g, n);
      if (!vals) continue;
      const v = vals[vals.length - 1]!;
      const e = this.guard(`raw\0${g}\0${n}`, `[${v.section}] ${n}`, () =>
        this.expand(v.value, g, () => `${v.file}:${v.line}: [${v.section}] ${v.key}`),
      );
      // Whether an untyped option is secret is unknown; go by its name.
      return { text: e.text, secret: e.secret || SECRET_NAME.test(n) };
    }
    throw new ConfigError(`${where()}: ${source} refers to an option that cinderblock does not know and no config file sets`);
  }

  private templateValue(group: string, name: string, def: OptDef, where: () => string): Expansion {
    if (!this.backends.has(group)) {
      const r = this.resolve(group, name);
      return { text: pythonStr(r.value, def.type), secret: r.secret };
    }
    // In a backend group cinder resolves $name to that group's own value, whose default it has
    // overridden to None: a backend option not set in the section expands to ''.
    const own = this.lookupOwn(group, name);
    if (own === null || own.value === null) {
      this.warnOnce(
        `tmpl\0${group}\0${name}`,
        `${where()}: $${name} expands to '' because [${this.backends.get(group)}] does not set ${name} (cinder does the same; set it there or spell the value out)`,
      );
      return { text: '', secret: false };
    }
    return { text: pythonStr(own.value, def.type), secret: own.secret };
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.hooks.warn(message);
  }
}

function inherit(group: string, r: ResolvedValue): ResolvedValue {
  return { value: r.value, origin: { kind: 'inherited', group, origin: r.origin }, secret: r.secret };
}
