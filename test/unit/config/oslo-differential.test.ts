// Differential test: the same config files read by cinderblock and by the real oslo.config with
// cinder's own option registrations (fixtures/oslo-eval.py under Debian's /usr/bin/python3). Every
// option cinderblock types must come out identical, and a config oslo rejects must be rejected.
// Skipped where python3-cinder is not installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_LOOKUP, BACKEND_OPTS } from '../../../src/config/backend-options.js';
import { loadConfig } from '../../../src/config/index.js';
import type { CinderConfig, ConfigSourceArg } from '../../../src/config/index.js';
import { STATIC_GROUPS } from '../../../src/config/options.js';
import { captureLogs } from './helpers.js';

captureLogs();

const PYTHON = '/usr/bin/python3';
const FIXTURES = join(import.meta.dirname, 'fixtures');
const available =
  existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import cinder.volume.configuration'], { stdio: 'ignore' }).status === 0;

interface Case {
  name: string;
  files: Record<string, string>;
  /** Order of --config-file / --config-dir (paths relative to the case directory). */
  args: ConfigSourceArg[];
  /** Expect both sides to reject the configuration. */
  invalid?: boolean;
}

const DIFFERENTIAL_CASES: Case[] = [
  {
    name: 'stack README template',
    files: { 'cinder.conf': readFileSync(join(FIXTURES, 'stack-cinder.conf'), 'utf8').replaceAll('STATE_DIR', '/srv/state') },
    args: [{ kind: 'file', path: 'cinder.conf' }],
  },
  {
    name: 'interpolation',
    files: {
      'cinder.conf': `[DEFAULT]
state_path = $log_dir/state
log_dir = /var/log/\${host}x
host = h1
debug = Yes
volume_name_template = v-$debug-$$-\\$-%s
snapshot_name_template = s-$database.max_pool_size-$rpc_response_timeout
enabled_backends = a, B
transport_url = rabbit://u:p@h/$control_exchange
[database]
max_pool_size = 7
retry_interval = $max_pool_size
[backend_defaults]
volume_group = shared
chap_username = $volume_group-user
[a]
volume_group = vg-a
target_prefix = iqn.$volume_group:$host:
volumes_dir = $state_path/a
[b]
target_prefix = iqn.$volume_group:
chap_password = "$$ecret"
[oslo_concurrency]
lock_path = \${state_path}/lock
`,
    },
    args: [{ kind: 'file', path: 'cinder.conf' }],
  },
  {
    name: 'deprecated names and groups',
    files: {
      'cinder.conf': `[DEFAULT]
sql_connection = sqlite:///old.db
sql_retry_interval = 3
rpc_thread_pool_size = 16
lock_path = /run/lock/c
disable_process_locking = on
logfile = /var/log/c.log
logdir = /var/log
rabbit_ha_queues = true
rabbit_login_method = PLAIN
kombu_reconnect_delay = 2.5
notification_driver = log
notification_topics = a, b
[DATABASE]
sql_max_retries = 3
reconnect_interval = 4
[oslo_messaging_rabbit]
kombu_ssl_ca_certs = /ca.pem
ssl_ca_file = /new-ca.pem
rabbit_use_ssl = on
kombu_reconnect_timeout = 30
`,
    },
    args: [{ kind: 'file', path: 'cinder.conf' }],
  },
  {
    name: 'files, dirs and precedence',
    files: {
      'a.conf': '[DATABASE]\nconnection = sqlite:///a.db\n[DEFAULT]\nreport_interval = 1\nperiodic_interval = 1\nhost = a\n[oslo_messaging_notifications]\ndriver = log\n',
      'd/20.conf': '[DEFAULT]\nreport_interval = 20\nsql_connection = sqlite:///d20.db\n[oslo_messaging_notifications]\ndriver = routing\ndriver = noop\n',
      'd/10.conf': '[DEFAULT]\nreport_interval = 10\nperiodic_interval = 10\n',
      'd/.hidden.conf': '[DEFAULT]\nreport_interval = 99\n',
      'd/readme.txt': '[DEFAULT]\nreport_interval = 98\n',
      'z.conf': '[DEFAULT]\nhost = z\n[oslo_messaging_notifications]\ndriver = messagingv2\n',
    },
    args: [
      { kind: 'file', path: 'a.conf' },
      { kind: 'dir', path: 'd' },
      { kind: 'file', path: 'z.conf' },
    ],
  },
  {
    name: 'backend lookup',
    files: {
      'cinder.conf': `[DEFAULT]
enabled_backends = lvm,Fast,bare
volume_copy_bps_limit = 100
volume_copy_blkio_cgroup_name = dflt
volume_clear_ionice = -c3
target_helper = lioadm
storage_availability_zone = az0
[Backend_Defaults]
lvm_type = thin
reserved_percentage = 5
volume_clear_ionice = -c1
volume_copy_blkio_cgroup_name =
[LVM]
volume_group = vg-lvm
reserved_percentage =
volume_copy_bps_limit = 50
backend_host = alt
filter_function = volume.size < 10
  and volume.size > 1
volume_clear = none
volume_clear = zero
[fast]
lvm_type = default
max_over_subscription_ratio = auto
iscsi_secondary_ip_addresses = 10.0.0.2, 10.0.0.3,
storage_protocol = iscsi
use_chap_auth = 1
report_discard_supported = OFF
target_port = 3261
`,
    },
    args: [{ kind: 'file', path: 'cinder.conf' }],
  },
  {
    name: 'syntax corners',
    files: {
      'cinder.conf': `[default]
host = not-DEFAULT
[DEFAULT]
host: colon-host
storage_availability_zone = "quoted zone"
default_availability_zone = 'x"
volume_usage_audit_period = a = b : c
report_interval =  +1_0 
periodic_interval = 5
periodic_interval = 6
no_snapshot_gb_quota = ON
debug = 0
use_journal = True
enabled_backends = lvm,
allowed_direct_url_schemes = file ,cinder, ,
[oslo_messaging_rabbit]
kombu_reconnect_delay = .5
heartbeat_rate = 3
ssl_version = ""
[oslo_messaging_notifications]
driver =
driver = log
topics = a,
  b
[lvm]
goodness_function = 100
   * 2
volume_backend_name = "lvm"
chap_username = 'u'
iscsi_target_flags = direct
iscsi_target_flags = sync
`,
    },
    args: [{ kind: 'file', path: 'cinder.conf' }],
  },
  { name: 'bad int', files: { 'c.conf': '[DEFAULT]\nreport_interval = 1.5\n' }, args: [{ kind: 'file', path: 'c.conf' }], invalid: true },
  { name: 'bad bool', files: { 'c.conf': '[DEFAULT]\ndebug = enabled\n' }, args: [{ kind: 'file', path: 'c.conf' }], invalid: true },
  {
    name: 'bad choice',
    files: { 'c.conf': '[DEFAULT]\nenabled_backends = lvm\n[lvm]\ntarget_helper = tgt\n' },
    args: [{ kind: 'file', path: 'c.conf' }],
    invalid: true,
  },
  {
    name: 'out of range',
    files: { 'c.conf': '[oslo_messaging_rabbit]\nrabbit_transient_queues_ttl = 0\n' },
    args: [{ kind: 'file', path: 'c.conf' }],
    invalid: true,
  },
  {
    name: 'bad host address',
    files: { 'c.conf': '[DEFAULT]\nmy_ip = not_an_ip\n' },
    args: [{ kind: 'file', path: 'c.conf' }],
    invalid: true,
  },
];

