// What the per-host layout has promised, per backend: `$state_path/cinderblock/host-targets-<backend>.json`
// (mode 0600: it holds each host target's CHAP secret). One record per compute host:
//  - its target's IQN and CHAP credentials, made once and kept for as long as the file lives, so a
//    host's sessions, nova's stored connection_info and a restart all agree;
//  - the LUNs mapped to it: number, volume, backing path, serial, and the initiators of that
//    host that attached it (the target admits the union of them);
//  - the LUN allocator's position (`nextLun`, `generation`) and, per number, the generation in
//    which it was last released. The record outlives the target itself: when the last LUN goes
//    the target is deleted, and a new one for the same host continues the same numbering.
//
// Why LUN numbers never alias (bug 2004555): a compute host may keep a device for a LUN after the
// LUN was unmapped (a failed or forced disconnect). If that number were mapped again to another
// volume, a rescan, or a re-login, would show the old device's path reading the new volume. So a
// number is handed out monotonically from `nextLun`; after the highest number it wraps to the
// lowest and the generation goes up; a number released in the current generation is skipped, and
// so is one still mapped. A number therefore comes back only after every other number of the
// range was offered in between, and never within the generation it was released in. On top of
// that every LUN carries its volume's serial (host-target-name.ts volumeSerial): an initiator that
// compares identifiers refuses a device whose serial changed.
//
// The file is the desired state; the target daemon is made to match it (HostTargetHelper.apply).
// Every change is a read-modify-write under this backend's registry lock (in-process plus the
// external lock file `cinder-cinderblock-host-targets-<backend>` in lock_path), so two agent
// processes or an operator's `cinderblock audit --fix` never lose each other's changes.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { invalidInput } from '../../../src/errors.js';
import { writeFileAtomically } from '../../../src/fs/atomic-write.js';
import { assertChapCredential, assertInitiatorName, assertTargetIqn, generateChapCredentials, type ChapCredentials } from '../../../src/iscsi/index.js';
import { acquireExternalLock } from '../../../src/native/lock.js';
import { assertBackingPath, assertNqn, assertVolumeName, isNqn } from '../validate.js';

/** A volume mapped into a host target. */
export interface LunMapping {
  lun: number;
  volumeId: string;
  volumeName: string;
  backingPath: string;
  /** unit serial and device id (volumeSerial) */
  serial: string;
  /** the host's initiators (nvmet: host NQNs) that attached this volume through this target */
  initiators: string[];
}

export interface HostTargetRecord {
  /** the connector's host (or its initiator when it named no host) */
  host: string;
  /** the target's name: an IQN (iSCSI), or a subsystem NQN (nvmet, where LUNs are nsids) */
  iqn: string;
  /** the host's CHAP; null where the protocol has none (nvmet: admission by host NQN only) */
  chap: ChapCredentials | null;
  /** allocator: the next number to offer, and how many times the range has wrapped */
  nextLun: number;
  generation: number;
  /** LUN number -> the generation it was last released in */
  released: Record<string, number>;
  luns: LunMapping[];
}

export interface HostTargetState {
  version: 1;
  targets: HostTargetRecord[];
}

/** The numbers a target offers: tgt's LUN 0 is its controller; os-brick 6.1 wants < 256. */
export interface LunRange {
  min: number;
  max: number;
}

const chapSchema = z.object({ username: z.string(), password: z.string() });
const mappingSchema = z.object({
  lun: z.number().int().min(0),
  volumeId: z.string().min(1),
  volumeName: z.string(),
  backingPath: z.string(),
  serial: z.string().regex(/^[0-9a-f-]{1,36}$/),
  initiators: z.array(z.string()),
});
const recordSchema = z.object({
  host: z.string().min(1),
  iqn: z.string(),
  chap: chapSchema.nullable(),
  nextLun: z.number().int().min(0),
  generation: z.number().int().min(0),
  released: z.record(z.number().int().min(0)),
  luns: z.array(mappingSchema),
});
const stateSchema = z.object({ version: z.literal(1), targets: z.array(recordSchema) });

