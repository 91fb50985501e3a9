// The `[database] connection` URL, read the way SQLAlchemy's make_url reads it (cinder hands the
// option to oslo.db, which hands it to SQLAlchemy 1.4):
//
//   <dialect>[+<driver>]://[<user>[:<password>]@][<host>|[<ipv6>]][:<port>][/<database>][?<query>]
//
// user and password are percent-decoded; the query string is form-decoded. For SQLite the
// "database" part is the file path: `sqlite:///cinder.sqlite` is relative to the working directory,
// `sqlite:////var/lib/cinder/cinder.sqlite` is absolute, `sqlite://` (or `sqlite:///:memory:`) is an
// in-memory database.
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../errors.js';

export type DatabaseDialect = 'mysql' | 'sqlite';

export const SUPPORTED_SCHEMES = 'mysql://, mysql+pymysql://, mysql+mysqldb://, mariadb[+pymysql]:// and sqlite://';

/** MySQL/MariaDB drivers SQLAlchemy knows; cinderblock uses mysql2 whatever the URL names. */
const MYSQL_DRIVERS = new Set(['pymysql', 'mysqldb', 'mysqlconnector', 'mariadbconnector', 'cymysql', 'oursql']);
const SQLITE_DRIVERS = new Set(['pysqlite', 'pysqlcipher']);

interface UrlBase {
  /** The scheme as written, e.g. `mysql+pymysql`. */
  scheme: string;
  /** Form-decoded query parameters, last value wins. */
  query: Record<string, string>;
  /** The URL with the password masked, safe for logs. */
  redacted: string;
}

export interface MysqlUrl extends UrlBase {
  dialect: 'mysql';
  /** Driver named in the URL (`pymysql`), informational. */
  driver: string | null;
  user: string | null;
  password: string | null;
  /** null when the URL names none (pymysql then connects to localhost). */
  host: string | null;
  port: number | null;
  database: string | null;
  /** `?unix_socket=/run/mysqld/mysqld.sock` */
  socketPath: string | null;
  /** `?charset=utf8` */
  charset: string | null;
}

export interface SqliteUrl extends UrlBase {
  dialect: 'sqlite';
  driver: string | null;
  /** Absolute file path, or null for an in-memory database. */
  path: string | null;
  /** The path exactly as written in the URL (relative paths resolve against the working directory). */
  rawPath: string | null;
}

export type DatabaseUrl = MysqlUrl | SqliteUrl;

// Same shape as sqlalchemy.engine.url._parse_url (SQLAlchemy 1.4).
const URL_PATTERN = new RegExp(
  '^(?<name>[\\w+]+)://' +
    '(?:(?<username>[^:/]*)(?::(?<password>[^@]*))?@)?' +
    '(?:(?:\\[(?<ipv6host>[^/?]+)\\]|(?<ipv4host>[^/:?]+))?(?::(?<port>[^/?]*))?)?' +
    '(?:/(?<database>[^?]*))?' +
    '(?:\\?(?<query>.*))?$',
  's',
);

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConfigError(`[database] connection: cannot decode the ${what} (bad %-escape)`);
  }
}

function parseQuery(query: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!query) return out;
  for (const [k, v] of new URLSearchParams(query)) out[k] = v;
  return out;
}

/**
 * Masks the password of any `scheme://user:password@...` URL. Works on strings that do not parse,
 * so an error message about a bad URL never carries the password either.
 */
export function redactDatabaseUrl(url: string): string {
  const m = URL_PATTERN.exec(url);
  if (m?.groups && m.groups.password !== undefined && m.groups.password !== '') {
    const g = m.groups;
    const start = g.name!.length + 3 + (g.username ?? '').length + 1;
    return `${url.slice(0, start)}***${url.slice(start + (g.password ?? '').length)}`;
  }
  // Not parseable: mask whatever sits between the first ':' after '//' and the last '@'.
  return url.replace(/^([^:]+:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

function split(scheme: string): { base: string; driver: string | null } {
  const plus = scheme.indexOf('+');
  if (plus < 0) return { base: scheme.toLowerCase(), driver: null };
  return { base: scheme.slice(0, plus).toLowerCase(), driver: scheme.slice(plus + 1).toLowerCase() };
}

/**
 * Parses the oslo.db connection URL. Throws ConfigError naming `[database] connection` for
 * anything cinderblock cannot use (PostgreSQL, an unknown driver, a malformed URL).
 */
export function parseDatabaseUrl(url: string, cwd: string = process.cwd()): DatabaseUrl {
  const text = url.trim();
  const redacted = redactDatabaseUrl(text);
  const m = URL_PATTERN.exec(text);
  if (!m?.groups) {
    throw new ConfigError(
      `[database] connection: cannot parse ${JSON.stringify(redacted)} as a database URL; expected e.g. ` +
        `mysql+pymysql://cinder:PASSWORD@controller/cinder?charset=utf8 or sqlite:////var/lib/cinder/cinder.sqlite`,
    );
  }
  const g = m.groups;
  const scheme = g.name!;
  const { base, driver } = split(scheme);
  const query = parseQuery(g.query);

  if (base === 'mysql' || base === 'mariadb') {
    if (driver !== null && !MYSQL_DRIVERS.has(driver)) {
      throw new ConfigError(
        `[database] connection: unsupported MySQL driver '${driver}' in ${JSON.stringify(redacted)} (supported: ${SUPPORTED_SCHEMES})`,
      );
    }
    let port: number | null = null;
    if (g.port !== undefined && g.port !== '') {
      if (!/^\d+$/.test(g.port) || Number(g.port) < 1 || Number(g.port) > 65535) {
        throw new ConfigError(`[database] connection: invalid port '${g.port}' in ${JSON.stringify(redacted)}`);
      }
      port = Number(g.port);
    }
    const host = g.ipv6host ?? g.ipv4host ?? null;
    return {
      dialect: 'mysql',
      scheme,
      driver,
      user: g.username !== undefined && g.username !== '' ? decode(g.username, 'user name') : null,
      password: g.password !== undefined ? decode(g.password, 'password') : null,
      host: host === null || host === '' ? null : decode(host, 'host'),
      port,
      database: g.database !== undefined && g.database !== '' ? decode(g.database, 'database name') : null,
      socketPath: query.unix_socket ?? null,
      charset: query.charset ?? null,
      query,
      redacted,
    };
  }

  if (base === 'sqlite') {
    if (driver !== null && !SQLITE_DRIVERS.has(driver)) {
      throw new ConfigError(
        `[database] connection: unsupported SQLite driver '${driver}' in ${JSON.stringify(redacted)} (supported: ${SUPPORTED_SCHEMES})`,
      );
    }
    if (g.username !== undefined || g.ipv4host !== undefined || g.ipv6host !== undefined || g.port !== undefined) {
      throw new ConfigError(
        `[database] connection: a SQLite URL has no host part; write sqlite:///relative/path or sqlite:////absolute/path (got ${JSON.stringify(redacted)})`,
      );
    }
    const raw = g.database !== undefined && g.database !== '' ? g.database : null;
    const memory = raw === null || raw === ':memory:';
    return {
      dialect: 'sqlite',
      scheme,
      driver,
      path: memory ? null : isAbsolute(raw) ? raw : resolve(cwd, raw),
      rawPath: memory ? null : raw,
      query,
      redacted,
    };
  }

  throw new ConfigError(
    `[database] connection: unsupported database '${scheme}' in ${JSON.stringify(redacted)}; ` +
      `cinderblock supports MySQL/MariaDB and SQLite (${SUPPORTED_SCHEMES})`,
  );
}
