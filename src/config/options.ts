// The options cinderblock reads, per group, with cinder 21.3 / oslo (Zed) names and defaults.
// Sources: cinder/common/config.py, cinder/service.py, cinder/volume/manager.py, cinder/db/api.py,
// cinder/cmd/volume.py, cinder/coordination.py, cinder/image/glance.py, oslo_log/_options.py,
// oslo_messaging (transport.py, server.py, rpc/client.py, notify/notifier.py,
// _drivers/impl_rabbit.py, amqp.py, base.py), oslo_db/options.py, oslo_concurrency/lockutils.py,
// oslo_service/_options.py. test/unit/config/registry.test.ts compares every definition here with
// what the installed packages register (fixtures/oslo-opts.json).
import { BACKEND_OPTS, VOLUME_COPY_OPTS } from './backend-options.js';
import { bool, choice, computed, float, hostAddress, int, list, multistr, str } from './opt.js';
import type { OptDef, OptGroupDefs } from './opt.js';

export const DEFAULT_OPTS = {
  // cinder/common/config.py
  state_path: str('/var/lib/cinder'),
  my_ip: hostAddress(computed('my_ipv4')),
  host: str(computed('hostname')),
  storage_availability_zone: str('nova'),
  default_availability_zone: str(null),
  volume_usage_audit_period: str('month'),
  rootwrap_config: str('/etc/cinder/rootwrap.conf'),
  service_down_time: int(60),
  enabled_backends: list(null),
  no_snapshot_gb_quota: bool(false),

  // cinder/service.py
  report_interval: int(10),
  periodic_interval: int(60),
  periodic_fuzzy_delay: int(60),

  // cinder/volume/manager.py volume_manager_opts
  migration_create_volume_timeout_secs: int(300),
  volume_service_inithost_offload: bool(false),
  reinit_driver_count: int(3),
  init_host_max_objects_retrieval: int(0),
  backend_stats_polling_interval: int(60, { min: 3 }),

  // cinder/db/api.py — enable_new_services decides services.disabled of a new service row.
  enable_new_services: bool(true),
  volume_name_template: str('volume-%s'),
  snapshot_name_template: str('snapshot-%s'),

  // cinder/image/glance.py
  allowed_direct_url_schemes: list([]),
  verify_glance_signatures: choice(['disabled', 'enabled'], 'enabled'),
  glance_catalog_info: str('image:glance:publicURL'),

  // cinder/common/config.py image_opts: how the Glance client reaches glance-api
  glance_api_servers: list(null),
  glance_num_retries: int(3, { min: 0 }),
  glance_api_insecure: bool(false),
  glance_api_ssl_compression: bool(false),
  glance_ca_certificates_file: str(null),
  glance_certfile: str(null),
  glance_keyfile: str(null),
  glance_request_timeout: int(null),

  // cinder/image/image_utils.py image_opts: temp files, conversion and its safety limits
  image_conversion_dir: str('$state_path/conversion'),
  image_compress_on_upload: bool(true),
  image_conversion_cpu_limit: int(60),
  /** GiB */
  image_conversion_address_space_limit: int(1),
  image_conversion_disable: bool(false),
  vmdk_allowed_types: list(['streamOptimized', 'monolithicSparse']),
  reserved_image_namespaces: list([]),

  // cinder/cmd/volume.py
  cluster: str(null),

  // cinder/context.py: the project and user that own the image-volume cache's volumes
  cinder_internal_tenant_project_id: str(null),
  cinder_internal_tenant_user_id: str(null),

  // cinder/volume/driver.py volume_opts as registered in [DEFAULT]: only those cinder-volume
  // still reads from [DEFAULT] (see BACKEND_LOOKUP; clear_volume also uses this volume_dd_blocksize).
  ...VOLUME_COPY_OPTS,

  // oslo.log (the agent logs its own way but honours these)
  debug: bool(false),
  log_file: str(null, { deprecated: [{ name: 'logfile' }] }),
  log_dir: str(null, { deprecated: [{ name: 'logdir' }] }),
  use_journal: bool(false),
  use_syslog: bool(false),
  use_stderr: bool(false),

  // oslo.messaging transport.py, server.py, rpc/client.py
  transport_url: str('rabbit://', { secret: true }),
  control_exchange: str('openstack'),
  executor_thread_pool_size: int(64, { deprecated: [{ name: 'rpc_thread_pool_size' }] }),
  rpc_response_timeout: int(60),

  // oslo.service
  graceful_shutdown_timeout: int(60),
} as const satisfies OptGroupDefs;

