// Which files are read, in which order (oslo_config/cfg.py _ConfigFileOpt / _ConfigDirOpt /
// _parse_config_files / find_config_files):
//   - --config-file and --config-dir are handled in command-line order; a later file overrides an
//     earlier one;
//   - --config-dir reads the `*.conf` files of the directory (not hidden ones, as glob does) sorted
//     by name, at the point where it appears;
//   - with no --config-file at all, oslo first reads the default files (cinder.conf, then
//     cinder-volume.conf, each from the first of ~/.cinder, ~, /etc/cinder, /etc that has it);
//     with no --config-dir, the default directories (cinder.conf.d, cinder-volume.conf.d) likewise.
//     Defaults come before anything given on the command line.
// A file or directory named explicitly that does not exist is an error naming it.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfigError } from '../errors.js';

/** One --config-file or --config-dir argument (same shape as the CLI's ConfigSourceArg). */
export interface ConfigSourceArg {
  kind: 'file' | 'dir';
  path: string;
}

export interface DefaultLocations {
  project: string;
  prog: string;
}

export const CINDER_VOLUME_LOCATIONS: DefaultLocations = { project: 'cinder', prog: 'cinder-volume' };

/** oslo's _fixpath: expand ~ and make absolute. */
export function fixPath(path: string): string {
  const expanded = path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path;
  return resolve(expanded);
}

function searchDirs(project: string): string[] {
  const dirs = [fixPath(`~/.${project}`), fixPath('~'), join('/etc', project), '/etc'];
  const snapCommon = process.env.SNAP_COMMON;
  const snap = process.env.SNAP;
  if (snapCommon) dirs.push(join(snapCommon, 'etc', project));
  if (snap) dirs.push(join(snap, 'etc', project));
  return dirs;
}

function firstExisting(dirs: string[], name: string): string | null {
  for (const d of dirs) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** find_config_files / find_config_dirs for a project and program. */
export function defaultConfigLocations(loc: DefaultLocations = CINDER_VOLUME_LOCATIONS): { files: string[]; dirs: string[] } {
  const dirs = searchDirs(loc.project);
  const names = [loc.project, loc.prog].filter((n, i, a) => n && a.indexOf(n) === i);
  return {
    files: names.map((n) => firstExisting(dirs, `${n}.conf`)).filter((p): p is string => p !== null),
    dirs: names.map((n) => firstExisting(dirs, `${n}.conf.d`)).filter((p): p is string => p !== null),
  };
}

/** The `*.conf` files of a directory, sorted by name. */
export function configDirFiles(dir: string): string[] {
  const path = fixPath(dir);
  let names: string[];
  try {
    if (!statSync(path).isDirectory()) throw new ConfigError(`Config directory is not a directory: ${dir}`);
    names = readdirSync(path);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`Config directory not found: ${dir}`);
  }
  return names
    .filter((n) => n.endsWith('.conf') && !n.startsWith('.'))
    .sort()
    .map((n) => join(path, n));
}

/**
 * The config files to read, oldest (lowest precedence) first. With `defaults`, oslo's default
 * files/directories are prepended when no argument of that kind was given.
 */
export function expandConfigSources(args: readonly ConfigSourceArg[], defaults?: DefaultLocations): string[] {
  const out: string[] = [];
  if (defaults) {
    const found = defaultConfigLocations(defaults);
    if (!args.some((a) => a.kind === 'file')) out.push(...found.files);
    // Default directories are skipped quietly when absent, unlike --config-dir.
    if (!args.some((a) => a.kind === 'dir')) for (const d of found.dirs) out.push(...configDirFiles(d));
  }
  for (const arg of args) {
    if (arg.kind === 'file') out.push(fixPath(arg.path));
    else out.push(...configDirFiles(arg.path));
  }
  return out;
}
