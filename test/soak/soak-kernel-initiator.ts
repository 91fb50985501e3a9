// The attach soak's hosts as the kernel's iSCSI initiator (lab guest): each host is an iscsiadm iface
// with its own initiator name, so it has its own kernel sessions and its own SCSI disks, and it keeps
// them between samples as a compute host does. What that adds to libiscsi's fresh logins:
//   - a disk scanned for a LUN stays on the host after the LUN is unmapped (a stale device, the
//     2004555 case); reading it must give nothing, and if its number ever came back for another
//     volume the read would show that volume's pattern (a corruption) and discovery its serial;
//   - new LUNs are found by a rescan of the session already logged in, as os-brick does;
//   - the host target lost and restored under live sessions: iscsid's recovery logs back in with the
//     CHAP of the node record, and the old disks must come back with the same numbers.
// A host gives a session up (logs out, as os-brick's disconnect of its last volume does) after it has
// been out of LOGGED_IN for 20 s; the next sample logs in afresh, which must then be refused unless
// the host is attached. At the end every host logs out and drops its ifaces: no session and no disk
// may be left.
//
// Network namespaces would make each host's TCP stack its own too, but the kernel's iSCSI transport
// talks to iscsid over NETLINK_ISCSI, which exists only in the initial network namespace (Linux 6.1;
// the per-namespace work posted upstream in 2023 was not merged): an iscsid in another namespace
// cannot create its socket. netnsIscsiProbe() shows it on the running kernel.
import { appendFileSync, existsSync, mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { KeyedMutex } from '../../src/concurrency/keyed-mutex.js';
import { chapSettings, ensureIface, iscsiadm, nodeArgs, nodeRecord, type IscsiTarget } from '../helpers/iscsiadm.js';
import { liveSerial, readHead, sessionDisks, sessionIds, sessionState, sessionTarget, type SessionDisk } from '../helpers/kernel-iscsi-view.js';
import type { IscsiData, ReadOutcome, SoakDiscovery, SoakHost, SoakInitiator, SoakRead } from './soak-initiator.js';

/** how long a lost session holds I/O before failing it (open-iscsi's default is 120 s) */
const REPLACEMENT_TIMEOUT_S = 5;
/** a session out of LOGGED_IN this long is given up: logged out */
const GIVE_UP_MS = 20_000;
/**
 * Node record defaults for the soak's records (iscsid.conf is read by iscsiadm when it makes a
 * record; the lab guest's /etc is a tmpfs overlay): every login uses CHAP, a refused login fails at
 * once rather than retrying, and a lost session fails its disks' I/O after 5 s.
 */
const RECORD_DEFAULTS = [
  'node.session.auth.authmethod = CHAP',
  'node.session.initial_login_retry_max = 1',
  'node.conn[0].timeo.login_timeout = 5',
  `node.session.timeo.replacement_timeout = ${REPLACEMENT_TIMEOUT_S}`,
];
const READ_BYTES = 65536;

const ifaceOf = (h: SoakHost): string => `soak-${h.name}`;
const sidNumber = (sid: string): string => sid.replace('session', '');

/** What iscsiadm's failed login came to: the target's refusal (ACL, CHAP, no such target) or no answer. */
export function classifyLogin(out: string): ReadOutcome {
  // 24: authorization failure (LIO: no node ACL for the initiator, or CHAP refused); 19: a
  // non-retryable login failure (the target does not exist: status 0x0203)
  if (/authorization failure|non-retryable|\(24 -|\(19 -/i.test(out)) return 'refused';
  if (/connection refused|could not connect|timed out|\(8 -|\(4 -/i.test(out)) return 'no-target';
  return 'error';
}

/** Every sd disk whose SCSI host is an iSCSI session (after the end's logouts: none may be left). */
function iscsiDisks(): string[] {
  if (!existsSync('/sys/block')) return [];
  return readdirSync('/sys/block')
    .filter((d) => d.startsWith('sd'))
    .filter((d) => {
      try {
        return /\/session\d+\//.test(realpathSync(`/sys/block/${d}`));
      } catch {
        return false;
      }
    });
}

/**
 * Whether the kernel's iSCSI transport answers on NETLINK_ISCSI (protocol 8), the channel iscsid
 * drives sessions through, in the initial network namespace and in a new one. The socket itself can
 * be made anywhere (netlink protocols are registered globally); a message to the kernel (port 0)
 * finds a receiver only where the transport made its kernel socket. The message is a bare header,
 * shorter than any iSCSI event, which the transport skips. One line for the run's report.
 */
export async function netnsIscsiProbe(): Promise<string> {
  const py = [
    '-c',
    [
      'import socket, struct',
      's = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 8)',
      'try:',
      '    s.sendto(struct.pack("=IHHII", 16, 0, 1, 1, 0), (0, 0))',
      '    print("the kernel transport takes the message")',
      'except OSError as e:',
      '    print(e)',
    ].join('\n'),
  ];
  const here = await execa('python3', py, { reject: false });
  const there = await execa('unshare', ['--net', 'python3', ...py], { reject: false });
  return `NETLINK_ISCSI, a message to the kernel: from the initial network namespace: ${String(here.stdout || here.stderr).trim()}; from a new network namespace: ${String(there.stdout || there.stderr).trim()}`;
}

export function kernelInitiator(): SoakInitiator {
  const hosts: SoakHost[] = [];
  /**
   * One iscsiadm conversation per host at a time (its watcher and the end's sweep may overlap), and
   * node records of every host made and deleted one at a time: records of one target share a
   * directory (nodes/<iqn>/<portal>/<iface>) that iscsiadm removes with its last record, so another
   * host's record made meanwhile would be lost ("No records found").
   */
  const locks = new KeyedMutex();
  const serialized = <T>(h: SoakHost, fn: () => Promise<T>): Promise<T> => locks.run(`host ${h.name}`, fn);
  const recordsLocked = <T>(fn: () => Promise<T>): Promise<T> => locks.run('node records', fn);
  const notLoggedInSince = new Map<string, number>();
  const deleteRecord = (t: IscsiTarget) => recordsLocked(() => iscsiadm(...nodeArgs(t), '-o', 'delete'));

  /** logs out of a session that is lost (or was lost for long) and deletes its record */
  async function giveUp(h: SoakHost, sid: string): Promise<void> {
    const iqn = sessionTarget(sid);
    await iscsiadm('-m', 'session', '-r', sidNumber(sid), '-u');
    notLoggedInSince.delete(sid);
    // the host's records of that target, whatever the portal
    if (iqn) await recordsLocked(() => iscsiadm('-m', 'node', '-T', iqn, '-I', ifaceOf(h), '-o', 'delete'));
  }

  /** the session of `h` to `d`'s target: logged in now, or why not */
  async function session(h: SoakHost, d: IscsiData): Promise<{ sid: string; state: string } | { sid: null; outcome: ReadOutcome; text: string }> {
    const iqn = String(d.target_iqn);
    const portal = String(d.target_portal);
    for (const sid of sessionIds(h, iqn)) {
      const state = sessionState(sid);
      if (state === 'LOGGED_IN') {
        notLoggedInSince.delete(sid);
        return { sid, state };
      }
      const since = notLoggedInSince.get(sid) ?? Date.now();
      notLoggedInSince.set(sid, since);
      if (Date.now() - since < GIVE_UP_MS) return { sid, state };
      // gone for longer than a host waits (its target deleted with its last LUN): give it up
      await giveUp(h, sid);
    }
    // no session: a node record with these credentials, and a login
    const t = { portal, iqn, iface: ifaceOf(h), user: String(d.auth_username), password: String(d.auth_password) };
    let out: string;
    try {
      await recordsLocked(() => nodeRecord(t, chapSettings(t)));
      const r = await iscsiadm(...nodeArgs(t), '-l');
      out = r.out;
      const sid = r.code === 0 ? sessionIds(h, iqn)[0] : undefined;
      if (sid) return { sid, state: sessionState(sid) };
    } catch (err) {
      out = String((err as Error).message);
    }
    // a refused login leaves no record behind
    await deleteRecord(t);
    return { sid: null, outcome: classifyLogin(out), text: out.replace(/\s+/g, ' ').slice(0, 300) };
  }

  const diskFor = (sid: string, lun: number): SessionDisk | undefined => sessionDisks(sid).find((x) => x.lun === lun);

  /** a rescan of the session (new LUNs get disks), then up to 3 s for the disk of `lun` */
  async function rescanFor(sid: string, lun: number): Promise<SessionDisk | undefined> {
    await iscsiadm('-m', 'session', '-r', sidNumber(sid), '-R');
    for (let i = 0; i < 15; i++) {
      const disk = diskFor(sid, lun);
      if (disk) return disk;
      await new Promise((r) => setTimeout(r, 200));
    }
    return undefined;
  }

  async function read(h: SoakHost, d: IscsiData, pattern: number): Promise<SoakRead> {
    const t0 = performance.now();
    const done = (read: ReadOutcome, text: string): SoakRead => ({ read, ms: Math.round(performance.now() - t0), text });
    const lun = Number(d.target_lun);
    const s = await session(h, d);
    if (s.sid === null) return done(s.outcome, s.text);
    // the disk the host already has for that number (a stale one included), else a rescan
    const disk = diskFor(s.sid, lun) ?? (s.state === 'LOGGED_IN' ? await rescanFor(s.sid, lun) : undefined);
    if (!disk) return done(s.state === 'LOGGED_IN' ? 'lun-refused' : 'no-target', `${s.sid} ${s.state}: no disk for LUN ${lun}`);
    const data = await readHead(disk.dev, READ_BYTES);
    if (!data) return done(s.state === 'LOGGED_IN' ? 'lun-refused' : 'no-target', `${s.sid} ${s.state}: /dev/${disk.dev} (LUN ${lun}) gives no data`);
    return data.every((b) => b === pattern) ? done('read-ok', `/dev/${disk.dev}`) : done('read-mismatch', `/dev/${disk.dev} (LUN ${lun}, scanned serial ${disk.serial}): first byte 0x${(data[0] ?? 0).toString(16)}`);
  }

  /** the LUNs `sid` serves now, by the serial each disk answers (stale disks answer nothing) */
  async function liveLuns(sid: string, skipLun: number | null): Promise<SoakDiscovery['targets'][number]['luns']> {
    await iscsiadm('-m', 'session', '-r', sidNumber(sid), '-R');
    const luns: SoakDiscovery['targets'][number]['luns'] = [];
    for (const disk of sessionDisks(sid)) {
      if (disk.lun === skipLun) continue;
      const serial = await liveSerial(disk.dev);
      if (serial !== null) luns.push({ lun: disk.lun, serial });
    }
    return luns;
  }

  async function discover(h: SoakHost, d: IscsiData, skipLun: number | null): Promise<SoakDiscovery> {
    const portal = String(d.target_portal);
    // SendTargets as this host (LIO names every target on the portal, whatever its ACLs)
    const disc = await iscsiadm('-m', 'discovery', '-t', 'st', '-p', portal, '-I', ifaceOf(h), '-o', 'nonpersistent');
    const iqns = [...new Set([...disc.out.matchAll(/^\S+,\d+ (iqn\.\S+)$/gm)].map((m) => m[1]!))];
    const targets: SoakDiscovery['targets'] = [];
    for (const iqn of iqns) {
      const own = iqn === String(d.target_iqn);
      const had = sessionIds(h, iqn).length > 0;
      // another host's target: a login with this host's credentials must be refused
      const s = await session(h, { ...d, target_iqn: iqn });
      if (s.sid === null || s.state !== 'LOGGED_IN') {
        targets.push({ iqn, luns: [] });
        continue;
      }
      targets.push({ iqn, luns: await liveLuns(s.sid, own ? skipLun : null) });
      if (!own && !had) await giveUp(h, s.sid);
    }
    return { targets };
  }

  return {
    label: 'the kernel initiator (iscsiadm ifaces: sessions and disks kept between samples)',
    keepsSessions: true,
    async prepare(hs) {
      hosts.push(...hs);
      appendFileSync('/etc/iscsi/iscsid.conf', `\n# the attach soak's node records\n${RECORD_DEFAULTS.join('\n')}\n`);
      if ((await execa('pgrep', ['-x', 'iscsid'], { reject: false })).exitCode !== 0) {
        mkdirSync('/etc/iscsi', { recursive: true });
        if (!existsSync('/etc/iscsi/initiatorname.iscsi')) writeFileSync('/etc/iscsi/initiatorname.iscsi', 'InitiatorName=iqn.2024-01.org.example:soak-default\n');
        await execa('iscsid', []);
      }
      for (const h of hs) await ensureIface(ifaceOf(h), h.initiator);
    },
    read: (h, d, pattern) => serialized(h, () => read(h, d, pattern)),
    async dropLostSessions() {
      for (const h of hosts) {
        await serialized(h, async () => {
          for (const sid of sessionIds(h)) if (sessionState(sid) !== 'LOGGED_IN') await giveUp(h, sid);
        });
      }
    },
    discover: (h, d, skipLun) => serialized(h, () => discover(h, d, skipLun)),
    async disconnectAll() {
      const notes: string[] = [];
      for (const h of hosts) {
        await serialized(h, async () => {
          for (const sid of sessionIds(h)) {
            const r = await iscsiadm('-m', 'session', '-r', sidNumber(sid), '-u');
            if (r.code !== 0) notes.push(`${h.name}: logout of ${sid}: ${r.out.slice(0, 200)}`);
          }
          await recordsLocked(() => iscsiadm('-m', 'node', '-I', ifaceOf(h), '-o', 'delete'));
          await iscsiadm('-m', 'iface', '-I', ifaceOf(h), '-o', 'delete');
        });
      }
      const sessionsLeft = hosts.reduce((n, h) => n + sessionIds(h).length, 0);
      const disks = iscsiDisks();
      if (disks.length) notes.push(`iSCSI disks left: ${disks.join(', ')}`);
      return { sessions_left: sessionsLeft, disks_left: disks.length, notes };
    },
  };
}
