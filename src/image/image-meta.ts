// An image as cinder's GlanceImageService hands it around (_translate_from_glance): the schema's
// base properties at the top, every other attribute under `properties`, and the glance metadata
// rows a volume made from it gets (volume_utils.get_volume_image_metadata).

export interface ImageMeta {
  id: string;
  name: string | null;
  status: string | null;
  disk_format: string | null;
  container_format: string | null;
  /** bytes of the image data */
  size: number | null;
  /** bytes of the disk the image holds, when glance computed it */
  virtual_size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  owner: string | null;
  min_disk: number | null;
  min_ram: number | null;
  /** glance's ISO time, as it sent it */
  updated_at: string | null;
  /** every attribute the image schema does not mark as a base property */
  properties: Record<string, unknown>;
  /** where glance stores the data (show_image_direct_url), when it says */
  direct_url?: string | null;
  /** the URLs of every location (show_multiple_locations), when it says */
  locations?: string[];
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** A glance v2 image document split as cinder splits it, `base` being the schema's base properties. */
export function imageMetaFromGlance(doc: Record<string, unknown>, base: ReadonlySet<string>): ImageMeta {
  const properties: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k === 'schema' || base.has(k)) continue;
    properties[k] = v;
  }
  const id = str(doc.id);
  if (!id) throw new Error('glance returned an image without an id');
  return {
    id,
    name: str(doc.name),
    status: str(doc.status),
    disk_format: str(doc.disk_format),
    container_format: str(doc.container_format),
    size: num(doc.size),
    virtual_size: num(doc.virtual_size),
    checksum: str(doc.checksum),
    os_hash_algo: str(doc.os_hash_algo),
    os_hash_value: str(doc.os_hash_value),
    owner: str(doc.owner),
    min_disk: num(doc.min_disk),
    min_ram: num(doc.min_ram),
    updated_at: str(doc.updated_at),
    properties,
    direct_url: str(doc.direct_url),
    locations: Array.isArray(doc.locations) ? doc.locations.map((l: unknown) => str((l as { url?: unknown } | null)?.url)).filter((u): u is string => u !== null) : [],
  };
}

/** volume_utils.IMAGE_ATTRIBUTES: the image attributes copied to volume_glance_metadata. */
const IMAGE_ATTRIBUTES = ['checksum', 'container_format', 'disk_format', 'min_disk', 'min_ram', 'size'] as const;

/**
 * volume_utils.get_volume_image_metadata: every non-None property, then image_id, image_name (if
 * the image has a name) and the IMAGE_ATTRIBUTES that are set, the latter winning over a property
 * of the same name.
 */
export function volumeImageMetadata(image: ImageMeta): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(image.properties)) if (v !== null && v !== undefined) out[k] = v;
  out.image_id = image.id;
  if (image.name) out.image_name = image.name;
  for (const k of IMAGE_ATTRIBUTES) {
    const v = image[k];
    if (v !== null && v !== undefined) out[k] = v;
  }
  return out;
}