export const DATABASE_OPTS = {
  sqlite_synchronous: bool(true, { deprecated: [{ group: 'DEFAULT' }] }),
  backend: str('sqlalchemy', { deprecated: [{ group: 'DEFAULT', name: 'db_backend' }] }),
  // cinder/db/sqlalchemy/api.py overrides oslo.db's default (None) with this.
  connection: str('sqlite:///$state_path/cinder.sqlite', {
    secret: true,
    deprecated: [
      { group: 'DEFAULT', name: 'sql_connection' },
      { group: 'DATABASE', name: 'sql_connection' },
      { group: 'sql', name: 'connection' },
    ],
  }),
  slave_connection: str(null, { secret: true }),
  mysql_sql_mode: str('TRADITIONAL'),
  mysql_enable_ndb: bool(false),
  connection_recycle_time: int(3600),
  max_pool_size: int(5),
  max_retries: int(10, {
    deprecated: [
      { group: 'DEFAULT', name: 'sql_max_retries' },
      { group: 'DATABASE', name: 'sql_max_retries' },
    ],
  }),
  retry_interval: int(10, {
    deprecated: [
      { group: 'DEFAULT', name: 'sql_retry_interval' },
      { group: 'DATABASE', name: 'reconnect_interval' },
    ],
  }),
  max_overflow: int(50, {
    deprecated: [
      { group: 'DEFAULT', name: 'sql_max_overflow' },
      { group: 'DATABASE', name: 'sqlalchemy_max_overflow' },
    ],
  }),
  connection_debug: int(0, { min: 0, max: 100, deprecated: [{ group: 'DEFAULT', name: 'sql_connection_debug' }] }),
  connection_trace: bool(false, { deprecated: [{ group: 'DEFAULT', name: 'sql_connection_trace' }] }),
  pool_timeout: int(null, { deprecated: [{ group: 'DATABASE', name: 'sqlalchemy_pool_timeout' }] }),
  use_db_reconnect: bool(false),
  db_retry_interval: int(1),
  db_inc_retry_interval: bool(true),
  db_max_retry_interval: int(10),
  db_max_retries: int(20),
  connection_parameters: str(''),
} as const satisfies OptGroupDefs;

export const RABBIT_OPTS = {
  // impl_rabbit.py rabbit_opts
  ssl: bool(false, { deprecated: [{ name: 'rabbit_use_ssl' }] }),
  ssl_version: str('', { deprecated: [{ name: 'kombu_ssl_version' }] }),
  ssl_key_file: str('', { deprecated: [{ name: 'kombu_ssl_keyfile' }] }),
  ssl_cert_file: str('', { deprecated: [{ name: 'kombu_ssl_certfile' }] }),
  ssl_ca_file: str('', { deprecated: [{ name: 'kombu_ssl_ca_certs' }] }),
  ssl_enforce_hostname_verification: bool(false),
  ssl_enforce_fips_mode: bool(false),
  heartbeat_in_pthread: bool(false),
  // max = amqpdriver.ACK_REQUEUE_EVERY_SECONDS_MAX (5) * 0.9
  kombu_reconnect_delay: float(1.0, { min: 0, max: 4.5, deprecated: [{ group: 'DEFAULT' }] }),
  kombu_compression: str(null),
  kombu_missing_consumer_retry_timeout: int(60, { deprecated: [{ name: 'kombu_reconnect_timeout' }] }),
  kombu_failover_strategy: choice(['round-robin', 'shuffle'], 'round-robin'),
  rabbit_login_method: choice(['PLAIN', 'AMQPLAIN', 'EXTERNAL', 'RABBIT-CR-DEMO'], 'AMQPLAIN', {
    deprecated: [{ group: 'DEFAULT' }],
  }),
  rabbit_retry_interval: int(1),
  rabbit_retry_backoff: int(2, { deprecated: [{ group: 'DEFAULT' }] }),
  rabbit_interval_max: int(30),
  rabbit_ha_queues: bool(false, { deprecated: [{ group: 'DEFAULT' }] }),
  rabbit_quorum_queue: bool(false),
  rabbit_quorum_delivery_limit: int(0),
  // Misspelt in oslo.messaging 14 itself; these are the names operators must write.
  rabbit_quroum_max_memory_length: int(0),
  rabbit_quroum_max_memory_bytes: int(0),
  rabbit_transient_queues_ttl: int(1800, { min: 1 }),
  rabbit_qos_prefetch_count: int(0),
  heartbeat_timeout_threshold: int(60),
  // An IntOpt in oslo.messaging 14 (a float only in later releases).
  heartbeat_rate: int(2),
  direct_mandatory_flag: bool(true),
  enable_cancel_on_failover: bool(false),
  // amqp.py amqp_opts
  amqp_durable_queues: bool(false),
  amqp_auto_delete: bool(false, { deprecated: [{ group: 'DEFAULT' }] }),
  // _drivers/base.py base_opts
  rpc_conn_pool_size: int(30, { min: 1, deprecated: [{ group: 'DEFAULT' }] }),
  conn_pool_min_size: int(2),
  conn_pool_ttl: int(1200),
} as const satisfies OptGroupDefs;

