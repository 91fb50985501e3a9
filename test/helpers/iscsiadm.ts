// open-iscsi driven from tests (lab guests), the way os-brick does it: a node record per
// target/portal/iface with CHAP in it, login, find the SCSI disk, rescan, logout, delete the record.
// Separate ifaces (`iface.initiatorname`) let one guest act as several initiators.
// Argument arrays only; never a shell.
import { execa } from 'execa';

export interface IscsiadmResult {
  code: number;
  out: string;
}

export async function iscsiadm(...args: string[]): Promise<IscsiadmResult> {
  const r = await execa('iscsiadm', args, { reject: false, timeout: 90_000 });
  return { code: r.exitCode ?? -1, out: `${String(r.stdout)}\n${String(r.stderr)}`.trim() };
}

export interface IscsiTarget {
  portal: string;
  iqn: string;
  /** iface name; 'default' uses /etc/iscsi/initiatorname.iscsi */
  iface?: string;
}

export interface ChapLogin extends IscsiTarget {
  user: string;
  password: string;
}

/** connection_info (attachment or legacy `data`) → what login needs. */
export function loginFrom(ci: Record<string, any>, iface = 'default'): ChapLogin {
  return { portal: String(ci.target_portal), iqn: String(ci.target_iqn), user: String(ci.auth_username), password: String(ci.auth_password), iface };
}

/** An iface whose sessions present `initiator` as their initiator name. */
export async function ensureIface(name: string, initiator: string): Promise<void> {
  await iscsiadm('-m', 'iface', '-I', name, '-o', 'new');
  const r = await iscsiadm('-m', 'iface', '-I', name, '-o', 'update', '-n', 'iface.initiatorname', '-v', initiator);
  if (r.code !== 0) throw new Error(`iscsiadm iface ${name}: ${r.out}`);
}

/** iscsiadm's arguments naming one node record (target, portal, iface) */
export function nodeArgs(t: IscsiTarget): string[] {
  return ['-m', 'node', '-T', t.iqn, '-p', t.portal, '-I', t.iface ?? 'default'];
}

/** The node record of `t`, made (from iscsid.conf's defaults) and given `settings`. */
export async function nodeRecord(t: IscsiTarget, settings: ReadonlyArray<readonly [string, string]>): Promise<void> {
  const n = nodeArgs(t);
  const made = await iscsiadm(...n, '-o', 'new');
  if (made.code !== 0) throw new Error(`iscsiadm node new: ${made.out}`);
  for (const [k, v] of settings) {
    const r = await iscsiadm(...n, '-o', 'update', '-n', k, '-v', v);
    if (r.code !== 0) throw new Error(`iscsiadm node update ${k}: ${r.out}`);
  }
}

/** A node record's CHAP settings. */
export const chapSettings = (t: ChapLogin): Array<readonly [string, string]> => [
  ['node.session.auth.authmethod', 'CHAP'],
  ['node.session.auth.username', t.user],
  ['node.session.auth.password', t.password],
];

/**
 * Creates the node record with CHAP and logs in; resolves to iscsiadm's exit code (0 = logged in).
 * `loginTimeoutS` shortens open-iscsi's 15 s login timeout, for logins expected to be refused: with
 * no target left the portal refuses the connection and iscsid retries until that timeout.
 */
export async function login(t: ChapLogin, opts: { loginTimeoutS?: number } = {}): Promise<IscsiadmResult> {
  await nodeRecord(t, [
    ...chapSettings(t),
    // a refused login must fail now, not retry for minutes
    ['node.session.initial_login_retry_max', '1'],
    ...(opts.loginTimeoutS ? [['node.conn[0].timeo.login_timeout', String(opts.loginTimeoutS)] as const] : []),
  ]);
  return iscsiadm(...nodeArgs(t), '-l');
}

/** Logs out (if logged in) and deletes the node record. */
export async function logout(t: IscsiTarget): Promise<void> {
  await iscsiadm(...nodeArgs(t), '-u');
  await iscsiadm(...nodeArgs(t), '-o', 'delete');
}

