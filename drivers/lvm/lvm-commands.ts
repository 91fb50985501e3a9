// argv builders for every LVM command the LVM driver runs. Pure functions: no I/O, no state. The
// argv is exactly what cinder's brick LVM class (cinder/brick/local_dev/lvm.py, privsep/lvm.py)
// passes after its `env LC_ALL=C ...` prefix, which the runner supplies as environment instead
// (lvm-runner.ts). Every name is validated (lvm-names.ts) before it is put into an argv.
import { assertLvName, assertTag, assertVgName, lvPath } from './lvm-names.js';

export type Argv = string[];

/** lvremove's first attempt: retry deactivation when udev or another opener races us (LP #1270192). */
export const LVREMOVE_CONFIG = 'activation { retry_deactivation = 1} ';
/** lvremove's retry after `udevadm settle`: also skip devices a failed attempt left suspended. */
export const LVREMOVE_RETRY_CONFIG = `${LVREMOVE_CONFIG}devices { ignore_suspended_devices = 1}`;

const SIZE = /^(?:0|[1-9]\d*)(?:\.\d+)?g$/;

function assertSize(size: string): void {
  if (!SIZE.test(size)) throw new RangeError(`LVM size must look like '<number>g' (GiB), got ${JSON.stringify(size)}`);
}

/** `'%sg' % n` for an integer number of GiB (cinder's _sizestr): 1 → "1g". */
export function gibSize(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`size in GiB must be a non-negative integer, got ${n}`);
  return `${n}g`;
}

// ---------------------------------------------------------------------------------------------
// Reading state

/** `lvm version` (cinder: get_lvm_version). */
export function lvmVersionArgv(): Argv {
  return ['lvm', 'version'];
}

/** cinder's _vg_exists: `vgs --noheadings -o name <vg>`. */
export function vgExistsArgv(vg: string): Argv {
  assertVgName(vg);
  return ['vgs', '--noheadings', '-o', 'name', vg];
}

/** cinder's get_all_volume_groups: `vgs --noheadings --unit=g -o name,size,free,lv_count,uuid --separator : --nosuffix [vg]`. */
export function vgsInfoArgv(vg?: string): Argv {
  const argv = ['vgs', '--noheadings', '--unit=g', '-o', 'name,size,free,lv_count,uuid', '--separator', ':', '--nosuffix'];
  if (vg !== undefined) {
    assertVgName(vg);
    argv.push(vg);
  }
  return argv;
}

/** cinder's get_lv_info: `lvs --noheadings --unit=g -o vg_name,name,size --nosuffix --readonly [vg[/lv]]`. */
export function lvsInfoArgv(vg?: string, lv?: string): Argv {
  const argv = ['lvs', '--noheadings', '--unit=g', '-o', 'vg_name,name,size', '--nosuffix', '--readonly'];
  if (vg !== undefined && lv !== undefined) argv.push(lvPath(vg, lv));
  else if (vg !== undefined) {
    assertVgName(vg);
    argv.push(vg);
  }
  return argv;
}

/** cinder's get_all_physical_volumes (`--ignoreskippedcluster` from LVM 2.02.103). */
export function pvsInfoArgv(opts: { ignoreSkippedCluster: boolean }): Argv {
  const argv = ['pvs', '--noheadings', '--unit=g', '-o', 'vg_name,name,size,free', '--separator', '|', '--nosuffix'];
  if (opts.ignoreSkippedCluster) argv.push('--ignoreskippedcluster');
  return argv;
}

/** cinder's _get_thin_pool_free_space: `lvs ... -o size,data_percent ... /dev/<vg>/<pool>`. */
export function thinPoolUsageArgv(vg: string, pool: string): Argv {
  assertVgName(vg);
  assertLvName(pool);
  return ['lvs', '--noheadings', '--unit=g', '-o', 'size,data_percent', '--separator', ':', '--nosuffix', `/dev/${vg}/${pool}`];
}

