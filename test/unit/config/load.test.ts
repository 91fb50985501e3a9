import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromText, describeConfig, loadConfig, loadConfigSync } from '../../../src/config/index.js';
import { ConfigError } from '../../../src/errors.js';
import { captureLogs, DEBUG, errorOf, tempDir, WARN } from './helpers.js';

const logs = captureLogs();
const tmp = tempDir();
const FIXTURES = join(import.meta.dirname, 'fixtures');
const fixed = { hostname: 'testhost', myIp: '198.51.100.7', env: {} };

describe('file and directory order', () => {
  it('later files override earlier ones; config-dir files are read sorted, where the dir appears', () => {
    const a = tmp.write('a.conf', '[DEFAULT]\nreport_interval = 1\nservice_down_time = 1\nperiodic_interval = 1\n');
    const dir = join(tmp.path(), 'conf.d');
    tmp.write('conf.d/20-b.conf', '[DEFAULT]\nreport_interval = 20\nservice_down_time = 20\n');
    tmp.write('conf.d/10-a.conf', '[DEFAULT]\nreport_interval = 10\nservice_down_time = 10\nperiodic_interval = 10\n');
    tmp.write('conf.d/.hidden.conf', '[DEFAULT]\nreport_interval = 99\n');
    tmp.write('conf.d/notes.txt', '[DEFAULT]\nreport_interval = 98\n');
    const z = tmp.write('z.conf', '[DEFAULT]\nservice_down_time = 30\n');

    const c = loadConfigSync({
      ...fixed,
      sources: [
        { kind: 'file', path: a },
        { kind: 'dir', path: dir },
        { kind: 'file', path: z },
      ],
    });
    expect(c.files).toEqual([a, join(dir, '10-a.conf'), join(dir, '20-b.conf'), z]);
    expect(c.default.report_interval).toBe(20);
    expect(c.default.service_down_time).toBe(30);
    expect(c.default.periodic_interval).toBe(10);

    // A file after the directory loses to nothing; a file before it loses to the directory.
    const c2 = loadConfigSync({ ...fixed, sources: [{ kind: 'dir', path: dir }, { kind: 'file', path: a }] });
    expect(c2.default.report_interval).toBe(1);
  });

  it('configFiles are read before configDirs when no ordered sources are given', () => {
    const a = tmp.write('a.conf', '[DEFAULT]\nreport_interval = 1\n');
    tmp.write('d/x.conf', '[DEFAULT]\nreport_interval = 2\n');
    const c = loadConfigSync({ ...fixed, configFiles: [a], configDirs: [join(tmp.path(), 'd')] });
    expect(c.default.report_interval).toBe(2);
  });

  it('a missing file or directory given explicitly is an error naming it', () => {
    const missing = join(tmp.path(), 'nope.conf');
    expect(() => loadConfigSync({ configFiles: [missing] })).toThrow(ConfigError);
    expect(() => loadConfigSync({ configFiles: [missing] })).toThrow(`Config file not found: ${missing}`);
    expect(() => loadConfigSync({ configDirs: [join(tmp.path(), 'nodir')] })).toThrow(/Config directory not found: .*nodir/);
  });

  it('a parse error names the file and line', () => {
    const p = tmp.write('bad.conf', '[DEFAULT]\nhost = a\n  b\n[oops\n');
    expect(() => loadConfigSync({ configFiles: [p] })).toThrow(`Failed to parse ${p} at line 4`);
  });

  it('multistr collects the values of every file, oldest first; scalars take the last', () => {
    const c = configFromText([
      { name: 'a.conf', text: '[oslo_messaging_notifications]\ndriver = log\ndriver = routing\ntopics = a\ntopics = b\n' },
      { name: 'b.conf', text: '[oslo_messaging_notifications]\ndriver = messagingv2\n' },
    ]);
    expect(c.notifications.driver).toEqual(['log', 'routing', 'messagingv2']);
    expect(c.notifications.topics).toEqual(['b']);
  });
});

