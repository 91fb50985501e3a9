// Readers for tgtadm's `--op show` output (tgt 1.0.85; `tgt-admin --show` prints the same text
// as `tgtadm --mode target --op show`). The output is indented with four spaces per level:
//
//   Target <tid>: <iqn>
//       System information:      Driver, State
//       I_T nexus information:   I_T nexus: <n> / Initiator: <iqn> alias: <a> / Connection: <cid> / IP Address: <ip>
//       LUN information:         LUN: <n> / Type / SCSI ID / Size: <n> MB, Block size: <n> / Online / ...
//       Account information:     <user> [(outgoing)]
//       ACL information:         <address or initiator name>
//
// Parsing is tolerant of unknown lines (newer tgt adds fields) and strict about the ones it uses.

export interface TgtConnection {
  cid: number;
  /** peer address as tgtd prints it (`127.0.0.1`, `::1`) */
  address: string | null;
}

export interface TgtNexus {
  /** I_T nexus id (= session id for iSCSI) */
  nexus: number;
  initiator: string;
  alias: string | null;
  connections: TgtConnection[];
}

export interface TgtLun {
  lun: number;
  type: string;
  scsiId: string | null;
  scsiSn: string | null;
  /** as printed: megabytes (10^6) rounded, so only good for display */
  sizeMb: number | null;
  blockSize: number | null;
  online: boolean | null;
  readonly: boolean | null;
  thinProvisioning: boolean | null;
  backingStoreType: string | null;
  /** null for `None` (the controller LUN 0) */
  backingStorePath: string | null;
  backingStoreFlags: string[];
}

export interface TgtTargetInfo {
  tid: number;
  iqn: string;
  driver: string | null;
  state: string | null;
  nexuses: TgtNexus[];
  luns: TgtLun[];
  /** incoming (CHAP) accounts bound to the target */
  accounts: string[];
  outgoingAccounts: string[];
  /** initiator addresses (`ALL`, `10.0.0.0/24`) and initiator names, in tgtd's order */
  acls: string[];
}

export interface TgtSystemInfo {
  state: string | null;
  llds: Record<string, string>;
  backingStores: string[];
}

export interface TgtPortal {
  /** IPv6 without brackets */
  host: string;
  port: number;
  tpgt: number;
}

export interface TgtSessionConnection {
  sid: number;
  cid: number;
  initiator: string | null;
  address: string | null;
}

function indentOf(line: string): number {
  const m = /^ */.exec(line);
  return m ? m[0].length : 0;
}

function yesNo(v: string): boolean | null {
  if (v === 'Yes') return true;
  if (v === 'No') return false;
  return null;
}

function emptyLun(lun: number): TgtLun {
  return {
    lun,
    type: '',
    scsiId: null,
    scsiSn: null,
    sizeMb: null,
    blockSize: null,
    online: null,
    readonly: null,
    thinProvisioning: null,
    backingStoreType: null,
    backingStorePath: null,
    backingStoreFlags: [],
  };
}

function applyLunField(lun: TgtLun, key: string, value: string): void {
  switch (key) {
    case 'Type':
      lun.type = value;
      break;
    case 'SCSI ID':
      lun.scsiId = value;
      break;
    case 'SCSI SN':
      lun.scsiSn = value;
      break;
    case 'Size': {
      const m = /^(\d+) MB, Block size: (\d+)$/.exec(value);
      if (m) {
        lun.sizeMb = Number(m[1]);
        lun.blockSize = Number(m[2]);
      }
      break;
    }
    case 'Online':
      lun.online = yesNo(value);
      break;
    case 'Readonly':
      lun.readonly = yesNo(value);
      break;
    case 'Thin-provisioning':
      lun.thinProvisioning = yesNo(value);
      break;
    case 'Backing store type':
      lun.backingStoreType = value;
      break;
    case 'Backing store path':
      lun.backingStorePath = value === 'None' || value === '' ? null : value;
      break;
    case 'Backing store flags':
      lun.backingStoreFlags = value === '' ? [] : value.split(/[:,\s]+/).filter(Boolean);
      break;
    default:
      break;
  }
}

type Section = 'system' | 'nexus' | 'lun' | 'account' | 'acl' | null;