if (existsSync('/etc/cinder/cinder.conf')) {
  DIFFERENTIAL_CASES.push({
    name: 'Debian /etc/cinder/cinder.conf',
    files: { 'cinder.conf': readFileSync('/etc/cinder/cinder.conf', 'utf8') },
    args: [{ kind: 'file', path: 'cinder.conf' }],
  });
}

type Query = [group: string, name: string, mode: string];

function queries(backends: readonly string[]): Query[] {
  const out: Query[] = [];
  for (const [g, defs] of Object.entries(STATIC_GROUPS)) {
    if (g === 'cinderblock') continue;
    for (const name of Object.keys(defs)) {
      if (g === 'backend_defaults' && (name === 'file_volume_dir' || name === 'backend_host' || name === 'target_layout')) continue;
      out.push([g, name, 'plain']);
    }
  }
  for (const b of backends) {
    for (const name of Object.keys(BACKEND_OPTS)) {
      if (name === 'file_volume_dir' || name === 'target_layout') continue;
      out.push([b.toLowerCase(), name, BACKEND_LOOKUP[name as keyof typeof BACKEND_LOOKUP] ?? 'backend']);
    }
  }
  return out;
}

function ours(config: CinderConfig, group: string, name: string): unknown {
  const byGroup: Record<string, object> = {
    DEFAULT: config.default,
    database: config.database,
    oslo_messaging_rabbit: config.rabbit,
    oslo_concurrency: config.concurrency,
    coordination: config.coordination,
    oslo_messaging_notifications: config.notifications,
    nova: config.nova,
    backend_defaults: config.backendDefaults,
  };
  const values = byGroup[group] ?? config.backend(group);
  return (values as Record<string, unknown>)[name];
}

