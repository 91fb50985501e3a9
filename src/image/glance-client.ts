// A Glance v2 client on Node's own http/https, doing what cinder's GlanceImageService does
// through glanceclient (cinder/image/glance.py): servers from glance_api_servers, shuffled and
// cycled through on each retry; glance_num_retries retries with a 1 s pause on the errors
// glanceclient calls ServiceUnavailable/InvalidEndpoint/CommunicationError; the request's
// token when the RPC context carries one (keystone) and none otherwise (noauth); the request id
// header; image downloads streamed and checked against os_hash_value (else the md5 checksum) as
// the bytes go by, as glanceclient's data() does. The token is a header only: never logged,
// never part of an error.
import { createHash, getHashes, type Hash } from 'node:crypto';
import { readFileSync, type ReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import {
  glanceConnectionFailed,
  imageDownloadFailed,
  imageLimitExceeded,
  imageNotAuthorized,
  imageNotFound,
  invalid,
  notAuthorized,
  type CinderError,
} from '../errors.js';
import type { Logger } from '../log.js';
import { parseGlanceServer, type GlanceServer } from './glance-servers.js';
import { directFilePath } from './direct-url.js';
import { imageMetaFromGlance, type ImageMeta } from './image-meta.js';

export interface GlanceClientOptions {
  /** glance_api_servers, as written in cinder.conf. */
  apiServers: readonly string[];
  /** glance_num_retries: further attempts after the first. */
  numRetries: number;
  /** glance_request_timeout, seconds; null: no limit (glanceclient's default). */
  requestTimeoutSec: number | null;
  /** [cinderblock] glance_stall_timeout, seconds: the limit when requestTimeoutSec is null; 0 none. */
  stallTimeoutSec?: number;
  /** allowed_direct_url_schemes: `file` reads an image from its store file when this host can */
  allowedDirectUrlSchemes?: readonly string[];
  /** glance_api_insecure */
  insecure?: boolean;
  /** glance_ca_certificates_file, glance_certfile, glance_keyfile */
  caFile?: string | null;
  certFile?: string | null;
  keyFile?: string | null;
  logger: Logger;
  /** Pause between attempts (tests shorten it); default 1000 ms as cinder's time.sleep(1). */
  retryDelayMs?: number;
  /** Order of servers for one call; default a random shuffle (cinder's random.shuffle). */
  order?: <T>(servers: T[]) => T[];
}

/** What of the RPC request context goes to Glance. */
export interface GlanceCallContext {
  requestId?: string | null;
  globalRequestId?: string | null;
  /** The user's token (keystone deployments); null in noauth ones. */
  authToken?: string | null;
}

/** A Glance answer none of cinder's translations covers (a 500, an unexpected status). */
export class GlanceHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'GlanceHttpError';
  }
}

/** Raised inside an attempt when the server could not be reached or said 503: try the next. */
class RetryableError extends Error {}

export interface UploadExtras {
  /** x-image-meta-store, from the volume type's image_service:store_id. */
  storeId?: string | null;
  /** x-openstack-base-image-ref: the image the volume was made from. */
  baseImageRef?: string | null;
}

/** Where download() reads an image's bytes from, and how it tells a cut-short transfer. */
interface ImageSource {
  what: string;
  chunks: AsyncIterable<Buffer>;
  close(): void;
  /** false when the body ended before its end (a dropped connection) */
  complete(): boolean;
  /** the reason our side ended it (a timeout), when it did */
  why(): string | undefined;
}

/** The statuses in which a failed upload leaves an image that cinder's _delete_image removes. */
const UNFINISHED_STATUSES = new Set(['queued', 'saving']);

export class GlanceClient {
  private readonly servers: GlanceServer[];
  private readonly httpsAgent: https.Agent | undefined;
  private baseProperties: Promise<Set<string>> | null = null;

  constructor(private readonly opts: GlanceClientOptions) {
    if (!opts.apiServers.length) {
      // noauth contexts carry no service catalog: cinder needs glance_api_servers there too.
      throw invalid('glance_api_servers is not set: cinderblock does not read a service catalog, so it needs the Glance servers listed');
    }
    this.servers = opts.apiServers.map(parseGlanceServer);
    if (this.servers.some((s) => s.protocol === 'https:')) {
      this.httpsAgent = new https.Agent({
        keepAlive: true,
        rejectUnauthorized: !opts.insecure,
        ...(opts.caFile ? { ca: readFileSync(opts.caFile) } : {}),
        ...(opts.certFile ? { cert: readFileSync(opts.certFile) } : {}),
        ...(opts.keyFile ? { key: readFileSync(opts.keyFile) } : {}),
      });
    }
  }