/**
 * cinder's lv_has_snapshot (readonly) / lv_is_snapshot / lv_is_open / _lv_is_active:
 * `lvdisplay --noheading -C -o Attr [--readonly] <vg>/<lv>`.
 */
export function lvAttrArgv(vg: string, lv: string, opts: { readonly?: boolean } = {}): Argv {
  const argv = ['lvdisplay', '--noheading', '-C', '-o', 'Attr'];
  if (opts.readonly) argv.push('--readonly');
  argv.push(lvPath(vg, lv));
  return argv;
}

/** cinder's lv_get_origin: `lvdisplay --noheading -C -o Origin <vg>/<lv>`. */
export function lvOriginArgv(vg: string, lv: string): Argv {
  return ['lvdisplay', '--noheading', '-C', '-o', 'Origin', lvPath(vg, lv)];
}

/** Fields of the one report the driver reads per refresh (lvm-report.ts parses exactly these). */
export const REPORT_FIELDS = {
  vg: ['vg_name', 'vg_uuid', 'vg_size', 'vg_free', 'lv_count', 'snap_count', 'vg_extent_size', 'vg_attr', 'pv_count'],
  pv: ['pv_name', 'vg_name', 'pv_size', 'pv_free', 'pv_uuid'],
  lv: [
    'lv_name', 'lv_uuid', 'lv_attr', 'lv_size', 'lv_layout', 'lv_role', 'pool_lv', 'origin', 'origin_size',
    'data_percent', 'metadata_percent', 'snap_percent', 'lv_active', 'lv_device_open', 'lv_skip_activation',
    'lv_merging', 'lv_path', 'lv_dm_path', 'lv_tags',
  ],
} as const;

/**
 * The whole state of one VG in one command: `lvm fullreport` in JSON, sizes in bytes, the VG,
 * its PVs and its visible LVs (the LVs `lvs` lists: thin pool included, hidden sub-LVs not).
 * The per-segment sub-reports are selected empty: the driver needs none of them.
 */
export function fullReportArgv(vg: string): Argv {
  assertVgName(vg);
  return [
    'lvm', 'fullreport', '--reportformat', 'json', '--units', 'b', '--nosuffix',
    '--configreport', 'vg', '-o', REPORT_FIELDS.vg.join(','),
    '--configreport', 'pv', '-o', REPORT_FIELDS.pv.join(','),
    '--configreport', 'lv', '-o', REPORT_FIELDS.lv.join(','),
    '--configreport', 'pvseg', '-S', 'pvseg_size<0', '-o', 'pvseg_start',
    '--configreport', 'seg', '-S', 'seg_size<0', '-o', 'segtype',
    vg,
  ];
}

/** `vgs` in JSON with the report's VG fields, bytes (for tools and tests; the driver uses fullreport). */
export function vgsJsonArgv(vg?: string): Argv {
  const argv = ['vgs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', REPORT_FIELDS.vg.join(',')];
  if (vg !== undefined) {
    assertVgName(vg);
    argv.push(vg);
  }
  return argv;
}

/** `lvs` in JSON with the report's LV fields plus vg_name, bytes. */
export function lvsJsonArgv(vg?: string): Argv {
  const argv = ['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', ['vg_name', ...REPORT_FIELDS.lv].join(',')];
  if (vg !== undefined) {
    assertVgName(vg);
    argv.push(vg);
  }
  return argv;
}

/** `pvs` in JSON with the report's PV fields, bytes. */
export function pvsJsonArgv(): Argv {
  return ['pvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', REPORT_FIELDS.pv.join(',')];
}

/** Fields of the physical-segment report (lvm-report.ts parsePvSegments parses exactly these). */
export const PV_SEGMENT_FIELDS = [
  'pv_name', 'pv_uuid', 'pe_start', 'vg_extent_size', 'pvseg_start', 'pvseg_size', 'lv_name', 'lv_uuid', 'seg_start_pe',
] as const;