/** `tgtadm --lld iscsi --mode target --op show` (all targets, or one with --tid). */
export function parseShowTargets(text: string): TgtTargetInfo[] {
  const targets: TgtTargetInfo[] = [];
  let t: TgtTargetInfo | null = null;
  let section: Section = null;
  let nexus: TgtNexus | null = null;
  let lun: TgtLun | null = null;

  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (line.trim() === '') continue;
    const head = /^Target (\d+): (\S+)$/.exec(line);
    if (head) {
      t = {
        tid: Number(head[1]),
        iqn: head[2] as string,
        driver: null,
        state: null,
        nexuses: [],
        luns: [],
        accounts: [],
        outgoingAccounts: [],
        acls: [],
      };
      targets.push(t);
      section = null;
      nexus = null;
      lun = null;
      continue;
    }
    if (!t) continue;
    const indent = indentOf(line);
    const body = line.trim();
    if (indent === 4) {
      nexus = null;
      lun = null;
      section =
        body === 'System information:'
          ? 'system'
          : body === 'I_T nexus information:'
            ? 'nexus'
            : body === 'LUN information:'
              ? 'lun'
              : body === 'Account information:'
                ? 'account'
                : body === 'ACL information:'
                  ? 'acl'
                  : null;
      continue;
    }
    // `Key: value` (a value may be empty: "Backing store flags: ")
    const kv = /^([^:]+):\s?(.*)$/.exec(body);
    switch (section) {
      case 'system':
        if (kv && kv[1] === 'Driver') t.driver = (kv[2] ?? '').trim();
        if (kv && kv[1] === 'State') t.state = (kv[2] ?? '').trim();
        break;
      case 'nexus': {
        const nx = /^I_T nexus: (\d+)$/.exec(body);
        if (nx) {
          nexus = { nexus: Number(nx[1]), initiator: '', alias: null, connections: [] };
          t.nexuses.push(nexus);
          break;
        }
        if (!nexus) break;
        const ini = /^Initiator: (\S+)(?: alias: (.*))?$/.exec(body);
        if (ini) {
          nexus.initiator = ini[1] as string;
          nexus.alias = ini[2] === undefined || ini[2] === 'none' ? null : ini[2];
          break;
        }
        const conn = /^Connection: (\d+)$/.exec(body);
        if (conn) {
          nexus.connections.push({ cid: Number(conn[1]), address: null });
          break;
        }
        const ip = /^(?:RDMA )?IP Address: (.+)$/.exec(body);
        const last = nexus.connections[nexus.connections.length - 1];
        if (ip && last) last.address = (ip[1] as string).trim();
        break;
      }
      case 'lun': {
        const l = /^LUN: (\d+)$/.exec(body);
        if (l) {
          lun = emptyLun(Number(l[1]));
          t.luns.push(lun);
          break;
        }
        if (lun && kv) applyLunField(lun, (kv[1] as string).trim(), (kv[2] ?? '').trim());
        break;
      }
      case 'account': {
        const out = /^(\S+) \(outgoing\)$/.exec(body);
        if (out) t.outgoingAccounts.push(out[1] as string);
        else t.accounts.push(body);
        break;
      }
      case 'acl':
        t.acls.push(body);
        break;
      default:
        break;
    }
  }
  return targets;
}

/** `tgtadm --lld iscsi --mode account --op show`: every account tgtd knows. */
export function parseShowAccounts(text: string): string[] {
  const out: string[] = [];
  let inList = false;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.trim() === '') continue;
    if (/^Account list:$/.test(line)) {
      inList = true;
      continue;
    }
    if (inList && /^\s+\S/.test(line)) out.push(line.trim().replace(/ \(outgoing\)$/, ''));
  }
  return out;
}

/** `tgtadm --mode sys --op show` */
export function parseShowSystem(text: string): TgtSystemInfo {
  const info: TgtSystemInfo = { state: null, llds: {}, backingStores: [] };
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.trim() === '') continue;
    if (!/^\s/.test(line)) {
      section = line.replace(/:$/, '');
      continue;
    }
    const body = line.trim();
    if (section === 'System') {
      const m = /^State: (.+)$/.exec(body);
      if (m) info.state = m[1] as string;
    } else if (section === 'LLDs') {
      const m = /^(\S+): (.+)$/.exec(body);
      if (m) info.llds[m[1] as string] = m[2] as string;
    } else if (section === 'Backing stores') {
      info.backingStores.push((body.split(' ')[0] as string).trim());
    }
  }
  return info;
}

/** `tgtadm --lld iscsi --mode portal --op show`: `Portal: 127.0.0.1:3260,1`, `Portal: [::1]:3260,1` */
export function parseShowPortals(text: string): TgtPortal[] {
  const out: TgtPortal[] = [];
  for (const raw of text.split('\n')) {
    const m = /^Portal: (?:\[([^\]]+)\]|([^:\s]+)):(\d+),(\d+)$/.exec(raw.trim());
    if (m) out.push({ host: (m[1] ?? m[2]) as string, port: Number(m[3]), tpgt: Number(m[4]) });
  }
  return out;
}