  /** GET /v2/images/{id}, translated as cinder's _translate_from_glance. */
  async show(ctx: GlanceCallContext, imageId: string): Promise<ImageMeta> {
    const raw = await this.json(ctx, 'GET', `/v2/images/${encodeURIComponent(imageId)}`, imageId);
    return imageMetaFromGlance(raw, await this.imageBaseProperties(ctx));
  }

  /**
   * GET /v2/images/{id}/file as a stream of chunks. The hash glance recorded is checked while the
   * bytes go by; the last chunk is followed by an ImageDownloadFailed instead of the end when it
   * does not match or the body stopped short, so a consumer that writes as it reads must treat
   * what it wrote as garbage on any error.
   */
  async *download(ctx: GlanceCallContext, image: Pick<ImageMeta, 'id' | 'size' | 'checksum' | 'os_hash_algo' | 'os_hash_value' | 'direct_url' | 'locations'>): AsyncGenerator<Buffer> {
    const expected = expectedHash(image);
    const hash: Hash | null = expected ? createHash(expected.algo) : null;
    let bytes = 0;
    const source = await this.imageBytes(ctx, image.id, (await this.openDirectFile(image)) ?? undefined);
    try {
      for await (const chunk of source.chunks) {
        hash?.update(chunk);
        bytes += chunk.length;
        yield chunk;
      }
    } catch (err) {
      throw imageDownloadFailed(image.id, `${source.what} stopped after ${bytes} bytes: ${source.why() ?? (err as Error).message}`, err);
    } finally {
      // a consumer that stops early (an image refused on its header) must not leave a socket or file open
      source.close();
    }
    if (!source.complete()) throw imageDownloadFailed(image.id, `${source.what} stopped after ${bytes} bytes${source.why() ? `: ${source.why()}` : ''}`);
    if (typeof image.size === 'number' && bytes !== image.size) {
      throw imageDownloadFailed(image.id, `Corrupt image download: ${bytes} bytes received, the image has ${image.size}`);
    }
    if (hash && expected) {
      const got = hash.digest('hex');
      if (got !== expected.value.toLowerCase()) throw imageDownloadFailed(image.id, `Corrupt image download. Hash was ${got} expected ${expected.value}`);
    }
  }

  /** The image's bytes from its store file when one is open, else from glance-api: one loop reads either. */
  private async imageBytes(ctx: GlanceCallContext, imageId: string, local?: { path: string; stream: ReadStream }): Promise<ImageSource> {
    if (local) {
      return { what: `reading ${local.path}`, chunks: local.stream as AsyncIterable<Buffer>, close: () => local.stream.destroy(), complete: () => true, why: () => undefined };
    }
    const res = await this.call(ctx, 'GET', `/v2/images/${encodeURIComponent(imageId)}/file`, imageId, { stream: true });
    if (res.statusCode === 204) throw imageDownloadFailed(imageId, 'image contains no data.');
    return {
      what: 'the download',
      chunks: res as AsyncIterable<Buffer>,
      close: () => {
        if (!res.complete) res.destroy();
      },
      complete: () => res.complete,
      why: () => whyStopped(res),
    };
  }

  /**
   * The image's store file when allowed_direct_url_schemes has `file` and glance names one. One
   * this host cannot open (a store on another machine, no permission) is not an error: the bytes
   * come from glance-api as usual, and the operator is told why.
   */
  private async openDirectFile(image: Pick<ImageMeta, 'id' | 'direct_url' | 'locations'>): Promise<{ path: string; stream: ReadStream } | null> {
    const path = directFilePath(image, this.opts.allowedDirectUrlSchemes ?? []);
    if (!path) return null;
    try {
      const fh = await open(path, 'r');
      this.opts.logger.info({ image_id: image.id, path }, `reading image ${image.id} from its store file ${path} (allowed_direct_url_schemes = file)`);
      return { path, stream: fh.createReadStream({ highWaterMark: 1024 * 1024 }) };
    } catch (err) {
      this.opts.logger.warn({ image_id: image.id, path, err }, `image ${image.id}: its store file ${path} cannot be opened here (${(err as Error).message}); downloading it from glance-api instead`);
      return null;
    }
  }

