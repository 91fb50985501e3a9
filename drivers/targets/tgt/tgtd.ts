// Make sure a tgtd answers on the configured control port and listens on the configured portals.
// On a host where the tgt package's service runs tgtd this only checks it (and adds a missing
// portal); otherwise it starts tgtd itself: daemonised by default (tgtd forks, `-p` records the
// pid), or in the foreground (`-f`) as a child the caller supervises.
//
// Measured with tgt 1.0.85: tgtd answers `tgtadm --op show --mode sys` within ~15 ms of exec; it
// ignores SIGTERM (stop it with SIGKILL by pid); a killed tgtd leaves /var/run/tgtd/socket.N
// behind, which a new tgtd on the same control port simply replaces.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from '../../../src/log.js';
import { processRunner, startProcess, type CommandRunner, type StartedProcess } from '../../../src/exec/run-command.js';
import { assertPort, formatPortal, parsePortal, type Portal } from '../../../src/iscsi/index.js';
import { assertDirectory, assertId } from '../validate.js';
import { Tgtadm } from './tgtadm.js';
import { cinderblockTgtdPidFile } from './tgtd-pid.js';
import type { TgtPortal } from './tgtadm-parse.js';

export interface EnsureTgtdOptions {
  /** `ip:port`, `[v6]:port` or {host, port}; the first is given to tgtd at start, the rest added */
  portal: string | Portal | ReadonlyArray<string | Portal>;
  /** `tgtd -C` / `tgtadm -C`; default 0 (tgt's default socket) */
  controlPort?: number;
  /** runs tgtadm and the daemonising tgtd; default: the one process runner (src/exec) */
  runner?: CommandRunner;
  /** default `tgtd` from PATH */
  tgtdPath?: string;
  /** keep tgtd in the foreground as a child of this process (`-f`); default false (daemonise) */
  foreground?: boolean;
  /** foreground only: append tgtd's output here (default: discarded) */
  logFile?: string;
  /** daemon only: where tgtd writes its pid (default /run/tgtd/cinderblock-<controlPort>.pid) */
  pidFile?: string;
  /** give up waiting for tgtd to answer after this long; default 10 s */
  readyTimeoutMs?: number;
}

export interface EnsureTgtdResult {
  /** false when a tgtd was already answering on the control port */
  started: boolean;
  /** pid of the tgtd this call started, when known */
  pid: number | null;
  /** the foreground child, when `foreground` was set and tgtd was started */
  child: StartedProcess | null;
  /** portals tgtd listens on after the call */
  portals: TgtPortal[];
  /** milliseconds from spawn to the first answer, when started */
  readyMs: number | null;
}

function toPortals(p: EnsureTgtdOptions['portal']): Portal[] {
  const list = (Array.isArray(p) ? p : [p]) as ReadonlyArray<string | Portal>;
  return list.map((x) => {
    const portal = typeof x === 'string' ? parsePortal(x) : x;
    if (isIP(portal.host) === 0) throw new Error(`tgtd portal must be an IP address, got ${JSON.stringify(portal.host)}`);
    assertPort(portal.port);
    return portal;
  });
}

function sameHost(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** True when tgtd already listens on `want` (same address, or the wildcard of its family). */
export function portalCovered(have: readonly TgtPortal[], want: Portal): boolean {
  const v6 = isIP(want.host) === 6;
  return have.some((h) => h.port === want.port && (sameHost(h.host, want.host) || h.host === (v6 ? '::' : '0.0.0.0')));
}

export async function ensureTgtd(opts: EnsureTgtdOptions): Promise<EnsureTgtdResult> {
  const portals = toPortals(opts.portal);
  const first = portals[0];
  if (!first) throw new Error('ensureTgtd needs at least one portal');
  const controlPort = opts.controlPort ?? 0;
  assertId(controlPort, 'tgtd control port', 0);
  const run = opts.runner ?? processRunner({ timeoutMs: 15_000 });
  const adm = new Tgtadm(run, { controlPort });
  const timeout = opts.readyTimeoutMs ?? 10_000;

  let started = false;
  let pid: number | null = null;
  let child: StartedProcess | null = null;
  let readyMs: number | null = null;

  if (!(await adm.isRunning())) {
    const args = ['-C', String(controlPort), '--iscsi', `portal=${formatPortal(first)}`];
    const tgtd = opts.tgtdPath ?? 'tgtd';
    const t0 = performance.now();
    let exited: string | null = null;
    if (opts.foreground) {
      if (opts.logFile) assertDirectory(opts.logFile, 'tgtd log file');
      child = startProcess([tgtd, '-f', ...args], { logFile: opts.logFile });
      pid = child.pid;
      void child.exited.then((r) => {
        exited = `exit ${r.exitCode ?? r.signal ?? '?'}`;
      });
    } else {
      const pidFile = opts.pidFile ?? cinderblockTgtdPidFile(controlPort);
      assertDirectory(pidFile, 'tgtd pid file');
      await mkdir(dirname(pidFile), { recursive: true });
      const r = await run([tgtd, ...args, '-p', pidFile], { timeoutMs: timeout });
      if (r.exitCode !== 0) throw new Error(`tgtd failed to start (exit ${r.signal ?? r.exitCode}): ${r.stderr.trim()}`);
      pid = await readPid(pidFile, timeout);
    }
    started = true;
    const deadline = Date.now() + timeout;
    for (;;) {
      if (await adm.isRunning()) break;
      if (exited) throw new Error(`tgtd exited before answering (${exited}); see ${opts.logFile ?? 'its log'}`);
      if (Date.now() > deadline) throw new Error(`tgtd did not answer on control port ${controlPort} within ${timeout} ms`);
      await sleep(20);
    }
    readyMs = Math.round(performance.now() - t0);
    log().info({ pid, control_port: controlPort, portal: formatPortal(first), ready_ms: readyMs }, 'started tgtd');
  }

  let have = await adm.showPortals();
  for (const p of portals) {
    if (portalCovered(have, p)) continue;
    await adm.newPortal(p);
    log().info({ portal: formatPortal(p), control_port: controlPort }, 'added tgtd portal');
    have = await adm.showPortals();
    if (!portalCovered(have, p)) throw new Error(`tgtd does not listen on ${formatPortal(p)} after adding it`);
  }
  return { started, pid, child, portals: have, readyMs };
}

async function readPid(pidFile: string, timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const n = Number.parseInt((await readFile(pidFile, 'utf8')).trim(), 10);
      if (Number.isInteger(n) && n > 0) return n;
    } catch {
      // not written yet
    }
    await sleep(20);
  }
  return null;
}
