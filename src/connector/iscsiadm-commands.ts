// The open-iscsi half of the initiator's command layer: argv for iscsiadm and the reading of what
// it prints. Nothing here runs a command or touches sysfs; the connector (iscsi-connector.ts) does.
// Every value that reaches an argv is checked first (IQN, portal, interface, CHAP), so a hostile
// connection_info cannot become an option or a second record line.
//
// The argv shapes are os-brick's (iscsiadm -m node -T <iqn> -p <portal> ...); the parse of
// `iscsiadm -m session -P 3` was written against output captured in the lab guest
// (test/unit/connector/fixtures/).
import { invalidInput } from '../errors.js';
import { assertPortalHost, assertTargetIqn, formatPortal, parsePortal } from '../iscsi/index.js';

export const ISCSIADM = 'iscsiadm';

/** One node record: a target name reached through one portal on one interface. */
export interface IscsiNode {
  iqn: string;
  /** `host:port` or `[v6]:port` */
  portal: string;
  /** iscsiadm interface name; `default` (tcp through the routing table) unless told otherwise */
  iface?: string;
}

export interface ChapAuth {
  username: string;
  password: string;
}

// iscsiadm exit codes (open-iscsi include/iscsi_err.h) the connector tells apart.
export const ISCSI_ERR = {
  SUCCESS: 0,
  SESS_NOT_FOUND: 2,
  TRANS: 4,
  LOGIN: 5,
  TRANS_TIMEOUT: 8,
  PDU_TIMEOUT: 11,
  SESS_EXISTS: 15,
  FATAL_LOGIN: 19,
  NO_OBJS_FOUND: 21,
  LOGIN_AUTH_FAILED: 24,
} as const;

/** A normalised portal (`host:port`), checked. The default port 3260 is added when missing. */
export function normalisePortal(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalidInput('target portal must be a non-empty "host:port" string');
  const withPort = /^\[[^\]]+\]$/.test(value) || /^[^:[\]]+$/.test(value) ? `${value}:3260` : value;
  const p = parsePortal(withPort);
  assertPortalHost(p.host);
  return formatPortal(p);
}

const IFACE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function assertIfaceName(value: unknown): asserts value is string {
  if (typeof value !== 'string' || !IFACE_RE.test(value)) {
    throw invalidInput('iSCSI interface name must be 1-64 letters, digits, ".", "_" or "-" (e.g. default)');
  }
}

// A CHAP name or secret lands in iscsiadm's argv and then in a `key = value` line of the node
// record: no whitespace (a newline would add a record line), no control characters. Printable
// ASCII is what every target (cinder's generators, LIO, tgt) uses; RFC 3720 caps both at 255 here.
const CHAP_RE = /^[\x21-\x7e]{1,255}$/;

export function assertChapValue(value: unknown, which: 'username' | 'password'): asserts value is string {
  if (typeof value !== 'string' || !CHAP_RE.test(value)) {
    // the value itself is never quoted: it may be the secret
    throw invalidInput(`CHAP ${which} in connection_info must be 1-255 printable ASCII characters without spaces`);
  }
}

function checkedNode(n: IscsiNode): { iqn: string; portal: string; iface: string } {
  assertTargetIqn(n.iqn);
  const iface = n.iface ?? 'default';
  assertIfaceName(iface);
  return { iqn: n.iqn, portal: normalisePortal(n.portal), iface };
}

function nodeBase(n: IscsiNode): string[] {
  const c = checkedNode(n);
  return [ISCSIADM, '-m', 'node', '-T', c.iqn, '-p', c.portal, '--interface', c.iface];
}

/** Create (or re-create, keeping nothing) the node record, as os-brick does before a login. */
export function nodeNewArgv(n: IscsiNode): string[] {
  return [...nodeBase(n), '--op', 'new'];
}

/** Node record keys the connector writes. */
export type NodeKey =
  | 'node.startup'
  | 'node.session.auth.authmethod'
  | 'node.session.auth.username'
  | 'node.session.auth.password'
  | 'node.session.scan';

export function nodeUpdateArgv(n: IscsiNode, key: NodeKey, value: string): string[] {
  if (typeof value !== 'string' || /[\s]/.test(value) || value === '') throw invalidInput(`value for ${key} must be a non-empty string without whitespace`);
  return [...nodeBase(n), '--op', 'update', '-n', key, '-v', value];
}

/**
 * The updates that make a record log in the way connection_info says: manual start-up (the host
 * must not log back in on its own after a reboot: the export may be someone else's by then), and
 * CHAP or no authentication.
 */
