// An in-memory stand-in for tgtd behind tgtadm, for unit tests of TgtTarget: it keeps targets,
// LUNs, accounts, ACLs and sessions, answers `--op show` in tgt 1.0.85's format (see the captured
// fixtures), refuses requests with tgtadm's own messages and exit code 22, and lets a test inject a
// failure for any command. It models what TgtTarget relies on, not all of tgt.
import type { CommandResult, CommandRunner } from '../../../src/exec/run-command.js';
import type { TgtTargetOptions } from '../../../drivers/targets/tgt/tgt-target.js';

interface Lun {
  path: string;
  flags: string;
  thin: boolean;
  online: boolean;
  params: string[];
}

interface Target {
  tid: number;
  iqn: string;
  luns: Map<number, Lun>;
  accounts: string[];
  acls: string[];
  nexuses: { sid: number; initiator: string; address: string }[];
  state?: 'ready' | 'offline';
}

export type Injector = (argv: readonly string[], op: string) => CommandResult | undefined;

const ok = (stdout = ''): CommandResult => ({ stdout, stderr: '', exitCode: 0 });
const refuse = (msg: string): CommandResult => ({ stdout: '', stderr: `tgtadm: ${msg}\n`, exitCode: 22 });

export class FakeTgtd {
  readonly targets = new Map<number, Target>();
  readonly accounts = new Map<string, string>();
  running = true;
  /** every argv received, in order */
  readonly calls: string[][] = [];
  inject: Injector | null = null;
  private nextSid = 1;

  readonly runner: CommandRunner = async (argv) => {
    this.calls.push([...argv]);
    const opts = parse(argv);
    const op = `${opts['--mode'] ?? '?'}:${opts['--op'] ?? '?'}`;
    const injected = this.inject?.(argv, op);
    if (injected) return injected;
    if (argv[0] !== 'tgtadm') return { stdout: '', stderr: `unknown program ${argv[0]}`, exitCode: 127 };
    if (!this.running) return { stdout: '', stderr: 'tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected\n', exitCode: 107 };
    return this.handle(opts, op);
  };

  /** the commands received, as `mode:op` strings, optionally only those matching */
  ops(filter?: RegExp): string[] {
    return this.calls
      .map((c) => {
        const o = parse(c);
        return `${o['--mode']}:${o['--op']}`;
      })
      .filter((s) => !filter || filter.test(s));
  }

  /** a logged-in session, as an initiator would make one */
  login(iqn: string, initiator: string, address = '127.0.0.1'): number {
    const t = [...this.targets.values()].find((x) => x.iqn === iqn);
    if (!t) throw new Error('no target');
    const sid = this.nextSid++;
    t.nexuses.push({ sid, initiator, address });
    return sid;
  }

  target(iqn: string): Target | undefined {
    return [...this.targets.values()].find((x) => x.iqn === iqn);
  }

  /** tgtd restarted: everything gone */
  restart(): void {
    this.targets.clear();
    this.accounts.clear();
  }

