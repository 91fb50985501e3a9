// image_utils.upload_volume for a local volume. raw/bare: the volume's bytes stream to Glance in
// one chunked PUT, with no temporary file. Any other disk_format: the volume's header is checked
// first (a volume holding a qcow2 that names a backing file would make qemu-img read a host
// file), then `qemu-img convert -f raw -O <fmt> [-c]` writes a temporary file in
// image_conversion_dir, qemu-img must find the format asked for in it, and that file is uploaded.
// container_format 'compressed': what is uploaded is gzip-compressed on the way.
import { createReadStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { createGzip } from 'node:zlib';
import { imageConversionNotAllowed, imageUnacceptable, invalid } from '../errors.js';
import { checkAvailableSpace, createTemporaryFile } from './conversion-dir.js';
import { expectedQemuFormat, inspectImageHead, INSPECT_BYTES } from './format-inspector.js';
import type { GlanceCallContext, UploadExtras } from './glance-client.js';
import type { ImageTools } from './image-tools.js';
import { qemuImgInfo, runConvert } from './fetch-to-volume.js';
import { qemuImgConvertArgv } from './qemu-img-commands.js';
import { transferProgress, type TransferProgress } from './transfer-progress.js';
import { throughZlib } from './zlib-stream.js';

const GiB = 1024 ** 3;
const READ_CHUNK = 1024 * 1024;

/** Formats a volume can be uploaded as (qemu-img writes them). */
const UPLOAD_FORMATS = new Set(['raw', 'qcow2', 'vmdk', 'vdi', 'vhd', 'vhdx']);

export interface UploadRequest {
  imageId: string;
  diskFormat: string;
  containerFormat: string | null;
  /** driver.localPath of the volume */
  volumePath: string;
  volumeSizeGb: number;
  extras?: UploadExtras;
}

export interface UploadResult {
  path: 'stream' | 'convert';
  bytes: number;
}

export async function uploadVolume(tools: ImageTools, ctx: GlanceCallContext, req: UploadRequest): Promise<UploadResult> {
  if (!UPLOAD_FORMATS.has(req.diskFormat)) throw imageUnacceptable(req.imageId, `disk_format ${JSON.stringify(req.diskFormat)} cannot be written by cinderblock`);
  // container_format 'compressed' (cinder's allow_compression_on_image_upload): the image's data
  // is gzip, made on the way here, of the raw bytes or of the converted file
  const gzip = req.containerFormat === 'compressed';
  const bytes = req.volumeSizeGb * GiB;
  if (req.diskFormat === 'raw') {
    const progress = transferProgress(tools.logger, `uploading ${req.volumePath} to image ${req.imageId}`, bytes, { intervalMs: tools.options.progressIntervalMs, count: tools.metrics?.bytes('upload') });
    await tools.glance().upload(ctx, req.imageId, gzipped(counted(createReadStream(req.volumePath, { start: 0, end: bytes - 1, highWaterMark: READ_CHUNK }), progress), gzip), req.extras);
    return { path: 'stream', bytes };
  }
  if (tools.options.conversionDisabled) {
    throw imageConversionNotAllowed(
      req.imageId,
      `Image conversion is disabled. The image disk_format you have requested is '${req.diskFormat}', but your volume can only be uploaded in the format 'raw'.`,
    );
  }
  await refuseUnsafeVolumeContent(tools, req.volumePath);
  const outFormat = expectedQemuFormat(req.diskFormat)!;
  // the converted image is at most the volume's size (plus format overhead, small next to it)
  await checkAvailableSpace(tools.options.conversionDir, bytes, req.imageId);
  const tmp = await createTemporaryFile(tools.options.conversionDir, 'vol_upload_', tools.options.backendName);
  try {
    await runConvert(
      tools,
      req.imageId,
      qemuImgConvertArgv({ source: req.volumePath, sourceFormat: 'raw', dest: tmp, destFormat: outFormat, compress: outFormat === 'qcow2' && tools.options.compressOnUpload }),
    );
    const info = await qemuImgInfo(tools, tmp, outFormat);
    if (info.format !== outFormat) {
      throw imageUnacceptable(req.imageId, `Converted to ${outFormat}, but format is now ${info.format}`);
    }
    const fh = await open(tmp, 'r');
    const size = (await fh.stat()).size;
    await fh.close();
    const progress = transferProgress(tools.logger, `uploading ${outFormat} image ${req.imageId}`, size, { intervalMs: tools.options.progressIntervalMs, count: tools.metrics?.bytes('upload') });
    await tools.glance().upload(ctx, req.imageId, gzipped(counted(createReadStream(tmp, { highWaterMark: READ_CHUNK }), progress), gzip), req.extras);
    return { path: 'convert', bytes: size };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** qemu_img_info's safety check on the volume before qemu-img reads it. */
async function refuseUnsafeVolumeContent(tools: ImageTools, path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(INSPECT_BYTES);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const found = inspectImageHead(buf.subarray(0, bytesRead), { vmdkAllowedTypes: tools.options.vmdkAllowedTypes });
    if (found.unsafe) throw invalid('Image/Volume failed safety check');
  } finally {
    await fh.close();
  }
}

/** `source` gzip-compressed when `on` (a failing source fails the compressed stream too). */
function gzipped(source: AsyncIterable<Buffer>, on: boolean): AsyncIterable<Buffer> {
  return on ? throughZlib(source, createGzip()).output : source;
}

async function* counted(source: AsyncIterable<Buffer>, progress: TransferProgress): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    progress.add(chunk.length);
    yield chunk;
  }
}