/**
 * Where every extent of the VG is: `pvs --segments` in JSON, one row per run of extents on a PV,
 * with the LV holding it (lv_name empty for free extents) and, for a held run, where it starts
 * within that LV (seg_start_pe). Starts and sizes are in extents; pe_start in bytes.
 */
export function pvSegmentsArgv(vg: string): Argv {
  assertVgName(vg);
  return [
    'pvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '--segments',
    '-o', PV_SEGMENT_FIELDS.join(','), '--select', `vg_name=${vg}`,
  ];
}

// ---------------------------------------------------------------------------------------------
// Changing state

/** `lvcreate -T -L <size> <vg>/<pool>` (cinder's create_thin_pool). */
export function createThinPoolArgv(vg: string, pool: string, size: string): Argv {
  assertSize(size);
  return ['lvcreate', '-T', '-L', size, lvPath(vg, pool)];
}

/** Region size for mirrors of 1.5 TiB or more: the next power of two of the size in TiB. */
export function mirrorRegionSize(sizeGb: number): number | null {
  const terras = sizeGb / 1024;
  if (terras < 1.5) return null;
  return 2 ** Math.ceil(Math.log(terras) / Math.log(2));
}

export interface CreateVolumeArgs {
  vg: string;
  name: string;
  /** Whole GiB, as cinder's volume sizes are. */
  sizeGb: number;
  /** Thin volume in this pool (cinder: lv_type == 'thin'); thick when absent. */
  thinPool?: string | null;
  /** lvm_mirrors; 0 for none. */
  mirrors?: number;
}

/**
 * cinder's create_volume: thick `lvcreate -n <name> <vg> -L <n>g`, thin
 * `lvcreate -T -V <n>g -n <name> <vg>/<pool>`, then for mirrors
 * `--type=mirror -m <n> --nosync --mirrorlog mirrored [-R <region>]`.
 */
export function createVolumeArgv(a: CreateVolumeArgs): Argv {
  assertVgName(a.vg);
  assertLvName(a.name);
  const size = gibSize(a.sizeGb);
  const argv = a.thinPool
    ? ['lvcreate', '-T', '-V', size, '-n', a.name, lvPath(a.vg, a.thinPool)]
    : ['lvcreate', '-n', a.name, a.vg, '-L', size];
  const mirrors = a.mirrors ?? 0;
  if (!Number.isSafeInteger(mirrors) || mirrors < 0) throw new RangeError(`lvm_mirrors must be a non-negative integer, got ${mirrors}`);
  if (mirrors > 0) {
    argv.push('--type=mirror', '-m', String(mirrors), '--nosync', '--mirrorlog', 'mirrored');
    const region = mirrorRegionSize(a.sizeGb);
    if (region !== null) argv.push('-R', String(region));
  }
  return argv;
}

/**
 * cinder's create_lv_snapshot: `lvcreate --name <name> --snapshot <vg>/<source>`, plus
 * `-L <size>` for a thick snapshot (size = the origin's size as `lvs --unit=g` prints it + 'g').
 */
export function createSnapshotArgv(vg: string, name: string, source: string, size: string | null): Argv {
  assertLvName(name);
  const argv = ['lvcreate', '--name', name, '--snapshot', lvPath(vg, source)];
  if (size !== null) {
    assertSize(size);
    argv.push('-L', size);
  }
  return argv;
}

export interface ActivateOptions {
  /** Drop the skip-activation flag for good (`-k n`; thin clones), else ignore it once (`-K`). */
  permanent?: boolean;
  /** LVM ≥ 2.02.99 knows -K / -k; older versions get neither. */
  ignoreSkipActivationSupported?: boolean;
}

/** cinder's activate_lv: `lvchange -a y --yes (-K | -k n) <vg>/<lv>`. */
export function activateArgv(vg: string, lv: string, opts: ActivateOptions = {}): Argv {
  const argv = ['lvchange', '-a', 'y', '--yes'];
  if (opts.ignoreSkipActivationSupported ?? true) {
    if (opts.permanent) argv.push('-k', 'n');
    else argv.push('-K');
  }
  argv.push(lvPath(vg, lv));
  return argv;
}

