import { describe, expect, it } from 'vitest';
import {
  brokerEndpoints,
  hasMixedCredentials,
  parseTransportUrl,
  redactTransportUrl,
  resolveRabbitOptions,
} from '../../../src/rpc/transport-url.js';
import { ConfigError } from '../../../src/errors.js';

describe('parseTransportUrl (oslo TransportURL.parse)', () => {
  it('parses several hosts with their own credentials, vhost and query', () => {
    const u = parseTransportUrl('rabbit://user:pass@host1:5672,user2:pass2@host2:5673/vhost?heartbeat_timeout_threshold=30');
    expect(u.transport).toBe('rabbit');
    expect(u.virtualHost).toBe('vhost');
    expect(u.hosts).toEqual([
      { hostname: 'host1', port: 5672, username: 'user', password: 'pass' },
      { hostname: 'host2', port: 5673, username: 'user2', password: 'pass2' },
    ]);
    expect(u.query).toEqual({ heartbeat_timeout_threshold: '30' });
  });

  it('URL-decodes user, password and vhost; password may contain ":" and "@"', () => {
    const u = parseTransportUrl('rabbit://us%40er:p%3Aa%2Fss@h:1/my%2Fvhost');
    expect(u.hosts[0]).toEqual({ hostname: 'h', port: 1, username: 'us@er', password: 'p:a/ss' });
    expect(u.virtualHost).toBe('my/vhost');
    const v = parseTransportUrl('rabbit://u:p:q@x@h');
    expect(v.hosts[0]).toEqual({ hostname: 'h', port: null, username: 'u', password: 'p:q@x' });
  });

  it('applies kombu defaults per host: guest/guest, 5672, vhost /', () => {
    const u = parseTransportUrl('rabbit://a:b@h1,h2:5673/');
    expect(hasMixedCredentials(u)).toBe(true);
    const eps = brokerEndpoints(u);
    expect(eps.map((e) => [e.hostname, e.port, e.username, e.password, e.vhost])).toEqual([
      ['h1', 5672, 'a', 'b', '/'],
      ['h2', 5673, 'guest', 'guest', '/'],
    ]);
    expect(brokerEndpoints(parseTransportUrl('rabbit://'))[0]).toMatchObject({ hostname: '127.0.0.1', port: 5672, username: 'guest', vhost: '/' });
    expect(brokerEndpoints(parseTransportUrl('rabbit://h'))[0]?.vhost).toBe('/');
    expect(brokerEndpoints(parseTransportUrl('rabbit://h//'))[0]?.vhost).toBe('/');
    expect(brokerEndpoints(parseTransportUrl('rabbit://h/cinder'))[0]?.vhost).toBe('cinder');
  });

  it('accepts amqp:// and IPv6 literals', () => {
    const u = parseTransportUrl('amqp://g:g@[::1]:5999/v');
    expect(u.transport).toBe('amqp');
    expect(u.hosts[0]).toEqual({ hostname: '::1', port: 5999, username: 'g', password: 'g' });
    expect(brokerEndpoints(u)[0]?.label).toBe('[::1]:5999');
  });

  it('rejects URLs without scheme or with another transport', () => {
    expect(() => parseTransportUrl('host:5672')).toThrow(ConfigError);
    expect(() => parseTransportUrl('kafka://h')).toThrow(/unsupported transport/);
  });

  it('never shows the password', () => {
    const url = 'rabbit://user:s3cr%40t@h1:5672,u2:other@h2/vh';
    const u = parseTransportUrl(url);
    expect(u.redacted).toBe('rabbit://user:***@h1:5672,u2:***@h2/vh');
    expect(u.redacted).not.toContain('s3cr');
    expect(redactTransportUrl('rabbit://h1,h2/')).toBe('rabbit://h1,h2/');
    try {
      parseTransportUrl('rabbit://u:topsecret@h:notaport/');
    } catch (e) {
      expect(String(e)).not.toContain('topsecret');
      return;
    }
    throw new Error('expected failure');
  });
});

describe('resolveRabbitOptions (query overrides config, like ConfigOptsProxy)', () => {
  it('defaults are oslo defaults', () => {
    const o = resolveRabbitOptions(null);
    expect(o).toMatchObject({
      heartbeat_timeout_threshold: 60,
      rabbit_retry_interval: 1,
      rabbit_retry_backoff: 2,
      rabbit_interval_max: 30,
      rabbit_transient_queues_ttl: 1800,
      kombu_failover_strategy: 'round-robin',
      rabbit_login_method: 'AMQPLAIN',
      amqp_durable_queues: false,
      amqp_auto_delete: false,
    });
  });

  it('query wins over config and is type-converted', () => {
    const u = parseTransportUrl('rabbit://h/?ssl=true&ssl_ca_file=/etc/ca.pem&heartbeat_timeout_threshold=10&rabbit_ha_queues=on');
    const o = resolveRabbitOptions(u, { heartbeat_timeout_threshold: 30, ssl: false });
    expect(o.ssl).toBe(true);
    expect(o.ssl_ca_file).toBe('/etc/ca.pem');
    expect(o.heartbeat_timeout_threshold).toBe(10);
    expect(o.rabbit_ha_queues).toBe(true);
  });

  it('refuses unknown names, bad values and quorum+ha', () => {
    expect(() => resolveRabbitOptions(parseTransportUrl('rabbit://h/?nope=1'))).toThrow(ConfigError);
    expect(() => resolveRabbitOptions(parseTransportUrl('rabbit://h/?ssl=maybe'))).toThrow(ConfigError);
    expect(() => resolveRabbitOptions(parseTransportUrl('rabbit://h/?heartbeat_timeout_threshold=x'))).toThrow(ConfigError);
    expect(() => resolveRabbitOptions(null, { rabbit_ha_queues: true, rabbit_quorum_queue: true })).toThrow(/not both/);
  });
});
