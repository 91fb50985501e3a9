// How the attach soak's hosts reach the targets: one interface, two kinds of initiator.
//   - libiscsi (this file): each sample logs in afresh with qemu-io / iscsi-ls, as the host and with
//     the credentials given; nothing is kept between samples. Runs anywhere (tgtd on the build host).
//   - the kernel's (soak-kernel-initiator.ts, lab guest): each host is an iscsiadm iface with its own
//     initiator name, keeping its sessions and its SCSI disks between samples as a compute host
//     does, so stale devices, rescans and re-logins are exercised as well.
// The soak's model (who is attached when) judges what a read came to; the initiator only says it.
import { iscsiLs, iscsiSerial, qemuIo, type ToolResult } from '../helpers/libiscsi.js';

export interface SoakHost {
  /** the name the soak knows the host by (a, b, c) */
  name: string;
  initiator: string;
}

/**
 * refused: the target refused the login: 515 (tgt: the ACL does not admit this initiator), 514 (LIO:
 * no node ACL for it) or 513 (CHAP);
 * lun-refused: the login went through (the host has an ACL on its host target for other volumes)
 * but the LUN is not mapped for it: LIO answers LOGICAL UNIT NOT SUPPORTED (dmesg: NON_EXISTENT_LUN
 * Access), met while opening the LUN, as an I/O error on the read, or (kernel) as no disk for that
 * LUN after a rescan or a disk that gives no data. No byte of data comes back; counted with the
 * refusals;
 * no-target: no target of that IQN serves (tgtd down, the target removed; kernel: the session to it
 * is in recovery);
 * opened-read-failed (libiscsi): the LUN opened, then the read failed: counted as data reached.
 */
export type ReadOutcome = 'read-ok' | 'read-mismatch' | 'opened-read-failed' | 'refused' | 'lun-refused' | 'no-target' | 'error';
export const isRefusal = (r: ReadOutcome): boolean => r === 'refused' || r === 'lun-refused';
/** outcomes in which bytes of the volume (or what the initiator took for it) came back */
export const reachedData = (r: ReadOutcome): boolean => r === 'read-ok' || r === 'read-mismatch' || r === 'opened-read-failed';

export interface SoakRead {
  read: ReadOutcome;
  ms: number;
  /** what the tools said, for the logs */
  text: string;
}

export interface SoakDiscovery {
  /** every target the portal named, with the LUNs the host could list on it and each one's serial (null: none answered) */
  targets: Array<{ iqn: string; luns: Array<{ lun: number; serial: string | null }> }>;
}

/** connection_info's `data` (or the attachment's connection_info itself) */
export type IscsiData = Record<string, any>;

export interface SoakInitiator {
  label: string;
  /** the hosts keep sessions and disks between samples (the kernel's): the end's sweep then runs twice, see dropLostSessions */
  keepsSessions: boolean;
  /** before the first sample */
  prepare(hosts: readonly SoakHost[]): Promise<void>;
  /** host `h` reads the first 64 KiB of the LUN `d` names, with `d`'s credentials, and checks every byte is `pattern` */
  read(h: SoakHost, d: IscsiData, pattern: number): Promise<SoakRead>;
  /** host `h` discovers at `d`'s portal and lists the LUNs of every target it can log in to (with `d`'s credentials), by serial */
  discover(h: SoakHost, d: IscsiData, skipLun: number | null): Promise<SoakDiscovery>;
  /** each host logs out of the sessions it lost (its target gone), as a host gives up; the next read logs in afresh */
  dropLostSessions(): Promise<void>;
  /** at the end, as each host's disconnect: logs out, drops the disks; says what was left */
  disconnectAll(): Promise<{ sessions_left: number; disks_left: number; notes: string[] }>;
}

/** a pattern byte as qemu-io's -P takes it */
export const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** What qemu-io's read came to. */
export function classifyQemuRead(r: ToolResult): ReadOutcome {
  const text = `${r.stdout}\n${r.stderr}`;
  if (/Pattern verification failed/i.test(text)) return 'read-mismatch';
  if (r.outcome === 'target-not-found' || r.outcome === 'auth-failure') return 'refused';
  if (/iscsi_service_reconnect_if_loggedin/.test(text)) return 'no-target';
  if (/LOGICAL_UNIT_NOT_SUPP/.test(text)) return 'lun-refused';
  if (/can't open|could not open|Failed to connect|Failed to login|iscsi_service|Connection refused/i.test(text)) return 'error';
  if (r.exitCode === 0 && /read \d+\/\d+ bytes at offset/.test(text)) return 'read-ok';
  if (/read failed: Input\/output error/.test(text) && !/read \d+\/\d+ bytes at offset/.test(text)) return 'lun-refused';
  // no "can't open": the login went through, then the read failed
  return 'opened-read-failed';
}

/** libiscsi: a fresh login per sample (qemu-io for reads, iscsi-ls + an INQUIRY per LUN for discovery). */
export function libiscsiInitiator(): SoakInitiator {
  return {
    label: 'libiscsi (a fresh login per sample)',
    keepsSessions: false,
    async prepare() {
      // nothing is kept between samples
    },
    async dropLostSessions() {
      // nothing is kept between samples
    },
    async read(h, d, pattern) {
      const res = await qemuIo(
        { portal: d.target_portal, iqn: d.target_iqn, lun: d.target_lun, initiator: h.initiator, user: d.auth_username, password: d.auth_password },
        `read -P ${hex(pattern)} 0 64k`,
      );
      return { read: classifyQemuRead(res), ms: res.ms, text: `${res.stdout}\n${res.stderr}`.trim() };
    },
    async discover(h, d, skipLun) {
      const creds = { initiator: h.initiator, user: d.auth_username, password: d.auth_password };
      const ls = await iscsiLs({ portal: d.target_portal, ...creds });
      const targets: SoakDiscovery['targets'] = [];
      for (const t of ls.targets) {
        const luns: SoakDiscovery['targets'][number]['luns'] = [];
        // another host's target: its LUNs are listed as they are (any is an exposure), not read
        if (t.iqn === d.target_iqn) {
          for (const l of t.luns) {
            if (l.lun === skipLun) continue;
            luns.push({ lun: l.lun, serial: (await iscsiSerial({ portal: d.target_portal, iqn: t.iqn, lun: l.lun, ...creds })).serial });
          }
        } else luns.push(...t.luns.map((l) => ({ lun: l.lun, serial: null })));
        targets.push({ iqn: t.iqn, luns });
      }
      return { targets };
    },
    async disconnectAll() {
      return { sessions_left: 0, disks_left: 0, notes: [] };
    },
  };
}