describe.skipIf(!available)('same values as oslo.config + cinder 21.3', () => {
  let root = '';
  let reference: { host: string; my_ip: string; cases: Array<Record<string, { value?: unknown; error?: string }>> };
  const backendsOf = (c: Case): string[] => {
    const m = /^enabled_backends\s*=\s*(.*)$/m.exec(Object.values(c.files).join('\n'));
    return m ? m[1]!.split(',').map((s) => s.trim()).filter(Boolean) : [];
  };

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'cinderblock-oslo-'));
    const input = DIFFERENTIAL_CASES.map((c, i) => {
      const dir = join(root, String(i));
      for (const [rel, text] of Object.entries(c.files)) {
        mkdirSync(join(dir, rel, '..'), { recursive: true });
        writeFileSync(join(dir, rel), text);
      }
      return {
        args: c.args.flatMap((a) => [a.kind === 'file' ? '--config-file' : '--config-dir', join(dir, a.path)]),
        backends: backendsOf(c),
        queries: queries(backendsOf(c)),
      };
    });
    const env = { ...process.env };
    delete env.OSLO_LOCK_PATH;
    const run = spawnSync(PYTHON, [join(FIXTURES, 'oslo-eval.py')], {
      input: JSON.stringify(input),
      env,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    if (run.status !== 0 || !run.stdout) throw new Error(`oslo-eval.py failed: ${run.stderr}`);
    reference = JSON.parse(run.stdout) as typeof reference;
  }, 120_000);

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it.each(DIFFERENTIAL_CASES.map((c, i) => [c.name, i] as const))('%s', async (_name, i) => {
    const c = DIFFERENTIAL_CASES[i]!;
    const expected = reference.cases[i]!;
    const dir = join(root, String(i));
    const load = () => loadConfig({ sources: c.args.map((a) => ({ kind: a.kind, path: join(dir, a.path) })), env: {} });
    // A whole-case failure (a CLI option such as debug is converted while the file is parsed).
    const errors = Object.entries(expected).filter(([k, v]) => k === '__error__' || v.error !== undefined);
    if (c.invalid) {
      expect(errors.length).toBeGreaterThan(0);
      await expect(load()).rejects.toThrow();
      return;
    }
    expect(errors).toEqual([]);
    const config = await load();
    const mismatches: string[] = [];
    for (const [key, v] of Object.entries(expected)) {
      const dot = key.indexOf('.');
      const mine = ours(config, key.slice(0, dot), key.slice(dot + 1));
      if (JSON.stringify(mine) !== JSON.stringify(v.value)) {
        mismatches.push(`${key}: oslo ${JSON.stringify(v.value)} vs cinderblock ${JSON.stringify(mine)}`);
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('computes the same host and my_ip defaults', async () => {
    const p = join(root, 'empty.conf');
    writeFileSync(p, '[DEFAULT]\n');
    const config = await loadConfig({ configFiles: [p], env: {} });
    expect(config.default.host).toBe(reference.host);
    expect(config.default.my_ip).toBe(reference.my_ip);
  });
});