  private handle(o: Record<string, string>, op: string): CommandResult {
    const tid = o['--tid'] === undefined ? undefined : Number(o['--tid']);
    const t = tid === undefined ? undefined : this.targets.get(tid);
    switch (op) {
      case 'sys:show':
        return ok('System:\n    State: ready\n    debug: off\nLLDs:\n    iscsi: ready\n');
      case 'target:show':
        // with --tid, tgtd shows only that target's iSCSI parameters (or refuses an unknown tid)
        if (tid !== undefined) return t ? ok('MaxRecvDataSegmentLength=8192\nMaxQueueCmd=128\n') : refuse("can't find the target");
        return ok(this.render());
      case 'account:show':
        return ok(`Account list:\n${[...this.accounts.keys()].map((a) => `    ${a}\n`).join('')}`);
      case 'target:new': {
        const iqn = o['-T'] ?? o['--targetname'];
        if (!iqn || tid === undefined) return refuse('invalid request');
        if (this.targets.has(tid) || [...this.targets.values()].some((x) => x.iqn === iqn)) return refuse('this target already exists');
        this.targets.set(tid, { tid, iqn, luns: new Map(), accounts: [], acls: [], nexuses: [] });
        return ok();
      }
      case 'target:update': {
        if (!t) return refuse("can't find the target");
        if (o['--name'] !== 'state' || (o['--value'] !== 'ready' && o['--value'] !== 'offline')) return refuse('invalid request');
        t.state = o['--value'];
        return ok();
      }
      case 'target:delete': {
        if (!t) return refuse("can't find the target");
        if (t.nexuses.length > 0 && !('--force' in o)) return refuse('this target is still active');
        this.targets.delete(t.tid);
        return ok();
      }
      case 'logicalunit:new': {
        if (!t) return refuse("can't find the target");
        const lun = Number(o['--lun']);
        if (t.luns.has(lun)) return refuse('this logical unit number already exists');
        const path = o['-b'] ?? o['--backing-store'];
        if (!path) return refuse('invalid request');
        t.luns.set(lun, { path, flags: o['--bsoflags'] ?? '', thin: false, online: true, params: [] });
        return ok();
      }
      case 'logicalunit:delete': {
        if (!t) return refuse("can't find the target");
        if (!t.luns.delete(Number(o['--lun']))) return refuse("can't find the logical unit");
        return ok();
      }
      case 'logicalunit:update': {
        if (!t) return refuse("can't find the target");
        const lu = t.luns.get(Number(o['--lun']));
        if (!lu) return refuse("can't find the logical unit");
        for (const kv of (o['--params'] ?? '').split(',')) {
          const [k, v] = kv.split('=') as [string, string];
          lu.params.push(kv);
          if (k === 'thin_provisioning') lu.thin = v === '1';
          else if (k === 'online') lu.online = v === '1';
          else if (k === 'path') {
            if (lu.online) return refuse('invalid request');
            lu.path = v;
            lu.online = true;
          } else if (k !== 'mode_page') return refuse('invalid request');
        }
        return ok();
      }
      case 'account:new': {
        const u = o['--user'];
        if (!u || !o['--password']) return refuse('invalid request');
        if (this.accounts.has(u)) return refuse('this account already exists');
        this.accounts.set(u, o['--password']);
        return ok();
      }
      case 'account:delete': {
        const u = o['--user'] ?? '';
        if (!this.accounts.delete(u)) return refuse("can't find the account");
        for (const x of this.targets.values()) x.accounts = x.accounts.filter((a) => a !== u);
        return ok();
      }
      case 'account:bind': {
        if (!t) return refuse("can't find the target");
        const u = o['--user'] ?? '';
        if (!this.accounts.has(u)) return refuse("can't find the account");
        if (t.accounts.includes(u)) return refuse('this account already exists');
        t.accounts.push(u);
        return ok();
      }
      case 'account:unbind': {
        if (!t) return refuse("can't find the target");
        const u = o['--user'] ?? '';
        if (!t.accounts.includes(u)) return refuse("can't find the account");
        t.accounts = t.accounts.filter((a) => a !== u);
        return ok();
      }
      case 'target:bind': {
        if (!t) return refuse("can't find the target");
        const acl = o['--initiator-name'] ?? o['--initiator-address'] ?? o['-Q'] ?? o['-I'];
        if (!acl) return refuse('invalid request');
        if (t.acls.includes(acl)) return refuse('this access control rule already exists');
        t.acls.push(acl);
        return ok();
      }
      case 'target:unbind': {
        if (!t) return refuse("can't find the target");
        const acl = o['--initiator-name'] ?? o['--initiator-address'] ?? '';
        if (!t.acls.includes(acl)) return refuse('this access control rule does not exist');
        t.acls = t.acls.filter((a) => a !== acl);
        return ok();
      }
      case 'conn:delete': {
        if (!t) return refuse("can't find the target");
        const sid = Number(o['--sid']);
        if (!t.nexuses.some((n) => n.sid === sid)) return refuse("can't find the session");
        t.nexuses = t.nexuses.filter((n) => n.sid !== sid);
        return ok();
      }
      default:
        return refuse('invalid request');
    }
  }

  private render(): string {
    const out: string[] = [];
    for (const t of [...this.targets.values()].sort((a, b) => a.tid - b.tid)) {
      out.push(`Target ${t.tid}: ${t.iqn}`, '    System information:', '        Driver: iscsi', `        State: ${t.state ?? 'ready'}`, '    I_T nexus information:');
      for (const n of t.nexuses) {
        out.push(`        I_T nexus: ${n.sid}`, `            Initiator: ${n.initiator} alias: none`, '            Connection: 0', `                IP Address: ${n.address}`);
      }
      out.push('    LUN information:');
      const luns: [number, Lun | null][] = [[0, null], ...[...t.luns.entries()].sort((a, b) => a[0] - b[0])];
      for (const [n, lu] of luns) {
        out.push(
          `        LUN: ${n}`,
          `            Type: ${lu ? 'disk' : 'controller'}`,
          `            SCSI ID: IET     000${t.tid}000${n}`,
          `            SCSI SN: beaf${t.tid}${n}`,
          `            Size: ${lu ? 67 : 0} MB, Block size: ${lu ? 512 : 1}`,
          `            Online: ${!lu || lu.online ? 'Yes' : 'No'}`,
          '            Removable media: No',
          '            Prevent removal: No',
          '            Readonly: No',
          '            SWP: No',
          `            Thin-provisioning: ${lu?.thin ? 'Yes' : 'No'}`,
          `            Backing store type: ${lu ? 'rdwr' : 'null'}`,
          `            Backing store path: ${lu ? lu.path : 'None'}`,
          `            Backing store flags: ${lu ? lu.flags : ''}`,
        );
      }
      out.push('    Account information:', ...t.accounts.map((a) => `        ${a}`), '    ACL information:', ...t.acls.map((a) => `        ${a}`));
    }
    return out.length ? `${out.join('\n')}\n` : '';
  }
}

/** tgtadm's options as a map (flags without a value map to ''). */
function parse(argv: readonly string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--force' || a === '--outgoing') {
      o[a] = '';
      continue;
    }
    if (a.startsWith('-')) {
      o[a] = argv[i + 1] ?? '';
      i++;
    }
  }
  return o;
}

/**
 * The options of a TgtTarget on a FakeTgtd, as the unit tests build it: one portal 10.0.0.5:3260,
 * cinder's default prefix, write cache on, a short busy timeout.
 */
export function fakeTgtTargetOptions(fake: FakeTgtd, volumesDir: string, over: Partial<TgtTargetOptions> = {}): TgtTargetOptions {
  return {
    targetPrefix: 'iqn.2010-10.org.openstack:',
    targetIpAddress: '10.0.0.5',
    targetSecondaryIpAddresses: [],
    targetPort: 3260,
    targetProtocol: 'iscsi',
    volumesDir,
    iscsiWriteCache: 'on',
    iscsiTargetFlags: '',
    runner: fake.runner,
    busyTimeoutMs: 300,
    ...over,
  };
}
