// Names that reach an LVM command line. LVM accepts a-z A-Z 0-9 + _ . - in VG and LV names, no
// leading '-', not '.' or '..' (lvm(8) "VALID NAMES"); an LV name may not start with `snapshot` or
// `pvmove` nor contain LVM's internal suffixes. Every name is checked here before an argv is
// built, so a hostile volume id can never become an option, a path or a second argument.

export class LvmNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LvmNameError';
  }
}

const NAME_CHARS = /^[A-Za-z0-9+_.-]+$/;
/** LVM's NAME_LEN is 128 including the terminating NUL. */
const MAX_NAME = 127;
const RESERVED_LV_PREFIXES = ['snapshot', 'pvmove'];
const RESERVED_LV_PARTS = [
  '_cdata', '_cmeta', '_corig', '_iorig', '_mimage', '_mlog', '_pmspare',
  '_rimage', '_rmeta', '_tdata', '_tmeta', '_vdata', '_vorigin', '_wcorig',
];

function checkCommon(kind: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new LvmNameError(`${kind} name must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (name.length > MAX_NAME) {
    throw new LvmNameError(`${kind} name ${JSON.stringify(name)} is ${name.length} characters long; LVM allows at most ${MAX_NAME}`);
  }
  if (!NAME_CHARS.test(name)) {
    throw new LvmNameError(
      `${kind} name ${JSON.stringify(name)} is not valid for LVM: only letters, digits and '+', '_', '.', '-' are allowed (no '/', spaces or shell characters)`,
    );
  }
  if (name.startsWith('-')) throw new LvmNameError(`${kind} name ${JSON.stringify(name)} must not start with '-'`);
  if (name === '.' || name === '..') throw new LvmNameError(`${kind} name ${JSON.stringify(name)} is reserved by LVM`);
}

/** Throws LvmNameError unless `name` is a valid volume group name. */
export function assertVgName(name: unknown): asserts name is string {
  checkCommon('volume group', name);
}

/** Throws LvmNameError unless `name` is a valid (new or existing) logical volume name. */
export function assertLvName(name: unknown): asserts name is string {
  checkCommon('logical volume', name);
  for (const p of RESERVED_LV_PREFIXES) {
    if (name.startsWith(p)) {
      throw new LvmNameError(`logical volume name ${JSON.stringify(name)} starts with '${p}', which LVM reserves`);
    }
  }
  for (const part of RESERVED_LV_PARTS) {
    if (name.includes(part)) {
      throw new LvmNameError(`logical volume name ${JSON.stringify(name)} contains '${part}', which LVM reserves for its internal volumes`);
    }
  }
}

/**
 * cinder's _escape_snapshot: LVM refuses LV names starting with `snapshot`, so cinder stores
 * snapshot `snapshot-<id>` as LV `_snapshot-<id>`. Other names pass unchanged.
 */
export function escapeSnapshotName(name: string): string {
  return name.startsWith('snapshot') ? `_${name}` : name;
}

/** cinder's _unescape_snapshot, the inverse of escapeSnapshotName. */
export function unescapeSnapshotName(name: string): string {
  return name.startsWith('_snapshot') ? name.slice(1) : name;
}

/** `<vg>/<lv>` after validating both parts. */
export function lvPath(vg: string, lv: string): string {
  assertVgName(vg);
  assertLvName(lv);
  return `${vg}/${lv}`;
}

/**
 * The device-mapper node of an LV as cinder's local_path builds it: every '-' doubled in both
 * names, joined by a single '-' (`/dev/mapper/cinder--volumes-volume--<id>`). `name` is escaped
 * first, so a snapshot's cinder name gives its LV's node.
 */
export function mapperPath(vg: string, name: string): string {
  const lv = escapeSnapshotName(name);
  assertVgName(vg);
  assertLvName(lv);
  return `/dev/mapper/${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
}

/** The udev symlink cinder hands to the target helpers: `/dev/<vg>/<lv>`. */
export function exportPath(vg: string, lv: string): string {
  assertVgName(vg);
  assertLvName(lv);
  return `/dev/${vg}/${lv}`;
}

/**
 * Temporary LVs the driver makes and removes within one operation. Their names say which
 * operation and which resource (`<purpose>-<id>`, as cinder's `clone-snap-<new volume id>`), so
 * one left behind by an agent that died midway is recognised at start-up and finished off.
 */
export const CLONE_SNAPSHOT_PREFIX = 'clone-snap-';
/** Holds extents a thick revert freed while they are zeroed (`_cinderblock-wipe-<snapshot id>`). */
export const WIPE_LV_PREFIX = '_cinderblock-wipe-';

/** The temporary snapshot of a thick clone: cinder's `clone-snap-<new volume id>`. */
export function cloneSnapshotName(volumeId: string): string {
  const name = `${CLONE_SNAPSHOT_PREFIX}${volumeId}`;
  assertLvName(name);
  return name;
}

/** The temporary LV over the extents a revert freed (the merged snapshot's exception store). */
export function wipeLvName(snapshotId: string): string {
  const name = `${WIPE_LV_PREFIX}${snapshotId}`;
  assertLvName(name);
  return name;
}
