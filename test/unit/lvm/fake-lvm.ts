// An in-memory stand-in for the LVM tools, for driver tests on machines without device-mapper.
// It understands exactly the argv lvm-commands.ts builds (and nothing else: an unknown argv fails
// the test), keeps a VG with thick, thin, snapshot and pool LVs, answers `lvm fullreport` in the
// JSON shape real LVM prints (compare test/unit/lvm/fixtures/guest-*.json, captured in the lab),
// records every argv, and lets a test inject failures (exit codes) into chosen commands.
import type { LvmCommandResult, LvmRunner } from '../../../drivers/lvm/lvm-runner.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const EXTENT = 4 * MiB;

export interface FakeLv {
  name: string;
  sizeBytes: number;
  kind: 'linear' | 'pool' | 'thin' | 'snapshot';
  origin: string;
  pool: string;
  active: boolean;
  skipActivation: boolean;
  open: boolean;
  mirrors: number;
  /** a delayed merge into the origin (lvconvert --merge while the origin was open) */
  merging: boolean;
  dataPercent: number;
  /** lv_tags */
  tags: string[];
}

/** A run of extents an LV holds: `count` extents of PV `pv` from `start`, at `lvStart` in the LV. */
export interface FakeSeg {
  pv: string;
  start: number;
  count: number;
  lvStart: number;
}

export interface Fault {
  match: (argv: readonly string[]) => boolean;
  result: Partial<LvmCommandResult>;
  times: number;
}

function ok(stdout = '', stderr = ''): LvmCommandResult {
  return { stdout, stderr, exitCode: 0 };
}

function fail(stderr: string, exitCode = 5): LvmCommandResult {
  return { stdout: '', stderr: `  ${stderr}\n`, exitCode };
}

function roundUp(bytes: number): number {
  return Math.ceil(bytes / EXTENT) * EXTENT;
}

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([gGmM])$/.exec(s);
  if (!m) throw new Error(`fake lvm: bad size ${s}`);
  return roundUp(Number(m[1]) * (m[2]!.toLowerCase() === 'g' ? GiB : MiB));
}

export class FakeLvm {
  readonly calls: string[][] = [];
  readonly lvs = new Map<string, FakeLv>();
  readonly faults: Fault[] = [];
  vgName: string;
  vgExists = true;
  pvs: { name: string; sizeBytes: number }[];
  version = '2.03.16(2) (2022-05-18)';
  /** PV free space in bytes as reported, overriding the fake's own bookkeeping. */
  pvFree: number[] | null = null;
  /** Where each LV's extents are (first fit over the PVs in order; thin LVs hold none). */
  readonly segs = new Map<string, FakeSeg[]>();
  /** Called after each command (tests: change the VG behind the driver's back). */
  afterCommand: ((argv: readonly string[]) => void) | null = null;

  constructor(vgName = 'cinder-volumes', pvSizes: number[] = [3 * GiB]) {
    this.vgName = vgName;
    this.pvs = pvSizes.map((s, i) => ({ name: `/dev/vd${String.fromCharCode(97 + i)}`, sizeBytes: s }));
  }

  /** The runner to hand to the driver. */
  get runner(): LvmRunner {
    return async (argv) => this.exec(argv);
  }

  /** Fail the next `times` commands matching `match` with `result` (exit code 5 unless given). */
  inject(match: (argv: readonly string[]) => boolean, result: Partial<LvmCommandResult>, times = 1): void {
    this.faults.push({ match, result, times });
  }

  /** Calls other than reads (fullreport / version), as lines, for comparing with cinder's argv. */
  get changes(): string[] {
    return this.calls.filter((c) => !(c[0] === 'lvm' && (c[1] === 'fullreport' || c[1] === 'version'))).map((c) => c.join(' '));
  }

  get reportCount(): number {
    return this.calls.filter((c) => c[0] === 'lvm' && c[1] === 'fullreport').length;
  }

