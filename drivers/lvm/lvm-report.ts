// Parsers for what LVM prints: `lvm version`, the JSON reports (`lvm fullreport`, `vgs`, `lvs`,
// `pvs` with --reportformat json --units b --nosuffix) and cinder's own text formats. Also the
// number formatting cinder's figures depend on: LVM prints GiB with printf("%.2f") and cinder
// computes with Python floats, so the capability report is only identical to cinder's if we
// round and print the way both of them do.
import { z } from 'zod';
import type { ExtentRange } from './lvm-commands.js';

export class LvmReportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LvmReportError';
  }
}

// ---------------------------------------------------------------------------------------------
// Version

export type LvmVersion = readonly [number, number, number];

/** Parses `lvm version` ("  LVM version:     2.03.16(2) (2022-05-18)") as cinder's get_lvm_version does. */
export function parseLvmVersion(stdout: string): LvmVersion | null {
  for (const line of stdout.split('\n')) {
    if (!line.includes('LVM version')) continue;
    const word = line.trim().split(/\s+/)[2];
    const m = word === undefined ? null : /^(\d+)\.(\d+)\.(\d+)/.exec(word);
    if (m) return [Number(m[1]), Number(m[2]), Number(m[3])];
  }
  return null;
}

export function versionAtLeast(v: LvmVersion, min: LvmVersion): boolean {
  for (let i = 0; i < 3; i++) {
    if (v[i]! !== min[i]!) return v[i]! > min[i]!;
  }
  return true;
}

/** Thin provisioning (cinder: supports_thin_provisioning). */
export const LVM_THIN_MIN: LvmVersion = [2, 2, 95];
/** lvchange -K / -k (cinder: supports_lvchange_ignoreskipactivation). */
export const LVM_IGNORE_SKIP_ACTIVATION_MIN: LvmVersion = [2, 2, 99];
/** Snapshot activation (cinder: supports_snapshot_lv_activation). */
export const LVM_SNAPSHOT_ACTIVATION_MIN: LvmVersion = [2, 2, 91];
/** pvs --ignoreskippedcluster. */
export const LVM_IGNORE_SKIPPED_CLUSTER_MIN: LvmVersion = [2, 2, 103];
/** cinder logs a warning below this. */
export const LVM_MINIMUM: LvmVersion = [2, 2, 107];

// ---------------------------------------------------------------------------------------------
// Exact decimal rounding of doubles (what glibc's printf and Python's round() do)

/** The exact decimal value of a finite double as [digits, scale]: value = digits / 10^scale. */
function exactDecimal(x: number): [bigint, number] {
  if (!Number.isFinite(x)) throw new RangeError(`not a finite number: ${x}`);
  if (Number.isInteger(x)) return [BigInt(x), 0];
  const buf = new DataView(new ArrayBuffer(8));
  buf.setFloat64(0, x);
  const hi = buf.getUint32(0);
  const lo = buf.getUint32(4);
  const sign = hi >>> 31 ? -1n : 1n;
  const exp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e: number;
  if (exp === 0) e = -1074;
  else {
    mant |= 1n << 52n;
    e = exp - 1075;
  }
  // not an integer, so e < 0: value = mant / 2^-e = mant * 5^-e / 10^-e
  return [sign * mant * 5n ** BigInt(-e), -e];
}

/** x rounded to `places` decimals, ties to even, on the exact binary value; as a fixed-point string. */
export function toFixedHalfEven(x: number, places: number): string {
  const [digits, scale] = exactDecimal(x);
  const neg = digits < 0n;
  let abs = neg ? -digits : digits;
  let q: bigint;
  if (scale <= places) q = abs * 10n ** BigInt(places - scale);
  else {
    const div = 10n ** BigInt(scale - places);
    q = abs / div;
    const r = abs % div;
    if (2n * r > div || (2n * r === div && q % 2n === 1n)) q += 1n;
  }
  abs = q;
  let s = abs.toString().padStart(places + 1, '0');
  if (places > 0) s = `${s.slice(0, -places)}.${s.slice(-places)}`;
  return neg && abs !== 0n ? `-${s}` : s;
}

