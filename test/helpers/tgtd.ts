// A private tgtd for tests: foreground (`-f`), its own control port and an iSCSI portal on a
// loopback address, so it never meets the host's tgtd or another test's. tgtd ignores SIGTERM, so
// it is stopped with SIGKILL by the pid this helper spawned (never by name).
//
//   const tgtd = await startTgtd();            // 127.0.0.1:13260 or the next free port
//   ... tgtd.portal, tgtd.controlPort ...
//   await tgtd.kill();                          // SIGKILL, wait for exit
//   await tgtd.start();                         // same ports again
//   await tgtd.stop();                          // kill + remove its control socket files
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

export interface StartTgtdOptions {
  /** loopback address to listen on; default 127.0.0.1 */
  host?: string;
  /** first iSCSI port to try; default $CINDERBLOCK_TGT_PORT or 13260 */
  port?: number;
  /** control port; default = the iSCSI port chosen */
  controlPort?: number;
  /** where tgtd's output goes; default a temp directory */
  logDir?: string;
  /** how long to wait for tgtd to answer; default 10 s */
  readyTimeoutMs?: number;
}

export interface TgtdHandle {
  readonly host: string;
  readonly port: number;
  readonly controlPort: number;
  /** `host:port` (IPv6 bracketed) */
  readonly portal: string;
  readonly logFile: string;
  /** pid of the running tgtd, null when stopped */
  pid(): number | null;
  /** milliseconds from spawn to the first tgtadm answer, last start */
  readyMs(): number;
  /** start (again) on the same ports */
  start(): Promise<void>;
  /** SIGKILL and wait for the process to go */
  kill(): Promise<void>;
  /** kill and remove the control socket files of this control port */
  stop(): Promise<void>;
  /** run `tgtadm -C <controlPort> ...args` */
  tgtadm(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of started) {
    if (c.exitCode !== null || c.signalCode !== null || !c.pid) continue;
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export async function tgtAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  const r = await execa('tgtd', ['--version'], { reject: false });
  return r.exitCode === 0;
}

/** Something accepts TCP connections on host:port (a tgtd portal, or anything else in the way). */
export async function tcpListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** A tgtd answers `tgtadm -C controlPort`. */
export async function controlAnswers(controlPort: number): Promise<boolean> {
  const r = await execa('tgtadm', ['-C', String(controlPort), '--op', 'show', '--mode', 'sys'], { reject: false, timeout: 5000 });
  return r.exitCode === 0;
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function startTgtd(opts: StartTgtdOptions = {}): Promise<TgtdHandle> {
  const host = opts.host ?? '127.0.0.1';
  const first = opts.port ?? Number(process.env.CINDERBLOCK_TGT_PORT ?? 13260);
  let port = 0;
  let controlPort = 0;
  for (let p = first; p < first + 40; p++) {
    const cp = opts.controlPort ?? p;
    if (!(await tcpListening(host, p)) && !(await controlAnswers(cp))) {
      port = p;
      controlPort = cp;
      break;
    }
  }
  if (!port) throw new Error(`no free tgt port in ${first}..${first + 39}`);
  const logDir = opts.logDir ?? join('/tmp', `cinderblock-tgtd-${port}`);
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, 'tgtd.log');
  const timeout = opts.readyTimeoutMs ?? 10_000;
  let child: ChildProcess | null = null;
  let lastReady = 0;

  const handle: TgtdHandle = {
    host,
    port,
    controlPort,
    portal: `${bracket(host)}:${port}`,
    logFile,
    pid: () => (child && child.exitCode === null && child.signalCode === null ? (child.pid ?? null) : null),
    readyMs: () => lastReady,
    async start() {
      if (handle.pid() !== null) throw new Error('tgtd already running');
      const fd = openSync(logFile, 'a');
      const t0 = performance.now();
      const c = spawn('tgtd', ['-f', '-C', String(controlPort), '--iscsi', `portal=${bracket(host)}:${port}`], {
        stdio: ['ignore', fd, fd],
      });
      closeSync(fd);
      child = c;
      started.add(c);
      const deadline = Date.now() + timeout;
      for (;;) {
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`tgtd exited at start (${c.exitCode ?? c.signalCode}); see ${logFile}`);
        if ((await controlAnswers(controlPort)) && (await tcpListening(host, port))) break;
        if (Date.now() > deadline) throw new Error(`tgtd not ready after ${timeout} ms; see ${logFile}`);
        await sleep(10);
      }
      lastReady = Math.round(performance.now() - t0);
    },
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null || !c.pid) return;
      const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      process.kill(c.pid, 'SIGKILL');
      await gone;
      started.delete(c);
      // tgtd's listening socket goes with the process; wait until the port is free
      for (let i = 0; i < 100 && (await tcpListening(host, port)); i++) await sleep(10);
    },
    async stop() {
      await handle.kill();
      for (const f of [`/var/run/tgtd/socket.${controlPort}`, `/var/run/tgtd/socket.${controlPort}.lock`]) {
        if (existsSync(f)) rmSync(f, { force: true });
      }
    },
    async tgtadm(...args: string[]) {
      const r = await execa('tgtadm', ['-C', String(controlPort), ...args], { reject: false, timeout: 15_000 });
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
  };
  await handle.start();
  return handle;
}