describe('backends', () => {
  const conf = `[DEFAULT]
host = node1
cluster = " c1 "
storage_availability_zone = az0
enabled_backends = lvm, Fast
volume_copy_bps_limit = 100
volume_clear_ionice = -c3

[backend_defaults]
volume_group = shared
lvm_type = thin
reserved_percentage = 5
volume_clear_ionice = -c1

[lvm]
volume_group = vg-lvm
reserved_percentage =
volume_copy_bps_limit = 50
backend_host = alt

[FAST]
lvm_type = default
backend_availability_zone = az-fast
`;

  it('reads each enabled backend from its section, then [backend_defaults], as cinder does', () => {
    const c = configFromText(conf, fixed);
    expect(c.backends.map((b) => b.name)).toEqual(['lvm', 'Fast']);
    const [lvm, fast] = c.backends;
    expect(lvm!.volume_group).toBe('vg-lvm');
    expect(lvm!.lvm_type).toBe('thin');
    // An empty int is None for oslo, and None in a backend section means "use [backend_defaults]".
    expect(lvm!.reserved_percentage).toBe(5);
    expect(fast!.volume_group).toBe('shared');
    expect(fast!.lvm_type).toBe('default');
    expect(c.backendDefaults.volume_group).toBe('shared');
  });

  it('derives host, cluster and availability zone as cinder-volume does', () => {
    const c = configFromText(conf, fixed);
    expect(c.backend('lvm')).toMatchObject({ host: 'alt@lvm', cluster: 'c1@lvm', availability_zone: 'az0' });
    expect(c.backend('fast')).toMatchObject({ host: 'node1@Fast', cluster: 'c1@Fast', availability_zone: 'az-fast' });
  });

  it('falls back to [DEFAULT] only where cinder does', () => {
    const c = configFromText(conf, fixed);
    expect(c.backend('lvm')!.volume_copy_bps_limit).toBe(50);
    expect(c.backend('fast')!.volume_copy_bps_limit).toBe(100); // 0 from [backend_defaults] is falsy
    expect(c.backend('fast')!.volume_clear_ionice).toBe('-c3'); // clear_volume reads CONF.volume_clear_ionice
    expect(logs.some((l) => l.level === WARN && l.msg.includes('volume_clear_ionice has no effect'))).toBe(true);
    // target_ip_address is never taken from [DEFAULT]
    const c2 = configFromText('[DEFAULT]\nenabled_backends = lvm\ntarget_ip_address = 10.9.9.9\nmy_ip = 10.0.0.1\n');
    expect(c2.backends[0]!.target_ip_address).toBe('10.0.0.1');
  });

  it('an enabled backend without a section uses [backend_defaults]; no backends is an empty list', () => {
    expect(configFromText('[DEFAULT]\nenabled_backends = ghost\n').backends[0]!.volume_group).toBe('cinder-volumes');
    expect(configFromText('[DEFAULT]\n').backends).toEqual([]);
  });

  it('reports max_over_subscription_ratio as cinder’s string, checked against its regex', () => {
    expect(configFromText('[DEFAULT]\nenabled_backends = a\n[a]\nmax_over_subscription_ratio = auto\n').backends[0]!.max_over_subscription_ratio).toBe('auto');
    expect(() => configFromText('[DEFAULT]\nenabled_backends = a\n[a]\nmax_over_subscription_ratio = 1.5x\n')).toThrow(
      /cinder.conf:4: \[a\] max_over_subscription_ratio = "1.5x"/,
    );
  });
});

