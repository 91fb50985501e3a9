// Options of a backend section ([lvm], … one per name in enabled_backends) and of [backend_defaults].
// Names, defaults and bounds are cinder 21.3's (cinder/volume/driver.py volume_opts,
// volume/manager.py volume_backend_opts, volume/drivers/lvm.py, image opts);
// test/unit/config/registry.test.ts checks them against the installed cinder.
//
// Lookup (cinder/volume/configuration.py BackendGroupConfiguration): cinder registers each option in
// the backend's group with its default overridden to None, so a value comes from the backend
// section if set there (and not None), otherwise from [backend_defaults] (its value or the default).
// [DEFAULT] is *not* consulted, except by the few consumers listed in BACKEND_LOOKUP.
import { bool, choice, int, list, port, str } from './opt.js';
import type { OptDef } from './opt.js';

export const TARGET_HELPERS = ['tgtadm', 'lioadm', 'scstadmin', 'iscsictl', 'ietadm', 'nvmet', 'spdk-nvmeof', 'fake'] as const;
export const TARGET_PROTOCOLS = ['iscsi', 'iser', 'nvmet_rdma', 'nvmet_tcp'] as const;

// Options cinder also registers in [DEFAULT] and that cinder-volume still reads from there; shared
// with options.ts so both copies have one definition.
export const VOLUME_COPY_OPTS = {
  volume_copy_bps_limit: int(0),
  volume_copy_blkio_cgroup_name: str('cinder-volume-copy'),
  volume_clear_ionice: str(null),
  volume_dd_blocksize: str('1M'),
} as const;

export const BACKEND_OPTS = {
  // volume/manager.py volume_backend_opts
  volume_driver: str('cinder.volume.drivers.lvm.LVMVolumeDriver'),
  extra_capabilities: str('{}'),
  suppress_requests_ssl_warnings: bool(false),
  backend_native_threads_pool_size: int(20, { min: 20 }),

  // volume/driver.py volume_opts
  num_shell_tries: int(3),
  reserved_percentage: int(0, { min: 0, max: 100 }),
  target_prefix: str('iqn.2010-10.org.openstack:'),
  target_ip_address: str('$my_ip'),
  // The real name in cinder 21: there is no target_secondary_ip_addresses.
  iscsi_secondary_ip_addresses: list([]),
  target_port: port(3260),
  num_volume_device_scan_tries: int(3),
  // read by the driver's get_backup_device (an in-use volume's backup: temp snapshot or clone)
  backup_use_temp_snapshot: bool(false),
  volume_backend_name: str(null),
  volume_clear: choice(['none', 'zero'] as const, 'zero'),
  volume_clear_size: int(0, { max: 1024 }),
  target_helper: choice(TARGET_HELPERS, 'tgtadm'),
  volumes_dir: str('$state_path/volumes'),
  iscsi_iotype: choice(['blockio', 'fileio', 'auto'] as const, 'fileio'),
  ...VOLUME_COPY_OPTS,
  iscsi_write_cache: choice(['on', 'off'] as const, 'on'),
  iscsi_target_flags: str(''),
  target_protocol: choice(TARGET_PROTOCOLS, 'iscsi'),
  // A StrOpt in cinder (the capability report carries it as a string); 'auto' or a number.
  max_over_subscription_ratio: str('20.0', { regex: /^(auto|\d*\.\d+|\d+)$/ }),
  use_chap_auth: bool(false),
  chap_username: str(''),
  chap_password: str('', { secret: true }),
  filter_function: str(null),
  goodness_function: str(null),
  trace_flags: list(null),
  report_discard_supported: bool(false),
  storage_protocol: choice(['iSCSI', 'FC'] as const, 'iSCSI', { ignoreCase: true }),
  enable_unsupported_driver: bool(false),
  backend_availability_zone: str(null),
  nvmet_port_id: port(1),
  nvmet_ns_id: int(10),

  // volume/driver.py image_opts (read per backend by the manager)
  image_upload_use_cinder_backend: bool(false),
  image_upload_use_internal_tenant: bool(false),
  image_volume_cache_enabled: bool(false),
  image_volume_cache_max_size_gb: int(0),
  image_volume_cache_max_count: int(0),
  use_multipath_for_image_xfer: bool(false),
  enforce_multipath_for_image_xfer: bool(false),

  // volume/drivers/lvm.py
  volume_group: str('cinder-volumes'),
  lvm_mirrors: int(0),
  lvm_type: choice(['default', 'thin', 'auto'] as const, 'auto'),
  lvm_conf_file: str('/etc/cinder/lvm.conf'),
  lvm_suppress_fd_warnings: bool(false),

  // cinder/cmd/volume.py host_opt, registered in each backend's group (see BACKEND_LOOKUP).
  backend_host: str(null),

  // cinderblock's own. Not $state_path/volumes: that is volumes_dir's default, where the tgt
  // target driver writes one config file per exported volume (and /etc/tgt/conf.d includes
  // everything in it); backing files of the file backend must not land among those.
  file_volume_dir: str('$state_path/file-volumes'),
  // cinderblock's own: per-volume is cinder's layout (one target per volume); per-host gives each
  // compute host one target with a LUN per attached volume (drivers/host-target-exports.ts).
  target_layout: choice(['per-volume', 'per-host'] as const, 'per-volume'),
} as const satisfies Record<string, OptDef>;

export type BackendOptName = keyof typeof BACKEND_OPTS;

/**
 * How a backend's value is found when it is not the plain section → [backend_defaults] lookup:
 *  - 'section-only': registered in the backend group only, no [backend_defaults] fallback
 *    (backend_host: cinder/cmd/volume.py reads CONF.<backend>.backend_host);
 *  - 'or-DEFAULT-if-falsy': the consumer reads `configuration.x or CONF.x`
 *    (volume/driver.py set_throttle for the copy bandwidth limit and its cgroup);
 *  - 'DEFAULT-only': the LVM driver never passes it, so volume_utils.clear_volume falls back to
 *    CONF.volume_clear_ionice — a value in the backend section has no effect in cinder.
 */
export const BACKEND_LOOKUP: Partial<Record<BackendOptName, 'section-only' | 'or-DEFAULT-if-falsy' | 'DEFAULT-only'>> = {
  backend_host: 'section-only',
  volume_copy_bps_limit: 'or-DEFAULT-if-falsy',
  volume_copy_blkio_cgroup_name: 'or-DEFAULT-if-falsy',
  volume_clear_ionice: 'DEFAULT-only',
};

/** Not in cinder's [backend_defaults]: cinderblock's own, and backend_host (backend group only). */
export const NOT_IN_BACKEND_DEFAULTS: readonly BackendOptName[] = ['file_volume_dir', 'backend_host', 'target_layout'];
