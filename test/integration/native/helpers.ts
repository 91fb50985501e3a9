// Helpers shared by the native integration tests: root-only fixtures (loop devices, loop-mounted
// filesystems) and line-oriented child processes (python, node).
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';

export const isRoot = process.getuid?.() === 0;

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Debian's python3 (pyenv's, first on PATH, lacks oslo.concurrency). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export function systemPythonHas(module: string): boolean {
  if (!existsSync(SYSTEM_PYTHON)) return false;
  try {
    execFileSync(SYSTEM_PYTHON, ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Attaches `file` to a free loop device; returns e.g. '/dev/loop3'. */
export function attachLoop(file: string, extraArgs: string[] = []): string {
  return execFileSync('losetup', ['-f', '--show', ...extraArgs, file], { encoding: 'utf8' }).trim();
}

export function detachLoop(dev: string | undefined): void {
  if (!dev) return;
  try {
    execFileSync('losetup', ['-d', dev], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

/** A child whose stdout we read line by line. */
export class LineChild {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  private waiters: Array<() => void> = [];

  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    let buf = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this.waiters.splice(0).forEach((w) => w());
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code) => {
        this.waiters.splice(0).forEach((w) => w());
        resolve(code);
      }),
    );
  }

  static spawn(cmd: string, args: string[], env?: NodeJS.ProcessEnv): LineChild {
    return new LineChild(spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env }));
  }

  /** Resolves with the first line (seen so far or later) that starts with `prefix`. */
  async waitFor(prefix: string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => l.startsWith(prefix));
      if (hit !== undefined) return hit;
      if (this.proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no line starting with ${prefix}; stdout: ${JSON.stringify(this.lines)}; stderr: ${this.stderr.join('')}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(line: string): void {
    this.proc.stdin.write(`${line}\n`);
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