/** `tgtadm --lld iscsi --mode conn --op show --tid <tid>` */
export function parseShowConnections(text: string): TgtSessionConnection[] {
  const out: TgtSessionConnection[] = [];
  let sid: number | null = null;
  let cur: TgtSessionConnection | null = null;
  for (const raw of text.split('\n')) {
    const body = raw.trim();
    if (body === '') continue;
    const s = /^Session: (\d+)$/.exec(body);
    if (s) {
      sid = Number(s[1]);
      cur = null;
      continue;
    }
    const c = /^Connection: (\d+)$/.exec(body);
    if (c && sid !== null) {
      cur = { sid, cid: Number(c[1]), initiator: null, address: null };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    const i = /^Initiator: (\S+)/.exec(body);
    if (i) cur.initiator = i[1] as string;
    const a = /^(?:RDMA )?IP Address: (.+)$/.exec(body);
    if (a) cur.address = (a[1] as string).trim();
  }
  return out;
}

/** The target with this IQN in a parsed show, if any. */
export function findTarget(targets: readonly TgtTargetInfo[], iqn: string): TgtTargetInfo | undefined {
  return targets.find((t) => t.iqn === iqn);
}

// ---- one target out of the whole listing ------------------------------------------------------
//
// tgtadm cannot show one target's LUNs, accounts and ACLs (`--tid` shows only its iSCSI
// parameters), so every lookup reads the whole listing: with 300 targets 340 KB, whose full parse
// cost more than the rest of an attach put together and left megabytes of garbage per call. These
// find the one target a caller needs in the text and parse only its block; the listing is still
// read whole (what tgtd itself costs per call is the floor: bench/tgt-scale-probe.mts).

/** The end of the line that starts at or contains `at` (the offset of its `\n`, or the text's length). */
function lineEnd(text: string, at: number): number {
  const nl = text.indexOf('\n', at);
  return nl < 0 ? text.length : nl;
}

/** Whether the line `text[start, end)` is a target header, `Target <tid>: <iqn>` (trailing blanks allowed). */
function isHeader(text: string, start: number, end: number): boolean {
  return /^Target \d+: \S+\s*$/.test(text.slice(start, end));
}

/** Where the line `Target <tid>: <iqn>` starts in a listing, or -1. */
function headerOffset(text: string, iqn: string): number {
  const needle = `: ${iqn}`;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const start = text.lastIndexOf('\n', at) + 1;
    const end = lineEnd(text, at);
    // the IQN must end the line (`…volume-1` is not `…volume-10`), and the line must be a header
    if (text.slice(at + needle.length, end).trim() === '' && /^Target \d+$/.test(text.slice(start, at))) return start;
  }
  return -1;
}

/** The target with this IQN in `tgtadm --mode target --op show` text, parsing only its block. */
export function findTargetInShow(text: string, iqn: string): TgtTargetInfo | undefined {
  const start = headerOffset(text, iqn);
  if (start < 0) return undefined;
  let end = text.length;
  // the block runs to the next header (every other line of a block is indented)
  for (let at = text.indexOf('\nTarget ', start); at >= 0; at = text.indexOf('\nTarget ', at + 1)) {
    if (isHeader(text, at + 1, lineEnd(text, at + 1))) {
      end = at + 1;
      break;
    }
  }
  return parseShowTargets(text.slice(start, end)).find((t) => t.iqn === iqn);
}

/** tid and IQN of every target in a listing, from its header lines alone. */
export function targetHeaders(text: string): Array<{ tid: number; iqn: string }> {
  const out: Array<{ tid: number; iqn: string }> = [];
  for (const m of text.matchAll(/^Target (\d+): (\S+)\s*$/gm)) out.push({ tid: Number(m[1]), iqn: m[2] as string });
  return out;
}

/**
 * One `tgtadm --mode target --op show` as read: the text, with lookups that parse only what they
 * need. The whole parse is done at most once, and only when a caller asks for every target.
 */
export class TargetListing {
  private parsed: TgtTargetInfo[] | null = null;

  constructor(readonly text: string) {}

  /** The target with this IQN (only its block is parsed). */
  find(iqn: string): TgtTargetInfo | undefined {
    if (this.parsed) return findTarget(this.parsed, iqn);
    return findTargetInShow(this.text, iqn);
  }

  headers(): Array<{ tid: number; iqn: string }> {
    return targetHeaders(this.text);
  }

  /** The lowest tid above every tid in use. */
  nextFreeTid(): number {
    return this.headers().reduce((max, h) => Math.max(max, h.tid), 0) + 1;
  }

  /** Every target, fully parsed (memoised). */
  all(): TgtTargetInfo[] {
    this.parsed ??= parseShowTargets(this.text);
    return this.parsed;
  }

  /**
   * Whether a target other than `exceptIqn` has `user` bound (incoming or outgoing). A user name
   * that appears nowhere in the text is answered without parsing.
   */
  accountInUse(user: string, exceptIqn?: string): boolean {
    if (!this.text.includes(user)) return false;
    return this.all().some((t) => t.iqn !== exceptIqn && (t.accounts.includes(user) || t.outgoingAccounts.includes(user)));
  }
}

/** The lowest tid above every tid in use (tgt-admin hands out tids the same way). */
export function nextFreeTid(targets: readonly TgtTargetInfo[]): number {
  return targets.reduce((max, t) => Math.max(max, t.tid), 0) + 1;
}

/** ACL entries that are initiator names (the rest are addresses, `ALL` or networks). */
export function isInitiatorNameAcl(entry: string): boolean {
  return /^(iqn|eui|naa)\./i.test(entry);
}
