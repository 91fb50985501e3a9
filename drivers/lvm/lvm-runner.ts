// How LVM commands run: a thin wrapper over the one process runner (src/exec/run-command.ts) that
// adds what is LVM's own. Every command gets cinder's environment (`env LC_ALL=C
// [LVM_SYSTEM_DIR=<dir of lvm_conf_file>] [LVM_SUPPRESS_FD_WARNINGS=1]`,
// cinder/brick/local_dev/lvm.py), a crash by SIGSEGV reads as exit code 139, and withSegfaultRetry
// repeats such a command, as cinder's _run_lvm_command does (LP #1901783, #1932188). lvmMissing
// tells a missing VG or LV from any other failure by LVM's exit code and its exact message for the
// object asked about. Tests hand in a fake runner.
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { CommandError, processRunner, type CommandResult, type CommandRunner, type RunOptions } from '../../src/exec/run-command.js';

export type LvmCommandResult = CommandResult;
export type LvmRunOptions = RunOptions;
/** argv[0] is the program: `lvm`, `lvcreate`, `lvs`, `udevadm`, `thin_dump`, ... */
export type LvmRunner = CommandRunner;

/** A command that exited non-zero; carries what cinder's ProcessExecutionError carries. */
export class LvmCommandError extends CommandError {
  constructor(argv: readonly string[], result: LvmCommandResult) {
    // LVM's WARNING lines (activation disabled, fd leaks, ...) say nothing about why it failed.
    super(argv, result, result.stderr.trim().split('\n').filter((l) => !/^\s*WARNING:/.test(l)).join('; ').trim());
    this.name = 'LvmCommandError';
  }
}

/** LVM's exit code for a command that failed (ECMD_FAILED), a missing VG or LV among others. */
export const LVM_FAILED_EXIT = 5;

/**
 * Whether a failed LVM command says the VG or LV asked about does not exist: 'vg', 'lv' or null.
 * Only exit code 5 counts, and only a stderr line that is exactly lvm2's message naming that
 * object (leading blanks aside):
 *   `Volume group "<vg>" not found`                  (2.02 and 2.03: lvs, vgs, lvremove, fullreport, ...)
 *   `Failed to find logical volume "<vg>/<lv>"`      (2.02.100 on: lvs, lvremove, lvchange, ...)
 *   `One or more specified logical volume(s) not found.`  (older 2.02, names nothing: counts only
 *                                                           for an LV asked about, one per command)
 * Never a WARNING line (`WARNING: Device for PV <uuid> not found or rejected by a filter.`), a
 * message about another object, nor one that only contains the words (`Volume group "vg" not
 * found, is inconsistent or has PVs missing.`).
 */
export function lvmMissing(result: Pick<LvmCommandResult, 'exitCode' | 'stderr'>, asked: { vg: string; lv?: string }): 'vg' | 'lv' | null {
  if (result.exitCode !== LVM_FAILED_EXIT) return null;
  const lines = new Set(result.stderr.split('\n').map((l) => l.trim()));
  if (lines.has(`Volume group "${asked.vg}" not found`)) return 'vg';
  if (asked.lv === undefined) return null;
  if (lines.has(`Failed to find logical volume "${asked.vg}/${asked.lv}"`)) return 'lv';
  if (lines.has('One or more specified logical volume(s) not found.')) return 'lv';
  return null;
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

export interface LvmCommandRunnerOptions extends LvmEnvironmentOptions {
  /** Default time limit per command (default 600 s); a call may override it. */
  timeoutMs?: number;
  /** Run through e.g. ['sudo', '-n'] when the agent is not root. */
  prefix?: readonly string[];
  /** Called after every command (for debug logging). */
  onResult?: (argv: readonly string[], result: LvmCommandResult, ms: number) => void;
}

/** Exit code of an LVM command that crashed (SIGSEGV through `env`), retried by cinder. */
export const LVM_SEGFAULT_EXIT = 139;

/** The one process runner with cinder's LVM environment; a SIGSEGV reads as exit code 139. */
export function lvmCommandRunner(opts: LvmCommandRunnerOptions = {}): LvmRunner {
  const run = processRunner({ timeoutMs: opts.timeoutMs ?? 600_000, prefix: opts.prefix, env: lvmEnvironment(opts) });
  return async (argv, callOpts) => {
    const started = Date.now();
    const r = await run(argv, callOpts);
    // A crash by SIGSEGV reaches cinder's processutils as exit code 139 (128 + 11) through
    // `env`; report it the same way so that withSegfaultRetry applies.
    const result = r.signal === 'SIGSEGV' && !r.timedOut ? { ...r, exitCode: LVM_SEGFAULT_EXIT } : r;
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
