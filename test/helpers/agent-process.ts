// Runs the built `cinderblock serve` as a real child process, as an operator would, and watches
// its JSON log lines. Tests need `npm run build` to have run (CI does it first).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './fixtures.js';
import { launcherNodeFlags, launcherPath } from './launcher-node-flags.js';

export interface AgentProcess {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  text(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, wait for exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startAgentProcess(confPath: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): AgentProcess {
  if (!existsSync(join(repoRoot, 'dist', 'src', 'cli', 'main.js'))) throw new Error('run `npm run build` before the end-to-end tests');
  const child = spawn(process.execPath, [...launcherNodeFlags(), launcherPath, 'serve', '--config-file', confPath, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  const onData = (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      raw.push(line);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ msg: line });
      }
      for (const w of waiters) w();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    lines,
    text: () => raw.join('\n'),
    waitForLog(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        let seen = 0;
        const check = () => {
          for (; seen < lines.length; seen++) {
            const l = lines[seen]!;
            if (pattern.test(String(l.msg ?? ''))) {
              cleanup();
              resolve(l);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms; last lines:\n${raw.slice(-15).join('\n')}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