describe('deprecated and removed names', () => {
  it('reads oslo’s deprecated names and groups, the current name winning within a file', () => {
    const c = configFromText(
      `[DEFAULT]
sql_connection = sqlite:///old.db
rpc_thread_pool_size = 16
lock_path = /run/lock/c
logfile = /var/log/c.log
rabbit_ha_queues = true
notification_driver = log
[DATABASE]
sql_max_retries = 3
[oslo_messaging_rabbit]
kombu_ssl_ca_certs = /ca.pem
ssl_ca_file = /new-ca.pem
rabbit_use_ssl = on
`,
      fixed,
    );
    expect(c.database.connection).toBe('sqlite:///old.db');
    expect(c.database.max_retries).toBe(3);
    expect(c.default.executor_thread_pool_size).toBe(16);
    expect(c.cinderblock.rpc_max_in_flight).toBe(16);
    expect(c.concurrency.lock_path).toBe('/run/lock/c');
    expect(c.default.log_file).toBe('/var/log/c.log');
    expect(c.rabbit.rabbit_ha_queues).toBe(true);
    expect(c.rabbit.ssl).toBe(true);
    expect(c.rabbit.ssl_ca_file).toBe('/new-ca.pem');
    expect(c.notifications.driver).toEqual(['log']);
    const warned = logs.filter((l) => l.level === WARN).map((l) => l.msg);
    expect(warned).toContain('cinder.conf:2: [DEFAULT] sql_connection is a deprecated name; use [database] connection');
    expect(warned.some((m) => m.includes('[DATABASE] sql_max_retries is a deprecated name'))).toBe(true);
  });

  it('a later file with the deprecated name beats an earlier one with the new name', () => {
    const c = configFromText([
      { name: 'a.conf', text: '[database]\nconnection = sqlite:///new.db\n' },
      { name: 'b.conf', text: '[DEFAULT]\nsql_connection = sqlite:///override.db\n' },
    ]);
    expect(c.database.connection).toBe('sqlite:///override.db');
  });

  it('ignores names cinder 21 no longer reads (iscsi_helper …) with a warning, as cinder ignores them', () => {
    const c = configFromText(
      '[DEFAULT]\nenabled_backends = lvm\n[lvm]\niscsi_helper = lioadm\niscsi_ip_address = 10.1.1.1\niscsi_protocol = iser\n',
      fixed,
    );
    expect(c.backends[0]!.target_helper).toBe('tgtadm');
    expect(c.backends[0]!.target_ip_address).toBe('198.51.100.7');
    expect(c.backends[0]!.target_protocol).toBe('iscsi');
    const warned = logs.filter((l) => l.level === WARN).map((l) => l.msg);
    expect(warned).toContain('cinder.conf:4: [lvm] iscsi_helper is ignored: cinder 21 does not read it; use target_helper (target_helper here is "tgtadm")');
    expect(warned.filter((m) => m.includes('is ignored: cinder 21 does not read it'))).toHaveLength(3);
  });
});

describe('unknown options and bad values', () => {
  it('ignores unknown options with a debug line naming file, section and option', () => {
    const c = configFromText(
      `[DEFAULT]
auth_strategy = noauth
osapi_volume_listen = 127.0.0.1
frobnicate = 1
enabled_backends = lvm
[lvm]
volume_group = vg
netapp_login = x
[keystone_authtoken]
password = secret
[not_a_group]
k = v
`,
      fixed,
    );
    expect(c.backends[0]!.volume_group).toBe('vg');
    const debug = logs.filter((l) => l.level === DEBUG);
    expect(debug.map((l) => [l.section, l.option])).toEqual([
      ['DEFAULT', 'frobnicate'],
      ['lvm', 'netapp_login'],
      ['not_a_group', 'k'],
    ]);
    expect(debug[0]).toMatchObject({ file: 'cinder.conf', line: 4 });
    expect(logs.filter((l) => l.level > DEBUG)).toEqual([]);
  });

  it.each([
    ['[DEFAULT]\nreport_interval = ten\n', 'cinder.conf:2: [DEFAULT] report_interval = "ten": "ten" is not an integer; allowed: an integer'],
    ['[DEFAULT]\ndebug = maybe\n', 'cinder.conf:2: [DEFAULT] debug = "maybe": unexpected boolean value "maybe"; allowed: a boolean'],
    [
      '[DEFAULT]\nenabled_backends = lvm\n[lvm]\n\nvolume_clear = shred\n',
      'cinder.conf:5: [lvm] volume_clear = "shred": valid values are [none, zero], but found "shred"; allowed: one of none, zero',
    ],
    [
      '[DEFAULT]\nenabled_backends = lvm\n[lvm]\nreserved_percentage = 101\n',
      'cinder.conf:4: [lvm] reserved_percentage = "101": 101 should be less than or equal to 100; allowed: an integer from 0 to 100',
    ],
    ['[DEFAULT]\nenabled_backends = lvm\n[lvm]\ntarget_port = 70000\n', 'cinder.conf:4: [lvm] target_port = "70000": 70000 should be less than or equal to 65535'],
    ['[oslo_messaging_rabbit]\nkombu_reconnect_delay = 5\n', 'cinder.conf:2: [oslo_messaging_rabbit] kombu_reconnect_delay = "5": 5 should be less than or equal to 4.5'],
    ['[DEFAULT]\nbackend_stats_polling_interval = 1\n', 'should be greater than or equal to 3'],
    ['[DEFAULT]\nreport_interval =\n', 'cinder.conf:2: [DEFAULT] report_interval is empty; allowed: an integer'],
    ['[DEFAULT]\nsql_max_retries = x\n', 'cinder.conf:2: [DEFAULT] sql_max_retries (deprecated name of [database] max_retries) = "x"'],
  ])('rejects %j', (text, message) => {
    const err = errorOf(() => configFromText(text));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain(message);
  });

  it('never quotes a secret in an error', () => {
    const err = errorOf(() => configFromText('[DEFAULT]\nenabled_backends = lvm\nhost = $lvm.chap_password\nreport_interval = $host\n[lvm]\nchap_password = hunter2\n'));
    expect(err.message).not.toContain('hunter2');
  });
});

