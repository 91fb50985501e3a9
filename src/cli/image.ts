// `cinderblock image fetch IMAGE_ID DEST` and `cinderblock image upload SRC --name NAME`: the
// agent's own image paths for an operator (copying an image onto a device by hand, or saving a
// device as an image), from the same cinder.conf as `serve`: the same Glance servers and options,
// the same format and safety checks, the same image_conversion_dir and its temporary files.
// Progress goes to stderr once a second; the result to stdout (JSON with --json).
// `cinderblock image cache`: the image-volume cache entries of this host's backends, with their
// volumes' state and the backend's cache options, from the database.
import { stat } from 'node:fs/promises';
import type { ConfigSourceArg } from '../config/index.js';
import { createImageTools } from '../agent/image-tools-factory.js';
import { fetchToVolume } from '../image/fetch-to-volume.js';
import type { ImageTools } from '../image/image-tools.js';
import { uploadVolume } from '../image/upload-volume.js';
import { createLogger } from '../log.js';
import { blockDeviceSize } from '../native/index.js';
import { CliFailure, emit, EXIT, keyValues, loadCliConfig, openCliDatabase, reportCloseFailure, runCli, table, type OutputOptions } from './output.js';

const GiB = 1024 ** 3;

async function toolsFor(sources: ConfigSourceArg[], backendName: string | undefined): Promise<ImageTools> {
  const config = await loadCliConfig(sources);
  const backend = backendName ? config.backends.find((b) => b.name === backendName) : config.backends[0];
  if (!backend) {
    throw new CliFailure(backendName ? `no backend ${backendName} in enabled_backends (${config.backends.map((b) => b.name).join(', ') || 'none'})` : 'enabled_backends is empty: name a backend whose image options to use', EXIT.usage);
  }
  const logger = createLogger({ level: 'info', pretty: Boolean(process.stderr.isTTY), destination: 2 });
  const tools = createImageTools(config, backend, logger);
  return { ...tools, options: { ...tools.options, progressIntervalMs: 1000 } };
}

/** The device's or file's size: a block device by BLKGETSIZE64, a file by its length. */
async function sizeOf(path: string, what: string): Promise<number> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new CliFailure(`${what} ${path}: ${err.code === 'ENOENT' ? 'no such file or device' : err.message}`, EXIT.usage);
  });
  if (!st.isFile() && !st.isBlockDevice()) throw new CliFailure(`${what} ${path} is neither a block device nor a file`, EXIT.usage);
  const bytes = st.isBlockDevice() ? await blockDeviceSize(path) : st.size;
  if (bytes === 0) throw new CliFailure(`${what} ${path} is empty: create it with the size the image needs`, EXIT.usage);
  return bytes;
}

export interface ImageFetchOptions extends OutputOptions {
  /** DEST reads as zeros where nothing is written (a new thin LV, a new sparse file): zero runs are skipped */
  sparse?: boolean;
  backend?: string;
}

export async function imageFetchCommand(sources: ConfigSourceArg[], imageId: string, dest: string, opts: ImageFetchOptions): Promise<void> {
  await runCli(async () => {
    const tools = await toolsFor(sources, opts.backend);
    const bytes = await sizeOf(dest, 'destination');
    const image = await tools.glance().show({}, imageId);
    const t0 = Date.now();
    const r = await fetchToVolume(tools, {}, image, { path: dest, sizeGb: bytes / GiB, readsZeros: Boolean(opts.sparse) });
    const result = { image_id: image.id, name: image.name, disk_format: image.disk_format, dest, path: r.path, downloaded_bytes: r.bytes, written_bytes: r.written ?? null, seconds: (Date.now() - t0) / 1000 };
    emit(opts, result, () => keyValues(Object.entries(result)));
    return EXIT.ok;
  });
}

export interface ImageUploadOptions extends OutputOptions {
  name: string;
  diskFormat: string;
  containerFormat: string;
  backend?: string;
}

export async function imageUploadCommand(sources: ConfigSourceArg[], src: string, opts: ImageUploadOptions): Promise<void> {
  await runCli(async () => {
    const tools = await toolsFor(sources, opts.backend);
    const bytes = await sizeOf(src, 'source');
    const glance = tools.glance();
    const image = await glance.create({}, { name: opts.name, disk_format: opts.diskFormat, container_format: opts.containerFormat });
    const t0 = Date.now();
    try {
      const r = await uploadVolume(tools, {}, { imageId: image.id, diskFormat: opts.diskFormat, containerFormat: opts.containerFormat, volumePath: src, volumeSizeGb: bytes / GiB });
      const result = { image_id: image.id, name: opts.name, disk_format: opts.diskFormat, src, path: r.path, uploaded_bytes: r.bytes, seconds: (Date.now() - t0) / 1000 };
      emit(opts, result, () => keyValues(Object.entries(result)));
      return EXIT.ok;
    } catch (err) {
      // as copy_volume_to_image's failure path: no queued or half-saved image left behind
      await glance.deleteIfUnfinished({}, image.id).catch(() => false);
      throw err;
    }
  });
}

export interface ImageCacheOptions extends OutputOptions {
  host?: string;
  all?: boolean;
}

/** `cinderblock image cache`: what is cached where, how recently used, and whether its volume is still there. */
export async function imageCacheCommand(sources: ConfigSourceArg[], opts: ImageCacheOptions): Promise<void> {
  await runCli(async () => {
    const config = await loadCliConfig(sources);
    const db = await openCliDatabase(config);
    try {
      const hosts = opts.host ? [opts.host] : opts.all ? [] : config.backends.map((b) => b.host);
      const internal = { project: config.default.cinder_internal_tenant_project_id, user: config.default.cinder_internal_tenant_user_id };
      const backends = config.backends.map((b) => ({
        backend: b.host,
        enabled: b.image_volume_cache_enabled,
        max_size_gb: b.image_volume_cache_max_size_gb,
        max_count: b.image_volume_cache_max_count,
        // without an internal tenant cinder-volume and cinderblock both download every time
        usable: b.image_volume_cache_enabled && Boolean(internal.project && internal.user),
      }));
      const entries = (await db.inspect.imageCacheEntries(hosts)).map((e) => ({
        image_id: e.image_id,
        volume_id: e.volume_id,
        // a volume gone without its entry: the next create of the image drops the entry and downloads
        volume_status: e.volume_status ?? 'missing',
        size_gb: e.size,
        host: e.host,
        image_updated_at: e.image_updated_at,
        last_used: e.last_used,
      }));
      const result = { internal_tenant: internal, backends, entries };
      emit(opts, result, () => {
        const head = backends
          .map((b) => `${b.backend}: cache ${b.enabled ? (b.usable ? 'enabled' : 'enabled but unusable: set cinder_internal_tenant_project_id and _user_id') : 'disabled'}` +
            (b.enabled ? ` (max ${b.max_size_gb || 'unlimited'} GB, ${b.max_count || 'unlimited'} entries)` : ''))
          .join('\n');
        const body = entries.length
          ? table(['IMAGE', 'VOLUME', 'STATUS', 'SIZE', 'HOST', 'IMAGE UPDATED', 'LAST USED'], entries.map((e) => [e.image_id, e.volume_id, e.volume_status, e.size_gb, e.host, e.image_updated_at, e.last_used]))
          : `no cached images${hosts.length ? ` on ${hosts.join(', ')}` : ''}\n`;
        return `${head}${head ? '\n\n' : ''}${body}`;
      });
      return EXIT.ok;
    } finally {
      await db.close().catch(reportCloseFailure('the database connection'));
    }
  });
}