  addLv(lv: Partial<FakeLv> & { name: string; sizeBytes: number }): FakeLv {
    const full: FakeLv = {
      kind: 'linear', origin: '', pool: '', active: true, skipActivation: false, open: false, mirrors: 0, merging: false, dataPercent: 0,
      tags: [], ...lv,
    };
    this.lvs.set(full.name, full);
    if (full.kind !== 'thin' && !this.segs.has(full.name)) this.allocate(full.name, Math.ceil((full.sizeBytes * (full.mirrors + 1)) / EXTENT));
    return full;
  }

  /** Free runs of extents, per PV in order. */
  freeRuns(): { pv: string; start: number; count: number }[] {
    const out: { pv: string; start: number; count: number }[] = [];
    for (const pv of this.pvs) {
      const used = [...this.segs.values()].flat().filter((g) => g.pv === pv.name).sort((a, b) => a.start - b.start);
      let at = 0;
      for (const g of used) {
        if (g.start > at) out.push({ pv: pv.name, start: at, count: g.start - at });
        at = Math.max(at, g.start + g.count);
      }
      const total = Math.floor(pv.sizeBytes / EXTENT);
      if (total > at) out.push({ pv: pv.name, start: at, count: total - at });
    }
    return out;
  }

  /** Gives LV `name` `count` more extents from `within` (default: anywhere), first fit. */
  allocate(name: string, count: number, within?: { pv: string; start: number; count: number }[]): number {
    const list = this.segs.get(name) ?? [];
    let lvStart = list.reduce((n, g) => n + g.count, 0);
    let left = count;
    for (const run of this.freeRuns()) {
      const windows = within ? within.filter((w) => w.pv === run.pv) : [run];
      for (const w of windows) {
        const lo = Math.max(run.start, w.start);
        const hi = Math.min(run.start + run.count, w.start + w.count);
        if (left <= 0 || hi <= lo) continue;
        const n = Math.min(left, hi - lo);
        list.push({ pv: run.pv, start: lo, count: n, lvStart });
        lvStart += n;
        left -= n;
      }
    }
    this.segs.set(name, list);
    return count - left;
  }

  private release(name: string): void {
    this.segs.delete(name);
  }

  get sizeBytes(): number {
    return this.pvs.reduce((a, p) => a + p.sizeBytes, 0);
  }

  get freeBytes(): number {
    let used = 0;
    for (const lv of this.lvs.values()) {
      if (lv.kind === 'thin') continue;
      used += lv.sizeBytes * (lv.mirrors + 1);
    }
    return this.sizeBytes - used;
  }

  private exec(argv: readonly string[]): LvmCommandResult {
    const r = this.exec1(argv);
    this.afterCommand?.(argv);
    return r;
  }

  private exec1(argv: readonly string[]): LvmCommandResult {
    this.calls.push([...argv]);
    for (const f of this.faults) {
      if (f.times > 0 && f.match(argv)) {
        f.times--;
        return { stdout: '', stderr: 'injected failure\n', exitCode: 5, ...f.result };
      }
    }
    const [cmd, ...args] = argv;
    switch (cmd) {
      case 'lvm':
        if (args[0] === 'version') return ok(`  LVM version:     ${this.version}\n  Library version: 1.02.185 (2022-05-18)\n  Driver version:  4.47.0\n`);
        if (args[0] === 'fullreport') return this.fullreport(args);
        break;
      case 'pvs':
        if (args.includes('--segments')) return this.pvSegments(args);
        break;
      case 'lvcreate':
        return this.lvcreate(args);
      case 'lvchange':
        return this.lvchange(args);
      case 'lvextend':
        return this.lvextend(args);
      case 'lvremove':
        return this.lvremove(args);
      case 'lvconvert':
        return this.lvconvert(args);
      case 'lvrename':
        return this.lvrename(args);
      case 'udevadm':
        if (args[0] === 'settle') return ok();
        break;
    }
    throw new Error(`fake lvm: unexpected command ${argv.join(' ')}`);
  }

