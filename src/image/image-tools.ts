// What the image paths need from the agent: the Glance client, the process runner for qemu-img,
// and cinder's image options. Built once per backend by the agent from cinder.conf.
import type { CommandRunner } from '../exec/run-command.js';
import type { Logger } from '../log.js';
import { invalid } from '../errors.js';
import { GlanceClient, type GlanceCallContext } from './glance-client.js';
import type { ConversionLimits } from './qemu-img-commands.js';

export interface ImageOptions {
  /** image_conversion_dir */
  conversionDir: string;
  /** image_conversion_disable */
  conversionDisabled: boolean;
  /** image_compress_on_upload */
  compressOnUpload: boolean;
  /** vmdk_allowed_types */
  vmdkAllowedTypes: readonly string[];
  /** verify_glance_signatures */
  verifySignatures: 'enabled' | 'disabled';
  /** image_conversion_cpu_limit / image_conversion_address_space_limit */
  limits: ConversionLimits;
  /** The backend's name: the suffix of its temporary files. */
  backendName: string;
  /** Between two progress lines of a long transfer; default 10 s (the CLI says it every second). */
  progressIntervalMs?: number;
}

/** What the image paths tell Prometheus (the agent's metrics; absent in the CLI and tests). */
export interface ImageMetrics {
  /** A counter of the bytes moved in one direction. */
  bytes(direction: 'download' | 'upload'): (bytes: number) => void;
  /** One image-volume cache lookup's outcome, or an eviction. */
  cache(result: 'hit' | 'miss' | 'eviction'): void;
}

export interface ImageTools {
  /** null when glance_api_servers is not set: every image call fails with why. */
  glance(): GlanceClient;
  runner: CommandRunner;
  options: ImageOptions;
  logger: Logger;
  metrics?: ImageMetrics;
}

export function imageTools(o: { glance: GlanceClient | null; runner: CommandRunner; options: ImageOptions; logger: Logger; metrics?: ImageMetrics }): ImageTools {
  return {
    glance: () => {
      if (!o.glance) throw invalid('glance_api_servers is not set in cinder.conf: cinderblock needs it to reach Glance');
      return o.glance;
    },
    runner: o.runner,
    options: o.options,
    logger: o.logger,
    ...(o.metrics ? { metrics: o.metrics } : {}),
  };
}

/** The parts of an RPC context Glance gets (the token stays in memory, never in a log). */
export function glanceContext(ctx: Record<string, unknown>): GlanceCallContext {
  const s = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return { requestId: s(ctx.request_id), globalRequestId: s(ctx.global_request_id), authToken: s(ctx.auth_token) };
}
