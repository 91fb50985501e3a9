// Query pieces shared by the repositories: cinder's read_deleted filter, its host matching
// (_filter_host), and its conditional-update expectations (db.Not, IN lists, NULL handling).
import { sql, type Expression, type RawBuilder, type SqlBool } from 'kysely';
import type { DbHandle } from './connect.js';
import { retryOnDeadlock } from './connect.js';
import { isUuid } from '../validation/uuid.js';

/** cinder's context.read_deleted: 'no' (default) hides soft-deleted rows, 'only' shows only them. */
export type ReadDeleted = 'no' | 'yes' | 'only';

/**
 * `deleted = false`, `deleted = true` or nothing, as model_query does. Note that `deleted = 0`
 * does not match rows whose `deleted` is NULL, exactly like cinder's filter_by(deleted=False).
 */
export function deletedFilter(column: string, readDeleted: ReadDeleted): RawBuilder<SqlBool> | null {
  if (readDeleted === 'yes') return null;
  return sql<SqlBool>`${sql.ref(column)} = ${readDeleted === 'only'}`;
}

export type HostMatchLevel = 'pool' | 'backend' | 'host';

/**
 * cinder.db.sqlalchemy.api._filter_host: `pool` matches exactly; `backend` also matches
 * `value#*`; `host` also matches `value@*`. Without a level it is chosen from the value ('#' →
 * pool, '@' → backend, else host). On MySQL the comparison is forced case sensitive with BINARY,
 * as cinder does; on SQLite '=' is case sensitive and LIKE is not, also as in cinder.
 * LIKE wildcards in the value are not escaped (cinder does not escape them either).
 */
export function filterHost(db: DbHandle, column: string, value: string, matchLevel?: HostMatchLevel): RawBuilder<SqlBool> {
  const level: HostMatchLevel = matchLevel ?? (value.includes('#') ? 'pool' : value.includes('@') ? 'backend' : 'host');
  const col = sql.ref(column);
  const mysql = db.dialect === 'mysql';
  const eq = mysql ? sql<SqlBool>`${col} = BINARY ${value}` : sql<SqlBool>`${col} = ${value}`;
  const like = (pattern: string): RawBuilder<SqlBool> => (mysql ? sql<SqlBool>`${col} LIKE BINARY ${pattern}` : sql<SqlBool>`${col} LIKE ${pattern}`);
  const parts: RawBuilder<SqlBool>[] = [eq];
  if (level !== 'pool') {
    parts.push(like(`${value}#%`));
    if (level === 'host') parts.push(like(`${value}@%`));
  }
  return sql<SqlBool>`(${sql.join(parts, sql` OR `)})`;
}

/** An expected value of a conditional update: the value, any of a list, or none of them (NULL always passes a `not`, except `{not: null}`). */
export type Expected<T> = T | readonly T[] | { not: T | readonly T[] };

function isNot<T>(v: Expected<T>): v is { not: T | readonly T[] } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && 'not' in v;
}

/** `col = v` / `col IS NULL` / `col IN (...)`, with NULL in a list handled as cinder's condition_db_filter does. */
function matchExpr(column: string, value: unknown): RawBuilder<SqlBool> {
  const col = sql.ref(column);
  if (Array.isArray(value)) {
    if (value.length === 0) return sql<SqlBool>`1 = 0`;
    const nonNull = value.filter((v) => v !== null && v !== undefined);
    const parts: RawBuilder<SqlBool>[] = [];
    if (nonNull.length) parts.push(sql<SqlBool>`${col} IN (${sql.join(nonNull.map((v) => sql`${v}`))})`);
    if (nonNull.length !== value.length) parts.push(sql<SqlBool>`${col} IS NULL`);
    return sql<SqlBool>`(${sql.join(parts, sql` OR `)})`;
  }
  if (value === null || value === undefined) return sql<SqlBool>`${col} IS NULL`;
  return sql<SqlBool>`${col} = ${value}`;
}

