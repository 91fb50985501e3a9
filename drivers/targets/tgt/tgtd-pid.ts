// Which process serves a tgtd control port, and whether cinderblock started it.
//
// tgtd takes a POSIX write lock on /var/run/tgtd/socket.<control port>.lock for as long as it runs
// (tgt usr/mgmt.c ipc_init), and the kernel lists every lock with its holder in /proc/locks, so
// the holder is the serving tgtd. Its pid is what tells a restarted tgtd from the one the agent
// filled with targets: a tgtd killed and started again between two probes (systemd's tgt.service
// restarts it on failure within 100 ms) answers every probe, yet has lost every target. The unix
// socket file itself is no identity: a new tgtd gets the same inode back (measured, tgt 1.0.85).
import { readFile, stat } from 'node:fs/promises';
import { assertId } from '../validate.js';

export const TGTD_SOCKET_DIR = '/var/run/tgtd';

export function tgtdLockPath(controlPort: number, socketDir = TGTD_SOCKET_DIR): string {
  assertId(controlPort, 'tgtd control port', 0);
  return `${socketDir}/socket.${controlPort}.lock`;
}

/** The pid file ensureTgtd has a daemonised tgtd write (`tgtd -p`). */
export function cinderblockTgtdPidFile(controlPort: number): string {
  assertId(controlPort, 'tgtd control port', 0);
  return `/run/tgtd/cinderblock-${controlPort}.pid`;
}

/**
 * The pid holding a lock on the file with inode `inode`, from /proc/locks text:
 * `1: POSIX  ADVISORY  WRITE 15619 fe:00:16638547 0 0`. Waiters (`1: -> POSIX ...`) hold nothing.
 */
export function lockHolderPid(procLocks: string, inode: number): number | null {
  for (const line of procLocks.split('\n')) {
    if (line.includes('->')) continue;
    const words = line.trim().split(/\s+/);
    for (let i = 1; i < words.length; i++) {
      const m = /^[0-9a-f]+:[0-9a-f]+:(\d+)$/i.exec(words[i]!);
      if (!m || Number(m[1]) !== inode) continue;
      const pid = Number(words[i - 1]);
      if (Number.isSafeInteger(pid) && pid > 0) return pid;
    }
  }
  return null;
}

export interface ServingPidOptions {
  socketDir?: string;
  /** default /proc/locks */
  procLocksPath?: string;
}

/** The pid of the tgtd serving `controlPort`, or null when none holds its lock (or it cannot be told). */
export async function servingTgtdPid(controlPort: number, opts: ServingPidOptions = {}): Promise<number | null> {
  try {
    const { ino } = await stat(tgtdLockPath(controlPort, opts.socketDir));
    return lockHolderPid(await readFile(opts.procLocksPath ?? '/proc/locks', 'utf8'), ino);
  } catch {
    return null;
  }
}

/** The pid a pid file names, or null when it is missing or unreadable. */
export async function readPidFile(path: string): Promise<number | null> {
  try {
    const n = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