/** Parse and check the file's text: every name that later reaches a target tool is checked here too. */
export function parseHostTargetState(text: string, where: string): HostTargetState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalidInput(`${where} is not JSON (${(e as Error).message}); restore it from a backup or move it away to rebuild from the database`);
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) throw invalidInput(`${where} has an unknown format: ${parsed.error.issues[0]?.message ?? 'invalid'} at ${parsed.error.issues[0]?.path.join('.') ?? ''}`);
  for (const t of parsed.data.targets) {
    // an NVMe subsystem's record names it and its hosts by NQN; an iSCSI one by iSCSI names
    const nvme = isNqn(t.iqn);
    if (!nvme) assertTargetIqn(t.iqn);
    if (t.chap) {
      assertChapCredential(t.chap.username, 'username');
      assertChapCredential(t.chap.password, 'password');
    }
    for (const m of t.luns) {
      assertVolumeName(m.volumeName);
      assertBackingPath(m.backingPath);
      for (const i of m.initiators) {
        if (nvme) assertNqn(i, 'host target record host NQN');
        else assertInitiatorName(i);
      }
    }
  }
  return parsed.data;
}

/** A new record; `chap` null for a protocol without CHAP (nvmet). */
export function emptyHostTarget(host: string, iqn: string, chap: ChapCredentials | null = generateChapCredentials()): HostTargetRecord {
  return { host, iqn, chap, nextLun: 0, generation: 0, released: {}, luns: [] };
}

/** The host's CHAP, for the iSCSI tools: a record without one was not made for an iSCSI target. */
export function requireChap(t: HostTargetRecord): ChapCredentials {
  if (!t.chap) throw invalidInput(`host target ${t.iqn} has no CHAP credentials in its record (${t.host}); move the registry file away to have it rebuilt from the database`);
  return t.chap;
}

/**
 * The next LUN number of `t` (see the rule at the top), moving the allocator. Throws when every
 * number of the range is mapped or was released in this generation: the host then has to detach
 * something (or wait for the next generation) before another volume can be mapped.
 */
export function allocateLun(t: HostTargetRecord, range: LunRange): number {
  const size = range.max - range.min + 1;
  let candidate = t.nextLun < range.min ? range.min : t.nextLun;
  let generation = t.generation;
  for (let tried = 0; tried <= size; tried++) {
    if (candidate > range.max) {
      candidate = range.min;
      generation += 1;
    }
    const mapped = t.luns.some((m) => m.lun === candidate);
    const releasedNow = t.released[String(candidate)] === generation;
    if (!mapped && !releasedNow) {
      t.nextLun = candidate + 1;
      t.generation = generation;
      return candidate;
    }
    candidate += 1;
  }
  throw invalidInput(
    `host target ${t.iqn} has no LUN number left in ${range.min}..${range.max}: every one is mapped or was released too recently to be reused safely. Detach volumes from host ${t.host} first.`,
  );
}

/** Record that `lun` was unmapped now (in the allocator's current generation). */
export function releaseLun(t: HostTargetRecord, lun: number): void {
  t.luns = t.luns.filter((m) => m.lun !== lun);
  t.released[String(lun)] = t.generation;
}

/** The initiators the target admits: every initiator of every mapping (first spelling met). */
export function admittedInitiators(t: HostTargetRecord): string[] {
  const out: string[] = [];
  // case-blind, as iSCSI names compare; NQNs differing only in case never name two hosts in practice
  for (const m of t.luns) for (const i of m.initiators) if (!out.some((o) => o.toLowerCase() === i.toLowerCase())) out.push(i);
  return out;
}

export function hostTargetsPath(statePath: string, backend: string): string {
  return join(statePath, 'cinderblock', `host-targets-${backend.replaceAll('/', '_')}.json`);
}

export interface HostTargetRegistryOptions {
  /** the file (hostTargetsPath) */
  path: string;
  /** backend name, for the external lock's name */
  backend: string;
  /** [oslo_concurrency] lock_path; null: in-process lock only (tests, a single agent) */
  lockPath: string | null;
}

/** The file, read and written under the registry lock. */
export class HostTargetRegistry {
  private readonly mutex = new KeyedMutex();

  constructor(private readonly o: HostTargetRegistryOptions) {}

  get path(): string {
    return this.o.path;
  }

  async read(): Promise<HostTargetState> {
    let text: string;
    try {
      text = await readFile(this.o.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, targets: [] };
      throw e;
    }
    return parseHostTargetState(text, this.o.path);
  }

  /**
   * Runs `change` on the current state under the registry lock and writes the result (only when it
   * changed). What `change` returns is returned.
   */
  async update<T>(change: (state: HostTargetState) => T | Promise<T>): Promise<T> {
    return this.mutex.run('registry', async () => {
      const release = this.o.lockPath ? await acquireExternalLock(this.o.lockPath, `cinderblock-host-targets-${this.o.backend}`) : null;
      try {
        const state = await this.read();
        const before = JSON.stringify(state);
        const out = await change(state);
        const after = JSON.stringify(state);
        if (after !== before) await writeFileAtomically(this.o.path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
        return out;
      } finally {
        await release?.();
      }
    });
  }
}
