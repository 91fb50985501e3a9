// Checks across a backend's options that no single option's type can make: a value that parses
// but cannot work stops start-up with a message naming the option, not a failure at first use.
import { resolve, sep } from 'node:path';
import { ConfigError } from '../errors.js';

/** `extra_capabilities` as cinder reads it (json.loads): a JSON object, else a ConfigError. */
export function parseExtraCapabilities(section: string, raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw || '{}');
  } catch (err) {
    throw new ConfigError(`[${section}] extra_capabilities is not valid JSON (${(err as Error).message}): write a JSON object, e.g. {"replication": false}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`[${section}] extra_capabilities must be a JSON object, e.g. {"replication": false}; got ${JSON.stringify(value)}`);
  }
  return value as Record<string, unknown>;
}

/**
 * The file pool must not live in tgt's volumes_dir (cinder's default `$state_path/volumes`), nor
 * inside it: tgt reads every file there as a target config, so a volume file there breaks every
 * export. Also refused the other way round: volumes_dir inside the pool would be taken for volumes.
 */
export function checkFilePoolDirectory(section: string, fileVolumeDir: string, volumesDir: string): void {
  const pool = resolve(fileVolumeDir);
  const targets = resolve(volumesDir);
  const inside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
  if (inside(pool, targets) || inside(targets, pool)) {
    throw new ConfigError(
      `[${section}] file_volume_dir (${pool}) and volumes_dir (${targets}) overlap: tgt keeps its target files in volumes_dir ` +
        `and would read volume files as target configs. Give file_volume_dir a directory of its own (default $state_path/file-volumes).`,
    );
  }
}