  /**
   * PUT /v2/images/{id}/file, chunked, as glanceclient's upload. Not retried: the body is a
   * stream that the first attempt has consumed.
   */
  async upload(ctx: GlanceCallContext, imageId: string, body: AsyncIterable<Buffer> | Readable, extras: UploadExtras = {}): Promise<void> {
    const headers: Record<string, string> = { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' };
    if (extras.storeId) headers['x-image-meta-store'] = extras.storeId;
    if (extras.baseImageRef) headers['x-openstack-base-image-ref'] = extras.baseImageRef;
    const server = this.orderedServers()[0]!;
    const req = this.request(server, ctx, 'PUT', `/v2/images/${encodeURIComponent(imageId)}/file`, headers);
    const answered = responseOf(req);
    try {
      await pipeline(body instanceof Readable ? body : Readable.from(body), req);
    } catch (err) {
      req.destroy();
      // a refusal glance sent before reading the whole body says more than the broken pipe
      const early = await Promise.race([answered.catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 200))]);
      if (early && early.statusCode && early.statusCode >= 300) throw translate(early.statusCode, await readText(early), imageId);
      throw glanceConnectionFailed(`uploading image ${imageId} to ${server.origin} failed: ${(err as Error).message}`, err);
    }
    const res = await answered.catch((err: unknown) => {
      throw glanceConnectionFailed(`uploading image ${imageId} to ${server.origin} failed: ${(err as Error).message}`, err);
    });
    const text = await readText(res);
    if ((res.statusCode ?? 0) >= 300) throw translate(res.statusCode ?? 0, text, imageId);
  }

  /** POST /v2/images: a queued image record (what cinder-api makes before an upload-to-image). */
  async create(ctx: GlanceCallContext, meta: { name: string; disk_format: string; container_format: string }): Promise<ImageMeta> {
    const raw = await this.json(ctx, 'POST', '/v2/images', null, { body: JSON.stringify(meta), contentType: 'application/json' });
    return imageMetaFromGlance(raw, await this.imageBaseProperties(ctx));
  }

  /** PATCH /v2/images/{id} with a JSON patch (image properties, add_location). */
  async patch(ctx: GlanceCallContext, imageId: string, ops: Array<Record<string, unknown>>): Promise<ImageMeta> {
    const raw = await this.json(ctx, 'PATCH', `/v2/images/${encodeURIComponent(imageId)}`, imageId, {
      body: JSON.stringify(ops),
      contentType: 'application/openstack-images-v2.1-json-patch',
    });
    return imageMetaFromGlance(raw, await this.imageBaseProperties(ctx));
  }

  /** DELETE /v2/images/{id} */
  async delete(ctx: GlanceCallContext, imageId: string): Promise<void> {
    const res = await this.call(ctx, 'DELETE', `/v2/images/${encodeURIComponent(imageId)}`, imageId);
    await readText(res);
  }

  /**
   * cinder's manager _delete_image: after a failed upload, the image goes if it never became
   * active (queued/saving); an image that did, or is gone, stays as it is. True when deleted.
   */
  async deleteIfUnfinished(ctx: GlanceCallContext, imageId: string): Promise<boolean> {
    const image = await this.show(ctx, imageId);
    if (!UNFINISHED_STATUSES.has(image.status ?? '')) return false;
    await this.delete(ctx, imageId);
    return true;
  }

  /** The names the image schema marks as base properties (everything else is a property). */
  private imageBaseProperties(ctx: GlanceCallContext): Promise<Set<string>> {
    this.baseProperties ??= this.json(ctx, 'GET', '/v2/schemas/image', null)
      .then((schema) => {
        const props = (schema.properties ?? {}) as Record<string, { is_base?: boolean }>;
        return new Set(Object.entries(props).filter(([, p]) => p.is_base !== false).map(([k]) => k));
      })
      .catch((err: unknown) => {
        this.baseProperties = null;
        throw err;
      });
    return this.baseProperties;
  }

  private async json(
    ctx: GlanceCallContext,
    method: string,
    path: string,
    imageId: string | null,
    body?: { body: string; contentType: string },
  ): Promise<Record<string, unknown>> {
    const res = await this.call(ctx, method, path, imageId, body ? { body } : {});
    const text = await readText(res);
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new GlanceHttpError(res.statusCode ?? 0, `${method} ${path}: the answer is not JSON`);
    }
  }

  /** One call with cinder's retry loop; the answer is a 2xx (others are translated and thrown). */
  private async call(
    ctx: GlanceCallContext,
    method: string,
    path: string,
    imageId: string | null,
    extra: { body?: { body: string; contentType: string }; stream?: boolean } = {},
  ): Promise<IncomingMessage> {
    const attempts = 1 + this.opts.numRetries;
    const servers = this.orderedServers();
    let last: unknown;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const server = servers[(attempt - 1) % servers.length]!;
      try {
        const headers: Record<string, string> = extra.body ? { 'Content-Type': extra.body.contentType } : {};
        const req = this.request(server, ctx, method, path, headers);
        const answered = responseOf(req);
        req.end(extra.body?.body);
        const res = await answered.catch((err: unknown) => {
          throw new RetryableError((err as Error).message);
        });
        const status = res.statusCode ?? 0;
        if (status === 503) {
          await readText(res);
          throw new RetryableError('503 Service Unavailable');
        }
        if (status >= 300) throw translate(status, await readText(res), imageId);
        return res;
      } catch (err) {
        if (!(err instanceof RetryableError)) throw err;
        last = err;
        const done = attempt === attempts;
        this.opts.logger.warn(`Error contacting glance server '${server.host}' for '${method} ${path}', ${done ? 'done trying' : 'retrying'}: ${err.message}`);
        if (!done) await new Promise((r) => setTimeout(r, this.opts.retryDelayMs ?? 1000));
      }
    }
    throw glanceConnectionFailed((last as Error).message);
  }

  private orderedServers(): GlanceServer[] {
    const order = this.opts.order ?? shuffle;
    return order([...this.servers]);
  }

  private request(server: GlanceServer, ctx: GlanceCallContext, method: string, path: string, headers: Record<string, string>): http.ClientRequest {
    const all: Record<string, string> = { 'User-Agent': 'cinderblock', Accept: 'application/json', ...headers };
    const requestId = ctx.globalRequestId ?? ctx.requestId;
    if (requestId) all['X-OpenStack-Request-ID'] = requestId;
    if (ctx.authToken) all['X-Auth-Token'] = ctx.authToken;
    const lib = server.protocol === 'https:' ? https : http;
    const req = lib.request({
      protocol: server.protocol,
      hostname: server.hostname,
      port: server.port,
      method,
      path: `${server.basePath}${path}`,
      headers: all,
      ...(server.protocol === 'https:' && this.httpsAgent ? { agent: this.httpsAgent } : {}),
    });
    // glanceclient's timeout is per socket operation, as is this one: a long download that keeps
    // moving is not cut short, one that stops moving is.
    const timeout = this.opts.requestTimeoutSec;
    const stall = this.opts.stallTimeoutSec ?? 0;
    if (timeout && timeout > 0) {
      req.setTimeout(timeout * 1000, () => endRequest(req, `no answer within glance_request_timeout (${timeout} s)`));
    } else if (stall > 0) {
      req.setTimeout(stall * 1000, () =>
        endRequest(req, `Glance sent nothing for ${stall} s ([cinderblock] glance_stall_timeout; glance_request_timeout is unset): glance-api or its store stopped mid-transfer`),
      );
    }
    return req;
  }
}

