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
  return `/dev/mapper/${dmName(vg, name)}`;
}

/**
 * The device-mapper name LVM gives the LV of cinder name `name` while it is active (the kernel's
 * dm names are unique, so a device under this name is this LV): `cinder--volumes-volume--<id>`.
 */
export function dmName(vg: string, name: string): string {
  const lv = escapeSnapshotName(name);
  assertVgName(vg);
  assertLvName(lv);
  return `${vg.replace(/-/g, '--')}-${lv.replace(/-/g, '--')}`;
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

/**
 * The wipe LV start-up makes for extents recorded on LV `origin` (its tags name no snapshot):
 * `_cinderblock-wipe-<origin>`, or `_cinderblock-wipe-<lv uuid>` when that would not be a valid
 * LV name (too long).
 */
export function recoveryWipeLvName(origin: string, lvUuid: string): string {
  const name = `${WIPE_LV_PREFIX}${origin}`;
  try {
    assertLvName(name);
    return name;
  } catch {
    return wipeLvName(lvUuid.replace(/[^A-Za-z0-9]/g, '') || 'recovered');
  }
}

// ---------------------------------------------------------------------------------------------
// LVM tags recording the extents a thick revert frees

/**
 * Tags carry the characters of LV names (A-Za-z0-9 _ + . -), no leading '-'. Their length:
 * LVM's own doc (doc/tagging.txt of lvm2 2.03.16: "max length is 128 (NAME_LEN)") and the LVMs
 * that checked tags with validate_name allow 127 characters plus the NUL; 2.03's validate_tag
 * no longer checks the length, so 127 is the limit every supported LVM accepts.
 */
const TAG_CHARS = /^[A-Za-z0-9_+.][A-Za-z0-9_+.-]*$/;
export const MAX_TAG = 127;

/** Throws LvmNameError unless `tag` is a tag every supported LVM accepts. */
export function assertTag(tag: unknown): asserts tag is string {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG || !TAG_CHARS.test(tag)) {
    throw new LvmNameError(`LVM tag ${JSON.stringify(tag)} is not valid: 1 to ${MAX_TAG} of A-Za-z0-9 _ + . - and no leading '-'`);
  }
}

/**
 * What a revert records on the origin before `lvconvert --merge`: `count` extents from `start` of
 * the PV whose LVM uuid is `pvUuid` (hyphens dropped: 32 letters and digits). The PV is named by
 * uuid, not path: a path may hold characters no tag may carry, and may change at the next boot.
 */
export interface RecordedExtents {
  pvUuid: string;
  start: number;
  count: number;
}

/**
 * `cinderblock_wipe_<pv uuid>_<start>+<count>[_<start>+<count>...]`: one tag names one PV and
 * one or more runs of its extents. Every tag with this prefix on an LV is a record of extents a
 * merge into that LV frees (or freed) and that must be zeroed.
 */
export const WIPE_TAG_PREFIX = 'cinderblock_wipe_';
const PV_UUID_KEY = /^[A-Za-z0-9]{32}$/;
const WIPE_TAG = /^cinderblock_wipe_([A-Za-z0-9]{32})((?:_(?:0|[1-9]\d*)\+[1-9]\d*)+)$/;

/** An LVM PV uuid as a tag carries it: `ABCDEF-...-...` without its hyphens. */
export function pvUuidKey(uuid: string): string {
  const key = uuid.replace(/-/g, '');
  if (!PV_UUID_KEY.test(key)) throw new LvmNameError(`PV uuid ${JSON.stringify(uuid)} is not 32 letters and digits (with hyphens)`);
  return key;
}

/** Whether `tag` is one of the driver's extent records (well-formed or not). */
export function isWipeTag(tag: string): boolean {
  return tag.startsWith(WIPE_TAG_PREFIX);
}

/**
 * The tags recording `ranges`, runs of one PV together in their order, each tag as long as LVM
 * allows (MAX_TAG): as many tags as needed, all to be added in one lvchange (one metadata commit).
 */
export function encodeWipeTags(ranges: readonly RecordedExtents[]): string[] {
  const tags: string[] = [];
  let current = '';
  let currentPv = '';
  for (const r of ranges) {
    const pv = pvUuidKey(r.pvUuid);
    if (!Number.isSafeInteger(r.start) || r.start < 0 || !Number.isSafeInteger(r.count) || r.count < 1) {
      throw new RangeError(`bad extent range ${JSON.stringify(r)}`);
    }
    const run = `_${r.start}+${r.count}`;
    if (current !== '' && pv === currentPv && current.length + run.length <= MAX_TAG) {
      current += run;
      continue;
    }
    if (current !== '') tags.push(current);
    current = `${WIPE_TAG_PREFIX}${pv}${run}`;
    currentPv = pv;
  }
  if (current !== '') tags.push(current);
  for (const t of tags) assertTag(t);
  return [...new Set(tags)];
}

/** The runs one of the driver's tags records; null when the tag is not a well-formed record. */
export function decodeWipeTag(tag: string): RecordedExtents[] | null {
  const m = WIPE_TAG.exec(tag);
  if (!m) return null;
  const pvUuid = m[1]!;
  const ranges = m[2]!.slice(1).split('_').map((run) => {
    const [start, count] = run.split('+');
    return { pvUuid, start: Number(start), count: Number(count) };
  });
  return ranges.every((r) => Number.isSafeInteger(r.start) && Number.isSafeInteger(r.count)) ? ranges : null;
}