/** Python's round(x, n) for floats. */
export function pyRound(x: number, places = 2): number {
  return Number(toFixedHalfEven(x, places));
}

/** Python's repr() of a float: "19.0" where JavaScript prints "19". */
export function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    // Python: 1e-05, 1.5e+16; JavaScript: 0.00001, 15000000000000000
    const [m, e] = x.toExponential().split('e') as [string, string];
    const exp = Number(e);
    return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const s = String(x);
  return Number.isInteger(x) ? `${s}.0` : s;
}

const GiB = 1024 ** 3;

/** Bytes as `lvs/vgs --unit=g --nosuffix` print them: "%.2f" of bytes/GiB ("2.00", "0.50"). */
export function formatLvmGiB(bytes: number): string {
  return toFixedHalfEven(bytes / GiB, 2);
}

/** The float cinder gets from float(<lvs/vgs GiB field>). */
export function lvmGiB(bytes: number): number {
  return Number(formatLvmGiB(bytes));
}

// ---------------------------------------------------------------------------------------------
// JSON reports

const row = z.record(z.string(), z.string());
const reportSchema = z.object({
  report: z.array(
    z.object({ vg: z.array(row).optional(), pv: z.array(row).optional(), lv: z.array(row).optional(), pvseg: z.array(row).optional() }).passthrough(),
  ),
});

export interface PvInfo {
  name: string;
  vg: string;
  uuid: string;
  sizeBytes: number;
  freeBytes: number;
}

export interface LvInfo {
  name: string;
  uuid: string;
  /** lv_attr, e.g. `-wi-a-----`, `owi-a-s---`, `Vwi-a-tz-k`, `twi-aotz--` (see lvs(8)). */
  attr: string;
  sizeBytes: number;
  /** lv_layout words: linear, thin, sparse, pool, mirror, ... */
  layout: string[];
  /** lv_role words: public, private, origin, snapshot, thicksnapshot, thinsnapshot, thickorigin, ... */
  role: string[];
  /** The thin pool of a thin volume, else ''. */
  poolLv: string;
  /** The origin of a snapshot (thick or thin), else ''. */
  origin: string;
  /** data_percent (thin pools and volumes, thick snapshots), else null. */
  dataPercent: number | null;
  metadataPercent: number | null;
  active: boolean;
  open: boolean;
  skipActivation: boolean;
  merging: boolean;
  /** `/dev/<vg>/<lv>` (empty for the thin pool: it has no /dev/<vg> link). */
  path: string;
  dmPath: string;
  /**
   * lv_tags. The driver's own are `cinderblock_wipe_*` (lvm-names.ts: extents a revert's merge
   * frees, to be zeroed); any other tag (an operator's) is left alone and means nothing here.
   */
  tags: string[];
}

export interface VgInfo {
  name: string;
  uuid: string;
  sizeBytes: number;
  freeBytes: number;
  extentSizeBytes: number;
  lvCount: number;
  snapCount: number;
  pvCount: number;
  attr: string;
}

/** One VG as `lvm fullreport` describes it: the VG, its PVs and its visible LVs. */
export interface VgReport extends VgInfo {
  pvs: PvInfo[];
  lvs: LvInfo[];
}

function parseJson(stdout: string, what: string): z.infer<typeof reportSchema> {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch (err) {
    throw new LvmReportError(`${what}: not JSON (${(err as Error).message}): ${stdout.slice(0, 200)}`);
  }
  const parsed = reportSchema.safeParse(data);
  if (!parsed.success) throw new LvmReportError(`${what}: unexpected report shape: ${parsed.error.message}`);
  return parsed.data;
}

function field(r: Record<string, string>, name: string, what: string): string {
  const v = r[name];
  if (v === undefined) throw new LvmReportError(`${what}: field ${name} missing from the report`);
  return v;
}

