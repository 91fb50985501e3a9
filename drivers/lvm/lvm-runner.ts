// How LVM commands run: an argv in, exit code and output out, never through a shell. The execa
// runner gives every command cinder's environment (`env LC_ALL=C [LVM_SYSTEM_DIR=<dir of
// lvm_conf_file>] [LVM_SUPPRESS_FD_WARNINGS=1]`, cinder/brick/local_dev/lvm.py) and
// withSegfaultRetry repeats a command that crashed with exit code 139, as cinder's
// _run_lvm_command does (LP #1901783, #1932188). Tests hand in a fake runner.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execa } from 'execa';

export interface LvmCommandResult {
  stdout: string;
  stderr: string;
  /** Exit code; -1 when the program could not be started, timed out or was killed. */
  exitCode: number;
}

export interface LvmRunOptions {
  /** Kill the command after this long; 0 = never (lvconvert --merge waits for the merge). */
  timeoutMs?: number;
}

/** argv[0] is the program: `lvm`, `lvcreate`, `lvs`, `udevadm`, ... */
export type LvmRunner = (argv: readonly string[], opts?: LvmRunOptions) => Promise<LvmCommandResult>;

/** A command that exited non-zero; carries what cinder's ProcessExecutionError carries. */
export class LvmCommandError extends Error {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;

  constructor(argv: readonly string[], result: LvmCommandResult) {
    const detail = result.stderr.trim().split('\n').filter((l) => !/^\s*WARNING:/.test(l)).join('; ').trim();
    super(`${argv.join(' ')} exited with ${result.exitCode}${detail ? `: ${detail}` : ''}`);
    this.name = 'LvmCommandError';
    this.argv = [...argv];
    this.exitCode = result.exitCode;
    this.stdout = result.stdout;
    this.stderr = result.stderr;
  }

  /** LVM's wording when a VG or LV does not exist (cinder checks the same two phrases). */
  get notFound(): boolean {
    return this.stderr.includes('not found') || this.stderr.includes('Failed to find');
  }
}

export interface LvmEnvironmentOptions {
  /**
   * lvm_conf_file (default /etc/cinder/lvm.conf): when the file exists, LVM reads its
   * configuration from that directory (LVM_SYSTEM_DIR). null or 'None' disables it, as in cinder.
   */
  lvmConfFile?: string | null;
  /** lvm_suppress_fd_warnings */
  suppressFdWarnings?: boolean;
}

export const DEFAULT_LVM_CONF_FILE = '/etc/cinder/lvm.conf';

/** The variables cinder puts before every LVM command. The conf file is looked for once, here. */
export function lvmEnvironment(opts: LvmEnvironmentOptions = {}, fileExists: (p: string) => boolean = existsSync): Record<string, string> {
  const env: Record<string, string> = { LC_ALL: 'C' };
  const conf = opts.lvmConfFile === undefined ? DEFAULT_LVM_CONF_FILE : opts.lvmConfFile;
  if (conf && conf.toLowerCase() !== 'none' && fileExists(conf)) env.LVM_SYSTEM_DIR = dirname(conf);
  if (opts.suppressFdWarnings) env.LVM_SUPPRESS_FD_WARNINGS = '1';
  return env;
}

export interface ExecaLvmRunnerOptions extends LvmEnvironmentOptions {
  /** Default time limit per command (default 600 s); a call may override it. */
  timeoutMs?: number;
  /** Run through e.g. ['sudo', '-n'] when the agent is not root. */
  prefix?: readonly string[];
  /** Called after every command (for debug logging). */
  onResult?: (argv: readonly string[], result: LvmCommandResult, ms: number) => void;
}

export function execaLvmRunner(opts: ExecaLvmRunnerOptions = {}): LvmRunner {
  const env = lvmEnvironment(opts);
  const defaultTimeout = opts.timeoutMs ?? 600_000;
  const prefix = opts.prefix ?? [];
  return async (argv, callOpts = {}) => {
    const full = [...prefix, ...argv];
    const [file, ...args] = full;
    if (!file) throw new Error('empty argv');
    const timeout = callOpts.timeoutMs ?? defaultTimeout;
    const started = Date.now();
    const r = await execa(file, args, {
      reject: false,
      stdin: 'ignore',
      ...(timeout > 0 ? { timeout } : {}),
      env,
      extendEnv: true,
      stripFinalNewline: false,
    });
    const stdout = typeof r.stdout === 'string' ? r.stdout : '';
    let stderr = typeof r.stderr === 'string' ? r.stderr : '';
    let exitCode = typeof r.exitCode === 'number' ? r.exitCode : -1;
    if (r.timedOut) {
      stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}timed out after ${timeout} ms`;
      exitCode = -1;
    } else if (typeof r.signal === 'string') {
      // A crash by SIGSEGV reaches cinder's processutils as exit code 139 (128 + 11) through
      // `env`; report it the same way so the retry below applies.
      exitCode = r.signal === 'SIGSEGV' ? 139 : -1;
      stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}killed by ${r.signal}`;
    } else if (r.failed && typeof r.exitCode !== 'number') {
      const code = (r as { code?: unknown }).code;
      stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}could not run ${file}${typeof code === 'string' ? `: ${code}` : ''}`;
    }
    const result = { stdout, stderr, exitCode };
    opts.onResult?.(argv, result, Date.now() - started);
    return result;
  };
}

export interface SegfaultRetryOptions {
  /** Attempts in all (cinder: 3). */
  attempts?: number;
  /** Waits between attempts (cinder: 0.5 s then 0.25 s: interval 0.5, backoff 0.5). */
  delaysMs?: readonly number[];
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (argv: readonly string[], attempt: number) => void;
}

/** Exit code of an LVM command that crashed (SIGSEGV through `env`), retried by cinder. */
export const LVM_SEGFAULT_EXIT = 139;

/** Wraps a runner so that a command exiting 139 runs again, up to `attempts` times in all. */
export function withSegfaultRetry(runner: LvmRunner, opts: SegfaultRetryOptions = {}): LvmRunner {
  const attempts = opts.attempts ?? 3;
  const delays = opts.delaysMs ?? [500, 250];
  const sleep = opts.sleep ?? ((ms: number) => delay(ms));
  return async (argv, callOpts) => {
    for (let attempt = 1; ; attempt++) {
      const r = await runner(argv, callOpts);
      if (r.exitCode !== LVM_SEGFAULT_EXIT || attempt >= attempts) return r;
      opts.onRetry?.(argv, attempt);
      await sleep(delays[Math.min(attempt - 1, delays.length - 1)] ?? 0);
    }
  };
}

/** Runs argv and throws LvmCommandError unless it exits 0. */
export async function runChecked(runner: LvmRunner, argv: readonly string[], opts?: LvmRunOptions): Promise<LvmCommandResult> {
  const r = await runner(argv, opts);
  if (r.exitCode !== 0) throw new LvmCommandError(argv, r);
  return r;
}