describe('real configurations', () => {
  it('parses the stack README template to the expected values', () => {
    const state = tmp.path();
    const text = readFileSync(join(FIXTURES, 'stack-cinder.conf'), 'utf8').replaceAll('STATE_DIR', state);
    const p = tmp.write('cinder.conf', text);
    const c = loadConfigSync({ configFiles: [p], hostname: 'ignored', env: {} });
    expect(c.default).toMatchObject({
      transport_url: 'rabbit://guest:guest@127.0.0.1:5672/',
      my_ip: '127.0.0.1',
      host: 'storage1',
      enabled_backends: ['lvm'],
      state_path: state,
      log_dir: `${state}/logs`,
      report_interval: 10,
      service_down_time: 60,
      rpc_response_timeout: 60,
      control_exchange: 'openstack',
    });
    expect(c.database.connection).toBe(`sqlite:///${state}/cinder.sqlite`);
    expect(c.concurrency.lock_path).toBe(`${state}/locks`);
    expect(c.coordination.backend_url).toBe(`file://${state}/coord`);
    expect(c.notifications.driver).toEqual(['noop']);
    expect(c.backends).toHaveLength(1);
    expect(c.backends[0]).toMatchObject({
      name: 'lvm',
      host: 'storage1@lvm',
      volume_driver: 'cinder.volume.drivers.lvm.LVMVolumeDriver',
      volume_backend_name: 'lvm',
      volume_group: 'cinder-volumes',
      lvm_type: 'default',
      target_helper: 'tgtadm',
      target_protocol: 'iscsi',
      target_ip_address: '127.0.0.1',
      target_port: 3260,
      target_prefix: 'iqn.2010-10.org.openstack:',
      volume_clear: 'zero',
      volumes_dir: `${state}/volumes`,
      max_over_subscription_ratio: '20.0',
    });
    expect(c.rabbit).toMatchObject({ heartbeat_rate: 2, kombu_reconnect_delay: 1, rabbit_transient_queues_ttl: 1800 });
    // auth_strategy, osapi_volume_* are cinder-api's: no noise.
    expect(logs).toEqual([]);
  });

  it.skipIf(!existsSync('/etc/cinder/cinder.conf'))('loads the Debian package’s /etc/cinder/cinder.conf', () => {
    const c = loadConfigSync({ configFiles: ['/etc/cinder/cinder.conf'], ...fixed });
    expect(c.default.enabled_backends).toEqual(['lvm']);
    expect(c.backends[0]!.volume_group).toBe('pkgosvg0');
    expect(c.backends[0]!.target_helper).toBe('tgtadm');
    expect(c.concurrency.lock_path).toBe('/var/lock/cinder');
    expect(logs.filter((l) => l.level > WARN)).toEqual([]);
  });
});

