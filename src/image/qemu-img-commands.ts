// argv for qemu-img as cinder's image_utils runs it, and the parser of `qemu-img info
// --output=json`. `qemu-img info` reads headers an attacker wrote, so it runs under prlimit's
// address-space and CPU limits (image_conversion_address_space_limit / _cpu_limit), as cinder's
// oslo_concurrency.prlimit wrapper does; the runner sets LC_ALL=C.

export interface ConversionLimits {
  /** image_conversion_cpu_limit, seconds */
  cpuSeconds: number;
  /** image_conversion_address_space_limit, GiB */
  addressSpaceGiB: number;
}

/** Formats cinder hands to qemu-img -f / -O; anything else is refused before a command runs. */
const QEMU_FORMATS = new Set(['raw', 'qcow2', 'qed', 'vpc', 'vhdx', 'vmdk', 'vdi', 'luks', 'parallels']);

function checkFormat(format: string): string {
  if (!QEMU_FORMATS.has(format)) throw new Error(`not a qemu-img format cinderblock hands on: ${JSON.stringify(format)}`);
  return format;
}

/** A path as one argv element; qemu-img would take a leading '-' for an option. */
function checkPath(path: string): string {
  if (!path.startsWith('/')) throw new Error(`qemu-img paths must be absolute: ${JSON.stringify(path)}`);
  return path;
}

/** prlimit --as=<bytes> --cpu=<s> -- qemu-img info -f <fmt> --output=json <path> */
export function qemuImgInfoArgv(path: string, format: string, limits: ConversionLimits): string[] {
  return [
    'prlimit',
    `--as=${limits.addressSpaceGiB * 1024 ** 3}`,
    `--cpu=${limits.cpuSeconds}`,
    '--',
    'qemu-img',
    'info',
    '-f',
    checkFormat(format),
    '--output=json',
    checkPath(path),
  ];
}

export interface ConvertArgs {
  source: string;
  sourceFormat: string;
  dest: string;
  destFormat: string;
  /** -c: compress (qcow2 output with image_compress_on_upload) */
  compress?: boolean;
  /** -t none: bypass the page cache when writing to a block device (cinder's O_DIRECT probe) */
  cacheNone?: boolean;
  /**
   * -n: write into the existing volume. Without it qemu-img re-creates a file destination at the
   * image's size (a file-pool volume would shrink); with it, qemu-img no longer assumes the
   * destination reads zeros and writes (or discards) the zero runs itself.
   */
  targetExists?: boolean;
}

/** qemu-img convert [-t none] [-c] [-n] -f <src fmt> -O <dst fmt> <src> <dst> */
export function qemuImgConvertArgv(a: ConvertArgs): string[] {
  return [
    'qemu-img',
    'convert',
    ...(a.cacheNone ? ['-t', 'none'] : []),
    ...(a.compress ? ['-c'] : []),
    ...(a.targetExists ? ['-n'] : []),
    '-f',
    checkFormat(a.sourceFormat),
    '-O',
    checkFormat(a.destFormat),
    checkPath(a.source),
    checkPath(a.dest),
  ];
}

/** qemu-img compare -f <fmt> -F <fmt> <a> <b> (exit 0: same content) */
export function qemuImgCompareArgv(a: string, aFormat: string, b: string, bFormat: string): string[] {
  return ['qemu-img', 'compare', '-f', checkFormat(aFormat), '-F', checkFormat(bFormat), checkPath(a), checkPath(b)];
}

/** What cinder's QemuImgInfo reads of `qemu-img info --output=json`. */
export interface QemuImgInfo {
  format: string;
  virtualSize: number;
  actualSize: number | null;
  backingFile: string | null;
  /** qcow2's external data file */
  dataFile: string | null;
  /** VMDK createType */
  vmdkCreateType: string | null;
  encrypted: boolean;
}

export function parseQemuImgInfo(json: string): QemuImgInfo {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(json) as Record<string, unknown>;
  } catch {
    throw new Error(`qemu-img info did not print JSON: ${json.slice(0, 200)}`);
  }
  const format = doc.format;
  const virtualSize = doc['virtual-size'];
  if (typeof format !== 'string' || typeof virtualSize !== 'number') throw new Error('qemu-img info printed no format or virtual-size');
  const specific = (doc['format-specific'] as { data?: Record<string, unknown> } | undefined)?.data ?? {};
  const s = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return {
    format,
    virtualSize,
    actualSize: typeof doc['actual-size'] === 'number' ? doc['actual-size'] : null,
    backingFile: s(doc['backing-filename']) ?? s(doc['full-backing-filename']),
    dataFile: s(specific['data-file']),
    vmdkCreateType: s(specific['create-type']),
    encrypted: doc.encrypted === true,
  };
}
