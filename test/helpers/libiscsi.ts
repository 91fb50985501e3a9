// User-space iSCSI initiators for tests: libiscsi's tools (Debian libiscsi-bin) and qemu-io's iscsi
// driver (Debian qemu-block-extra). Each call logs in afresh with the initiator name and CHAP
// credentials given, so a test can be any host it likes. Results carry the exit code, the output,
// how long it took, and what the login came to:
//   ok | target-not-found (515: the ACL refused this initiator, or no such target)
//      | auth-failure (513: wrong or missing CHAP) | error (anything else)
import { execa } from 'execa';

export interface IscsiLogin {
  /** `host:port`, IPv6 bracketed */
  portal: string;
  iqn: string;
  lun?: number;
  /** initiator name to present */
  initiator: string;
  user?: string;
  password?: string;
}

export type LoginOutcome = 'ok' | 'target-not-found' | 'auth-failure' | 'error';

export interface ToolResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  ms: number;
  outcome: LoginOutcome;
}

const TIMEOUT = 30_000;

function outcomeOf(exitCode: number, text: string): LoginOutcome {
  if (/Target not found\(515\)|TARGET_NOT_FOUND/i.test(text)) return 'target-not-found';
  // 513: CHAP refused (tgt, LIO); 514: the initiator has no ACL on the target (LIO's "forbidden")
  if (/Authentication failure\(513\)|Authorization failure\(514\)|AUTH_FAILED|AUTHORIZATION_FAILED/i.test(text)) return 'auth-failure';
  return exitCode === 0 ? 'ok' : 'error';
}

async function run(file: string, args: string[]): Promise<ToolResult> {
  const t0 = performance.now();
  const r = await execa(file, args, { reject: false, timeout: TIMEOUT, stdin: 'ignore' });
  const ms = Math.round(performance.now() - t0);
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  const exitCode = typeof r.exitCode === 'number' ? r.exitCode : -1;
  return { exitCode, stdout, stderr, ms, outcome: outcomeOf(exitCode, `${stdout}\n${stderr}`) };
}

function credentials(l: Pick<IscsiLogin, 'user' | 'password'>): string {
  if (l.user === undefined) return '';
  for (const v of [l.user, l.password ?? '']) {
    if (!/^[A-Za-z0-9._-]*$/.test(v)) throw new Error('test CHAP credentials must be URL-safe');
  }
  return `${l.user}%${l.password ?? ''}@`;
}

/** `iscsi://user%password@portal/iqn/lun` (libiscsi's URL form) */
export function iscsiUrl(l: IscsiLogin): string {
  return `iscsi://${credentials(l)}${l.portal}/${l.iqn}/${l.lun ?? 1}`;
}

/** Standard INQUIRY on one LUN: the cheapest full login. */
export async function iscsiInq(l: IscsiLogin): Promise<ToolResult> {
  return run('iscsi-inq', ['-i', l.initiator, iscsiUrl(l)]);
}

export interface DiscoveredTarget {
  iqn: string;
  portal: string;
  luns: { lun: number; type: string; size: string | null }[];
}

/** SendTargets discovery + a login to each target to list its LUNs (`iscsi-ls -s`). */
export async function iscsiLs(l: Omit<IscsiLogin, 'iqn' | 'lun'>): Promise<ToolResult & { targets: DiscoveredTarget[] }> {
  const r = await run('iscsi-ls', ['-i', l.initiator, '-s', `iscsi://${credentials(l)}${l.portal}`]);
  const targets: DiscoveredTarget[] = [];
  for (const line of r.stdout.split('\n')) {
    const t = /^Target:(\S+) Portal:(\S+)$/.exec(line.trim());
    if (t) {
      targets.push({ iqn: t[1] as string, portal: t[2] as string, luns: [] });
      continue;
    }
    const lun = /^Lun:(\d+)\s+Type:(\S+)(?: \(Size:([^)]+)\))?/.exec(line.trim());
    const cur = targets[targets.length - 1];
    if (lun && cur) cur.luns.push({ lun: Number(lun[1]), type: lun[2] as string, size: lun[3] ?? null });
  }
  return { ...r, targets };
}

