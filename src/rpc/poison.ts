// Poison-message guard: remembers which redelivered messages were started and never finished,
// so that a message that hangs or crashes the agent is not handled again and again.
//
// Only deliveries the broker marks `redelivered` are recorded: a first delivery is acked (and the
// ack flushed, see ack-flush.ts) before it is handled, so the broker never gives it out again,
// whatever the handler does. A redelivery means an earlier consumer got the message and never
// acked it, i.e. that consumer died or lost its channel while holding it: that earlier attempt
// counts as one start. The record is written before the handler starts and removed when it
// ends; a record still there when the message comes back means the attempt took the agent down.
//
// With a directory the records are a small JSON file (written whole, then renamed, so a kill at
// any moment leaves the old or the new file, never half of one), and survive a restart, which is
// exactly when a redelivery arrives. Without one they live in memory and only cover a redelivery
// within the same process (a lost channel). No fsync: the file has to survive the process, not a
// power cut.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { log } from '../log.js';
import { POISON_LIMITS } from './limits.js';

export interface PoisonRecord {
  /** Starts recorded here (the original delivery, before any redelivery, is not among them). */
  starts: number;
  method: string | null;
  msg_id: string | null;
  unique_id: string | null;
  first_started: string;
  last_started: string;
}

export interface PoisonGuardOptions {
  /** Directory of the record file; null/undefined keeps records in memory only. */
  dir?: string | null;
  /** Distinguishes the files of several servers sharing a directory (the server's name). */
  name: string;
  maxStarts?: number;
  maxRecords?: number;
  ttlMs?: number;
}

export interface PoisonVerdict {
  refuse: boolean;
  /** Attempts known so far, the implied original delivery included. */
  attempts: number;
  record: PoisonRecord | null;
}

const FILE_VERSION = 1;

/** A file name for `name` that is safe and stable: readable when short, hashed when not. */
function fileNameFor(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9._@-]+/g, '_');
  const base = safe.length > 0 && safe.length <= 100 ? safe : createHash('sha256').update(name).digest('hex').slice(0, 32);
  return `rpc-started-${base}.json`;
}

export class PoisonGuard {
  readonly file: string | null;
  private readonly maxStarts: number;
  private readonly maxRecords: number;
  private readonly ttlMs: number;
  private readonly records = new Map<string, PoisonRecord>();

  constructor(opts: PoisonGuardOptions) {
    this.maxStarts = Math.max(1, opts.maxStarts ?? POISON_LIMITS.maxStarts);
    this.maxRecords = Math.max(1, opts.maxRecords ?? POISON_LIMITS.maxRecords);
    this.ttlMs = opts.ttlMs ?? POISON_LIMITS.recordTtlMs;
    let file: string | null = null;
    if (opts.dir) {
      try {
        mkdirSync(opts.dir, { recursive: true, mode: 0o750 });
        file = path.join(opts.dir, fileNameFor(opts.name));
      } catch (err) {
        log().error(
          { dir: opts.dir, err },
          `Cannot use ${opts.dir} for the RPC poison-message records (${(err as Error).message}); keeping them in memory only, so a message that crashes the agent may be redelivered after each restart. Fix the directory's permissions and restart.`,
        );
      }
    }
    this.file = file;
    this.load();
  }

  /** Whether a redelivered message with this key must be refused instead of handled. */
  check(key: string): PoisonVerdict {
    const record = this.live(key);
    const attempts = 1 + (record?.starts ?? 0);
    return { refuse: attempts >= this.maxStarts, attempts, record };
  }

  /** A redelivered message is about to be handled: on disk before the handler runs. */
  started(key: string, info: { method: string | null; msgId: string | null; uniqueId: string | null }): void {
    const now = new Date().toISOString();
    const prev = this.live(key);
    this.records.delete(key); // re-insert: Map order is the eviction order
    this.records.set(key, {
      starts: (prev?.starts ?? 0) + 1,
      method: info.method,
      msg_id: info.msgId,
      unique_id: info.uniqueId,
      first_started: prev?.first_started ?? now,
      last_started: now,
    });
    while (this.records.size > this.maxRecords) this.records.delete(this.records.keys().next().value as string);
    this.save();
  }

  /** The handler returned (or threw): the message did not take the agent down. */
  finished(key: string): void {
    if (this.records.delete(key)) this.save();
  }

  /** Forget a message that was refused (it is gone from the broker). */
  forget(key: string): void {
    this.finished(key);
  }

  get size(): number {
    return this.records.size;
  }

  private live(key: string): PoisonRecord | null {
    const r = this.records.get(key);
    if (!r) return null;
    if (Date.now() - Date.parse(r.last_started) > this.ttlMs) {
      this.records.delete(key);
      return null;
    }
    return r;
  }

  private load(): void {
    if (!this.file) return;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        log().warn({ file: this.file, err }, `Cannot read the RPC poison-message records ${this.file}; starting with none`);
      }
      return;
    }
    try {
      const doc = JSON.parse(text) as { version?: unknown; records?: unknown };
      if (doc.version !== FILE_VERSION || typeof doc.records !== 'object' || doc.records === null) throw new Error('unknown layout');
      const now = Date.now();
      for (const [k, v] of Object.entries(doc.records as Record<string, PoisonRecord>)) {
        if (typeof v?.starts !== 'number' || typeof v.last_started !== 'string') continue;
        if (now - Date.parse(v.last_started) > this.ttlMs) continue;
        this.records.set(k, v);
      }
      while (this.records.size > this.maxRecords) this.records.delete(this.records.keys().next().value as string);
    } catch (err) {
      log().warn({ file: this.file }, `Ignoring unreadable RPC poison-message records in ${this.file} (${(err as Error).message}); it will be rewritten`);
    }
  }

  private save(): void {
    if (!this.file) return;
    const tmp = `${this.file}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify({ version: FILE_VERSION, records: Object.fromEntries(this.records) })}\n`, { mode: 0o640 });
      renameSync(tmp, this.file);
    } catch (err) {
      log().warn({ file: this.file, err }, `Cannot write the RPC poison-message records ${this.file}: ${(err as Error).message}`);
    }
  }
}
