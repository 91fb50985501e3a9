// A volume or snapshot name becomes a path component. cinder's names are `volume-<uuid>` and
// `snapshot-<uuid>`; anything carrying a separator, a dot-dot or a shell metacharacter is refused
// before it can reach the filesystem or a command line.
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$/;

export function assertSafeName(name: string): void {
  if (typeof name !== 'string' || !SAFE_NAME.test(name) || name.includes('..')) {
    throw new Error(`refusing unsafe volume name ${JSON.stringify(name)}: only letters, digits, '_', '-' and '.' are allowed`);
  }
}

/** Snapshot files live beside the volumes: `snapshot-<id>`. */
export function snapshotFileName(name: string): string {
  assertSafeName(name);
  return name;
}
