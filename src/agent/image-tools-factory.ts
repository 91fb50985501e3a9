// The image paths' tools for one backend, from cinder.conf's [DEFAULT] Glance and image options.
// One Glance client per backend (its image schema is fetched once, not per call as cinder does).
import type { BackendConfig, CinderConfig } from '../config/index.js';
import { processRunner } from '../exec/run-command.js';
import { GlanceClient } from '../image/glance-client.js';
import { imageTools, type ImageTools } from '../image/image-tools.js';
import type { Logger } from '../log.js';
import type { AgentMetrics } from '../metrics.js';
import type { ImageVolumeCacheSettings } from '../manager/flows/image-volume-cache.js';

export function createImageTools(config: CinderConfig, backend: BackendConfig, logger: Logger, metrics?: AgentMetrics): ImageTools {
  const d = config.default;
  const servers = d.glance_api_servers ?? [];
  const glance = servers.length
    ? new GlanceClient({
        apiServers: servers,
        numRetries: d.glance_num_retries,
        requestTimeoutSec: d.glance_request_timeout,
        stallTimeoutSec: config.cinderblock.glance_stall_timeout,
        allowedDirectUrlSchemes: d.allowed_direct_url_schemes,
        insecure: d.glance_api_insecure,
        caFile: d.glance_ca_certificates_file,
        certFile: d.glance_certfile,
        keyFile: d.glance_keyfile,
        logger,
      })
    : null;
  if (!glance) logger.warn('glance_api_servers is not set: volumes cannot be created from images, uploaded or reimaged on this backend');
  return imageTools({
    glance,
    // qemu-img convert of a large image takes as long as it takes; qemu-img info gets its own limit
    runner: processRunner({ timeoutMs: 0 }),
    options: {
      conversionDir: d.image_conversion_dir,
      conversionDisabled: d.image_conversion_disable,
      compressOnUpload: d.image_compress_on_upload,
      vmdkAllowedTypes: d.vmdk_allowed_types,
      verifySignatures: d.verify_glance_signatures,
      limits: { cpuSeconds: d.image_conversion_cpu_limit, addressSpaceGiB: d.image_conversion_address_space_limit },
      backendName: backend.name,
    },
    logger,
    ...(metrics
      ? {
          metrics: {
            bytes: (direction) => (n) => metrics.imageBytes.inc({ backend: backend.name, direction }, n),
            cache: (result) => metrics.imageVolumeCache.inc({ backend: backend.name, result }),
          },
        }
      : {}),
  });
}

/**
 * The backend's image-volume cache (image_volume_cache_enabled, _max_size_gb, _max_count), said
 * at start as cinder-volume says it; without cinder_internal_tenant_project_id and _user_id the
 * cache has no owner and every create downloads.
 */
export function imageVolumeCacheSettings(config: CinderConfig, backend: BackendConfig, logger: Logger): ImageVolumeCacheSettings | undefined {
  if (!backend.image_volume_cache_enabled) {
    logger.info(`Image-volume cache disabled for host ${backend.host}.`);
    return undefined;
  }
  const projectId = config.default.cinder_internal_tenant_project_id;
  const userId = config.default.cinder_internal_tenant_user_id;
  const internalTenant = projectId && userId ? { projectId, userId } : null;
  if (!internalTenant) {
    logger.warn(
      `[${backend.name}] image_volume_cache_enabled is set but cinder_internal_tenant_project_id and cinder_internal_tenant_user_id are not both set in [DEFAULT]: ` +
        'the cache has no owner, so volumes from images are downloaded every time; set both to use the cache',
    );
  }
  logger.info(`Image-volume cache enabled for host ${backend.host}.`);
  return { maxSizeGb: backend.image_volume_cache_max_size_gb, maxCount: backend.image_volume_cache_max_count, internalTenant };
}