/** cinder's deactivate_lv: `lvchange -a n <vg>/<lv>`. */
export function deactivateArgv(vg: string, lv: string): Argv {
  return ['lvchange', '-a', 'n', lvPath(vg, lv)];
}

/** cinder's extend_volume: `lvextend -L <size> <vg>/<lv>`. */
export function extendArgv(vg: string, lv: string, size: string): Argv {
  assertSize(size);
  return ['lvextend', '-L', size, lvPath(vg, lv)];
}

/** cinder's delete: `lvremove --config <cfg> -f <vg>/<lv>`; the retry adds ignore_suspended_devices. */
export function removeArgv(vg: string, lv: string, opts: { retry?: boolean } = {}): Argv {
  return ['lvremove', '--config', opts.retry ? LVREMOVE_RETRY_CONFIG : LVREMOVE_CONFIG, '-f', lvPath(vg, lv)];
}

/** cinder's privsep lvconvert (revert to snapshot): `lvconvert --merge <vg>/<snapshot>`. */
export function mergeSnapshotArgv(vg: string, snapshot: string): Argv {
  return ['lvconvert', '--merge', lvPath(vg, snapshot)];
}

/**
 * `lvchange --addtag <t1> [--addtag <t2> ...] <vg>/<lv>`, or `--deltag`: every tag in one
 * command, so in one metadata commit (all recorded or none).
 */
export function tagsArgv(vg: string, lv: string, op: 'add' | 'delete', tags: readonly string[]): Argv {
  if (tags.length === 0) throw new RangeError('no tags');
  const argv = ['lvchange'];
  for (const t of tags) {
    assertTag(t);
    argv.push(op === 'add' ? '--addtag' : '--deltag', t);
  }
  argv.push(lvPath(vg, lv));
  return argv;
}

/** cinder's privsep lvrename: `lvrename <vg> <old> <new>`. */
export function renameArgv(vg: string, oldName: string, newName: string): Argv {
  assertVgName(vg);
  assertLvName(oldName);
  assertLvName(newName);
  return ['lvrename', vg, oldName, newName];
}

/** cinder's privsep udevadm_settle, run between lvremove attempts. */
export function udevSettleArgv(): Argv {
  return ['udevadm', 'settle'];
}

/** A run of physical extents: `count` extents of PV `pv` from extent `start`. */
export interface ExtentRange {
  pv: string;
  start: number;
  count: number;
}

/** PV names as LVM prints them; ':' would end the name in LVM's `PV:first-last` syntax. */
const PV_NAME = /^\/[A-Za-z0-9+_./@=#%-]+$/;

/**
 * `lvcreate -Z n -W n -y -l <n> -n <name> <vg> PV:first-last ...`: a linear LV on exactly the
 * listed extents (n is their total, so LVM must use every one; it only ever takes free ones).
 * No zeroing of the first 4 KiB and no signature wiping: whoever asks for it writes it anyway.
 */
export function createOnExtentsArgv(vg: string, name: string, ranges: readonly ExtentRange[]): Argv {
  assertVgName(vg);
  assertLvName(name);
  if (ranges.length === 0) throw new RangeError('no extents to allocate');
  let total = 0;
  const pvArgs: string[] = [];
  for (const r of ranges) {
    if (!PV_NAME.test(r.pv)) throw new RangeError(`PV name ${JSON.stringify(r.pv)} cannot be given as PV:first-last`);
    if (!Number.isSafeInteger(r.start) || r.start < 0 || !Number.isSafeInteger(r.count) || r.count < 1) {
      throw new RangeError(`bad extent range ${JSON.stringify(r)}`);
    }
    total += r.count;
    pvArgs.push(`${r.pv}:${r.start}-${r.start + r.count - 1}`);
  }
  return ['lvcreate', '-Z', 'n', '-W', 'n', '-y', '-l', String(total), '-n', name, vg, ...pvArgs];
}
