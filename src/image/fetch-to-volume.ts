// cinder's image_utils.fetch_to_raw for a local volume, with the safety rules of Debian's cinder.
// A raw image streams from Glance straight onto the volume (no temporary file): its first bytes
// are inspected before anything is written, so an image claimed raw that is really a qcow2 (a
// backing file pointing at a host path, say) never reaches the volume. Any other format lands in
// image_conversion_dir first, where its header is checked, then `qemu-img info` (under prlimit)
// must agree with it and with the claimed disk_format, and only then `qemu-img convert -O raw`
// writes the volume. A compressed container (gzip) is inflated into image_conversion_dir on the
// way, within a limit, and then checked like any other download.
import { open, rm, stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { CinderError, imageConversionNotAllowed, imageCopyFailure, imageTooBig, imageUnacceptable, invalid } from '../errors.js';
import { CommandError } from '../exec/run-command.js';
import { checkAvailableSpace, createTemporaryFile } from './conversion-dir.js';
import type { GlanceCallContext } from './glance-client.js';
import { expectedQemuFormat, inspectImageHead, INSPECT_BYTES, type Inspection } from './format-inspector.js';
import type { ImageMeta } from './image-meta.js';
import type { ImageTools } from './image-tools.js';
import { parseQemuImgInfo, qemuImgConvertArgv, qemuImgInfoArgv, type QemuImgInfo } from './qemu-img-commands.js';
import { rechunk } from './rechunk.js';
import { transferProgress } from './transfer-progress.js';
import { throughZlib } from './zlib-stream.js';
import { ZeroSkippingWriter } from './zero-skipping-writer.js';

const GiB = 1024 ** 3;
/** Write size: 1 MiB, a multiple of any block size, and more than a header needs (INSPECT_BYTES). */
const CHUNK = 1024 * 1024;

/** Glance's disk_format values (glance-api's schema); anything else is refused before use. */
const GLANCE_DISK_FORMATS = new Set(['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']);

export interface VolumeTarget {
  /** driver.localPath: the volume's block device or file */
  path: string;
  /** GiB */
  sizeGb: number;
  /** The volume reads as zeros where nothing was written (new thin LV, new sparse file). */
  readsZeros: boolean;
}

export interface FetchResult {
  /** 'stream' (raw, no temporary file) or 'convert' (qemu-img from image_conversion_dir) */
  path: 'stream' | 'convert';
  /** bytes downloaded */
  bytes: number;
  /** bytes written to the volume by the stream path (zero runs skipped) */
  written?: number;
}

/** volume_utils.check_virtual_size: ImageUnacceptable when the image's disk does not fit. */
export function checkVirtualSize(virtualSize: number, volumeSizeGb: number, imageId: string): void {
  const imageGb = Math.ceil(virtualSize / GiB);
  // in bytes: for a volume's whole GiB the same as cinder's ceil(GiB) comparison, and exact for a
  // device of any size (`cinderblock image fetch`)
  if (virtualSize > volumeSizeGb * GiB) {
    throw imageUnacceptable(imageId, `Image virtual size is ${imageGb}GB and doesn't fit in a volume of size ${volumeSizeGb}GB.`);
  }
}

/** The checks on Glance's own record, before a byte is downloaded. */
export function checkImageRecord(image: ImageMeta, volumeSizeGb: number): string {
  const disk = image.disk_format;
  if (!disk || !GLANCE_DISK_FORMATS.has(disk)) throw imageUnacceptable(image.id, `disk_format ${JSON.stringify(disk)} is not a Glance disk format`);
  if (image.status !== 'active') throw imageUnacceptable(image.id, `status is ${String(image.status)}, not active`);
  checkVirtualSize(image.virtual_size ?? image.size ?? 0, volumeSizeGb, image.id);
  return disk;
}

/**
 * An image made ready to be written: a raw one is streamed when written (its header is checked
 * then); any other is already downloaded, inspected and accepted by qemu-img info, so a volume is
 * only created for an image that can fill it. `dispose` removes the temporary file.
 */
export type PreparedImage = { kind: 'stream' } | { kind: 'file'; path: string; format: string; bytes: number; /** bytes, from qemu-img info */ virtualSize: number; dispose(): Promise<void> };

export async function prepareImage(tools: ImageTools, ctx: GlanceCallContext, image: ImageMeta, volumeSizeGb: number): Promise<PreparedImage> {
  const disk = checkImageRecord(image, volumeSizeGb);
  const qemuFormat = expectedQemuFormat(disk);
  // a compressed container (gzip, as cinder's image accelerator makes and reads it) is
  // decompressed into image_conversion_dir first, whatever its disk format
  if (qemuFormat === 'raw' && !isCompressed(image)) return { kind: 'stream' };
  if (tools.options.conversionDisabled) {
    throw imageConversionNotAllowed(
      image.id,
      `Image conversion is disabled. The volume type you have requested requires that the image it is being created from be in 'raw' format, ` +
        `but the image you are using has the disk_format property '${disk}'. You must use an image with the disk_format property 'raw' to create a volume of this type.`,
    );
  }
  return downloadAndInspect(tools, ctx, image, volumeSizeGb, qemuFormat);
}

/** Writes a prepared image onto the volume (the temporary file stays: the caller disposes of it). */
export async function writeImage(tools: ImageTools, ctx: GlanceCallContext, image: ImageMeta, prepared: PreparedImage, target: VolumeTarget): Promise<FetchResult> {
  if (prepared.kind === 'stream') return streamRaw(tools, ctx, image, target);
  const argv = qemuImgConvertArgv({
    source: prepared.path,
    sourceFormat: prepared.format,
    dest: target.path,
    destFormat: 'raw',
    targetExists: true,
    cacheNone: await isBlockDevice(target.path),
  });
  await runConvert(tools, image.id, argv);
  return { path: 'convert', bytes: prepared.bytes };
}

/** fetch_to_raw in one go (reimage: the volume exists already). */
export async function fetchToVolume(tools: ImageTools, ctx: GlanceCallContext, image: ImageMeta, target: VolumeTarget): Promise<FetchResult> {
  const prepared = await prepareImage(tools, ctx, image, target.sizeGb);
  try {
    return await writeImage(tools, ctx, image, prepared, target);
  } finally {
    if (prepared.kind === 'file') await prepared.dispose();
  }
}

/** The header check of a downloaded image against its claimed format (check_image_format). */
function refuseMismatch(image: ImageMeta, found: Inspection, claimedQemu: string | null): void {
  if (found.unsafe) throw invalid(`Image/Volume failed safety check: ${found.unsafe}`);
  if (claimedQemu !== null && found.format !== claimedQemu) {
    throw imageUnacceptable(image.id, `The image format was claimed to be '${claimedQemu}' but the image data appears to be in a different format.`);
  }
}

async function streamRaw(tools: ImageTools, ctx: GlanceCallContext, image: ImageMeta, target: VolumeTarget): Promise<FetchResult> {
  const capacity = target.sizeGb * GiB;
  const fh = await open(target.path, 'r+');
  try {
    const writer = new ZeroSkippingWriter(fh, target.readsZeros);
    let inspected = false;
    const progress = transferProgress(tools.logger, `downloading image ${image.id} onto ${target.path}`, image.size, { intervalMs: tools.options.progressIntervalMs, count: tools.metrics?.bytes('download') });
    for await (const chunk of rechunk(tools.glance().download(ctx, image), CHUNK)) {
      progress.add(chunk.length);
      if (!inspected) {
        refuseMismatch(image, inspectImageHead(chunk, { vmdkAllowedTypes: tools.options.vmdkAllowedTypes }), 'raw');
        inspected = true;
      }
      if (writer.position + chunk.length > capacity) {
        throw imageUnacceptable(image.id, `Image virtual size is ${Math.ceil((writer.position + chunk.length) / GiB)}GB and doesn't fit in a volume of size ${target.sizeGb}GB.`);
      }
      await writer.write(chunk);
    }
    await fh.datasync();
    return { path: 'stream', bytes: writer.position, written: writer.written };
  } finally {
    await fh.close();
  }
}

async function downloadAndInspect(tools: ImageTools, ctx: GlanceCallContext, image: ImageMeta, volumeSizeGb: number, claimed: string | null): Promise<PreparedImage> {
  const { conversionDir, backendName } = tools.options;
  await checkAvailableSpace(conversionDir, image.size ?? 0, image.id);
  const tmp = await createTemporaryFile(conversionDir, `image_fetch_${image.id}_`, backendName);
  const dispose = () => rm(tmp, { force: true });
  try {
    const bytes = await downloadToFile(tools, ctx, image, tmp, isCompressed(image) ? decompressedLimit(volumeSizeGb) : null);
    const head = await readHead(tmp);
    const found = inspectImageHead(head, { vmdkAllowedTypes: tools.options.vmdkAllowedTypes });
    refuseMismatch(image, found, claimed);
    const info = await qemuImgInfo(tools, tmp, found.format);
    checkQemuInfo(image, info, found.format, tools.options.vmdkAllowedTypes);
    checkVirtualSize(info.virtualSize, volumeSizeGb, image.id);
    return { kind: 'file', path: tmp, format: found.format, bytes, virtualSize: info.virtualSize, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** What qemu-img says must agree with the header check, and carry nothing that reads host files. */
function checkQemuInfo(image: ImageMeta, info: QemuImgInfo, detected: string, vmdkAllowed: readonly string[]): void {
  if (info.format !== detected) {
    throw imageUnacceptable(image.id, `The image format was claimed to be '${detected}' but the image data appears to be in a different format.`);
  }
  if (info.backingFile) throw imageUnacceptable(image.id, `fmt=${info.format} backed by: ${info.backingFile}`);
  if (info.dataFile) throw imageUnacceptable(image.id, `fmt=${info.format} has a data file: ${info.dataFile}`);
  if (info.format === 'vmdk' && (!info.vmdkCreateType || !vmdkAllowed.includes(info.vmdkCreateType))) {
    throw imageUnacceptable(image.id, `Invalid VMDK create-type specified: ${String(info.vmdkCreateType)}`);
  }
}

/** qemu_img_info under the conversion limits; a failure is cinder's ProcessExecutionError → ImageUnacceptable. */
export async function qemuImgInfo(tools: ImageTools, path: string, format: string): Promise<QemuImgInfo> {
  const argv = qemuImgInfoArgv(path, format, tools.options.limits);
  const r = await tools.runner(argv, { timeoutMs: (tools.options.limits.cpuSeconds + 30) * 1000 });
  if (r.exitCode !== 0) throw new CommandError(argv, r);
  return parseQemuImgInfo(r.stdout);
}

/** convert_image: a failing qemu-img becomes ImageCopyFailure with its stderr, as cinder's. */
export async function runConvert(tools: ImageTools, imageId: string, argv: string[]): Promise<void> {
  const r = await tools.runner(argv, { timeoutMs: 0 });
  if (r.exitCode === 0) return;
  if (/No space left/.test(r.stderr) && argv.some((a) => a.startsWith(tools.options.conversionDir))) {
    throw imageTooBig(imageId, `No space left in image_conversion_dir path (${tools.options.conversionDir}) while converting image ${imageId}.`);
  }
  throw imageCopyFailure(new CommandError(argv, r).message);
}

/** container_format 'compressed': the image data is gzip (cinder's image_utils and accelerator). */
function isCompressed(image: ImageMeta): boolean {
  return image.container_format === 'compressed';
}

/**
 * How much a compressed image may inflate to in image_conversion_dir: the volume, plus a tenth for
 * a qcow2's own metadata. More is refused as it streams, so a gzip bomb never fills the directory.
 */
function decompressedLimit(volumeSizeGb: number): number {
  return Math.ceil(volumeSizeGb * GiB * 1.1) + 64 * 1024 * 1024;
}

/**
 * The image's bytes, gunzipped on the way when `gunzipLimit` is given: the data must start with
 * gzip's magic (cinder: "only gzip is supported") and may not inflate beyond the limit.
 */
async function* imageBytes(tools: ImageTools, ctx: GlanceCallContext, image: ImageMeta, gunzipLimit: number | null, onDownloaded: (n: number) => void): AsyncGenerator<Buffer> {
  const download = (async function* () {
    let first = true;
    for await (const chunk of tools.glance().download(ctx, image)) {
      if (first && gunzipLimit !== null && !(chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b)) {
        throw imageUnacceptable(image.id, "container_format is 'compressed' but the data is not gzip: only gzip is supported");
      }
      first = false;
      onDownloaded(chunk.length);
      yield chunk;
    }
  })();
  if (gunzipLimit === null) {
    yield* download;
    return;
  }
  const gunzip = throughZlib(download, createGunzip());
  let inflated = 0;
  try {
    for await (const chunk of gunzip.output) {
      inflated += chunk.length;
      if (inflated > gunzipLimit) throw imageUnacceptable(image.id, `the compressed image inflates to more than ${Math.floor(gunzipLimit / GiB)} GiB, more than the volume can hold`);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof CinderError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw code?.startsWith('Z_') ? imageUnacceptable(image.id, `the compressed image is not valid gzip: ${(err as Error).message}`) : err;
  } finally {
    gunzip.close();
  }
}

async function downloadToFile(tools: ImageTools, ctx: GlanceCallContext, image: ImageMeta, path: string, gunzipLimit: number | null = null): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    // a fresh file reads zeros: zero runs stay holes, so a mostly empty image takes little room
    const writer = new ZeroSkippingWriter(fh, true);
    const progress = transferProgress(tools.logger, `downloading image ${image.id} to ${path}`, image.size, { intervalMs: tools.options.progressIntervalMs, count: tools.metrics?.bytes('download') });
    for await (const chunk of rechunk(imageBytes(tools, ctx, image, gunzipLimit, (n) => progress.add(n)), CHUNK)) {
      await writer.write(chunk);
    }
    await fh.truncate(writer.position);
    return writer.position;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw imageTooBig(image.id, `No space left in image_conversion_dir path (${tools.options.conversionDir}) while fetching image ${image.id}.`);
    }
    throw err;
  } finally {
    await fh.close();
  }
}

/** The first INSPECT_BYTES of a file: what the format inspector reads. */
export async function readHead(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(INSPECT_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

export async function isBlockDevice(path: string): Promise<boolean> {
  return (await stat(path)).isBlockDevice();
}

/** Errors the image paths raise on purpose; anything else is an unexpected failure. */
export function isImageRefusal(err: unknown): boolean {
  return err instanceof CinderError && ['ImageUnacceptable', 'ImageTooBig', 'ImageConversionNotAllowed', 'Invalid'].includes(err.className);
}