export function nodeAuthArgvs(n: IscsiNode, chap: ChapAuth | null): string[][] {
  const out = [nodeUpdateArgv(n, 'node.startup', 'manual')];
  if (chap) {
    assertChapValue(chap.username, 'username');
    assertChapValue(chap.password, 'password');
    out.push(nodeUpdateArgv(n, 'node.session.auth.authmethod', 'CHAP'));
    out.push(nodeUpdateArgv(n, 'node.session.auth.username', chap.username));
    out.push(nodeUpdateArgv(n, 'node.session.auth.password', chap.password));
  } else {
    out.push(nodeUpdateArgv(n, 'node.session.auth.authmethod', 'None'));
  }
  return out;
}

/**
 * `node.session.scan = manual` (os-brick sets it on every login it makes): the login scans no LUN,
 * the connector then scans exactly the LUN it was given (scsiHostScanPath). On a target shared by
 * several of the host's volumes an automatic scan would make a device for every LUN, including
 * ones being unmapped; a targeted scan makes only the one asked for.
 */
export function nodeManualScanArgv(n: IscsiNode): string[] {
  return nodeUpdateArgv(n, 'node.session.scan', 'manual');
}

/** sysfs file of a SCSI host (an iSCSI session's) whose write of `- - <lun>` scans that one LUN. */
export function scsiHostScanPath(hostNumber: number, sysfs = '/sys'): string {
  if (!Number.isSafeInteger(hostNumber) || hostNumber < 0) throw invalidInput(`SCSI host number must be a non-negative integer, got ${String(hostNumber)}`);
  return `${sysfs}/class/scsi_host/host${hostNumber}/scan`;
}

/** What scsiHostScanPath takes to scan one LUN: any channel, any target id (an iSCSI session has one), that LUN. */
export function targetedScanText(lun: number): string {
  if (!Number.isSafeInteger(lun) || lun < 0) throw invalidInput(`LUN must be a non-negative integer, got ${String(lun)}`);
  return `- - ${lun}`;
}

export function loginArgv(n: IscsiNode): string[] {
  return [...nodeBase(n), '--login'];
}

export function logoutArgv(n: IscsiNode): string[] {
  return [...nodeBase(n), '--logout'];
}

export function nodeDeleteArgv(n: IscsiNode): string[] {
  return [...nodeBase(n), '--op', 'delete'];
}

/** Every session with its connections and SCSI devices (print level 3). */
export function sessionListArgv(): string[] {
  return [ISCSIADM, '-m', 'session', '-P', '3'];
}

/** Rescan the LUNs of one session (sizes of existing devices and new LUNs). */
export function sessionRescanArgv(sid: number): string[] {
  if (!Number.isSafeInteger(sid) || sid < 0) throw invalidInput(`iSCSI session id must be a non-negative integer, got ${String(sid)}`);
  return [ISCSIADM, '-m', 'session', '-r', String(sid), '--rescan'];
}

/** sysfs file whose write of `1` makes the SCSI layer re-read one device's capacity. */
export function scsiDeviceRescanPath(hctl: string, sysfs = '/sys'): string {
  assertHctl(hctl);
  return `${sysfs}/class/scsi_device/${hctl}/device/rescan`;
}

/** sysfs file whose write of `1` removes one SCSI device (os-brick does this before logout). */
export function scsiDeviceDeletePath(hctl: string, sysfs = '/sys'): string {
  assertHctl(hctl);
  return `${sysfs}/class/scsi_device/${hctl}/device/delete`;
}

export function assertHctl(hctl: unknown): asserts hctl is string {
  if (typeof hctl !== 'string' || !/^\d+:\d+:\d+:\d+$/.test(hctl)) throw invalidInput(`SCSI address must be H:C:T:L, got ${JSON.stringify(hctl)}`);
}

/** A kernel block device name as found under /sys/block (sdb, dm-3). */
export function assertBlockName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !/^(?:sd[a-z]+|dm-\d+)$/.test(name)) throw invalidInput(`not an sd/dm block device name: ${JSON.stringify(name)}`);
}

// ---- reading ---------------------------------------------------------------------------------

export interface ScsiDisk {
  /** H:C:T:L */
  hctl: string;
  lun: number;
  /** `sdb`; null when the LUN is known but has no block device (yet) */
  name: string | null;
  /** `running`, `offline`, `blocked`, ... */
  state: string | null;
}

export interface IscsiSession {
  sid: number;
  iqn: string;
  /** `host:port` of the connection (what the initiator dialled) */
  portal: string;
  /** target portal group tag */
  tpgt: number | null;
  iface: string | null;
  initiatorName: string | null;
  /** iSCSI Connection State: LOGGED IN, TRANSPORT WAIT, ... */
  connectionState: string | null;
  /** iSCSI Session State: LOGGED_IN, FAILED, FREE */
  sessionState: string | null;
  /** Internal iscsid Session State: NO CHANGE, REOPEN, ... */
  iscsidState: string | null;
  hostNumber: number | null;
  disks: ScsiDisk[];
}