export interface Capacity {
  lastLba: number | null;
  blockLength: number | null;
  /** (lastLba + 1) * blockLength */
  sizeBytes: number | null;
}

/** READ CAPACITY(16) on one LUN. */
export async function iscsiReadCapacity16(l: IscsiLogin): Promise<ToolResult & Capacity> {
  const r = await run('iscsi-readcapacity16', ['-i', l.initiator, iscsiUrl(l)]);
  const lba = /RETURNED LOGICAL BLOCK ADDRESS:(\d+)/.exec(r.stdout);
  const len = /LOGICAL BLOCK LENGTH IN BYTES:(\d+)/.exec(r.stdout);
  const lastLba = lba ? Number(lba[1]) : null;
  const blockLength = len ? Number(len[1]) : null;
  return { ...r, lastLba, blockLength, sizeBytes: lastLba !== null && blockLength !== null ? (lastLba + 1) * blockLength : null };
}

/** qemu's `--image-opts` for the iscsi driver (commas in values would need doubling; ours have none). */
export function qemuIscsiImageOpts(l: IscsiLogin): string {
  const parts = [
    'driver=iscsi',
    'transport=tcp',
    `portal=${l.portal}`,
    `target=${l.iqn}`,
    `lun=${l.lun ?? 1}`,
    `initiator-name=${l.initiator}`,
  ];
  if (l.user !== undefined) parts.push(`user=${l.user}`, `password=${l.password ?? ''}`);
  for (const p of parts) if (/[,\n]/.test(p.split('=').slice(1).join('='))) throw new Error(`image-opts value with a comma or newline: ${p.split('=')[0]}`);
  return parts.join(',');
}

/** `qemu-io --image-opts ... -c '<command>'`, e.g. `write -P 0xab 0 1M`, `read -P 0xab 0 1M`. */
export async function qemuIo(l: IscsiLogin, command: string): Promise<ToolResult> {
  const r = await run('qemu-io', ['--image-opts', qemuIscsiImageOpts(l), '-c', command]);
  // qemu-io exits 0 even when a command fails; a failed pattern check prints this
  if (r.exitCode === 0 && /Pattern verification failed|failed:/i.test(r.stdout + r.stderr)) return { ...r, exitCode: 1, outcome: r.outcome === 'ok' ? 'error' : r.outcome };
  return r;
}

/** `qemu-img convert` the whole LUN into a raw file (zeros stay sparse): a long sequential reader. */
export async function qemuImgReadAll(l: IscsiLogin, outFile: string): Promise<ToolResult> {
  return run('qemu-img', ['convert', '--image-opts', qemuIscsiImageOpts(l), '-O', 'raw', outFile]);
}

/** True when qemu-io has its iscsi block driver (Debian: qemu-block-extra). */
export async function qemuIscsiAvailable(): Promise<boolean> {
  const r = await execa('qemu-io', ['--image-opts', 'driver=iscsi,transport=tcp,portal=127.0.0.1:1,target=iqn.2000-01.invalid:x,lun=1', '-c', 'info'], {
    reject: false,
    timeout: 10_000,
  });
  return !/Unknown driver 'iscsi'|module block-block-iscsi not found/.test(`${r.stdout}\n${r.stderr}`);
}

/** True when libiscsi's command line tools are installed. */
export async function libiscsiAvailable(): Promise<boolean> {
  const r = await execa('iscsi-inq', ['--help'], { reject: false });
  return typeof r.exitCode === 'number';
}

/** The unit serial number (VPD page 0x80) of one LUN, trimmed; null when the login or inquiry failed. */
export async function iscsiSerial(l: IscsiLogin): Promise<ToolResult & { serial: string | null }> {
  const r = await run('iscsi-inq', ['-i', l.initiator, '-e', '1', '-c', '128', iscsiUrl(l)]);
  const m = /Unit Serial Number:\[\s*([^\]]*?)\s*\]/.exec(r.stdout);
  return { ...r, serial: r.exitCode === 0 && m ? (m[1] as string) : null };
}
