// [database] connection parsing, compared with SQLAlchemy's own make_url (cinder's parser).
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/errors.js';
import { parseDatabaseUrl, redactDatabaseUrl } from '../../../src/db/url.js';
import { SYSTEM_PYTHON } from '../../helpers/cinder-db.js';

const MYSQL_URLS = [
  'mysql+pymysql://cinder:p%40ss%2Fw0rd@controller:3307/cinder?charset=utf8',
  'mysql://root@127.0.0.1/cinder',
  'mysql+mysqldb://u:pw@[::1]:3306/db',
  'mysql+pymysql://cinder:secret@/cinder?unix_socket=/run/mysqld/mysqld.sock&charset=utf8',
  'mysql+pymysql://u:pa:ss@h/db',
  'mariadb+pymysql://u:x@db.example.org/cinder_db?charset=utf8mb4&connect_timeout=5',
];

describe('parseDatabaseUrl', () => {
  it('reads MySQL URLs exactly as SQLAlchemy’s make_url does', async () => {
    const script = [
      'import json, sys',
      'from sqlalchemy.engine.url import make_url',
      'out = []',
      'for u in json.loads(sys.argv[1]):',
      '    x = make_url(u)',
      '    out.append({"user": x.username, "password": x.password, "host": x.host, "port": x.port, "database": x.database, "query": dict(x.query)})',
      'print(json.dumps(out))',
    ].join('\n');
    const { stdout } = await execa(SYSTEM_PYTHON, ['-c', script, JSON.stringify(MYSQL_URLS)]);
    const theirs = JSON.parse(stdout) as Array<Record<string, unknown>>;
    MYSQL_URLS.forEach((u, i) => {
      const ours = parseDatabaseUrl(u);
      if (ours.dialect !== 'mysql') throw new Error('expected mysql');
      expect({ user: ours.user, password: ours.password, host: ours.host, port: ours.port, database: ours.database, query: ours.query }).toEqual(theirs[i]);
    });
  });

  it('knows the socket, charset and driver', () => {
    const u = parseDatabaseUrl(MYSQL_URLS[3]!);
    expect(u).toMatchObject({ dialect: 'mysql', driver: 'pymysql', socketPath: '/run/mysqld/mysqld.sock', charset: 'utf8', host: null });
    expect(parseDatabaseUrl(MYSQL_URLS[2]!)).toMatchObject({ host: '::1', port: 3306, driver: 'mysqldb' });
  });

  it('reads the three SQLite forms', () => {
    expect(parseDatabaseUrl('sqlite:///cinder.sqlite', '/var/lib/cinder')).toMatchObject({ dialect: 'sqlite', path: '/var/lib/cinder/cinder.sqlite', rawPath: 'cinder.sqlite' });
    expect(parseDatabaseUrl('sqlite:////var/lib/cinder/cinder.sqlite')).toMatchObject({ dialect: 'sqlite', path: '/var/lib/cinder/cinder.sqlite' });
    expect(parseDatabaseUrl('sqlite://')).toMatchObject({ dialect: 'sqlite', path: null });
    expect(parseDatabaseUrl('sqlite:///:memory:')).toMatchObject({ dialect: 'sqlite', path: null });
  });

  it('refuses what it cannot use, saying what is supported', () => {
    expect(() => parseDatabaseUrl('postgresql+psycopg2://cinder:pw@db/cinder')).toThrow(ConfigError);
    expect(() => parseDatabaseUrl('postgresql+psycopg2://cinder:pw@db/cinder')).toThrow(
      /\[database\] connection: unsupported database 'postgresql\+psycopg2' in "postgresql\+psycopg2:\/\/cinder:\*\*\*@db\/cinder"; cinderblock supports MySQL\/MariaDB and SQLite \(mysql:\/\/, mysql\+pymysql:\/\/, mysql\+mysqldb:\/\/.*sqlite:\/\/\)/,
    );
    expect(() => parseDatabaseUrl('mysql+foo://u:pw@h/db')).toThrow(/unsupported MySQL driver 'foo'/);
    expect(() => parseDatabaseUrl('not a url')).toThrow(/cannot parse "not a url"/);
    expect(() => parseDatabaseUrl('mysql://u@h:99999/db')).toThrow(/invalid port/);
    expect(() => parseDatabaseUrl('sqlite://host/file')).toThrow(/no host part/);
    try {
      parseDatabaseUrl('mysql+foo://u:topsecret@h/db');
    } catch (err) {
      expect((err as Error).message).not.toContain('topsecret');
    }
  });

  it('redacts the password for logs', () => {
    expect(parseDatabaseUrl(MYSQL_URLS[0]!).redacted).toBe('mysql+pymysql://cinder:***@controller:3307/cinder?charset=utf8');
    expect(parseDatabaseUrl('mysql://root@127.0.0.1/cinder').redacted).toBe('mysql://root@127.0.0.1/cinder');
    expect(redactDatabaseUrl('mysql+pymysql://u:pa:ss@h/db')).toBe('mysql+pymysql://u:***@h/db');
    expect(redactDatabaseUrl('weird://us@er:pw@host/x')).not.toContain('pw@host');
  });
});