function responseOf(req: http.ClientRequest): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
}

/** The reason our side gave when it ended the request (a timeout), for the operator's message. */
/** Why our side ended a request (a timeout): an aborted body itself only says "aborted". */
const endedBecause = new WeakMap<http.ClientRequest, string>();

function endRequest(req: http.ClientRequest, why: string): void {
  endedBecause.set(req, why);
  req.destroy(new Error(why));
}

/** The reason our side gave when it ended a response's request, for the operator's message. */
function whyStopped(res: IncomingMessage): string | undefined {
  // node links a client response to its request as `req` (not in its type declarations)
  const req = (res as IncomingMessage & { req?: http.ClientRequest }).req;
  return req ? endedBecause.get(req) : undefined;
}

async function readText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

/** cinder's _translate_image_exception / _translate_plain_exception, plus HTTPOverLimit. */
export function translate(status: number, body: string, imageId: string | null): CinderError | GlanceHttpError {
  const detail = body.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
  if (status === 401 || status === 403) return imageId ? imageNotAuthorized(imageId) : notAuthorized();
  if (status === 404 && imageId) return imageNotFound(imageId);
  if (status === 400) return invalid(detail || 'glance refused the request (400)');
  if (status === 413) return imageLimitExceeded(detail);
  return new GlanceHttpError(status, `glance answered ${status}${detail ? `: ${detail}` : ''}`);
}

/** os_hash_value with its algorithm when glance recorded one, else the md5 checksum, else none. */
export function expectedHash(image: Pick<ImageMeta, 'checksum' | 'os_hash_algo' | 'os_hash_value'>): { algo: string; value: string } | null {
  if (image.os_hash_value && image.os_hash_algo) {
    const algo = image.os_hash_algo.toLowerCase();
    if (getHashes().includes(algo)) return { algo, value: image.os_hash_value };
  }
  if (image.checksum) return { algo: 'md5', value: image.checksum };
  return null;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