/**
 * `iscsiadm -m session -P 3`. iscsiadm prints a tree and repeats a heading only when it changes
 * from the session before: `Target: <iqn> (non-flash)`, then `Current Portal: ip:port,tpgt`, then
 * the `Iface Name:`/`Iface Initiatorname:` block, then per session `SID: n`, its states, `Host
 * Number: h` and `scsiH Channel C Id T Lun: L` / `Attached scsi disk sdX  State: running` lines.
 * Two sessions on the same portal (two initiator interfaces, say) therefore share one portal
 * heading: a session begins at its SID line and takes the headings seen last. With no sessions
 * iscsiadm prints "No active sessions" (stderr, exit 21): empty list.
 */
export function parseSessionsP3(text: string): IscsiSession[] {
  const out: IscsiSession[] = [];
  const ctx: { iqn: string | null; portal: string; tpgt: number | null; iface: string | null; initiatorName: string | null } = {
    iqn: null,
    portal: '',
    tpgt: null,
    iface: null,
    initiatorName: null,
  };
  let cur: IscsiSession | null = null;
  let lastDisk: ScsiDisk | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^Target:\s+(\S+)/.exec(line))) {
      ctx.iqn = m[1] as string;
      cur = null;
    } else if ((m = /^Current Portal:\s+(\S+?)(?:,(\d+))?$/.exec(line))) {
      ctx.portal = m[1] as string;
      ctx.tpgt = m[2] !== undefined ? Number(m[2]) : null;
      cur = null;
    } else if ((m = /^Iface Name:\s+(\S+)$/.exec(line))) {
      ctx.iface = m[1] as string;
      cur = null;
    } else if ((m = /^Iface Initiatorname:\s+(\S+)$/.exec(line))) {
      ctx.initiatorName = m[1] as string;
    } else if ((m = /^SID:\s+(\d+)$/.exec(line))) {
      if (ctx.iqn === null) continue;
      cur = {
        sid: Number(m[1]),
        iqn: ctx.iqn,
        portal: ctx.portal,
        tpgt: ctx.tpgt,
        iface: ctx.iface,
        initiatorName: ctx.initiatorName,
        connectionState: null,
        sessionState: null,
        iscsidState: null,
        hostNumber: null,
        disks: [],
      };
      out.push(cur);
      lastDisk = null;
    } else if (!cur) {
      continue;
    } else if ((m = /^iSCSI Connection State:\s+(.+)$/.exec(line))) cur.connectionState = (m[1] as string).trim();
    else if ((m = /^iSCSI Session State:\s+(.+)$/.exec(line))) cur.sessionState = (m[1] as string).trim();
    else if ((m = /^Internal iscsid Session State:\s+(.+)$/.exec(line))) cur.iscsidState = (m[1] as string).trim();
    else if ((m = /^Host Number:\s+(\d+)/.exec(line))) cur.hostNumber = Number(m[1]);
    else if ((m = /^scsi(\d+)\s+Channel\s+(\d+)\s+Id\s+(\d+)\s+Lun:\s+(\d+)$/.exec(line))) {
      lastDisk = { hctl: `${Number(m[1])}:${Number(m[2])}:${Number(m[3])}:${Number(m[4])}`, lun: Number(m[4]), name: null, state: null };
      cur.disks.push(lastDisk);
    } else if ((m = /^Attached scsi disk\s+(\S+)\s+State:\s+(\S+)/.exec(line)) && lastDisk) {
      lastDisk.name = m[1] as string;
      lastDisk.state = m[2] as string;
    }
  }
  return out;
}

/** What an iscsiadm exit code means to an operator. */
export function describeIscsiadmExit(code: number): string {
  switch (code) {
    case ISCSI_ERR.LOGIN_AUTH_FAILED:
      return 'authorization failure: the target refused this initiator name or its CHAP credentials';
    case ISCSI_ERR.NO_OBJS_FOUND:
      return 'no matching node record or session';
    case ISCSI_ERR.SESS_EXISTS:
      return 'a session already exists';
    case ISCSI_ERR.TRANS:
    case ISCSI_ERR.TRANS_TIMEOUT:
    case ISCSI_ERR.PDU_TIMEOUT:
      return 'the portal did not answer (network, firewall, or no target listening there)';
    case ISCSI_ERR.FATAL_LOGIN:
      return 'the target rejected the login (no such target on that portal?)';
    case -1:
      return 'iscsiadm could not run, or was killed after its time limit';
    default:
      return `iscsiadm exit code ${code}`;
  }
}
