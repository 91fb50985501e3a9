// Option definitions: the TypeScript counterpart of cfg.StrOpt/IntOpt/… . Each constructor carries
// the value's TypeScript type as a phantom parameter, so the typed config objects (types.ts) are
// derived from the registry and cannot drift from it.
import type { OptType, TypeSpec } from './convert.js';

/** Defaults that depend on the machine, computed as cinder computes them at import time. */
export type ComputedDefault =
  /** socket.gethostname() */
  | 'hostname'
  /** oslo_utils.netutils.get_my_ipv4() */
  | 'my_ipv4'
  /** oslo.concurrency: os.environ.get('OSLO_LOCK_PATH') */
  | 'env:OSLO_LOCK_PATH';

/**
 * A default as cinder declares it. Strings are interpolated ($state_path…) and converted like a
 * value from a file; lists have each item interpolated; numbers and booleans are range-checked.
 */
export type DefaultSpec = string | number | boolean | readonly string[] | null | { readonly computed: ComputedDefault };

/** cfg.DeprecatedOpt: another (group, name) the option is also read from. */
export interface DeprecatedName {
  /** Omitted: the option's own group. */
  readonly group?: string;
  /** Omitted: the option's own name. */
  readonly name?: string;
}

export interface OptDef<T = unknown> extends TypeSpec {
  readonly default: DefaultSpec;
  /** Masked by describeConfig/sources and never quoted in error messages. */
  readonly secret?: boolean;
  readonly deprecated?: readonly DeprecatedName[];
  /** Phantom: the converted value's type. Never set at run time. */
  readonly __value?: T;
}

export type OptGroupDefs = Readonly<Record<string, OptDef>>;

/** The typed values of a group of option definitions. */
export type OptionValues<R extends OptGroupDefs> = {
  readonly [K in keyof R]: R[K] extends OptDef<infer T> ? T : never;
};

type Extra = Omit<OptDef, 'type' | 'default' | '__value'>;

export const computed = (what: ComputedDefault): { readonly computed: ComputedDefault } => ({ computed: what });

export function str(def: null, extra?: Extra): OptDef<string | null>;
export function str(def: string | { computed: ComputedDefault }, extra?: Extra): OptDef<string>;
export function str(def: string | null | { computed: ComputedDefault }, extra: Extra = {}): OptDef<string | null> {
  return { ...extra, type: 'str', default: def };
}

/** A StrOpt with choices, typed as the union of its choices. */
export function choice<const C extends readonly string[]>(choices: C, def: C[number], extra: Extra = {}): OptDef<C[number]> {
  return { ...extra, type: 'str', choices, default: def };
}

export function int(def: null, extra?: Extra): OptDef<number | null>;
/** A string default is interpolated first, e.g. '$executor_thread_pool_size'. */
export function int(def: number | string, extra?: Extra): OptDef<number>;
export function int(def: number | string | null, extra: Extra = {}): OptDef<number | null> {
  return { ...extra, type: 'int', default: def };
}

export function float(def: number | string, extra: Extra = {}): OptDef<number> {
  return { ...extra, type: 'float', default: def };
}

export function port(def: number, extra: Extra = {}): OptDef<number> {
  return { min: 0, max: 65535, ...extra, type: 'port', default: def };
}

export function bool(def: boolean, extra: Extra = {}): OptDef<boolean> {
  return { ...extra, type: 'bool', default: def };
}

export function list(def: null, extra?: Extra): OptDef<string[] | null>;
export function list(def: readonly string[], extra?: Extra): OptDef<string[]>;
export function list(def: readonly string[] | null, extra: Extra = {}): OptDef<string[] | null> {
  return { ...extra, type: 'list', default: def };
}

/** cfg.MultiStrOpt: every value of every file counts, oldest first. */
export function multistr(def: readonly string[], extra: Extra = {}): OptDef<string[]> {
  return { ...extra, type: 'multistr', default: def };
}

export function hostAddress(def: string | { computed: ComputedDefault }, extra: Extra = {}): OptDef<string> {
  return { ...extra, type: 'hostaddress', default: def };
}

export function uri(def: string | null, extra: Extra = {}): OptDef<string | null> {
  return { ...extra, type: 'uri', default: def };
}

export type { OptType };