/**
 * The WHERE term for one expected value of cinder's conditional_update. `{not: x}` is
 * condition_not_db_filter with auto_none=True: NOT (match) OR col IS NULL — the IS NULL part is
 * added for every x except a bare null (so `{not: ['a', null]}` still matches NULL, as in cinder).
 */
export function expectedExpr(column: string, expected: Expected<unknown>): RawBuilder<SqlBool> {
  if (!isNot(expected)) return matchExpr(column, expected);
  const inner = expected.not;
  const positive = matchExpr(column, inner);
  if (inner === null || inner === undefined) return sql<SqlBool>`NOT ${positive}`;
  return sql<SqlBool>`(NOT ${positive} OR ${sql.ref(column)} IS NULL)`;
}

export function and(parts: Array<Expression<SqlBool> | null | undefined>): RawBuilder<SqlBool> {
  const list = parts.filter((p): p is Expression<SqlBool> => p !== null && p !== undefined);
  if (list.length === 0) return sql<SqlBool>`1 = 1`;
  return sql<SqlBool>`(${sql.join(list, sql` AND `)})`;
}

/** Column names are checked against a fixed list so caller-supplied keys never become SQL. */
export function assertColumns(table: string, allowed: ReadonlySet<string>, keys: Iterable<string>): void {
  for (const k of keys) {
    if (!allowed.has(k)) throw new Error(`${table}: unknown or read-only column '${k}'`);
  }
}

/** Drops undefined entries (Kysely would otherwise try to write them). */
export function defined<T extends Record<string, unknown>>(values: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

export function affected(result: { numUpdatedRows?: bigint; numDeletedRows?: bigint } | undefined): number {
  if (!result) return 0;
  return Number(result.numUpdatedRows ?? result.numDeletedRows ?? 0n);
}

/**
 * oslo_utils.uuidutils.is_uuid_like: a UUID once 'urn:', 'uuid:', braces and hyphens are dropped
 * (oslo drops hyphens wherever they are; the project's UUID rule then sees 32 hex digits).
 */
export function isUuidLike(value: string): boolean {
  const v = value.replaceAll('urn:', '').replaceAll('uuid:', '').replace(/^\{+|\}+$/g, '').replaceAll('-', '');
  return isUuid(v);
}

export interface ConditionalUpdateOptions<C extends string> {
  /** Columns set from other columns' current values; written first (MySQL evaluates SET in order). */
  fromColumns?: Partial<Record<C, C>>;
  /** cinder's include_deleted ('no' by default: soft-deleted rows never match). */
  includeDeleted?: ReadDeleted;
}

/**
 * cinder's conditional_update for a row keyed by `id`: UPDATE <table> SET … WHERE id = ? AND
 * deleted = 0 AND <expected…>; true when a row matched. updated_at = now unless given (SQLAlchemy's
 * onupdate on Query.update). Retried on deadlock like cinder's wrap_db_retry.
 */
export async function conditionalUpdateRow<C extends string>(
  db: DbHandle,
  table: 'volumes' | 'snapshots' | 'volume_attachment',
  columns: ReadonlySet<string>,
  id: string,
  values: Record<string, unknown>,
  expected: Partial<Record<C, Expected<unknown>>>,
  opts: ConditionalUpdateOptions<C> = {},
): Promise<boolean> {
  const from = (opts.fromColumns ?? {}) as Record<string, string>;
  assertColumns(table, columns, [...Object.keys(values), ...Object.keys(expected), ...Object.keys(from), ...Object.values(from)]);
  const where = and([
    sql<SqlBool>`${sql.ref('id')} = ${id}`,
    deletedFilter('deleted', opts.includeDeleted ?? 'no'),
    ...Object.entries(expected).map(([col, exp]) => expectedExpr(col, exp as Expected<unknown>)),
  ]);
  return retryOnDeadlock(async () => {
    const res = await db.kysely
      .updateTable(table as 'volumes')
      .set((eb) => {
        const set: Record<string, unknown> = {};
        for (const [col, src] of Object.entries(from)) set[col] = eb.ref(src as 'status');
        Object.assign(set, values);
        if (!('updated_at' in set)) set.updated_at = db.now();
        return set as never;
      })
      .where(where)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  });
}
