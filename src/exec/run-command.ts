// The one process runner: every external command the agent runs (lvm and its tools, tgtadm,
// tgt-admin, tgtd, iscsiadm, multipath, blockdev, targetcli, thin_dump, udevadm) goes through
// here. An argv array in, never a shell string: every value is one argv element, whatever it
// holds. Out comes what the program did: its exit code, the signal that killed it, both outputs
// as it wrote them (nothing stripped), and whether the time limit ran out. A program that could
// not start is a result too (exit code -1), never a thrown error, so callers decide what a
// failure means (tgtadm.ts classifies its own, lvm-runner.ts recognises LVM's not-found). Errors
// and logs show the argv only through redactArgv (CHAP secrets). Tests hand a fake CommandRunner
// to whatever takes a `runner` option.
import { execa, type ResultPromise } from 'execa';
import { redactArgv } from './redact-argv.js';

export { redactArgv } from './redact-argv.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when the program could not be started, timed out or was killed by a signal. */
  exitCode: number;
  /** The signal that ended it (`SIGSEGV`, `SIGKILL` at the time limit, ...), when one did. */
  signal?: string;
  /** Set when the time limit ran out and the program was killed. */
  timedOut?: boolean;
}

export interface RunOptions {
  /** Kill the command after this long; 0 = never (lvconvert --merge waits for the merge). */
  timeoutMs?: number;
}

/** argv[0] is the program. Fakes may ignore the options. */
export type CommandRunner = (argv: readonly string[], opts?: RunOptions) => Promise<CommandResult>;

export interface ProcessRunnerOptions {
  /** Default time limit per command (default 60 s); a call may override it; 0 = never. */
  timeoutMs?: number;
  /** Signal sent at the time limit (default SIGTERM; execa follows up with SIGKILL after 5 s). */
  killSignal?: NodeJS.Signals;
  /** Run through e.g. ['sudo', '-n'] when the agent is not root. */
  prefix?: readonly string[];
  /** Added to the agent's environment, after LC_ALL=C (English messages: callers match them). */
  env?: Record<string, string>;
  /** Largest output kept per stream, in bytes (default execa's 100 MB; thin_dump needs more). */
  maxBuffer?: number;
  /** Called after every command (debug logging, metrics). The argv is the caller's, unredacted. */
  onResult?: (argv: readonly string[], result: CommandResult, ms: number) => void;
}

const DEFAULT_TIMEOUT_MS = 60_000;

function appendLine(text: string, line: string): string {
  return `${text}${text && !text.endsWith('\n') ? '\n' : ''}${line}`;
}

/** A runner with fixed defaults (environment, prefix, time limit). */
export function processRunner(opts: ProcessRunnerOptions = {}): CommandRunner {
  const defaultTimeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const prefix = opts.prefix ?? [];
  const env = { LC_ALL: 'C', ...opts.env };
  return async (argv, callOpts = {}) => {
    const [file, ...args] = [...prefix, ...argv];
    if (!file) throw new Error('empty argv');
    const timeout = callOpts.timeoutMs ?? defaultTimeout;
    const started = Date.now();
    const r = await execa(file, args, {
      reject: false,
      stdin: 'ignore',
      ...(timeout > 0 ? { timeout } : {}),
      ...(opts.killSignal ? { killSignal: opts.killSignal } : {}),
      ...(opts.maxBuffer ? { maxBuffer: opts.maxBuffer } : {}),
      env,
      extendEnv: true,
      stripFinalNewline: false,
    });
    const result: CommandResult = {
      stdout: typeof r.stdout === 'string' ? r.stdout : '',
      stderr: typeof r.stderr === 'string' ? r.stderr : '',
      exitCode: typeof r.exitCode === 'number' ? r.exitCode : -1,
    };
    if (r.timedOut) {
      result.stderr = appendLine(result.stderr, `timed out after ${timeout} ms`);
      result.exitCode = -1;
      result.timedOut = true;
      if (typeof r.signal === 'string') result.signal = r.signal;
    } else if (typeof r.signal === 'string') {
      result.stderr = appendLine(result.stderr, `killed by ${r.signal}`);
      result.exitCode = -1;
      result.signal = r.signal;
    } else if (r.failed && typeof r.exitCode !== 'number') {
      // Not execa's message: it quotes the whole command line, CHAP secret included.
      const code = (r as { code?: unknown }).code;
      result.stderr = appendLine(result.stderr, `could not run ${file}${typeof code === 'string' ? `: ${code}` : ''}`);
    }
    opts.onResult?.(argv, result, Date.now() - started);
    return result;
  };
}

/** A command that did not exit 0: the argv (secrets masked), exit code, signal and output. */
export class CommandError extends Error {
  /** argv with secrets masked (redactArgv) */
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly signal: string | undefined;
  readonly stdout: string;
  readonly stderr: string;

  constructor(argv: readonly string[], result: CommandResult, detail: string = result.stderr.trim().split('\n').join('; ')) {
    const shown = redactArgv(argv);
    super(`${shown.join(' ')} exited with ${result.exitCode}${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandError';
    this.argv = shown;
    this.exitCode = result.exitCode;
    this.signal = result.signal;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
  }
}

/** A long-running program started by startProcess (a daemon kept in the foreground). */
export interface StartedProcess {
  readonly pid: number | null;
  /** Settles when it ends: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ exitCode: number | null; signal: string | null }>;
  kill(signal?: NodeJS.Signals): boolean;
}

export interface StartProcessOptions {
  /** Append its stdout and stderr to this file (default: discarded). */
  logFile?: string;
}

/**
 * Starts a program that keeps running (tgtd -f) and returns at once. Not killed when the agent
 * exits: a target daemon outlives the agent that started it.
 */
export function startProcess(argv: readonly string[], opts: StartProcessOptions = {}): StartedProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('empty argv');
  const out = opts.logFile ? ({ file: opts.logFile, append: true } as const) : ('ignore' as const);
  const child: ResultPromise = execa(file, args, { stdin: 'ignore', stdout: out, stderr: out, reject: false, cleanup: false, env: { LC_ALL: 'C' }, extendEnv: true });
  const exited = child.then((r) => ({ exitCode: typeof r.exitCode === 'number' ? r.exitCode : null, signal: typeof r.signal === 'string' ? r.signal : null }));
  return { pid: child.pid ?? null, exited, kill: (signal) => child.kill(signal) };
}
