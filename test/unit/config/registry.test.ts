// The option registry against what cinder 21.3 and its oslo libraries register, as dumped from the
// installed packages by fixtures/dump-oslo-opts.py into fixtures/oslo-opts.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NOT_IN_BACKEND_DEFAULTS } from '../../../src/config/backend-options.js';
import type { OptDef } from '../../../src/config/opt.js';
import { STATIC_GROUPS } from '../../../src/config/options.js';

interface Reference {
  type: string;
  default: unknown;
  secret: boolean;
  choices?: string[];
  min?: number;
  max?: number;
  regex?: string;
  ignore_case?: boolean;
  deprecated?: Array<{ group: string | null; name: string | null }>;
}

const reference = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'oslo-opts.json'), 'utf8')) as Record<
  string,
  Record<string, Reference>
>;

// Defaults that depend on the machine or the environment; the dump shows placeholders for them.
const COMPUTED: Record<string, unknown> = {
  'DEFAULT.host': '<hostname>',
  'DEFAULT.my_ip': '<my_ipv4>',
  'oslo_concurrency.lock_path': null,
};

function ours(group: string, name: string, def: OptDef): Reference {
  const d = def.default;
  const out: Reference = {
    type: def.type,
    default: typeof d === 'object' && d !== null && 'computed' in d ? COMPUTED[`${group}.${name}`] : d,
    secret: Boolean(def.secret),
  };
  if (def.choices) out.choices = [...def.choices];
  if (def.min !== undefined) out.min = def.min;
  if (def.max !== undefined) out.max = def.max;
  if (def.regex) out.regex = def.regex.source;
  if (def.ignoreCase) out.ignore_case = true;
  if (def.deprecated) out.deprecated = def.deprecated.map((x) => ({ group: x.group ?? null, name: x.name ?? null }));
  return out;
}

const cases = Object.entries(STATIC_GROUPS)
  .filter(([g]) => g !== 'cinderblock')
  .flatMap(([g, defs]) =>
    Object.entries(defs)
      .filter(([name]) => g !== 'backend_defaults' || !NOT_IN_BACKEND_DEFAULTS.includes(name as never))
      .map(([name, def]) => [g, name, def] as const),
  );

describe('option registry matches cinder 21.3 / oslo', () => {
  it.each(cases.map(([g, n, d]) => [`[${g}] ${n}`, g, n, d] as const))('%s', (_label, group, name, def) => {
    const ref = reference[group]?.[name];
    expect(ref, `${group}.${name} is not registered by cinder`).toBeDefined();
    expect(ours(group, name, def)).toEqual(ref);
  });

  it('covers every option the brief names', () => {
    const need: Record<string, string[]> = {
      DEFAULT: ['host', 'my_ip', 'state_path', 'storage_availability_zone', 'default_availability_zone', 'enabled_backends',
        'transport_url', 'control_exchange', 'rpc_response_timeout', 'executor_thread_pool_size', 'report_interval',
        'service_down_time', 'periodic_interval', 'backend_stats_polling_interval', 'periodic_fuzzy_delay', 'debug',
        'log_dir', 'log_file', 'use_journal', 'volume_name_template', 'snapshot_name_template', 'volume_usage_audit_period',
        'allowed_direct_url_schemes', 'volume_copy_bps_limit', 'cluster', 'no_snapshot_gb_quota', 'rootwrap_config'],
      database: ['connection', 'max_retries', 'retry_interval', 'connection_recycle_time', 'max_pool_size'],
      oslo_messaging_rabbit: ['amqp_durable_queues', 'amqp_auto_delete', 'rabbit_ha_queues', 'rabbit_quorum_queue',
        'rabbit_transient_queues_ttl', 'rabbit_qos_prefetch_count', 'heartbeat_timeout_threshold', 'heartbeat_rate',
        'kombu_reconnect_delay', 'rabbit_retry_interval', 'rabbit_retry_backoff', 'rabbit_interval_max',
        'rabbit_login_method', 'direct_mandatory_flag', 'ssl', 'ssl_ca_file', 'kombu_failover_strategy', 'heartbeat_in_pthread'],
      oslo_concurrency: ['lock_path', 'disable_process_locking'],
      coordination: ['backend_url'],
      oslo_messaging_notifications: ['driver', 'topics'],
      backend_defaults: ['volume_driver', 'volume_backend_name', 'volume_group', 'lvm_type', 'lvm_mirrors', 'lvm_conf_file',
        'lvm_suppress_fd_warnings', 'volume_clear', 'volume_clear_size', 'volume_clear_ionice', 'volume_dd_blocksize',
        'volume_copy_bps_limit', 'volume_copy_blkio_cgroup_name', 'reserved_percentage', 'max_over_subscription_ratio',
        'target_helper', 'target_protocol', 'target_prefix', 'target_ip_address', 'target_port',
        'iscsi_secondary_ip_addresses', 'iscsi_write_cache', 'iscsi_target_flags', 'volumes_dir',
        'report_discard_supported', 'use_chap_auth', 'chap_username', 'chap_password', 'filter_function',
        'goodness_function', 'backend_availability_zone', 'suppress_requests_ssl_warnings', 'file_volume_dir'],
      cinderblock: ['metrics_listen', 'rpc_max_in_flight'],
    };
    for (const [g, names] of Object.entries(need)) {
      for (const n of names) expect(STATIC_GROUPS[g]?.[n], `${g}.${n}`).toBeDefined();
    }
  });
});
