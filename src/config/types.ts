// The typed configuration handed to the rest of the agent. Property names are cinder's option
// names, so `grep volume_clear` finds both the cinder.conf line and the code that uses it.
import type { BACKEND_OPTS } from './backend-options.js';
import type { OptionValues } from './opt.js';
import type {
  CINDERBLOCK_OPTS,
  CONCURRENCY_OPTS,
  COORDINATION_OPTS,
  DATABASE_OPTS,
  DEFAULT_OPTS,
  NOTIFICATION_OPTS,
  NOVA_OPTS,
  RABBIT_OPTS,
} from './options.js';
import type { ValueOrigin } from './resolver.js';

export type DefaultConfig = OptionValues<typeof DEFAULT_OPTS>;
export type DatabaseConfig = OptionValues<typeof DATABASE_OPTS>;
export type RabbitConfig = OptionValues<typeof RABBIT_OPTS>;
export type ConcurrencyConfig = OptionValues<typeof CONCURRENCY_OPTS>;
export type CoordinationConfig = OptionValues<typeof COORDINATION_OPTS>;
export type NotificationsConfig = OptionValues<typeof NOTIFICATION_OPTS>;
export type NovaConfig = OptionValues<typeof NOVA_OPTS>;
export type CinderblockConfig = OptionValues<typeof CINDERBLOCK_OPTS>;
/** The options of one backend section (or of [backend_defaults]). */
export type BackendOptions = OptionValues<typeof BACKEND_OPTS>;

export interface BackendConfig extends BackendOptions {
  /** The section name, as written in enabled_backends. */
  readonly name: string;
  /** The service host, `<backend_host or host>@<name>` (cinder/cmd/volume.py). */
  readonly host: string;
  /** `<cluster>@<name>` when [DEFAULT] cluster is set (stripped, non-empty), else null. */
  readonly cluster: string | null;
  /** backend_availability_zone, else [DEFAULT] storage_availability_zone (VolumeManager). */
  readonly availability_zone: string;
}

/** Where one option's effective value came from, for `cinderblock config show`. */
export interface ConfigSourceEntry {
  /** Section as an operator writes it: DEFAULT, database, a backend's name, … */
  readonly group: string;
  readonly option: string;
  /** The effective value, secrets masked. */
  readonly value: unknown;
  readonly secret: boolean;
  /** 'file' (with file:line), 'default', or 'inherited from [backend_defaults]' / '[DEFAULT]'. */
  readonly source: string;
  /** The value as written before interpolation, when it differs; secrets masked. */
  readonly raw?: unknown;
  readonly origin: ValueOrigin;
}

export interface CinderConfig {
  /** [DEFAULT] */
  readonly default: DefaultConfig;
  /** [database] */
  readonly database: DatabaseConfig;
  /** [oslo_messaging_rabbit] */
  readonly rabbit: RabbitConfig;
  /** [oslo_concurrency] */
  readonly concurrency: ConcurrencyConfig;
  /** [coordination] */
  readonly coordination: CoordinationConfig;
  /** [oslo_messaging_notifications] */
  readonly notifications: NotificationsConfig;
  /** [nova]: how cinder reaches nova for external events. */
  readonly nova: NovaConfig;
  /** [backend_defaults] as cinder sees it (what a backend section falls back to). */
  readonly backendDefaults: BackendOptions;
  /** One per enabled_backends entry, in that order. */
  readonly backends: readonly BackendConfig[];
  /** [cinderblock] */
  readonly cinderblock: CinderblockConfig;
  /** Files read, lowest precedence first. */
  readonly files: readonly string[];
  /** The backend whose section is `name` (case-insensitive, as oslo matches groups). */
  backend(name: string): BackendConfig | undefined;
  /** Every typed option with its effective value and where it came from; secrets masked. */
  sources(): ConfigSourceEntry[];
  /**
   * The last value a file gives for an option cinderblock does not type (driver-specific or
   * foreign options), uninterpolated; undefined if no file sets it.
   */
  rawValue(section: string, key: string): string | undefined;
}
