// The one UUID rule of the project. cinder's ids are str(uuid.uuid4()), 8-4-4-4-12 hex digits;
// oslo's is_uuid_like also takes them without the hyphens, so the hyphens are optional. Nothing
// else gets through (no braces, no `urn:`, no surrounding text): ids end up in file names, IQNs,
// tgt and LVM command lines and SQL.
const UUID_PATTERN = '[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}';
const UUID_RE = new RegExp(`^${UUID_PATTERN}$`, 'i');

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}

/** The UUID in `<prefix><uuid>` (cinder's `volume-%s` names), or null when the rest is not one. */
export function uuidAfterPrefix(name: string, prefix: string): string | null {
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return isUuid(rest) ? rest : null;
}
