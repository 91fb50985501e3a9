// The format of an image from its first bytes, and the header-level safety check Debian's cinder
// runs before any qemu-img sees the file (cinder/image/format_inspector.py, CVE-2022-47951 and
// CVE-2024-32498): a qcow2 with a backing file, an external data file or incompatible feature
// bits nobody knows is unsafe; QED is always unsafe; a VMDK must say a createType operators allow.
// Pure parsing of a Buffer, so the raw download path can refuse a disguised image from its first
// chunk, before a byte reaches the volume.

/** Format names as qemu-img uses them ('vpc' is VHD). */
export type DetectedFormat = 'raw' | 'qcow2' | 'qed' | 'vpc' | 'vhdx' | 'vmdk' | 'vdi' | 'luks';

export interface Inspection {
  format: DetectedFormat;
  /** Bytes of the disk the header declares (qcow2, vdi), when it says. */
  virtualSize?: number;
  /** Why the image is unsafe to hand to qemu-img; null when it is not. */
  unsafe: string | null;
  /** VMDK createType from the embedded descriptor. */
  vmdkCreateType?: string | null;
}

/** How many leading bytes detect() needs to see to decide (a VMDK descriptor may lie further). */
export const INSPECT_BYTES = 64 * 1024;

const QCOW2_MAGIC = Buffer.from([0x51, 0x46, 0x49, 0xfb]);
// qcow2 incompatible feature bits: 0 dirty, 1 corrupt, 2 external data file, 3 compression type;
// anything from bit 4 on is a feature the inspector cannot judge, so it is refused.
const QCOW2_DATA_FILE_BIT = 1n << 2n;
const QCOW2_KNOWN_FEATURES = (1n << 4n) - 1n;

/** format_inspector.detect_file_format + safety_check on the first bytes of an image. */
export function inspectImageHead(head: Buffer, opts: { vmdkAllowedTypes?: readonly string[] } = {}): Inspection {
  if (head.length >= 104 && head.subarray(0, 4).equals(QCOW2_MAGIC)) return inspectQcow2(head);
  if (head.length >= 4 && head.subarray(0, 4).toString('latin1') === 'QED\0') return { format: 'qed', unsafe: 'QED images are not supported' };
  if (head.length >= 8 && head.subarray(0, 8).toString('latin1') === 'vhdxfile') return { format: 'vhdx', unsafe: null };
  if (head.length >= 8 && head.subarray(0, 8).toString('latin1') === 'conectix') return { format: 'vpc', unsafe: null };
  if (head.length >= 0x178 && head.readUInt32LE(0x40) === 0xbeda107f) return { format: 'vdi', virtualSize: Number(head.readBigUInt64LE(0x170)), unsafe: null };
  if (head.length >= 4 && head.subarray(0, 4).toString('latin1') === 'KDMV') return inspectVmdk(head, opts.vmdkAllowedTypes ?? []);
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0x4c, 0x55, 0x4b, 0x53, 0xba, 0xbe]))) return { format: 'luks', unsafe: null };
  return { format: 'raw', unsafe: null };
}

function inspectQcow2(head: Buffer): Inspection {
  const version = head.readUInt32BE(4);
  const backingOffset = head.readBigUInt64BE(8);
  const virtualSize = Number(head.readBigUInt64BE(24));
  // version 2 headers end at byte 72 and have no feature fields
  const incompatible = version >= 3 ? head.readBigUInt64BE(0x48) : 0n;
  let unsafe: string | null = null;
  if (backingOffset !== 0n) unsafe = 'qcow2 image has a backing file';
  else if (incompatible & QCOW2_DATA_FILE_BIT) unsafe = 'qcow2 image has an external data file';
  else if (incompatible & ~QCOW2_KNOWN_FEATURES) unsafe = `qcow2 image has unknown incompatible features (0x${incompatible.toString(16)})`;
  return { format: 'qcow2', virtualSize, unsafe };
}

function inspectVmdk(head: Buffer, allowed: readonly string[]): Inspection {
  // hosted sparse extent header: descriptor offset and size in sectors at bytes 28 and 36
  if (head.length < 44) return { format: 'vmdk', unsafe: 'VMDK header is truncated', vmdkCreateType: null };
  const descOffset = Number(head.readBigUInt64LE(28)) * 512;
  const descSize = Number(head.readBigUInt64LE(36)) * 512;
  if (!descOffset || !descSize || descOffset + Math.min(descSize, 4096) > head.length) {
    return { format: 'vmdk', unsafe: 'VMDK has no embedded descriptor where it can be read', vmdkCreateType: null };
  }
  const text = head.subarray(descOffset, Math.min(descOffset + descSize, head.length)).toString('latin1').replace(/\0.*$/s, '');
  const m = /^\s*createType\s*=\s*"([^"]*)"/m.exec(text);
  const createType = m?.[1] ?? null;
  if (!createType) return { format: 'vmdk', unsafe: 'VMDK descriptor names no createType', vmdkCreateType: null };
  if (!allowed.includes(createType)) return { format: 'vmdk', unsafe: `Invalid VMDK create-type specified: ${createType}`, vmdkCreateType: createType };
  // extents of the allowed types live in this file; a named extent file would let qemu-img read
  // a host path
  const extentFiles = [...text.matchAll(/^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]*)"/gm)].map((x) => x[1]);
  if (extentFiles.some((f) => f !== undefined && f !== '' && f.includes('/'))) {
    return { format: 'vmdk', unsafe: 'VMDK descriptor names an extent outside the image', vmdkCreateType: createType };
  }
  return { format: 'vmdk', unsafe: null, vmdkCreateType: createType };
}

/**
 * image_utils.fixup_disk_format plus the names qemu-img detects: the format qemu-img must find
 * for a Glance disk_format. null for a disk_format cinder does not check (ami and friends).
 */
export function expectedQemuFormat(diskFormat: string): string | null {
  switch (diskFormat) {
    case 'iso':
      return 'raw';
    case 'vhd':
      return 'vpc';
    case 'ploop':
      return 'parallels';
    case 'ami':
    case 'aki':
    case 'ari':
      return null;
    default:
      return diskFormat;
  }
}