export const CONCURRENCY_OPTS = {
  disable_process_locking: bool(false, { deprecated: [{ group: 'DEFAULT' }] }),
  // No default in cinder or oslo.concurrency besides $OSLO_LOCK_PATH; Debian's cinder.conf sets
  // /var/lock/cinder. [DEFAULT] lock_path is still read (deprecated group).
  lock_path: str(computed('env:OSLO_LOCK_PATH'), { deprecated: [{ group: 'DEFAULT' }] }) as OptDef<string | null>,
} as const satisfies OptGroupDefs;

export const COORDINATION_OPTS = {
  backend_url: str('file://$state_path'),
} as const satisfies OptGroupDefs;

export const NOTIFICATION_OPTS = {
  // Empty: cinder sends no notifications unless a driver is configured.
  driver: multistr([], { deprecated: [{ group: 'DEFAULT', name: 'notification_driver' }] }),
  transport_url: str(null, { secret: true, deprecated: [{ group: 'DEFAULT', name: 'notification_transport_url' }] }),
  topics: list(['notifications'], {
    deprecated: [
      { group: 'rpc_notifier2', name: 'topics' },
      { group: 'DEFAULT', name: 'notification_topics' },
    ],
  }),
  retry: int(-1),
} as const satisfies OptGroupDefs;

/**
 * [nova] as cinder reads it to send nova's external events (cinder/compute/nova.py): its own
 * nova_opts, keystoneauth's session options (get_session_conf_options) and the auth options
 * (get_auth_common_conf_options), plus the options of the two keyless auth plugins,
 * `admin_token` (endpoint + token) and `none` (endpoint), which load_auth_from_conf_options
 * registers when auth_type names them.
 */
export const NOVA_OPTS = {
  // cinder/compute/nova.py nova_opts
  region_name: str(null),
  interface: choice(['public', 'admin', 'internal'], 'public'),
  token_auth_url: str(null),
  // keystoneauth1 loading/session.py
  cafile: str(null),
  certfile: str(null),
  keyfile: str(null),
  insecure: bool(false),
  timeout: int(null),
  collect_timing: bool(false),
  split_loggers: bool(false),
  // keystoneauth1 loading/conf.py
  auth_type: str(null, { deprecated: [{ name: 'auth_plugin' }] }),
  auth_section: str(null),
  // keystoneauth1 loading/_plugins/admin_token.py and noauth.py
  endpoint: str(null, { deprecated: [{ name: 'url' }] }),
  token: str(null, { secret: true }),
} as const satisfies OptGroupDefs;

/** [cinderblock]: knobs of the agent that cinder-volume does not have. */
export const CINDERBLOCK_OPTS = {
  /** host:port of the Prometheus endpoint; empty disables it. */
  metrics_listen: str('127.0.0.1:9648'),
  /** RPC requests handled at once; cinder-volume's bound is its executor thread pool. */
  rpc_max_in_flight: int('$executor_thread_pool_size', { min: 1 }),
  /** tgtd's control port (tgtadm -C): 0 is the system tgtd; another lets a second tgtd serve us. */
  tgt_control_port: int(0, { min: 0, max: 65535 }),
  /**
   * Seconds between two audits of what the targets export against the database (src/manager/audit.ts);
   * the first runs at start. 0 disables the periodic audit (the start-up one still runs).
   */
  audit_interval: int(600, { min: 0 }),
  /**
   * Seconds a Glance call may go without a byte either way while glance_request_timeout is unset
   * (cinder's default: no limit). glance-api, whose store lost an image's tail, announces the
   * whole length, sends what it has and keeps the connection open: without a limit the volume
   * stays `downloading` for ever. 0 keeps cinder's behaviour.
   */
  glance_stall_timeout: int(300, { min: 0 }),
} as const satisfies OptGroupDefs;

/** Static groups (backend sections are added per enabled backend), keyed by normalized name. */
export const STATIC_GROUPS: Readonly<Record<string, OptGroupDefs>> = {
  DEFAULT: DEFAULT_OPTS,
  database: DATABASE_OPTS,
  oslo_messaging_rabbit: RABBIT_OPTS,
  oslo_concurrency: CONCURRENCY_OPTS,
  coordination: COORDINATION_OPTS,
  oslo_messaging_notifications: NOTIFICATION_OPTS,
  backend_defaults: BACKEND_OPTS,
  nova: NOVA_OPTS,
  cinderblock: CINDERBLOCK_OPTS,
};

export const BACKEND_DEFAULTS_GROUP = 'backend_defaults';