  private lvRef(ref: string | undefined): string {
    if (!ref) throw new Error('fake lvm: missing vg/lv');
    const [vg, lv] = ref.split('/');
    if (vg !== this.vgName || !lv) throw new Error(`fake lvm: bad reference ${ref}`);
    return lv;
  }

  private fullreport(args: string[]): LvmCommandResult {
    const vg = args[args.length - 1];
    if (!this.vgExists || vg !== this.vgName) return { stdout: '  {\n      "report": [\n      ]\n  }\n', stderr: `  Volume group "${vg}" not found\n  Cannot process volume group ${vg}\n`, exitCode: 5 };
    const lvRows = [...this.lvs.values()].sort((a, b) => a.name.localeCompare(b.name)).map((lv) => this.lvRow(lv));
    const report = {
      report: [
        {
          vg: [{
            vg_name: this.vgName, vg_uuid: 'FAKEVG-uuid', vg_size: String(this.sizeBytes), vg_free: String(this.freeBytes),
            lv_count: String(this.lvs.size), snap_count: String([...this.lvs.values()].filter((l) => l.kind === 'snapshot').length),
            vg_extent_size: String(EXTENT), vg_attr: 'wz--n-', pv_count: String(this.pvs.length),
          }],
          pv: this.pvs.map((p, i) => ({
            pv_name: p.name, vg_name: this.vgName, pv_size: String(p.sizeBytes),
            // allocation from the first PV unless a test sets pvFree
            pv_free: String(this.pvFree?.[i] ?? (i === 0 ? Math.max(0, this.freeBytes - this.pvs.slice(1).reduce((a, q) => a + q.sizeBytes, 0)) : p.sizeBytes)),
            pv_uuid: this.pvUuid(i),
          })),
          lv: lvRows,
          pvseg: [],
          seg: [],
        },
      ],
    };
    return ok(JSON.stringify(report));
  }

  private pvSegments(args: string[]): LvmCommandResult {
    const sel = args[args.indexOf('--select') + 1];
    if (sel !== `vg_name=${this.vgName}`) return ok('{"report":[{"pvseg":[]}]}');
    const rows: Record<string, string>[] = [];
    const held = [...this.segs.entries()].flatMap(([lv, gs]) => gs.map((g) => ({ ...g, lv })));
    const all = [...held, ...this.freeRuns().map((f) => ({ ...f, lv: '', lvStart: 0 }))];
    for (const pv of this.pvs) {
      for (const g of all.filter((x) => x.pv === pv.name).sort((a, b) => a.start - b.start)) {
        rows.push({
          pv_name: pv.name, pv_uuid: this.pvUuid(this.pvs.indexOf(pv)), pe_start: String(MiB), vg_extent_size: String(EXTENT),
          pvseg_start: String(g.start), pvseg_size: String(g.count), lv_name: g.lv, lv_uuid: g.lv ? `uuid-${g.lv}` : '',
          seg_start_pe: String(g.lvStart),
        });
      }
    }
    return ok(JSON.stringify({ report: [{ pvseg: rows }] }));
  }

  /** PV uuids shaped as LVM's (32 letters and digits in 6-4-4-4-4-4-6). */
  pvUuid(i: number): string {
    return `FAKEPV-0000-0000-0000-0000-0000-${String(i).padStart(6, '0')}`;
  }