describe('computed defaults', () => {
  it('host defaults to the machine name and my_ip to the outbound IPv4 address', async () => {
    const p = tmp.write('c.conf', '[DEFAULT]\n');
    const c = await loadConfig({ configFiles: [p] });
    const os = await import('node:os');
    expect(c.default.host).toBe(os.hostname());
    expect(c.default.my_ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(loadConfigSync({ configFiles: [p] }).default.my_ip).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  });

  it('lock_path defaults to $OSLO_LOCK_PATH, else unset', () => {
    expect(configFromText('[DEFAULT]\n', { env: { OSLO_LOCK_PATH: '/run/x' } }).concurrency.lock_path).toBe('/run/x');
    expect(configFromText('[DEFAULT]\n', { env: {} }).concurrency.lock_path).toBeNull();
  });

  it('defaults match cinder', () => {
    const c = configFromText('[DEFAULT]\n', fixed);
    expect(c.default).toMatchObject({
      host: 'testhost',
      my_ip: '198.51.100.7',
      state_path: '/var/lib/cinder',
      storage_availability_zone: 'nova',
      default_availability_zone: null,
      enabled_backends: null,
      transport_url: 'rabbit://',
      control_exchange: 'openstack',
      rpc_response_timeout: 60,
      executor_thread_pool_size: 64,
      report_interval: 10,
      service_down_time: 60,
      periodic_interval: 60,
      periodic_fuzzy_delay: 60,
      backend_stats_polling_interval: 60,
      volume_name_template: 'volume-%s',
      snapshot_name_template: 'snapshot-%s',
      no_snapshot_gb_quota: false,
    });
    expect(c.database).toMatchObject({ connection: 'sqlite:////var/lib/cinder/cinder.sqlite', max_retries: 10, retry_interval: 10, connection_recycle_time: 3600, max_pool_size: 5 });
    expect(c.coordination.backend_url).toBe('file:///var/lib/cinder');
    expect(c.notifications).toMatchObject({ driver: [], topics: ['notifications'] });
    expect(c.cinderblock).toEqual({ metrics_listen: '127.0.0.1:9648', rpc_max_in_flight: 64, tgt_control_port: 0, audit_interval: 600, glance_stall_timeout: 300 });
    expect(c.backendDefaults.file_volume_dir).toBe('/var/lib/cinder/file-volumes');
    expect(c.backendDefaults.target_layout).toBe('per-volume');
  });
});

describe('describeConfig and sources', () => {
  const text = `[DEFAULT]
transport_url = rabbit://guest:s3cret@10.0.0.5:5672,guest:s3cret@10.0.0.6:5672/
enabled_backends = lvm
[database]
connection = mysql+pymysql://cinder:dbpass@db/cinder?charset=utf8
[lvm]
chap_password = chap-secret
target_ip_address = $my_ip
`;

  it('masks secrets but keeps where a URL points', () => {
    const d = describeConfig(configFromText(text, fixed)) as Record<string, Record<string, unknown>>;
    const dump = JSON.stringify(d);
    for (const secret of ['s3cret', 'dbpass', 'chap-secret']) expect(dump).not.toContain(secret);
    expect(d.DEFAULT!.transport_url).toBe('rabbit://guest:***@10.0.0.5:5672,guest:***@10.0.0.6:5672/');
    expect(d.database!.connection).toBe('mysql+pymysql://cinder:***@db/cinder?charset=utf8');
    expect((d.backends as Record<string, Record<string, unknown>>).lvm).toMatchObject({
      host: 'testhost@lvm',
      chap_password: '***',
      target_ip_address: '198.51.100.7',
    });
  });

  it('tells where each value came from', () => {
    const s = configFromText(text, fixed).sources();
    expect(JSON.stringify(s.map(({ origin: _o, ...e }) => e))).not.toMatch(/s3cret|dbpass|chap-secret/);
    const find = (g: string, o: string) => s.find((e) => e.group === g && e.option === o)!;
    expect(find('DEFAULT', 'enabled_backends')).toMatchObject({ value: ['lvm'], source: 'cinder.conf:3 [DEFAULT] enabled_backends' });
    expect(find('lvm', 'target_ip_address')).toMatchObject({ value: '198.51.100.7', raw: '$my_ip', source: 'cinder.conf:8 [lvm] target_ip_address' });
    expect(find('lvm', 'volumes_dir')).toMatchObject({ source: 'default (via [backend_defaults])', raw: '$state_path/volumes' });
    expect(find('lvm', 'chap_password')).toMatchObject({ value: '***', secret: true });
    expect(find('DEFAULT', 'report_interval')).toMatchObject({ value: 10, source: 'default' });
  });

  it('gives the raw value of options it does not type', () => {
    const c = configFromText('[DEFAULT]\nauth_strategy = noauth\n[lvm]\nnetapp_login = a\nnetapp_login = b\n');
    expect(c.rawValue('DEFAULT', 'auth_strategy')).toBe('noauth');
    expect(c.rawValue('LVM', 'netapp_login')).toBe('b');
    expect(c.rawValue('lvm', 'missing')).toBeUndefined();
  });
});
