// Public surface of src/config: read cinder.conf as cinder-volume's oslo.config does.
export { loadConfig, loadConfigSync, configFromText } from './load.js';
export type { LoadConfigOptions } from './load.js';
export { describeConfig, maskSecret } from './describe.js';
export { expandConfigSources, defaultConfigLocations, CINDER_VOLUME_LOCATIONS } from './sources.js';
export type { ConfigSourceArg, DefaultLocations } from './sources.js';
export { parseIni, readIniFile, normalizeSectionName } from './ini-parser.js';
export type { IniFile, IniSection, IniValue } from './ini-parser.js';
export { detectMyIpv4, defaultRouteIpv4, defaultHostname } from './host-defaults.js';
export {
  DEFAULT_OPTS,
  DATABASE_OPTS,
  RABBIT_OPTS,
  CONCURRENCY_OPTS,
  COORDINATION_OPTS,
  NOTIFICATION_OPTS,
  NOVA_OPTS,
  CINDERBLOCK_OPTS,
} from './options.js';
export { BACKEND_OPTS, TARGET_HELPERS, TARGET_PROTOCOLS } from './backend-options.js';
export type { OptDef, OptionValues } from './opt.js';
export type { ValueOrigin, ValueLocation } from './resolver.js';
export type {
  CinderConfig,
  DefaultConfig,
  DatabaseConfig,
  RabbitConfig,
  ConcurrencyConfig,
  CoordinationConfig,
  NotificationsConfig,
  NovaConfig,
  CinderblockConfig,
  BackendOptions,
  BackendConfig,
  ConfigSourceEntry,
} from './types.js';
