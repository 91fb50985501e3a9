// The attach soak's target side on tgtd (the build host's kernel has no LIO): a tgtd of its own
// on a free port that is also its control port, started by the agent as in production (or by the
// script, and then someone else's to the agent), read with tgtadm, and killed with SIGKILL as
// the target-side fault: the agent must start a new one within restartWaitMs.
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { parseShowAccounts, parseShowTargets } from '../../drivers/targets/tgt/tgtadm-parse.js';
import { servingTgtdPid } from '../../drivers/targets/tgt/tgtd-pid.js';
import { startTgtd, type TgtdHandle } from '../helpers/tgtd.js';
import type { SoakSideContext, SoakTargetSide, SoakTargetView, TargetFaultOutcome } from './soak-target-side.js';

export interface TgtSoakSideOptions {
  /** who starts tgtd: the agent (as in production: it starts it on the first export) or the script */
  owner: 'agent' | 'script';
  /** how long the agent has to bring tgtd back after its kill before the script starts one */
  restartWaitMs: number;
}

export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Is this pid a tgtd on our control port? (before any kill by pid) */
function isOurTgtd(pid: number, controlPort: number): boolean {
  const c = cmdline(pid);
  return /\btgtd\b/.test(c) && c.includes(`-C ${controlPort}`);
}

/**
 * A port for tgtd's portal that is also its control port: tgtadm takes -C values below 32768 only,
 * so not an ephemeral port; free on 127.0.0.1, no control socket of that number in use.
 */
async function freeTgtPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const { existsSync } = await import('node:fs');
  const canListen = (p: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let k = 0; k < 200; k++) {
    const p = 14000 + Math.floor(Math.random() * 18000);
    if (existsSync(`/var/run/tgtd/socket.${p}`) || (await servingTgtdPid(p)) !== null) continue;
    if (await canListen(p)) return p;
  }
  throw new Error('no free port for tgtd in 14000..31999');
}

export function tgtSoakSide(o: TgtSoakSideOptions): SoakTargetSide {
  let port = 0;
  let scriptTgtd: TgtdHandle | undefined;
  let ctx: SoakSideContext | null = null;
  const files = () => [`/var/run/tgtd/socket.${port}`, `/var/run/tgtd/socket.${port}.lock`, `/run/tgtd/cinderblock-${port}.pid`];

  const tgtadm = async (...args: string[]) => {
    const r = await execa('tgtadm', ['-C', String(port), ...args], { reject: false, timeout: 15_000 });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout) };
  };
  /** the watchdog's word for tgtd: its portal argument (`tgtd -C N --iscsi portal=127.0.0.1:N`) */
  const trackPid = async () => {
    const pid = await servingTgtdPid(port);
    if (pid && ctx?.manifest && isOurTgtd(pid, port)) {
      const word = `portal=127.0.0.1:${port}`;
      ctx.manifest.remove((e) => e.kind === 'pid' && e.word === word);
      ctx.manifest.add({ kind: 'pid', pid, word });
    }
  };

  return {
    get label() {
      return `tgtd on 127.0.0.1:${port} (${o.owner} starts it)`;
    },
    faultKind: 'tgtd-kill',
    faultWords: 'kill -9 of tgtd',
    controllerLun: 0,
    sendTargetsListsAll: false,

    async prepare(c) {
      ctx = c;
      port = await freeTgtPort();
      if (o.owner === 'script') scriptTgtd = await startTgtd({ host: '127.0.0.1', port, controlPort: port, logDir: c.logDir });
      if (c.manifest) for (const f of files()) c.manifest.add({ kind: 'file', path: f });
      return {
        backend: { target_helper: 'tgtadm', target_ip_address: '127.0.0.1', target_port: String(port) },
        extraSections: { cinderblock: { tgt_control_port: String(port), metrics_listen: '' } },
      };
    },

    afterAgentStart: trackPid,

    async targets(): Promise<SoakTargetView[] | null> {
      const r = await tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show');
      if (r.exitCode !== 0) return null;
      return parseShowTargets(r.stdout).map((t) => ({
        iqn: t.iqn,
        acls: t.acls,
        accounts: t.accounts,
        // LUN 0 is tgt's controller, never a volume
        luns: t.luns.filter((l) => l.lun !== 0).map((l) => ({ lun: l.lun, serial: (l.scsiSn ?? '').trim() })),
        serving: true,
      }));
    },

    async unboundAccounts() {
      const ts = (await this.targets()) ?? [];
      const bound = new Set(ts.flatMap((x) => x.accounts));
      const r = await tgtadm('--lld', 'iscsi', '--mode', 'account', '--op', 'show');
      return (r.exitCode === 0 ? parseShowAccounts(r.stdout) : []).filter((a) => !bound.has(a));
    },

    async injectFault(c, now): Promise<TargetFaultOutcome> {
      const t0 = now();
      const oldPid = await servingTgtdPid(port);
      const out: TargetFaultOutcome = { old_pid: oldPid, new_pid: null, back_after_s: null, restarted_by: null, notes: [] };
      if (!oldPid || !isOurTgtd(oldPid, port)) {
        out.skipped = `no tgtd of this run holds control port ${port} (pid ${oldPid}: ${oldPid ? cmdline(oldPid) : '-'})`;
        return out;
      }
      c.say(`FAULT: kill -9 of tgtd (pid ${oldPid})`);
      if (scriptTgtd && scriptTgtd.pid() === oldPid) await scriptTgtd.kill();
      else {
        process.kill(oldPid, 'SIGKILL');
        for (let k = 0; k < 100 && cmdline(oldPid); k++) await sleep(20);
      }
      const deadline = Date.now() + o.restartWaitMs;
      while (Date.now() < deadline) {
        const p = await servingTgtdPid(port);
        if (p && p !== oldPid && (await tgtadm('--op', 'show', '--mode', 'sys')).exitCode === 0) {
          out.new_pid = p;
          break;
        }
        await sleep(250);
      }
      const back = () => Math.round((now() - t0) * 10) / 10;
      if (out.new_pid) {
        out.restarted_by = 'agent';
        out.back_after_s = back();
        c.say(`tgtd restarted by the agent after ${out.back_after_s} s (pid ${out.new_pid}: ${cmdline(out.new_pid)})`);
      } else {
        c.finding(`the agent did not restart tgtd within ${o.restartWaitMs / 1000} s of its kill -9 (old pid ${oldPid}); the script starts one`);
        out.notes.push(`not restarted by the agent within ${o.restartWaitMs / 1000} s`);
        try {
          scriptTgtd = await startTgtd({ host: '127.0.0.1', port, controlPort: port, logDir: c.logDir });
          out.restarted_by = 'script';
          out.new_pid = scriptTgtd.pid();
          out.back_after_s = back();
        } catch (err) {
          out.notes.push(`the script could not start tgtd: ${(err as Error).message}`);
          const p = await servingTgtdPid(port);
          if (p) {
            Object.assign(out, { new_pid: p, restarted_by: 'agent', back_after_s: back() });
            out.notes.push('a tgtd came up meanwhile');
          }
        }
      }
      await trackPid();
      return out;
    },

    async teardown() {
      if (!port) return;
      const pid = await servingTgtdPid(port);
      if (pid && isOurTgtd(pid, port)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
        for (let k = 0; k < 100 && cmdline(pid); k++) await sleep(20);
      }
      await scriptTgtd?.stop().catch(() => undefined);
      for (const f of files()) await rm(f, { force: true });
    },
  };
}
