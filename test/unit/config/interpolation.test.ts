import { describe, expect, it } from 'vitest';
import { configFromText } from '../../../src/config/load.js';
import { parseTemplate } from '../../../src/config/interpolate.js';
import { ConfigError } from '../../../src/errors.js';
import { captureLogs, errorOf, WARN } from './helpers.js';

const logs = captureLogs();

describe('template syntax', () => {
  it('splits $name, ${name}, $group.name, $$ and \\$ like string.Template', () => {
    expect(parseTemplate('$a/${b}-$c.d $$x \\$y $ $1')).toEqual([
      { ref: 'a', source: '$a' },
      { text: '/' },
      { ref: 'b', source: '${b}' },
      { text: '-' },
      { ref: 'c.d', source: '$c.d' },
      { text: ' $x $y $ $1' },
    ]);
  });
});

describe('interpolation', () => {
  it('expands $state_path, $my_ip and $host in defaults and values', () => {
    const c = configFromText(
      `[DEFAULT]
state_path = /srv/cinder
host = node7
enabled_backends = lvm
[oslo_concurrency]
lock_path = $state_path/lock
[lvm]
target_prefix = iqn.2010-10.org.$host:
`,
      { myIp: '192.0.2.10' },
    );
    expect(c.concurrency.lock_path).toBe('/srv/cinder/lock');
    expect(c.coordination.backend_url).toBe('file:///srv/cinder');
    expect(c.backends[0]!.volumes_dir).toBe('/srv/cinder/volumes');
    expect(c.backends[0]!.file_volume_dir).toBe('/srv/cinder/file-volumes');
    expect(c.backends[0]!.target_ip_address).toBe('192.0.2.10');
    expect(c.backends[0]!.target_prefix).toBe('iqn.2010-10.org.node7:');
  });

  it('interpolates after all files are read: a later file changes an earlier reference', () => {
    const c = configFromText([
      { name: 'a.conf', text: '[DEFAULT]\nstate_path = /a\n[oslo_concurrency]\nlock_path = ${state_path}/locks\n' },
      { name: 'b.conf', text: '[DEFAULT]\nstate_path = /b\n' },
    ]);
    expect(c.concurrency.lock_path).toBe('/b/locks');
  });

  it('resolves nested references recursively', () => {
    const c = configFromText(`[DEFAULT]
state_path = $log_dir/state
log_dir = /var/log/$host
host = h1
[coordination]
backend_url = file://$state_path/coord
`);
    expect(c.default.state_path).toBe('/var/log/h1/state');
    expect(c.coordination.backend_url).toBe('file:///var/log/h1/state/coord');
  });

  it('looks in the value’s own group first, then DEFAULT, and takes group.name', () => {
    const c = configFromText(`[DEFAULT]
transport_url = rabbit://$database.max_pool_size@h/
[database]
max_pool_size = 9
retry_interval = $max_pool_size
`);
    expect(c.database.retry_interval).toBe(9);
    expect(c.default.transport_url).toBe('rabbit://9@h/');
  });

  it('substitutes the converted value as Python prints it', () => {
    const c = configFromText(`[DEFAULT]
debug = yes
volume_name_template = vol-$debug-$rpc_response_timeout-%s
`);
    expect(c.default.volume_name_template).toBe('vol-True-60-%s');
  });

  it('keeps $$ and \\$ as a literal dollar', () => {
    const c = configFromText('[lvm]\nchap_password = pa$$word\nchap_username = a\\$b\n[DEFAULT]\nenabled_backends = lvm\n');
    expect(c.backends[0]!.chap_password).toBe('pa$word');
    expect(c.backends[0]!.chap_username).toBe('a$b');
  });

  it('reports a loop with the chain that forms it', () => {
    const err = errorOf(() => configFromText('[DEFAULT]\nstate_path = $log_dir\nlog_dir = $host\nhost = $state_path\n'));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/Interpolation loop: \[DEFAULT\] (state_path|log_dir|host) → .* → /);
  });

  it('reports a self-reference', () => {
    expect(() => configFromText('[DEFAULT]\nhost = x$host\n')).toThrow(/Interpolation loop: \[DEFAULT\] host → \[DEFAULT\] host/);
  });

  it('uses the file value of an option cinderblock does not type', () => {
    const c = configFromText('[DEFAULT]\nosapi_volume_listen = 10.0.0.1\nhost = api-$osapi_volume_listen\n');
    expect(c.default.host).toBe('api-10.0.0.1');
  });

  it('rejects a reference to an option nobody knows, naming file, line and option', () => {
    const err = errorOf(() => configFromText('[DEFAULT]\n\nhost = $nosuch\n'));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('cinder.conf:3: [DEFAULT] host: $nosuch refers to an option');
  });

  it('in a backend section, $backend_option is that section’s own value or empty, as in cinder', () => {
    const c = configFromText(`[DEFAULT]
enabled_backends = a,b
[backend_defaults]
volume_group = shared-vg
[a]
volume_group = vg-a
target_prefix = iqn.$volume_group:
[b]
target_prefix = iqn.$volume_group:
`);
    expect(c.backend('a')!.target_prefix).toBe('iqn.vg-a:');
    expect(c.backend('b')!.target_prefix).toBe('iqn.:');
    expect(c.backend('b')!.volume_group).toBe('shared-vg');
    expect(logs.some((l) => l.level === WARN && l.msg.includes("$volume_group expands to ''"))).toBe(true);
  });

  it('validates the expanded value, showing both forms', () => {
    const err = errorOf(() => configFromText('[DEFAULT]\nhost = abc\nreport_interval = $host\n'));
    expect(err.message).toBe(
      'cinder.conf:3: [DEFAULT] report_interval = "$host" (expands to "abc"): "abc" is not an integer; allowed: an integer',
    );
  });

  it('an int default given as a reference follows its target', () => {
    const c = configFromText('[DEFAULT]\nexecutor_thread_pool_size = 8\n');
    expect(c.cinderblock.rpc_max_in_flight).toBe(8);
  });
});
