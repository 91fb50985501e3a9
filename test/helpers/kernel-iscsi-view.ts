// What the kernel's iSCSI initiator holds, read from sysfs (lab guests): the sessions of one initiator
// name to one target, their state, and the SCSI disks under them with LUN number, block device and
// the unit serial the kernel read from VPD page 0x80 when it scanned the LUN. Several "hosts" in one
// kernel are iscsiadm ifaces with their own initiator names, so a host is known by that name here.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';

const SESSIONS = '/sys/class/iscsi_session';

export interface Initiator {
  initiator: string;
}

export interface SessionDisk {
  lun: number;
  /** sdX */
  dev: string;
  serial: string;
  /** the SCSI device's sysfs directory (its `delete` drops the disk, as os-brick does on disconnect) */
  sdev: string;
}

function readTrim(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The kernel sessions (`sessionN`) of `h` to `iqn`, or to every target when `iqn` is omitted. */
export function sessionIds(h: Initiator, iqn?: string): string[] {
  if (!existsSync(SESSIONS)) return [];
  return readdirSync(SESSIONS).filter((s) => readTrim(join(SESSIONS, s, 'initiatorname')) === h.initiator && (iqn === undefined || readTrim(join(SESSIONS, s, 'targetname')) === iqn));
}

/** LOGGED_IN, FAILED or FREE (`''` once the session is gone). */
export function sessionState(sid: string): string {
  return readTrim(join(SESSIONS, sid, 'state'));
}

/** The target a session is logged in to. */
export function sessionTarget(sid: string): string {
  return readTrim(join(SESSIONS, sid, 'targetname'));
}

/** The serial in a raw VPD page 0x80: a 4-byte header, then the serial (LIO counts a NUL terminator into the page length: stripped). */
export function serialFromVpd80(page: Buffer): string {
  return page
    .subarray(4, 4 + (page[3] ?? 0))
    .toString('latin1')
    .replace(/\0+$/, '')
    .trim();
}

/** sg_inq asking the device for VPD page 0x80, raw */
const vpd80Argv = (dev: string): string[] => ['-p', '0x80', '-r', `/dev/${dev}`];

/** The unit serial the kernel read at scan time, or asked of the device now when sysfs has none. */
export function vpdSerial(scsiDir: string, dev: string): string {
  try {
    return serialFromVpd80(readFileSync(join(scsiDir, 'vpd_pg80')));
  } catch {
    try {
      return serialFromVpd80(execFileSync('sg_inq', vpd80Argv(dev), { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }));
    } catch {
      return '';
    }
  }
}

/**
 * The serial the target answers now (an INQUIRY for VPD page 0x80), or null when the device gives
 * no answer: a LUN the target no longer maps for this initiator (LIO: NON_EXISTENT_LUN), a session
 * in recovery past its replacement timeout.
 */
export async function liveSerial(dev: string): Promise<string | null> {
  const r = await execa('sg_inq', vpd80Argv(dev), { encoding: 'buffer', reject: false, timeout: 60_000, stdin: 'ignore' });
  return r.exitCode === 0 ? serialFromVpd80(Buffer.from(r.stdout as Uint8Array)) : null;
}

/** Every SCSI disk of one session, scanned by the kernel (stale ones included). */
export function sessionDisks(sid: string): SessionDisk[] {
  const dir = join(SESSIONS, sid, 'device');
  const out: SessionDisk[] = [];
  if (!existsSync(dir)) return out;
  for (const tgt of readdirSync(dir).filter((x) => x.startsWith('target'))) {
    for (const sdev of readdirSync(join(dir, tgt)).filter((x) => /^\d+:\d+:\d+:\d+$/.test(x))) {
      const scsiDir = join(dir, tgt, sdev);
      const blocks = existsSync(join(scsiDir, 'block')) ? readdirSync(join(scsiDir, 'block')) : [];
      if (blocks.length === 0) continue;
      out.push({ lun: Number(sdev.split(':')[3]), dev: blocks[0]!, serial: vpdSerial(scsiDir, blocks[0]!), sdev: scsiDir });
    }
  }
  return out;
}

/** What `h` sees through its sessions to `iqn`: LUN -> its disk. */
export function view(h: Initiator, iqn: string): Map<number, SessionDisk> {
  const out = new Map<number, SessionDisk>();
  for (const sid of sessionIds(h, iqn)) for (const d of sessionDisks(sid)) out.set(d.lun, d);
  return out;
}

/**
 * O_DIRECT read of the first `bytes` (default one block): the data, or null when the device gives
 * none. A full read must come back: after a rescan of a LUN the target no longer serves, the kernel
 * may keep the device with capacity 0, where a read ends at once without an error.
 */
export async function readHead(dev: string, bytes = 4096): Promise<Buffer | null> {
  const r = await execa('dd', [`if=/dev/${dev}`, `bs=${bytes}`, 'count=1', 'iflag=direct', 'status=none'], { encoding: 'buffer', reject: false, timeout: 120_000, stdin: 'ignore' });
  const out = Buffer.from(r.stdout as Uint8Array);
  return r.exitCode === 0 && out.length === bytes ? out : null;
}

/** Whether the host's device still gives data. */
export async function readable(dev: string): Promise<boolean> {
  return (await readHead(dev)) !== null;
}
