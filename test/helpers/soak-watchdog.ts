// A cleanup watchdog for long test runs (the attach soak): a small shell process in its own session
// (the terminal's Ctrl-C does not reach it) that waits for the run's process to end and then undoes
// what a manifest file still lists. A run that ends normally removes what it made itself and then
// the manifest, and the watchdog, finding no manifest, does nothing. A run that is SIGKILLed (tsx
// SIGKILLs a child that does not answer Ctrl-C in time, an operator may kill -9 it) leaves the
// manifest, and the watchdog:
//   pid <pid> <word>   SIGTERM, then SIGKILL after 5 s, the process with that pid if its command
//                      line still contains <word> (a pid reused by something else is left alone)
//   vhost <name>       rabbitmqctl delete_vhost
//   db <name>          DROP DATABASE on the local MariaDB (root, no password)
//   file <path>        rm -f
//   dir <path>         rm -rf
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type ManifestEntry =
  | { kind: 'pid'; pid: number; word: string }
  | { kind: 'vhost'; name: string }
  | { kind: 'db'; name: string }
  | { kind: 'file'; path: string }
  | { kind: 'dir'; path: string };

const SAFE = /^[A-Za-z0-9._/:@+=-]+$/;

export class CleanupManifest {
  readonly path: string;
  private entries: ManifestEntry[] = [];

  constructor(name: string) {
    this.path = join(tmpdir(), `${name}-${process.pid}.cleanup`);
  }

  add(e: ManifestEntry): void {
    for (const v of Object.values(e)) if (typeof v === 'string' && !SAFE.test(v)) throw new Error(`manifest value not safe for the watchdog: ${v}`);
    this.entries.push(e);
    this.write();
  }

  remove(pred: (e: ManifestEntry) => boolean): void {
    this.entries = this.entries.filter((e) => !pred(e));
    this.write();
  }

  /** The run cleaned up by itself: the watchdog has nothing left to do. */
  done(): void {
    this.entries = [];
    rmSync(this.path, { force: true });
  }

  private write(): void {
    const line = (e: ManifestEntry): string => {
      switch (e.kind) {
        case 'pid':
          return `pid ${e.pid} ${e.word}`;
        case 'vhost':
          return `vhost ${e.name}`;
        case 'db':
          return `db ${e.name}`;
        case 'file':
          return `file ${e.path}`;
        case 'dir':
          return `dir ${e.path}`;
      }
    };
    // processes first, then what they used
    const order = { pid: 0, vhost: 1, db: 2, file: 3, dir: 4 } as const;
    const sorted = [...this.entries].sort((a, b) => order[a.kind] - order[b.kind]);
    writeFileSync(this.path, sorted.map((e) => `${line(e)}\n`).join(''));
  }

  /** Starts the watchdog for this process. */
  startWatchdog(): void {
    this.write();
    const script = `while kill -0 "$1" 2>/dev/null; do sleep 1; done
[ -f "$2" ] || exit 0
while read -r kind a b; do
  case "$kind" in
    pid) if [ -r "/proc/$a/cmdline" ] && tr '\\0' ' ' < "/proc/$a/cmdline" | grep -qF -- "$b"; then
           kill -TERM "$a" 2>/dev/null; i=0
           while [ $i -lt 50 ] && kill -0 "$a" 2>/dev/null; do sleep 0.1; i=$((i+1)); done
           kill -KILL "$a" 2>/dev/null
         fi ;;
    vhost) rabbitmqctl -q delete_vhost "$a" >/dev/null 2>&1 ;;
    db) mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS \\\`$a\\\`" >/dev/null 2>&1 ;;
    file) rm -f -- "$a" ;;
    dir) rm -rf -- "$a" ;;
  esac
done < "$2"
rm -f -- "$2"`;
    spawn('sh', ['-c', script, 'cinderblock-soak-watchdog', String(process.pid), this.path], { detached: true, stdio: 'ignore' }).unref();
  }
}

/** How a long run was told to stop: a signal (Ctrl-C, SIGTERM) or its deadline. */
export interface RunStop {
  signal: AbortSignal;
  interrupted(): boolean;
  deadlineHit(): boolean;
  /** the run ended by itself: drop the deadline */
  clear(): void;
}

/**
 * Abort `signal` on the first SIGINT/SIGTERM (a second one exits at once, leaving the rest to the
 * watchdog) or when `deadlineMs` has passed; 5 minutes after the deadline the process exits with
 * 3 whatever the teardown is doing, so a long run always ends.
 */
export function stopOnSignalsOrDeadline(deadlineMs: number): RunStop {
  const ac = new AbortController();
  let interrupted = false;
  let deadlineHit = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) {
      console.error(`${sig} again: exiting now; the watchdog removes what is left`);
      process.exit(130);
    }
    interrupted = true;
    console.error(`${sig}: stopping at the next step and cleaning up (again to exit at once)`);
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const hard = setTimeout(() => {
    deadlineHit = true;
    console.error(`deadline (${deadlineMs / 1000} s) reached: aborting`);
    ac.abort();
    setTimeout(() => process.exit(3), 300_000).unref();
  }, deadlineMs);
  hard.unref();
  return {
    signal: ac.signal,
    interrupted: () => interrupted,
    deadlineHit: () => deadlineHit,
    clear: () => clearTimeout(hard),
  };
}
