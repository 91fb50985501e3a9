// location_info: the string each pool reports to the scheduler saying where its volumes live, and
// what a migration's source reads from the destination's capabilities to decide whether it can
// reach the destination's storage directly (cinder's LVM driver does the same in migrate_volume).
//   file pool: `FileVolumeDriver:<hostname>:<directory>`
//   LVM:       `LVMVolumeDriver:<hostname>:<vg>:<lvm_type>:<mirrors>` (cinder's own format)

export type PoolLocation =
  | { kind: 'file'; hostname: string; directory: string }
  | { kind: 'lvm'; hostname: string; volumeGroup: string; lvmType: string; mirrors: number };

/** The location a pool reported, or null for a format this agent does not know (another driver). */
export function parseLocationInfo(info: unknown): PoolLocation | null {
  if (typeof info !== 'string') return null;
  const [type, hostname, ...rest] = info.split(':');
  if (!hostname) return null;
  // A directory may itself hold ':'; it is everything after the host name.
  if (type === 'FileVolumeDriver' && rest.length > 0) return { kind: 'file', hostname, directory: rest.join(':') };
  if (type === 'LVMVolumeDriver' && rest.length === 3) {
    const mirrors = Number(rest[2]);
    if (!Number.isInteger(mirrors)) return null;
    return { kind: 'lvm', hostname, volumeGroup: rest[0]!, lvmType: rest[1]!, mirrors };
  }
  return null;
}

/**
 * The path of the volume `name` in the pool at `info` when that pool is on `hostname` (this
 * host), else null. Same host is cinder's own test (LVM migrate_volume compares host names).
 */
export function volumePathOnHost(info: unknown, hostname: string, name: string, safeName: (name: string) => void): string | null {
  const loc = parseLocationInfo(info);
  if (!loc || loc.hostname !== hostname) return null;
  safeName(name);
  return loc.kind === 'file' ? `${loc.directory.replace(/\/+$/, '')}/${name}` : `/dev/${loc.volumeGroup}/${name}`;
}
