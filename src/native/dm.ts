// Device-mapper control ioctls (native/dm.cc): a device's table and target messages, by dm
// name, without a `dmsetup` process. Each call runs on a thread of its own in the addon.
import { addon } from './addon.js';
import { toNativeError, type Hints } from './errors.js';

/** One line of a dm table, as `dmsetup table` prints it: `start length type params` (sectors). */
export interface DmTarget {
  start: number;
  length: number;
  type: string;
  params: string;
}

const dm = addon;

/** linux/dm-ioctl.h DM_NAME_LEN: a name and its NUL must fit in 128 bytes. */
export const DM_NAME_LEN = 128;

/**
 * Throws a RangeError unless `name` can be a dm name: 1 to 127 bytes (UTF-8), no '/', no NUL.
 * Checked before any ioctl so that a path (`/dev/mapper/x`) passed by mistake fails as such.
 */
export function assertDmName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (typeof name !== 'string' || bytes === 0 || bytes >= DM_NAME_LEN || name.includes('/') || name.includes('\0')) {
    throw new RangeError(`not a device-mapper name (1 to ${DM_NAME_LEN - 1} bytes, no '/'; a name, not a path): ${JSON.stringify(name)}`);
  }
}

const NO_DM =
  'this kernel has no device-mapper (load it with `modprobe dm_mod`), or /dev is not the host’s ' +
  '(a container needs /dev/mapper/control passed in).';

// The same errno means different things from the two syscalls: ENODEV/ENOENT from opening
// /dev/mapper/control is "no device-mapper here" (a node with no driver behind it gives ENODEV,
// a missing node ENOENT), while ENXIO/ENODEV from the ioctl is "no device of that name".
function hintsFor(syscall: unknown, name: string, extra: Hints): Hints {
  if (syscall === 'open') {
    return {
      ENOENT: `/dev/mapper/control does not exist: ${NO_DM}`,
      ENODEV: `/dev/mapper/control has no driver behind it: ${NO_DM}`,
      ENXIO: `/dev/mapper/control has no driver behind it: ${NO_DM}`,
      EACCES: 'Device-mapper needs root (CAP_SYS_ADMIN): check the service user.',
    };
  }
  const none = `There is no device-mapper device named ${name} (\`dmsetup ls\` lists them): it was removed or never activated.`;
  return {
    ENXIO: none,
    ENODEV: none,
    EACCES: 'Device-mapper needs root (CAP_SYS_ADMIN): check the service user.',
    EPERM: 'Device-mapper needs root (CAP_SYS_ADMIN): check the service user and any security policy.',
    ...extra,
  };
}

async function call<T>(fn: () => Promise<T>, attempted: string, name: string, extra: Hints = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toNativeError(err, attempted, hintsFor((err as { syscall?: unknown } | null)?.syscall, name, extra));
  }
}

/** The live table of dm device `name`, one entry per target; [] if it has no live table. */
export function dmTable(name: string): Promise<DmTarget[]> {
  assertDmName(name);
  return call(() => dm().dmTable(name), `reading the device-mapper table of ${name}`, name);
}

/**
 * Sends `message` to the target of dm device `name` that covers `sector` (what `dmsetup message
 * NAME SECTOR MESSAGE` does), e.g. a thin pool's `reserve_metadata_snap`.
 */
export function dmMessage(name: string, message: string, sector = 0): Promise<void> {
  assertDmName(name);
  if (message === '' || message.includes('\0')) throw new RangeError(`a device-mapper message must be non-empty text without NUL, got ${JSON.stringify(message)}`);
  if (!Number.isSafeInteger(sector) || sector < 0) throw new RangeError(`sector must be a non-negative integer, got ${sector}`);
  return call(() => dm().dmMessage(name, message, sector), `sending "${message}" to device-mapper device ${name}`, name, {
    EINVAL: `The target of ${name} at sector ${sector} refused the message (unknown message, or no target at that sector): check \`dmsetup table ${name}\`.`,
    EBUSY: `${name} is busy (for a thin pool's reserve_metadata_snap: a metadata snapshot is already held, by another tool or a lookup that did not release it; \`dmsetup message ${name} 0 release_metadata_snap\` once nothing uses it).`,
  });
}