function int(r: Record<string, string>, name: string, what: string): number {
  const raw = field(r, name, what).trim();
  if (!/^\d+$/.test(raw)) throw new LvmReportError(`${what}: field ${name}=${JSON.stringify(raw)} is not a whole number (was --units b --nosuffix given?)`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new LvmReportError(`${what}: field ${name}=${raw} is too large`);
  return n;
}

function percent(r: Record<string, string>, name: string): number | null {
  const raw = (r[name] ?? '').trim();
  if (raw === '') return null;
  const n = Number(raw);
  return Number.isFinite(n) ? n : null;
}

function words(v: string | undefined): string[] {
  return (v ?? '').split(',').map((w) => w.trim()).filter((w) => w !== '');
}

export function toVgInfo(r: Record<string, string>): VgInfo {
  const what = `VG ${r.vg_name ?? '?'}`;
  return {
    name: field(r, 'vg_name', what),
    uuid: r.vg_uuid ?? '',
    sizeBytes: int(r, 'vg_size', what),
    freeBytes: int(r, 'vg_free', what),
    extentSizeBytes: r.vg_extent_size === undefined ? 0 : int(r, 'vg_extent_size', what),
    lvCount: r.lv_count === undefined ? 0 : int(r, 'lv_count', what),
    snapCount: r.snap_count === undefined ? 0 : int(r, 'snap_count', what),
    pvCount: r.pv_count === undefined ? 0 : int(r, 'pv_count', what),
    attr: r.vg_attr ?? '',
  };
}

export function toPvInfo(r: Record<string, string>): PvInfo {
  const what = `PV ${r.pv_name ?? '?'}`;
  return {
    name: field(r, 'pv_name', what),
    vg: r.vg_name ?? '',
    uuid: r.pv_uuid ?? '',
    sizeBytes: int(r, 'pv_size', what),
    freeBytes: int(r, 'pv_free', what),
  };
}

export function toLvInfo(r: Record<string, string>): LvInfo {
  const what = `LV ${r.lv_name ?? '?'}`;
  const attr = field(r, 'lv_attr', what);
  return {
    name: field(r, 'lv_name', what),
    uuid: r.lv_uuid ?? '',
    attr,
    sizeBytes: int(r, 'lv_size', what),
    layout: words(r.lv_layout),
    role: words(r.lv_role),
    poolLv: r.pool_lv ?? '',
    origin: r.origin ?? '',
    dataPercent: percent(r, 'data_percent'),
    metadataPercent: percent(r, 'metadata_percent'),
    active: r.lv_active !== undefined ? r.lv_active === 'active' : attr[4] === 'a',
    open: r.lv_device_open !== undefined ? r.lv_device_open === 'open' : attr[5] === 'o',
    skipActivation: r.lv_skip_activation !== undefined ? r.lv_skip_activation !== '' : attr[9] === 'k',
    merging: (r.lv_merging ?? '') !== '',
    path: r.lv_path ?? '',
    dmPath: r.lv_dm_path ?? '',
    tags: words(r.lv_tags),
  };
}

/**
 * Parses `lvm fullreport --reportformat json --units b --nosuffix ... <vg>` (fullReportArgv).
 * Returns null when the report has no such VG (LVM then also exits 5: "Volume group not found").
 */
export function parseFullReport(stdout: string, vgName: string): VgReport | null {
  const data = parseJson(stdout, 'lvm fullreport');
  for (const sub of data.report) {
    const vgRow = sub.vg?.[0];
    if (!vgRow || vgRow.vg_name !== vgName) continue;
    return {
      ...toVgInfo(vgRow),
      pvs: (sub.pv ?? []).map(toPvInfo),
      lvs: (sub.lv ?? []).map(toLvInfo),
    };
  }
  return null;
}

/** Parses `vgs --reportformat json --units b --nosuffix -o <REPORT_FIELDS.vg>`. */
export function parseVgsJson(stdout: string): VgInfo[] {
  return parseJson(stdout, 'vgs').report.flatMap((s) => (s.vg ?? []).map(toVgInfo));
}

/** Parses `lvs --reportformat json --units b --nosuffix -o vg_name,<REPORT_FIELDS.lv>`. */
export function parseLvsJson(stdout: string): (LvInfo & { vg: string })[] {
  return parseJson(stdout, 'lvs').report.flatMap((s) => (s.lv ?? []).map((r) => ({ ...toLvInfo(r), vg: r.vg_name ?? '' })));
}

/** Parses `pvs --reportformat json --units b --nosuffix -o <REPORT_FIELDS.pv>`. */
export function parsePvsJson(stdout: string): PvInfo[] {
  return parseJson(stdout, 'pvs').report.flatMap((s) => (s.pv ?? []).map(toPvInfo));
}

// ---------------------------------------------------------------------------------------------
// Physical segments: which extents an LV holds, which are free

/** One row of `pvs --segments` (pvSegmentsArgv): a run of extents on one PV. */
export interface PvSegment {
  pv: string;
  pvUuid: string;
  /** Byte offset of extent 0 on the PV. */
  peStartBytes: number;
  extentSizeBytes: number;
  /** First extent of the run on the PV, and its length in extents. */
  start: number;
  count: number;
  /** The LV holding the run; '' when the extents are free. */
  lv: string;
  lvUuid: string;
  /** Where the run starts within the LV, in extents (meaningless for free runs). */
  lvStart: number;
}

/** Parses `pvs --reportformat json --units b --nosuffix --segments -o <PV_SEGMENT_FIELDS>`. */
export function parsePvSegments(stdout: string): PvSegment[] {
  return parseJson(stdout, 'pvs --segments').report.flatMap((s) =>
    (s.pvseg ?? []).map((r) => {
      const what = `PV segment ${r.pv_name ?? '?'}:${r.pvseg_start ?? '?'}`;
      return {
        pv: field(r, 'pv_name', what),
        pvUuid: r.pv_uuid ?? '',
        peStartBytes: int(r, 'pe_start', what),
        extentSizeBytes: int(r, 'vg_extent_size', what),
        start: int(r, 'pvseg_start', what),
        count: int(r, 'pvseg_size', what),
        lv: r.lv_name ?? '',
        lvUuid: r.lv_uuid ?? '',
        lvStart: (r.seg_start_pe ?? '').trim() === '' ? 0 : int(r, 'seg_start_pe', what),
      };
    }),
  );
}

/** The extents LV `name` holds, in the LV's own order (its first extent first). */
export function lvExtents(segments: readonly PvSegment[], name: string): ExtentRange[] {
  return segments
    .filter((s) => s.lv === name && s.count > 0)
    .sort((a, b) => a.lvStart - b.lvStart)
    .map((s) => ({ pv: s.pv, start: s.start, count: s.count }));
}

/** The first `count` extents of `ranges` (in their order). */
export function firstExtents(ranges: readonly ExtentRange[], count: number): ExtentRange[] {
  const out: ExtentRange[] = [];
  let left = count;
  for (const r of ranges) {
    if (left <= 0) break;
    const n = Math.min(r.count, left);
    out.push({ pv: r.pv, start: r.start, count: n });
    left -= n;
  }
  return out;
}

/** The parts of `ranges` that are free extents now (`segments` from a later report). */
export function freeExtentsWithin(ranges: readonly ExtentRange[], segments: readonly PvSegment[]): ExtentRange[] {
  const free = segments.filter((s) => s.lv === '' && s.count > 0);
  const out: ExtentRange[] = [];
  for (const r of ranges) {
    const end = r.start + r.count;
    const parts: ExtentRange[] = [];
    for (const f of free) {
      if (f.pv !== r.pv) continue;
      const lo = Math.max(r.start, f.start);
      const hi = Math.min(end, f.start + f.count);
      if (hi > lo) parts.push({ pv: r.pv, start: lo, count: hi - lo });
    }
    out.push(...parts.sort((a, b) => a.start - b.start));
  }
  return out;
}

/** The held runs (LV and where) that overlap `ranges`: who has extents of `ranges` now. */
export function holdersWithin(ranges: readonly ExtentRange[], segments: readonly PvSegment[]): (ExtentRange & { lv: string })[] {
  const out: (ExtentRange & { lv: string })[] = [];
  for (const s of segments) {
    if (s.lv === '' || s.count <= 0) continue;
    for (const r of ranges) {
      if (r.pv !== s.pv) continue;
      const lo = Math.max(r.start, s.start);
      const hi = Math.min(r.start + r.count, s.start + s.count);
      if (hi > lo) out.push({ lv: s.lv, pv: s.pv, start: lo, count: hi - lo });
    }
  }
  return out;
}

/** Total number of extents in `ranges`. */
export function extentCount(ranges: readonly ExtentRange[]): number {
  return ranges.reduce((n, r) => n + r.count, 0);
}

// ---------------------------------------------------------------------------------------------
// lv_attr (lvs(8)): what cinder looks at

/** attr[0] `o`/`O`: a thick origin with (merging) snapshots: cinder's lv_has_snapshot. */
export function hasThickSnapshots(lv: Pick<LvInfo, 'attr'>): boolean {
  return lv.attr[0] === 'o' || lv.attr[0] === 'O';
}

/** attr[0] `s`: a thick snapshot: cinder's lv_is_snapshot. (A thin snapshot is `V`.) */
export function isThickSnapshot(lv: Pick<LvInfo, 'attr'>): boolean {
  return lv.attr[0] === 's' || lv.attr[0] === 'S';
}

export function isThinPool(lv: Pick<LvInfo, 'attr'>): boolean {
  return lv.attr[0] === 't';
}

// ---------------------------------------------------------------------------------------------
// cinder's text formats (what cinder itself parses; kept for comparison with its figures)

export interface CinderVgRow {
  name: string;
  size: number;
  available: number;
  lv_count: number;
  uuid: string;
}

/** cinder's get_all_volume_groups parsing of vgsInfoArgv output. */
export function parseCinderVgs(stdout: string): CinderVgRow[] {
  return stdout
    .split(/\s+/)
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split(':');
      if (f.length < 5) throw new LvmReportError(`vgs: unexpected line ${JSON.stringify(l)}`);
      return { name: f[0]!, size: Number(f[1]), available: Number(f[2]), lv_count: Number.parseInt(f[3]!, 10), uuid: f[4]! };
    });
}