  private lvRow(lv: FakeLv): Record<string, string> {
    const hasSnaps = [...this.lvs.values()].some((s) => s.kind === 'snapshot' && s.origin === lv.name);
    const t0 = lv.kind === 'pool' ? 't' : lv.kind === 'thin' ? 'V' : lv.kind === 'snapshot' ? 's' : hasSnaps ? (lv.merging ? 'O' : 'o') : lv.mirrors > 0 ? 'm' : '-';
    const attr = `${t0}wi-${lv.active ? 'a' : '-'}${lv.open ? 'o' : '-'}${lv.kind === 'pool' || lv.kind === 'thin' ? 'tz' : lv.kind === 'snapshot' || hasSnaps ? 's-' : '--'}-${lv.skipActivation ? 'k' : '-'}`;
    const dm = (n: string): string => n.replace(/-/g, '--');
    return {
      lv_name: lv.name, lv_uuid: `uuid-${lv.name}`, lv_attr: attr, lv_size: String(lv.sizeBytes),
      lv_layout: lv.kind === 'pool' ? 'thin,pool' : lv.kind === 'thin' ? 'thin,sparse' : 'linear',
      lv_role: lv.kind === 'pool' ? 'private' : lv.kind === 'snapshot' ? 'public,snapshot,thicksnapshot' : 'public',
      pool_lv: lv.pool, origin: lv.origin, origin_size: '',
      data_percent: lv.kind === 'pool' || lv.kind === 'thin' ? lv.dataPercent.toFixed(2) : '',
      metadata_percent: lv.kind === 'pool' ? '10.00' : '', snap_percent: '',
      lv_active: lv.active ? 'active' : '', lv_device_open: lv.open ? 'open' : '',
      lv_skip_activation: lv.skipActivation ? 'skip activation' : '', lv_merging: lv.merging ? 'merging' : '',
      lv_path: lv.kind === 'pool' ? '' : `/dev/${this.vgName}/${lv.name}`,
      lv_dm_path: `/dev/mapper/${dm(this.vgName)}-${dm(lv.name)}`,
      lv_tags: lv.tags.join(','),
    };
  }