export interface IscsiSession {
  sid: string;
  portal: string;
  iqn: string;
  /** `iSCSI Session State` (LOGGED_IN, FAILED, FREE) */
  state: string;
  /** sdX once the LUN is scanned */
  disk: string | null;
}

/** Parses `iscsiadm -m session -P 3`; [] when there is none. */
export async function sessions(): Promise<IscsiSession[]> {
  const r = await iscsiadm('-m', 'session', '-P', '3');
  if (r.code !== 0) return [];
  const out: IscsiSession[] = [];
  for (const block of r.out.split(/^Target: /m).slice(1)) {
    const iqn = block.split(/\s/)[0]!;
    for (const s of block.split(/^\s*Current Portal: /m).slice(1)) {
      const portal = s.split(/\s/)[0]!.replace(/,\d+$/, '');
      out.push({
        iqn,
        portal,
        sid: /SID: (\d+)/.exec(s)?.[1] ?? '',
        state: /iSCSI Session State: (\S+)/.exec(s)?.[1] ?? '',
        disk: /Attached scsi disk (\w+)/.exec(s)?.[1] ?? null,
      });
    }
  }
  return out;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** The /dev/sdX of the logged-in session to `iqn` (waits for the LUN scan and udev). */
export async function diskOf(iqn: string, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = (await sessions()).find((x) => x.iqn === iqn && x.state === 'LOGGED_IN' && x.disk);
    if (s?.disk) {
      await execa('udevadm', ['settle', '-t', '30'], { reject: false });
      return `/dev/${s.disk}`;
    }
    if (Date.now() > deadline) throw new Error(`no SCSI disk for ${iqn}: ${JSON.stringify(await sessions())}`);
    await sleep(300);
  }
}

/** Waits until no LOGGED_IN session to `iqn` is left (the target dropped it); returns the last state seen. */
export async function waitSessionDropped(iqn: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = (await sessions()).filter((x) => x.iqn === iqn);
    if (!s.some((x) => x.state === 'LOGGED_IN')) return s.map((x) => x.state).join(',') || 'none';
    if (Date.now() > deadline) throw new Error(`session to ${iqn} still LOGGED_IN after ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** Rescans the session's LUNs (what os-brick does after an in-use extend). */
export async function rescan(iqn: string): Promise<void> {
  const s = (await sessions()).find((x) => x.iqn === iqn);
  if (!s) throw new Error(`no session to ${iqn}`);
  const r = await iscsiadm('-m', 'session', '-r', s.sid, '-R');
  if (r.code !== 0) throw new Error(`rescan ${iqn}: ${r.out}`);
  // the session rescan finds new LUNs; a capacity change needs the device's own rescan
  if (s.disk) await execa('sh', ['-c', 'echo 1 > "$1"', 'rescan', `/sys/block/${s.disk}/device/rescan`]);
}

/** Size of a block device in bytes (from sysfs). */
export async function diskBytes(dev: string): Promise<number> {
  const name = dev.replace(/^\/dev\//, '');
  const r = await execa('cat', [`/sys/block/${name}/size`]);
  return Number(String(r.stdout).trim()) * 512;
}

/** Writes `bytes` of `byte` at offset 0 with O_DIRECT, synced. */
export async function writePattern(dev: string, byte: number, bytes: number): Promise<void> {
  const mib = bytes / (1024 * 1024);
  await execa('sh', ['-c', `tr '\\000' "$(printf '\\\\%03o' "$1")" </dev/zero | dd of="$2" bs=1M count="$3" iflag=fullblock oflag=direct conv=fsync status=none`, 'pattern', String(byte), dev, String(mib)]);
}

/** True when the first `bytes` of `dev` (read with O_DIRECT) are all `byte`. */
export async function holdsPattern(dev: string, byte: number, bytes: number): Promise<boolean> {
  const r = await execa('dd', [`if=${dev}`, 'bs=1M', `count=${bytes / (1024 * 1024)}`, 'iflag=direct', 'status=none'], { encoding: 'buffer', reject: false });
  const b = Buffer.from(r.stdout as Uint8Array);
  return r.exitCode === 0 && b.length === bytes && b.every((x) => x === byte);
}
