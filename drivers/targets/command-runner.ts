// How target helpers run their tools: an argv array in, exit code and output out. Tests hand in a
// fake runner; the agent uses runWithExeca. Never a shell: every value is one argv element.
import { execa } from 'execa';

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** process exit code; -1 when the program could not be started or was killed */
  exitCode: number;
}

/** argv[0] is the program (`tgtadm`, `tgt-admin`, `tgtd`). */
export type CommandRunner = (argv: readonly string[]) => Promise<CommandResult>;

export interface ExecaRunnerOptions {
  /** kill the tool after this long (default 60 s: tgtadm answers in milliseconds unless tgtd hangs) */
  timeoutMs?: number;
  /** run through e.g. ['sudo', '-n'] when the agent is not root */
  prefix?: readonly string[];
  env?: Record<string, string>;
}

const SECRET_OPTIONS = new Set(['--password', '--user', '-u', '-p']);
const SECRET_ASSIGNMENTS = /^(--password=|--user=|incominguser=|password=|user=)/;

/** argv with CHAP user names and secrets masked, for logs and error messages. */
export function redactArgv(argv: readonly string[]): string[] {
  const out: string[] = [];
  let maskNext = false;
  for (const a of argv) {
    if (maskNext) {
      out.push('***');
      maskNext = false;
      continue;
    }
    const m = SECRET_ASSIGNMENTS.exec(a);
    if (m) {
      out.push(`${m[1]}***`);
      continue;
    }
    out.push(a);
    if (SECRET_OPTIONS.has(a)) maskNext = true;
  }
  return out;
}

export function execaRunner(opts: ExecaRunnerOptions = {}): CommandRunner {
  const timeout = opts.timeoutMs ?? 60_000;
  const prefix = opts.prefix ?? [];
  return async (argv) => {
    const full = [...prefix, ...argv];
    const [file, ...args] = full;
    if (!file) throw new Error('empty argv');
    const r = await execa(file, args, {
      reject: false,
      stdin: 'ignore',
      timeout,
      // tgtadm prints in English anyway; LC_ALL=C keeps libc's strerror text English too
      env: { LC_ALL: 'C', ...opts.env },
      extendEnv: true,
    });
    const stdout = typeof r.stdout === 'string' ? r.stdout : '';
    let stderr = typeof r.stderr === 'string' ? r.stderr : '';
    let exitCode = typeof r.exitCode === 'number' ? r.exitCode : -1;
    if (r.timedOut) {
      stderr = `${stderr}${stderr ? '\n' : ''}timed out after ${timeout} ms`;
      exitCode = -1;
    } else if (typeof r.signal === 'string') {
      stderr = `${stderr}${stderr ? '\n' : ''}killed by ${r.signal}`;
      exitCode = -1;
    } else if (r.failed && typeof r.exitCode !== 'number') {
      // not execa's message: it quotes the whole command line, CHAP secret included
      const code = (r as { code?: unknown }).code;
      stderr = `${stderr}${stderr ? '\n' : ''}could not run ${file}${typeof code === 'string' ? `: ${code}` : ''}`;
    }
    return { stdout, stderr, exitCode };
  };
}