  private lvcreate(args: string[]): LvmCommandResult {
    let name = '';
    let size: string | null = null;
    let vsize: string | null = null;
    let thin = false;
    let snapshotOf: string | null = null;
    let mirrors = 0;
    let extents: number | null = null;
    const positional: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '-Z' || a === '-W') {
        if (args[++i] !== 'n') throw new Error(`fake lvm: lvcreate ${a} ${args[i]}`);
      } else if (a === '-y') continue;
      else if (a === '-l') extents = Number(args[++i]);
      else if (a === '-n' || a === '--name') name = args[++i]!;
      else if (a === '-L') size = args[++i]!;
      else if (a === '-V') vsize = args[++i]!;
      else if (a === '-T') thin = true;
      else if (a === '--snapshot') snapshotOf = this.lvRef(args[++i]);
      else if (a === '--type=mirror' || a === '--nosync') continue;
      else if (a === '-m') mirrors = Number(args[++i]);
      else if (a === '--mirrorlog' || a === '-R') i++;
      else if (a.startsWith('-')) throw new Error(`fake lvm: lvcreate option ${a}`);
      else positional.push(a);
    }
    if (snapshotOf !== null) {
      const origin = this.lvs.get(snapshotOf);
      if (!origin) return fail(`Failed to find logical volume "${this.vgName}/${snapshotOf}"`);
      if (this.lvs.has(name)) return fail(`Logical Volume "${name}" already exists in volume group "${this.vgName}"`);
      if (origin.kind === 'thin' || (origin.kind === 'snapshot' && origin.pool)) {
        if (size !== null) throw new Error('fake lvm: thin snapshot with -L');
        this.addLv({ name, sizeBytes: origin.sizeBytes, kind: 'thin', pool: origin.pool, origin: snapshotOf, active: false, skipActivation: true });
      } else {
        if (size === null) return fail('Please specify either size or extents with snapshots.');
        const bytes = parseSize(size);
        if (bytes > this.freeBytes) return fail('Volume group has insufficient free space.');
        this.addLv({ name, sizeBytes: bytes, kind: 'snapshot', origin: snapshotOf, active: origin.active });
      }
      return ok(`  Logical volume "${name}" created.\n`);
    }
    if (thin && vsize === null) {
      // thin pool: lvcreate -T -L <size> vg/pool
      const pool = this.lvRef(positional[0]);
      if (this.lvs.has(pool)) return fail(`Logical Volume "${pool}" already exists in volume group "${this.vgName}"`);
      const bytes = parseSize(size!);
      if (bytes > this.freeBytes) return fail('Volume group has insufficient free space.');
      this.addLv({ name: pool, sizeBytes: bytes, kind: 'pool' });
      return ok(`  Logical volume "${pool}" created.\n`);
    }
    if (thin) {
      const pool = this.lvRef(positional[0]);
      if (!this.lvs.get(pool) || this.lvs.get(pool)!.kind !== 'pool') return fail(`Failed to find logical volume "${positional[0]}"`);
      if (this.lvs.has(name)) return fail(`Logical Volume "${name}" already exists in volume group "${this.vgName}"`);
      this.addLv({ name, sizeBytes: parseSize(vsize!), kind: 'thin', pool });
      return ok(`  Logical volume "${name}" created.\n`);
    }
    if (positional[0] !== this.vgName) throw new Error(`fake lvm: lvcreate in ${positional[0]}`);
    if (this.lvs.has(name)) return fail(`Logical Volume "${name}" already exists in volume group "${this.vgName}"`);
    if (extents !== null) {
      // lvcreate -l N VG PV:first-last ...: only free extents within the ranges
      const within = positional.slice(1).map((r) => {
        const m = /^(.+):(\d+)-(\d+)$/.exec(r);
        if (!m) throw new Error(`fake lvm: PV range ${r}`);
        return { pv: m[1]!, start: Number(m[2]), count: Number(m[3]) - Number(m[2]) + 1 };
      });
      const available = this.freeRuns().reduce((n, f) => n + within.filter((w) => w.pv === f.pv)
        .reduce((k, w) => k + Math.max(0, Math.min(f.start + f.count, w.start + w.count) - Math.max(f.start, w.start)), 0), 0);
      if (available < extents) return fail(`Insufficient free space: ${extents} extents needed, but only ${available} available`);
      this.allocate(name, extents, within);
      this.addLv({ name, sizeBytes: extents * EXTENT });
      return ok(`  Logical volume "${name}" created.\n`);
    }
    const bytes = parseSize(size!);
    if (bytes * (mirrors + 1) > this.freeBytes) return fail('Volume group has insufficient free space.');
    this.addLv({ name, sizeBytes: bytes, mirrors });
    return ok(`  Logical volume "${name}" created.\n`);
  }

  private lvchange(args: string[]): LvmCommandResult {
    const name = this.lvRef(args[args.length - 1]);
    const lv = this.lvs.get(name);
    if (!lv) return fail(`Failed to find logical volume "${this.vgName}/${name}"`);
    if (args[0] === '--addtag' || args[0] === '--deltag') {
      // lvchange (--addtag T | --deltag T)... vg/lv: one metadata commit
      for (let i = 0; i < args.length - 1; i += 2) {
        const [op, tag] = [args[i], args[i + 1]!];
        if (op === '--addtag') { if (!lv.tags.includes(tag)) lv.tags.push(tag); }
        else if (op === '--deltag') lv.tags = lv.tags.filter((t) => t !== tag);
        else throw new Error(`fake lvm: lvchange ${args.join(' ')}`);
      }
      return ok(`  Logical volume ${this.vgName}/${name} changed.\n`);
    }
    const a = args[args.indexOf('-a') + 1];
    if (a === 'y') {
      if (lv.skipActivation && !args.includes('-K') && !(args.includes('-k') && args[args.indexOf('-k') + 1] === 'n')) return ok();
      if (args.includes('-k')) lv.skipActivation = false;
      lv.active = true;
      for (const s of this.lvs.values()) if (s.kind === 'snapshot' && s.origin === name) s.active = true;
      if (lv.merging) this.finishMerge(name);
    } else if (a === 'n') {
      if (lv.open) return fail(`Logical volume ${this.vgName}/${name} in use.`);
      lv.active = false;
      for (const s of this.lvs.values()) if (s.kind === 'snapshot' && s.origin === name) s.active = false;
    } else throw new Error(`fake lvm: lvchange ${args.join(' ')}`);
    return ok();
  }

  private lvextend(args: string[]): LvmCommandResult {
    if (args[0] !== '-L') throw new Error('fake lvm: lvextend without -L');
    const name = this.lvRef(args[2]);
    const lv = this.lvs.get(name);
    if (!lv) return fail(`Failed to find logical volume "${args[2]}"`);
    const hasSnaps = [...this.lvs.values()].some((s) => s.kind === 'snapshot' && s.origin === name);
    if (hasSnaps && lv.active) return fail('Snapshot origin volumes can be resized only while inactive: try lvchange -an.');
    const bytes = parseSize(args[1]!);
    if (bytes < lv.sizeBytes) return fail('New size given is smaller than the current size');
    if (lv.kind !== 'thin' && bytes - lv.sizeBytes > this.freeBytes) return fail('Insufficient free space');
    if (lv.kind !== 'thin') this.allocate(name, Math.ceil((bytes - lv.sizeBytes) / EXTENT));
    lv.sizeBytes = bytes;
    return ok();
  }

  private lvremove(args: string[]): LvmCommandResult {
    if (args[0] !== '--config' || args[2] !== '-f') throw new Error(`fake lvm: lvremove ${args.join(' ')}`);
    const name = this.lvRef(args[3]);
    const lv = this.lvs.get(name);
    if (!lv) return fail(`Failed to find logical volume "${args[3]}"`);
    if (lv.open) return fail(`Logical volume ${args[3]} contains a filesystem in use.`);
    for (const s of [...this.lvs.values()]) if (s.kind === 'snapshot' && s.origin === name) this.dropLv(s.name);
    this.dropLv(name);
    return ok(`  Logical volume "${name}" successfully removed.\n`);
  }

  private lvconvert(args: string[]): LvmCommandResult {
    if (args[0] !== '--merge') throw new Error('fake lvm: lvconvert');
    const name = this.lvRef(args[1]);
    const snap = this.lvs.get(name);
    if (!snap) return fail(`Failed to find logical volume "${args[1]}"`);
    const origin = this.lvs.get(snap.origin)!;
    if (origin.open) {
      origin.merging = true;
      return ok(`  Delaying merge since origin is open.\n  Merging of snapshot ${args[1]} will occur on next activation of ${this.vgName}/${origin.name}.\n`);
    }
    this.dropLv(name);
    return ok(`  Merging of volume ${args[1]} started.\n  Logical volume "${name}" successfully removed.\n`);
  }

  private finishMerge(origin: string): void {
    const lv = this.lvs.get(origin)!;
    lv.merging = false;
    for (const s of [...this.lvs.values()]) if (s.kind === 'snapshot' && s.origin === origin) { this.dropLv(s.name); break; }
  }

  /** Removes an LV and frees its extents. */
  dropLv(name: string): void {
    this.lvs.delete(name);
    this.release(name);
  }

  private lvrename(args: string[]): LvmCommandResult {
    const [vg, from, to] = args;
    if (vg !== this.vgName) return fail(`Volume group "${vg}" not found`);
    const lv = this.lvs.get(from!);
    if (!lv) return fail(`Existing logical volume "${from}" not found in volume group "${vg}"`);
    this.lvs.delete(from!);
    lv.name = to!;
    this.lvs.set(to!, lv);
    const segs = this.segs.get(from!);
    this.segs.delete(from!);
    if (segs) this.segs.set(to!, segs);
    return ok(`  Renamed "${from}" to "${to}" in volume group "${vg}"\n`);
  }
}