/** cinder's get_lv_info parsing of lvsInfoArgv output: whitespace-separated triples. */
export function parseCinderLvs(stdout: string): { vg: string; name: string; size: string }[] {
  const w = stdout.split(/\s+/).filter((x) => x !== '');
  const out: { vg: string; name: string; size: string }[] = [];
  for (let i = 0; i + 2 < w.length; i += 3) out.push({ vg: w[i]!, name: w[i + 1]!, size: w[i + 2]! });
  return out;
}

/** cinder's get_all_physical_volumes parsing of pvsInfoArgv output. */
export function parseCinderPvs(stdout: string, vgName?: string): { vg: string; name: string; size: number; available: number }[] {
  return stdout
    .split(/\s+/)
    .filter((l) => l !== '')
    .filter((l) => vgName === undefined || l.split('|')[0] === vgName)
    .map((l) => {
      const f = l.split('|');
      return { vg: f[0]!, name: f[1]!, size: Number(f[2]), available: Number(f[3]) };
    });
}

/** cinder's _get_thin_pool_free_space on thinPoolUsageArgv output ("2.84:3.43"). */
export function parseThinPoolFree(stdout: string): number {
  const [size, pct] = stdout.trim().split(':');
  const poolSize = Number(size);
  const dataPercent = Number(pct);
  if (!Number.isFinite(poolSize) || !Number.isFinite(dataPercent)) throw new LvmReportError(`thin pool usage: unexpected ${JSON.stringify(stdout)}`);
  return thinPoolFreeGiB(poolSize, dataPercent);
}

/** cinder's arithmetic: round(pool - pool / 100 * data_percent, 2), in Python float order. */
export function thinPoolFreeGiB(poolSizeGiB: number, dataPercent: number): number {
  const consumed = (poolSizeGiB / 100) * dataPercent;
  return pyRound(poolSizeGiB - consumed, 2);
}
