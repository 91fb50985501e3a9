// The one process runner against real processes (sh, sleep): what a caller gets back for each way
// a program can end, and that secrets never reach an error message.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CommandError, processRunner, redactArgv, startProcess } from '../../../src/exec/run-command.js';
import { LvmCommandError } from '../../../drivers/lvm/lvm-runner.js';
import { TgtadmError } from '../../../drivers/targets/tgt/tgtadm.js';

describe('processRunner', () => {
  const run = processRunner();

  it('gives exit code and both outputs as written (nothing stripped), in the C locale', async () => {
    expect(await run(['sh', '-c', 'echo out; echo err >&2; exit 3'])).toEqual({ stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
    expect(await run(['sh', '-c', 'echo "$LC_ALL"'])).toEqual({ stdout: 'C\n', stderr: '', exitCode: 0 });
  });

  it('passes every value as one argv element: no shell sees it', async () => {
    const r = await run(['printf', '%s|', 'a b', '$(id)', ';rm -rf /x', '*']);
    expect(r.stdout).toBe('a b|$(id)|;rm -rf /x|*|');
  });

  it('adds the environment it is given and runs behind a prefix', async () => {
    const r = await processRunner({ env: { CB_RUN_TEST: 'yes' }, prefix: ['env', 'CB_PREFIXED=1'] })(['sh', '-c', 'echo "$CB_RUN_TEST $CB_PREFIXED"']);
    expect(r.stdout).toBe('yes 1\n');
  });

  it('kills a command at its time limit: exit -1, timedOut, the reason on stderr', async () => {
    const r = await run(['sleep', '10'], { timeoutMs: 200 });
    expect(r).toMatchObject({ exitCode: -1, timedOut: true });
    expect(r.stderr).toMatch(/timed out after 200 ms$/);
  });

  it('a program killed by a signal: exit -1 and the signal', async () => {
    const r = await run(['sh', '-c', 'kill -SEGV $$']);
    expect(r).toMatchObject({ exitCode: -1, signal: 'SIGSEGV' });
    expect(r.stderr).toMatch(/killed by SIGSEGV/);
  });

  it('a program that cannot start is a result, not a throw', async () => {
    const r = await run(['/nonexistent/cinderblock-no-such-program']);
    expect(r.exitCode).toBe(-1);
    expect(r.stderr).toMatch(/could not run \/nonexistent\/cinderblock-no-such-program: ENOENT/);
  });

  it('reports every command to onResult', async () => {
    const seen: string[] = [];
    await processRunner({ onResult: (argv, r) => seen.push(`${argv.join(' ')}=${r.exitCode}`) })(['true']);
    expect(seen).toEqual(['true=0']);
  });
});

describe('CommandError', () => {
  it('carries the argv with secrets masked, the exit code, signal and output', () => {
    const err = new CommandError(['tgtadm', '--op', 'new', '--mode', 'account', '--user', 'u1', '--password', 'S3cret'], { stdout: 'o', stderr: 'tgtadm: this account already exists\n', exitCode: 22 });
    expect(err.argv).toEqual(['tgtadm', '--op', 'new', '--mode', 'account', '--user', '***', '--password', '***']);
    expect(err.message).toBe('tgtadm --op new --mode account --user *** --password *** exited with 22: tgtadm: this account already exists');
    expect(err).toMatchObject({ exitCode: 22, signal: undefined, stdout: 'o', stderr: 'tgtadm: this account already exists\n' });
  });
  it("is what every tool's own error is (tgtadm's classification, LVM's WARNING-free message)", () => {
    const tgt = new TgtadmError(['tgtadm', '--user', 'u1'], { stdout: '', stderr: "tgtadm: can't find the target\n", exitCode: 22 });
    expect(tgt).toBeInstanceOf(CommandError);
    expect(tgt).toMatchObject({ kind: 'target-not-found', argv: ['tgtadm', '--user', '***'], exitCode: 22 });
    const lvm = new LvmCommandError(['lvremove', '-f', 'vg/lv'], { stdout: '', stderr: '  WARNING: Activation disabled.\n  Logical volume vg/lv in use.\n', exitCode: 5 });
    expect(lvm).toBeInstanceOf(CommandError);
    expect(lvm.message).toBe('lvremove -f vg/lv exited with 5: Logical volume vg/lv in use.');
  });
});

describe('redactArgv: one function, per-program option rules', () => {
  it('masks iscsiadm auth values but leaves its -p (a portal) alone', () => {
    const argv = ['iscsiadm', '-m', 'node', '-T', 'iqn.x', '-p', '10.0.0.1:3260', '--op', 'update', '-n', 'node.session.auth.password', '-v', 'S3cret'];
    expect(redactArgv(argv)).toEqual([...argv.slice(0, -1), '***']);
    const login = ['iscsiadm', '-m', 'node', '-T', 'iqn.x', '-p', '10.0.0.1:3260', '--login'];
    expect(redactArgv(login)).toEqual(login);
  });

  it("masks tgtadm's -u/-p values and targetcli's key=value secrets", () => {
    expect(redactArgv(['tgtadm', '-u', 'user', '-p', 'pw'])).toEqual(['tgtadm', '-u', '***', '-p', '***']);
    expect(redactArgv(['/usr/sbin/tgtadm', '--password', 'pw'])).toEqual(['/usr/sbin/tgtadm', '--password', '***']);
    expect(redactArgv(['targetcli', '/iscsi/x/acls/y', 'set', 'auth', 'userid=u', 'password=p', 'mutual_password=m'])).toEqual([
      'targetcli', '/iscsi/x/acls/y', 'set', 'auth', 'userid=***', 'password=***', 'mutual_password=***',
    ]);
  });
});

describe('startProcess', () => {
  it('starts a long-running program, appends its output to the log file, reports how it ended', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-exec-'));
    try {
      const log = join(dir, 'out.log');
      const p = startProcess(['sh', '-c', 'echo started; exec sleep 30'], { logFile: log });
      expect(p.pid).toBeGreaterThan(0);
      // execa opens the file asynchronously: it may not exist yet
      const read = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
      for (let i = 0; i < 200 && !read().includes('started'); i++) await new Promise((r) => setTimeout(r, 20));
      expect(read()).toBe('started\n');
      p.kill('SIGKILL');
      expect(await p.exited).toEqual({ exitCode: null, signal: 'SIGKILL' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
