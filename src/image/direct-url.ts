// allowed_direct_url_schemes: where glance's image store is a file system this host also mounts,
// cinder reads the image file itself instead of asking glance-api for the bytes
// (cinder/image/glance.py download: `file` is the only scheme it acts on, for the direct_url and
// then each location). The bytes still go through the same hash check as a download.
import type { ImageMeta } from './image-meta.js';

/** The image's locations as glance shows them (show_image_direct_url, show_multiple_locations). */
export type ImageLocations = Pick<ImageMeta, 'direct_url' | 'locations'>;

/**
 * The first `file://` URL among the direct_url and the locations, as a local path, when `file` is
 * allowed; null otherwise. Only absolute paths of plain characters: a URL with a host, a query or
 * an encoded NUL is not a file this host can read as glance meant.
 */
export function directFilePath(image: ImageLocations, allowedSchemes: readonly string[]): string | null {
  if (!allowedSchemes.includes('file')) return null;
  for (const url of [image.direct_url, ...(image.locations ?? [])]) {
    if (!url) continue;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      continue;
    }
    if (parsed.protocol !== 'file:' || (parsed.host !== '' && parsed.host !== 'localhost') || parsed.search || parsed.hash) continue;
    let path: string;
    try {
      path = decodeURIComponent(parsed.pathname);
    } catch {
      continue;
    }
    if (path.startsWith('/') && !path.includes('\0')) return path;
  }
  return null;
}
