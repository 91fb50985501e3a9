// The file pool: each volume is a sparse file `<dir>/<volume name>`, each snapshot a file
// `<dir>/snapshot-<id>` beside it. It is cinderblock's default backend when no volume group is
// configured, so the agent runs on any machine; thin by nature (a new volume takes no space until
// written), so it reports itself the way cinder's thin LVM driver does and the scheduler
// over-subscribes it within max_over_subscription_ratio.
//
// Snapshots and clones are reflinks (FICLONE) where the filesystem shares extents (probed once at
// setup), otherwise sparse copies. The file itself is what a target exports (exportPath); the
// export side is built beside the driver (drivers/exports.ts).
import { constants as fsc } from 'node:fs';
import { access, link, mkdir, open, readdir, rename, stat, statfs, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { volumeBackendApiException } from '../../src/errors.js';
import { log } from '../../src/log.js';
import type { BackendObject, BackendStats, CloneSource, DriverMigration, DriverSnapshot, DriverVolume, MigrationDestination, ModelUpdate, VolumeDriver } from '../driver.js';
import { parseLocationInfo, volumePathOnHost } from '../location-info.js';
import { bytesToGiB, formatOverSubscriptionRatio } from '../capacity.js';
import { sparseCopy } from './copy-fallback.js';
import { assertSafeName, snapshotFileName } from './names.js';

/** Copies the first `bytes` of src into dst (an existing file that reads as zeros there). */
/**
 * Copies `bytes` of src over dst. destinationIsZeroed (default true): dst reads as zeros where
 * it is not written (a fresh or truncated file), so zero runs may be skipped; false for anything
 * else (a block device of another pool), which must get every byte, zeros included.
 */
export type CopyFn = (src: string, dst: string, bytes: number, destinationIsZeroed?: boolean) => Promise<void>;
/** FICLONE of a whole file; dst is a path that must not exist or an open fd. */
export type CloneFn = (src: string, dst: string | number) => Promise<void>;

export interface FilePoolOptions {
  /** Directory holding the volume files (file_volume_dir). */
  directory: string;
  /** volume_backend_name, or the section name when unset; also the pool name. */
  backendName: string;
  /** The host name written into location_info. */
  hostname: string;
  reservedPercentage: number;
  maxOverSubscriptionRatio: number | 'auto';
  /** target_protocol as cinder reports it: 'iSCSI' for iscsi. */
  storageProtocol: string;
  filterFunction: string | null;
  goodnessFunction: string | null;
  /** Data copy; default: the native copy engine when built, else a sparse streaming copy. */
  copy?: CopyFn;
  /** Reflink; default src/native cloneFile. */
  clone?: CloneFn;
  /** Reflink probe; default src/native supportsReflink. */
  probeReflink?: (dir: string) => Promise<boolean>;
}

const GiB = 1024 ** 3;
const VERSION = '1.0.0';

async function defaultCopy(src: string, dst: string, bytes: number, destinationIsZeroed = true): Promise<void> {
  try {
    const native = await import('../../src/native/index.js');
    if (typeof native.copy === 'function') {
      await native.copy(src, dst, { length: bytes, sparse: destinationIsZeroed, destinationIsZeroed });
      return;
    }
  } catch (err) {
    // Only an addon that is not built falls back; a failed copy (or a refused argument) is an error.
    if ((err as Error | null)?.name !== 'NativeAddonError') throw err;
  }
  await sparseCopy(src, dst, bytes, { skipZeros: destinationIsZeroed });
}

async function defaultClone(src: string, dst: string | number): Promise<void> {
  const { cloneFile } = await import('../../src/native/index.js');
  await cloneFile(src, dst, { mode: 0o600 });
}

async function defaultProbe(dir: string): Promise<boolean> {
  const { supportsReflink } = await import('../../src/native/index.js');
  return supportsReflink(dir);
}

function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** A full pool: cinder has no class of its own for it; its drivers raise VolumeBackendAPIException. */
function poolFull(directory: string, err: unknown): Error {
  return volumeBackendApiException(`file pool ${directory} is full: ${(err as Error).message}`, err);
}

export class FileVolumeDriver implements VolumeDriver {
  readonly className = 'FileVolumeDriver';
  private reflink = false;
  private readonly copyFn: CopyFn;
  private readonly cloneFn: CloneFn;

  constructor(private readonly opts: FilePoolOptions) {
    this.copyFn = opts.copy ?? defaultCopy;
    this.cloneFn = opts.clone ?? defaultClone;
  }

  /** Whether the setup probe found reflink support (clones and snapshots share extents). */
  get usesReflink(): boolean {
    return this.reflink;
  }

  async doSetup(): Promise<void> {
    await mkdir(this.opts.directory, { recursive: true, mode: 0o750 });
    try {
      this.reflink = await (this.opts.probeReflink ?? defaultProbe)(this.opts.directory);
    } catch {
      // A probe that cannot run (addon missing) means copies, not a dead backend.
      this.reflink = false;
    }
  }

  async checkForSetupError(): Promise<void> {
    try {
      await access(this.opts.directory, fsc.R_OK | fsc.W_OK);
    } catch (err) {
      throw new Error(
        `file pool directory ${this.opts.directory} is not writable (${(err as NodeJS.ErrnoException).code}); ` +
          `create it or set file_volume_dir in the [${this.opts.backendName}] section`,
      );
    }
  }

  newVolumeReadsZeros(): boolean {
    // a new volume is a sparse file: a hole reads as zeros
    return true;
  }

  secureFileOperationsEnabled(): boolean {
    return false;
  }

  localPath(volume: Pick<DriverVolume, 'name'>): string {
    assertSafeName(volume.name);
    return join(this.opts.directory, volume.name);
  }

  snapshotPath(snapshot: Pick<DriverSnapshot, 'name'>): string {
    return join(this.opts.directory, snapshotFileName(snapshot.name));
  }

  async volumeExists(volume: DriverVolume): Promise<boolean> {
    return exists(this.localPath(volume));
  }

  async createVolume(volume: DriverVolume): Promise<ModelUpdate | null> {
    assertSize(volume.size);
    const path = this.localPath(volume);
    // O_EXCL: a leftover file from an earlier attempt must not be silently reused as a new volume.
    const fh = await open(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
    try {
      await fh.truncate(volume.size * GiB);
    } catch (err) {
      await fh.close();
      await removeHalfMade(path, 'create');
      throw err;
    }
    await fh.close();
    return null;
  }

  async deleteVolume(volume: DriverVolume): Promise<void> {
    await unlinkIfExists(this.localPath(volume));
  }

  async extendVolume(volume: DriverVolume, newSizeGb: number): Promise<void> {
    assertSize(newSizeGb);
    const path = this.localPath(volume);
    const current = (await stat(path)).size;
    const wanted = newSizeGb * GiB;
    if (wanted < current) {
      throw new Error(`cannot shrink ${volume.name} from ${current / GiB} GiB to ${newSizeGb} GiB`);
    }
    await truncate(path, wanted);
  }

  // ---- snapshots and clones -------------------------------------------------------------------

  async createSnapshot(snapshot: DriverSnapshot): Promise<ModelUpdate | null> {
    const src = this.localPath({ name: snapshot.volumeName });
    const dst = this.snapshotPath(snapshot);
    await this.duplicate(src, dst, snapshot.volumeSize * GiB);
    return null;
  }

  async deleteSnapshot(snapshot: DriverSnapshot): Promise<void> {
    await unlinkIfExists(this.snapshotPath(snapshot));
  }

  async createVolumeFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<ModelUpdate | null> {
    assertSize(volume.size);
    const src = this.snapshotPath(snapshot);
    const dst = this.localPath(volume);
    await this.duplicate(src, dst, snapshot.volumeSize * GiB);
    await this.growTo(dst, volume.size);
    return null;
  }

  async createClonedVolume(volume: DriverVolume, source: CloneSource): Promise<ModelUpdate | null> {
    assertSize(volume.size);
    const src = this.localPath(source);
    const dst = this.localPath(volume);
    await this.duplicate(src, dst, source.size * GiB);
    await this.growTo(dst, volume.size);
    return null;
  }

  /** Copies the snapshot back in place (same inode, so a live tgt export keeps its file). */
  async revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void> {
    const src = this.snapshotPath(snapshot);
    const dst = this.localPath(volume);
    const bytes = snapshot.volumeSize * GiB;
    const size = Math.max(volume.size * GiB, bytes);
    if (this.reflink) {
      const fh = await open(dst, 'r+');
      try {
        await fh.truncate(0);
        await this.cloneFn(src, fh.fd);
        await fh.truncate(size);
        return;
      } catch {
        // fall through to the copy below
      } finally {
        await fh.close();
      }
    }
    await truncate(dst, size);
    await this.copyData(src, dst, bytes);
  }

  snapshotRevertUseTempSnapshot(): boolean {
    return true;
  }

  /** Overwrites dst's content with src's first `bytes` (dst keeps its size and inode). */
  async copyData(src: string, dst: string, bytes: number): Promise<void> {
    const st = await stat(dst);
    if (st.isFile()) {
      // Drop the old blocks so the copy may leave zero runs as holes.
      await truncate(dst, 0);
      await truncate(dst, st.size);
    }
    try {
      // Anything but a file we just emptied (a migration's destination LV, say) may hold another
      // volume's old blocks: every byte is written there, or the zero runs would leak them.
      await this.copyFn(src, dst, bytes, st.isFile());
    } catch (err) {
      if (isNoSpace(err)) throw poolFull(this.opts.directory, err);
      throw err;
    }
  }

  /** dst must not exist: reflink it when the pool can, else create it sparse and copy. */
  private async duplicate(src: string, dst: string, bytes: number): Promise<void> {
    await stat(src); // ENOENT before any destination is made
    if (this.reflink) {
      try {
        await this.cloneFn(src, dst);
        return;
      } catch (err) {
        if ((err as { code?: string }).code === 'EEXIST') throw err;
        // cloneFile removes a destination it created; copy instead.
      }
    }
    const fh = await open(dst, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY, 0o600);
    try {
      await fh.truncate(bytes);
    } finally {
      await fh.close();
    }
    try {
      await this.copyFn(src, dst, bytes);
    } catch (err) {
      await removeHalfMade(dst, 'copy');
      if (isNoSpace(err)) throw poolFull(this.opts.directory, err);
      throw err;
    }
  }

  private async growTo(path: string, sizeGb: number): Promise<void> {
    const st = await stat(path);
    if (st.size < sizeGb * GiB) await truncate(path, sizeGb * GiB);
  }

  // ---- retype, manage ---------------------------------------------------------------------------

  async retype(): Promise<boolean> {
    // One pool, no per-type layout: every type change is metadata only.
    return true;
  }

  private manageSource(ref: Record<string, unknown>): string {
    const name = ref['source-name'] ?? ref.source_name;
    if (typeof name !== 'string') throw new Error(`manage_existing needs ref {"source-name": "<file in ${this.opts.directory}>"}`);
    assertSafeName(name);
    return join(this.opts.directory, name);
  }

  async manageExistingGetSize(ref: Record<string, unknown>): Promise<number> {
    const st = await stat(this.manageSource(ref));
    if (!st.isFile()) throw new Error(`${this.manageSource(ref)} is not a regular file`);
    return Math.max(1, Math.ceil(st.size / GiB));
  }

  async manageExisting(volume: DriverVolume, ref: Record<string, unknown>): Promise<ModelUpdate | null> {
    const src = this.manageSource(ref);
    const dst = this.localPath(volume);
    if (src !== dst) {
      if (await exists(dst)) throw new Error(`${dst} already exists`);
      await rename(src, dst);
    }
    await this.growTo(dst, volume.size);
    return null;
  }

  async unmanage(): Promise<void> {
    // The file stays where it is, under the volume's name.
  }

  /**
   * The pool's regular files. A file named like a cinder snapshot is a snapshot; its origin is
   * not recorded in the file (a snapshot is a full copy), so it is unknown. Nothing says whether
   * a file is open, so none is reported in use: cinder_id is what marks a managed one.
   */
  async listBackendObjects(): Promise<BackendObject[]> {
    const out: BackendObject[] = [];
    for (const entry of await readdir(this.opts.directory, { withFileTypes: true })) {
      if (!entry.isFile() || entry.name.startsWith('.')) continue;
      let size: number;
      try {
        size = (await stat(join(this.opts.directory, entry.name))).size;
      } catch {
        continue; // removed while listing
      }
      out.push({ name: entry.name, cinderName: entry.name, size: Math.ceil(size / GiB), inUse: false, isSnapshot: entry.name.startsWith('snapshot'), origin: null });
    }
    return out;
  }

  async manageExistingSnapshotGetSize(ref: Record<string, unknown>): Promise<number> {
    return this.manageExistingGetSize(ref);
  }

  /** The file takes the snapshot's name; its size is left as it is (a snapshot is never grown). */
  async manageExistingSnapshot(snapshot: DriverSnapshot, ref: Record<string, unknown>): Promise<ModelUpdate | null> {
    const src = this.manageSource(ref);
    const dst = this.snapshotPath(snapshot);
    if (src !== dst) {
      if (await exists(dst)) throw new Error(`${dst} already exists`);
      await rename(src, dst);
    }
    return null;
  }

  // ---- migration ------------------------------------------------------------------------------

  /**
   * cinder's rule for driver-assisted migration, as its LVM driver applies it: an available
   * volume, and a destination pool of this kind on this host in another directory. The file
   * keeps its name (it follows _name_id) and moves: a hard link then an unlink on one
   * filesystem (atomic, never overwriting, and the file stays as thin as it was), else a sparse
   * copy into the other directory, removed again if the copy fails.
   */
  async migrateVolume(volume: DriverVolume, status: string | null, destination: MigrationDestination): Promise<DriverMigration> {
    const notMoved = { moved: false, modelUpdate: null };
    const loc = parseLocationInfo(destination.locationInfo);
    if (status !== 'available' || loc?.kind !== 'file' || loc.hostname !== this.opts.hostname) return notMoved;
    if (loc.directory === this.opts.directory) {
      throw volumeBackendApiException(`Refusing to migrate volume ID: ${volume.id}: source and destination are the same directory ${loc.directory}`);
    }
    try {
      if (!(await stat(loc.directory)).isDirectory()) return notMoved;
    } catch {
      return notMoved; // cinder: "Destination Volume Group does not exist" -> generic migration
    }
    const src = this.localPath(volume);
    const dst = join(loc.directory, volume.name);
    try {
      await link(src, dst);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await this.duplicate(src, dst, (await stat(src)).size);
    }
    await unlink(src);
    return { moved: true, modelUpdate: null };
  }

  pathInPool(locationInfo: unknown, name: string): string | null {
    return volumePathOnHost(locationInfo, this.opts.hostname, name, assertSafeName);
  }

  /** rename(2) would replace a file already under the new name: a hard link refuses (EEXIST). */
  async renameVolume(volume: DriverVolume, newName: string): Promise<void> {
    const src = this.localPath(volume);
    await link(src, this.localPath({ name: newName }));
    await unlink(src);
  }

  // ---- what a target exports ------------------------------------------------------------------

  /** The volume's file itself: tgt serves a regular file as a LUN. */
  exportPath(volume: Pick<DriverVolume, 'name'>): string {
    return this.localPath(volume);
  }

  async prepareExport(): Promise<void> {
    // A file needs no activation.
  }

  // ---- stats ------------------------------------------------------------------------------------

  async getVolumeStats(): Promise<BackendStats> {
    const fs = await statfs(this.opts.directory);
    const total = fs.blocks * fs.bsize;
    const free = fs.bavail * fs.bsize;
    let provisioned = 0;
    let count = 0;
    for (const entry of await readdir(this.opts.directory, { withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.startsWith('volume-')) continue;
      try {
        provisioned += (await stat(join(this.opts.directory, entry.name))).size;
        count += 1;
      } catch {
        // Deleted while we were counting: not part of the pool any more.
      }
    }
    const pool = {
      pool_name: this.opts.backendName,
      total_capacity_gb: bytesToGiB(total),
      free_capacity_gb: bytesToGiB(free),
      reserved_percentage: this.opts.reservedPercentage,
      location_info: `${this.className}:${this.opts.hostname}:${this.opts.directory}`,
      QoS_support: false,
      provisioned_capacity_gb: bytesToGiB(provisioned),
      max_over_subscription_ratio: formatOverSubscriptionRatio(this.opts.maxOverSubscriptionRatio),
      thin_provisioning_support: true,
      thick_provisioning_support: false,
      total_volumes: count,
      filter_function: this.opts.filterFunction,
      goodness_function: this.opts.goodnessFunction,
      multiattach: true,
      backend_state: 'up' as const,
    };
    return {
      volume_backend_name: this.opts.backendName,
      vendor_name: 'Open Source',
      driver_version: VERSION,
      storage_protocol: this.opts.storageProtocol,
      shared_targets: false,
      sparse_copy_volume: true,
      pools: [pool],
    };
  }
}

function assertSize(gb: number): void {
  if (!Number.isSafeInteger(gb) || gb < 1) throw new Error(`volume size must be a positive whole number of GiB, got ${String(gb)}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function unlinkIfExists(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    // Already gone is success, as cinder's LVM driver treats a missing LV.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Takes back the file a failed create or copy left. The caller's error is the one that matters
 * and is thrown on; a file that cannot be removed is said, so an operator can remove it (it holds
 * no volume anyone was told of). Already gone is fine.
 */
async function removeHalfMade(path: string, what: 'create' | 'copy'): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    log().warn({ err, path }, `the failed ${what} left ${path}, which could not be removed; remove it by hand (no volume uses it)`);
  }
}
