// The command layer for tgt: argv for tgtadm and tgt-admin, the meaning of their failures, and a
// small client that runs them through a CommandRunner and parses `--op show`. It knows nothing of
// volumes, RPC or the database. Every value that comes from outside is checked before it becomes an
// argv element (validate.ts); argv never passes through a shell.
//
// tgtadm exits 22 for every refused request and tells them apart only by its stderr text
// (tgt 1.0.85 usr/tgtadm.c tgtadm_strerror); exit 107 means no tgtd on that control port.
import { log } from '../../../src/log.js';
import { isIP } from 'node:net';
import { invalidInput } from '../../../src/errors.js';
import { CommandError, redactArgv, type CommandResult, type CommandRunner } from '../../../src/exec/run-command.js';
import { assertChapCredential, assertInitiatorName, assertTargetIqn, formatPortal, type Portal } from '../../../src/iscsi/index.js';
import { assertBackingPath, assertBsoflags, assertId, assertDirectory } from '../validate.js';
import {
  parseShowAccounts,
  parseShowConnections,
  parseShowPortals,
  parseShowSystem,
  parseShowTargets,
  TargetListing,
  type TgtPortal,
  type TgtSessionConnection,
  type TgtSystemInfo,
  type TgtTargetInfo,
} from './tgtadm-parse.js';

export interface TgtadmContext {
  /** tgtd's management port (`tgtd -C N`, socket /var/run/tgtd/socket.N); omitted when 0/undefined */
  controlPort?: number;
  /** low-level driver: iscsi (default) or iser, from target_protocol */
  lld?: 'iscsi' | 'iser';
}

/** Mode page 8 with the WCE bit cleared: what tgt-admin sends for `write-cache off`. */
export const WRITE_CACHE_OFF_MODE_PAGE = '8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0';

function controlArgs(ctx: TgtadmContext): string[] {
  if (ctx.controlPort === undefined || ctx.controlPort === 0) return [];
  assertId(ctx.controlPort, 'tgtd control port', 1);
  return ['-C', String(ctx.controlPort)];
}

function lldArgs(ctx: TgtadmContext): string[] {
  const lld = ctx.lld ?? 'iscsi';
  if (lld !== 'iscsi' && lld !== 'iser') throw invalidInput(`tgt lld must be iscsi or iser, got ${JSON.stringify(lld)}`);
  return ['--lld', lld];
}

function tgtadm(ctx: TgtadmContext, ...rest: string[]): string[] {
  return ['tgtadm', ...controlArgs(ctx), ...lldArgs(ctx), ...rest];
}

function tid(value: number): string {
  assertId(value, 'tid', 1);
  return String(value);
}

function lun(value: number): string {
  assertId(value, 'lun', 0);
  return String(value);
}

// ---- show -------------------------------------------------------------------------------------

export function showSystemArgv(ctx: TgtadmContext): string[] {
  return ['tgtadm', ...controlArgs(ctx), '--op', 'show', '--mode', 'sys'];
}

/** Every target with its sessions, LUNs, accounts and ACLs (parseShowTargets). */
export function showTargetsArgv(ctx: TgtadmContext): string[] {
  return tgtadm(ctx, '--op', 'show', '--mode', 'target');
}

/** One target's iSCSI parameters (`MaxRecvDataSegmentLength=8192` lines), not its LUNs. */
export function showTargetParamsArgv(ctx: TgtadmContext, targetId: number): string[] {
  return tgtadm(ctx, '--op', 'show', '--mode', 'target', '--tid', tid(targetId));
}

export function showAccountsArgv(ctx: TgtadmContext): string[] {
  return tgtadm(ctx, '--op', 'show', '--mode', 'account');
}

export function showPortalsArgv(ctx: TgtadmContext): string[] {
  return tgtadm(ctx, '--op', 'show', '--mode', 'portal');
}

export function showConnectionsArgv(ctx: TgtadmContext, targetId: number): string[] {
  return tgtadm(ctx, '--op', 'show', '--mode', 'conn', '--tid', tid(targetId));
}

// ---- targets ----------------------------------------------------------------------------------

export function newTargetArgv(ctx: TgtadmContext, targetId: number, iqn: string): string[] {
  assertTargetIqn(iqn);
  return tgtadm(ctx, '--op', 'new', '--mode', 'target', '--tid', tid(targetId), '-T', iqn);
}

export function deleteTargetArgv(ctx: TgtadmContext, targetId: number, opts: { force?: boolean } = {}): string[] {
  return tgtadm(ctx, '--op', 'delete', ...(opts.force ? ['--force'] : []), '--mode', 'target', '--tid', tid(targetId));
}

/** Target-level iSCSI parameter (`--op update --mode target --name <k> --value <v>`). */
export function updateTargetParamArgv(ctx: TgtadmContext, targetId: number, name: string, value: string): string[] {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw invalidInput(`target parameter name must be an identifier, got ${JSON.stringify(name)}`);
  if (!/^[A-Za-z0-9._:-]+$/.test(value)) throw invalidInput(`target parameter value must be letters, digits or . _ : -, got ${JSON.stringify(value)}`);
  return tgtadm(ctx, '--op', 'update', '--mode', 'target', '--tid', tid(targetId), '--name', name, '--value', value);
}

/**
 * Target state. While `offline`, tgtd answers logins with a (retryable) target error and, per
 * measurement, leaves commands of live sessions unanswered: close the sessions first.
 */
export function setTargetStateArgv(ctx: TgtadmContext, targetId: number, state: 'offline' | 'ready'): string[] {
  if (state !== 'offline' && state !== 'ready') throw invalidInput(`target state must be offline or ready, got ${JSON.stringify(state)}`);
  return tgtadm(ctx, '--op', 'update', '--mode', 'target', '--tid', tid(targetId), '--name', 'state', '--value', state);
}

// ---- logical units ----------------------------------------------------------------------------

export interface NewLunOptions {
  /** `sync`, `direct` or `sync:direct` (iscsi_target_flags) */
  bsoflags?: string;
  /** backing store type, e.g. rdwr (tgt's default), aio */
  bstype?: string;
}

export function newLunArgv(ctx: TgtadmContext, targetId: number, lunId: number, backingStore: string, opts: NewLunOptions = {}): string[] {
  assertBackingPath(backingStore);
  const extra: string[] = [];
  if (opts.bstype !== undefined) {
    if (!/^[a-z0-9]+$/.test(opts.bstype)) throw invalidInput(`bstype must be a tgt backing store type name, got ${JSON.stringify(opts.bstype)}`);
    extra.push('--bstype', opts.bstype);
  }
  if (opts.bsoflags !== undefined && opts.bsoflags !== '') {
    assertBsoflags(opts.bsoflags);
    extra.push('--bsoflags', opts.bsoflags);
  }
  return tgtadm(ctx, '--op', 'new', '--mode', 'logicalunit', '--tid', tid(targetId), '--lun', lun(lunId), '-b', backingStore, ...extra);
}

export function deleteLunArgv(ctx: TgtadmContext, targetId: number, lunId: number): string[] {
  return tgtadm(ctx, '--op', 'delete', '--mode', 'logicalunit', '--tid', tid(targetId), '--lun', lun(lunId));
}

const LU_PARAM_NAME = /^[a-z_]+$/;
const LU_PARAM_VALUE = /^[A-Za-z0-9._:/+@-]+$/;

/**
 * `--op update --mode logicalunit --params k=v[,k=v]`. tgtd applies them in order, which matters:
 * `online=0,path=<same path>` takes the LU offline, reopens the backing store (picking up a new
 * size) and brings it back online.
 */
export function updateLunParamsArgv(ctx: TgtadmContext, targetId: number, lunId: number, params: ReadonlyArray<readonly [string, string]>): string[] {
  if (params.length === 0) throw invalidInput('no logical unit parameters to update');
  const parts = params.map(([k, v]) => {
    if (!LU_PARAM_NAME.test(k)) throw invalidInput(`logical unit parameter name must be lower-case letters or _, got ${JSON.stringify(k)}`);
    if (k === 'path') assertBackingPath(v);
    else if (!LU_PARAM_VALUE.test(v)) throw invalidInput(`logical unit parameter ${k} has an unsafe value ${JSON.stringify(v)}`);
    return `${k}=${v}`;
  });
  return tgtadm(ctx, '--op', 'update', '--mode', 'logicalunit', '--tid', tid(targetId), '--lun', lun(lunId), '--params', parts.join(','));
}

// ---- accounts (CHAP) ------------------------------------------------------------------------

export function newAccountArgv(ctx: TgtadmContext, user: string, password: string): string[] {
  assertChapCredential(user, 'username');
  assertChapCredential(password, 'password');
  return tgtadm(ctx, '--op', 'new', '--mode', 'account', '--user', user, '--password', password);
}

export function deleteAccountArgv(ctx: TgtadmContext, user: string): string[] {
  assertChapCredential(user, 'username');
  return tgtadm(ctx, '--op', 'delete', '--mode', 'account', '--user', user);
}

/** Incoming (initiator authenticates to target) unless `outgoing`; tgtadm's --outgoing is a bare flag. */
export function bindAccountArgv(ctx: TgtadmContext, targetId: number, user: string, opts: { outgoing?: boolean } = {}): string[] {
  assertChapCredential(user, 'username');
  return tgtadm(ctx, '--op', 'bind', '--mode', 'account', '--tid', tid(targetId), '--user', user, ...(opts.outgoing ? ['--outgoing'] : []));
}

export function unbindAccountArgv(ctx: TgtadmContext, targetId: number, user: string, opts: { outgoing?: boolean } = {}): string[] {
  assertChapCredential(user, 'username');
  return tgtadm(ctx, '--op', 'unbind', '--mode', 'account', '--tid', tid(targetId), '--user', user, ...(opts.outgoing ? ['--outgoing'] : []));
}

// ---- ACLs -------------------------------------------------------------------------------------

export function bindInitiatorNameArgv(ctx: TgtadmContext, targetId: number, initiator: string): string[] {
  assertInitiatorName(initiator);
  return tgtadm(ctx, '--op', 'bind', '--mode', 'target', '--tid', tid(targetId), '--initiator-name', initiator);
}

export function unbindInitiatorNameArgv(ctx: TgtadmContext, targetId: number, initiator: string): string[] {
  assertInitiatorName(initiator);
  return tgtadm(ctx, '--op', 'unbind', '--mode', 'target', '--tid', tid(targetId), '--initiator-name', initiator);
}

/** `ALL`, an IP address, or an IP network `a.b.c.d/n` / `[v6]/n`. */
export function assertInitiatorAddress(value: string): void {
  if (value === 'ALL') return;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9A-Fa-f:.]+))(?:\/(\d{1,3}))?$/.exec(value);
  const host = m ? (m[1] ?? m[2]) : undefined;
  if (!m || !host || isIP(host) === 0) throw invalidInput(`initiator address must be ALL, an IP address or a network, got ${JSON.stringify(value)}`);
}

export function bindInitiatorAddressArgv(ctx: TgtadmContext, targetId: number, address: string): string[] {
  assertInitiatorAddress(address);
  return tgtadm(ctx, '--op', 'bind', '--mode', 'target', '--tid', tid(targetId), '--initiator-address', address);
}

/** Looser than bind: removes whatever address rule tgtd lists (it stores the text it was given). */
export function unbindInitiatorAddressArgv(ctx: TgtadmContext, targetId: number, address: string): string[] {
  if (!/^[A-Za-z0-9.:/[\]%-]{1,128}$/.test(address)) throw invalidInput(`initiator address rule has unexpected characters: ${JSON.stringify(address)}`);
  return tgtadm(ctx, '--op', 'unbind', '--mode', 'target', '--tid', tid(targetId), '--initiator-address', address);
}

// ---- sessions and portals ---------------------------------------------------------------------

/** Close one connection (the initiator sees its TCP connection drop). */
export function deleteConnectionArgv(ctx: TgtadmContext, targetId: number, sid: number, cid: number): string[] {
  assertId(sid, 'sid', 0);
  assertId(cid, 'cid', 0);
  return tgtadm(ctx, '--op', 'delete', '--mode', 'conn', '--tid', tid(targetId), '--sid', String(sid), '--cid', String(cid));
}

export function newPortalArgv(ctx: TgtadmContext, portal: Portal): string[] {
  if (isIP(portal.host) === 0) throw invalidInput(`portal address must be an IP address, got ${JSON.stringify(portal.host)}`);
  assertId(portal.port, 'portal port', 1);
  return tgtadm(ctx, '--op', 'new', '--mode', 'portal', '--param', `portal=${formatPortal(portal)}`);
}

// ---- tgt-admin (config-file path) -------------------------------------------------------------

function tgtAdminBase(ctx: TgtadmContext, confFile?: string): string[] {
  const out = ['tgt-admin', ...controlArgs(ctx)];
  if (confFile !== undefined) {
    assertDirectory(confFile, 'tgt config file');
    out.push('-c', confFile);
  }
  return out;
}

/** `tgt-admin --update <iqn> [-f]`: (re)create one target from the config files. */
export function tgtAdminUpdateArgv(ctx: TgtadmContext, iqn: string, opts: { force?: boolean; confFile?: string } = {}): string[] {
  assertTargetIqn(iqn);
  return [...tgtAdminBase(ctx, opts.confFile), '--update', iqn, ...(opts.force ? ['-f'] : [])];
}

/** `tgt-admin --delete <iqn> [-f]` */
export function tgtAdminDeleteArgv(ctx: TgtadmContext, iqn: string, opts: { force?: boolean } = {}): string[] {
  assertTargetIqn(iqn);
  return [...tgtAdminBase(ctx), '--delete', iqn, ...(opts.force ? ['-f'] : [])];
}

export function tgtAdminShowArgv(ctx: TgtadmContext): string[] {
  return [...tgtAdminBase(ctx), '--show'];
}

// ---- failures ---------------------------------------------------------------------------------

export type TgtadmErrorKind =
  | 'no-daemon'
  | 'target-not-found'
  | 'lun-not-found'
  | 'account-not-found'
  | 'acl-not-found'
  | 'session-not-found'
  | 'connection-not-found'
  | 'binding-not-found'
  | 'target-exists'
  | 'lun-exists'
  | 'account-exists'
  | 'acl-exists'
  | 'binding-exists'
  | 'target-busy'
  | 'lun-busy'
  | 'invalid-request'
  | 'unknown';

const STDERR_KINDS: ReadonlyArray<readonly [RegExp, TgtadmErrorKind]> = [
  [/can't connect to tgt daemon|failed to send request hdr|can't get the response|Transport endpoint is not connected|Connection refused/, 'no-daemon'],
  [/can't find the target/, 'target-not-found'],
  [/can't find the logical unit/, 'lun-not-found'],
  [/can't find the account/, 'account-not-found'],
  [/access control rule does not exist/, 'acl-not-found'],
  [/can't find the session/, 'session-not-found'],
  [/can't find the connection/, 'connection-not-found'],
  [/can't find the binding/, 'binding-not-found'],
  [/this target already exists/, 'target-exists'],
  [/this logical unit number already exists/, 'lun-exists'],
  [/this account already exists/, 'account-exists'],
  [/this access control rule already exists/, 'acl-exists'],
  [/this binding already exists/, 'binding-exists'],
  [/this target is still active/, 'target-busy'],
  [/this logical unit is still active/, 'lun-busy'],
  [/invalid request/, 'invalid-request'],
];

export function classifyTgtadmFailure(result: Pick<CommandResult, 'stderr' | 'exitCode'>): TgtadmErrorKind {
  for (const [re, kind] of STDERR_KINDS) if (re.test(result.stderr)) return kind;
  if (result.exitCode === 107) return 'no-daemon';
  return 'unknown';
}

/** A tgtadm/tgt-admin failure: the one runner's CommandError plus what kind of refusal it is. */
export class TgtadmError extends CommandError {
  readonly kind: TgtadmErrorKind;

  constructor(argv: readonly string[], result: CommandResult) {
    super(argv, result);
    const kind = classifyTgtadmFailure(result);
    const why = result.stderr.trim().split('\n')[0] ?? '';
    this.message = `${this.argv.join(' ')} failed (exit ${result.exitCode}, ${kind}): ${why}`;
    this.name = 'TgtadmError';
    this.kind = kind;
  }
}

export function isTgtadmError(e: unknown, ...kinds: TgtadmErrorKind[]): e is TgtadmError {
  return e instanceof TgtadmError && (kinds.length === 0 || kinds.includes(e.kind));
}

// ---- client -----------------------------------------------------------------------------------

/** Runs tgtadm/tgt-admin and parses what they print. One instance per tgtd (control port). */
export class Tgtadm {
  constructor(
    private readonly runner: CommandRunner,
    readonly ctx: TgtadmContext = {},
  ) {}

  /** Run argv; TgtadmError unless it exits 0. */
  async run(argv: readonly string[]): Promise<CommandResult> {
    const started = performance.now();
    const result = await this.runner(argv);
    const ms = Math.round(performance.now() - started);
    if (result.exitCode !== 0) {
      const err = new TgtadmError(argv, result);
      log().debug({ argv: err.argv, exit_code: result.exitCode, kind: err.kind, ms }, 'tgt command failed');
      throw err;
    }
    log().debug({ argv: redactArgv(argv), ms }, 'tgt command');
    return result;
  }

  /** Run argv and treat the listed failure kinds as success (idempotent create/delete). */
  async runTolerating(argv: readonly string[], ...ok: TgtadmErrorKind[]): Promise<boolean> {
    try {
      await this.run(argv);
      return true;
    } catch (e) {
      if (isTgtadmError(e, ...ok)) return false;
      throw e;
    }
  }

  async showSystem(): Promise<TgtSystemInfo> {
    return parseShowSystem((await this.run(showSystemArgv(this.ctx))).stdout);
  }

  /** True when a tgtd answers on this control port. */
  async isRunning(): Promise<boolean> {
    try {
      await this.run(showSystemArgv(this.ctx));
      return true;
    } catch (e) {
      if (isTgtadmError(e, 'no-daemon')) return false;
      throw e;
    }
  }

  async showTargets(): Promise<TgtTargetInfo[]> {
    return parseShowTargets((await this.run(showTargetsArgv(this.ctx))).stdout);
  }

  /** Every target, as text with lookups that parse only what they need (TargetListing). */
  async listTargets(): Promise<TargetListing> {
    return new TargetListing((await this.run(showTargetsArgv(this.ctx))).stdout);
  }

  /**
   * Whether tgtd has a target with this tid: one small request (`--op show --tid`, the target's
   * iSCSI parameters), whatever the number of targets. It does not say which IQN the tid has.
   */
  async targetExists(targetId: number): Promise<boolean> {
    return this.runTolerating(showTargetParamsArgv(this.ctx, targetId), 'target-not-found');
  }

  async showAccounts(): Promise<string[]> {
    return parseShowAccounts((await this.run(showAccountsArgv(this.ctx))).stdout);
  }

  async showPortals(): Promise<TgtPortal[]> {
    return parseShowPortals((await this.run(showPortalsArgv(this.ctx))).stdout);
  }

  async showConnections(targetId: number): Promise<TgtSessionConnection[]> {
    return parseShowConnections((await this.run(showConnectionsArgv(this.ctx, targetId))).stdout);
  }

  async newTarget(targetId: number, iqn: string): Promise<void> {
    await this.run(newTargetArgv(this.ctx, targetId, iqn));
  }

  async deleteTarget(targetId: number, opts: { force?: boolean } = {}): Promise<void> {
    await this.run(deleteTargetArgv(this.ctx, targetId, opts));
  }

  async newLun(targetId: number, lunId: number, backingStore: string, opts: NewLunOptions = {}): Promise<void> {
    await this.run(newLunArgv(this.ctx, targetId, lunId, backingStore, opts));
  }

  async deleteLun(targetId: number, lunId: number): Promise<void> {
    await this.run(deleteLunArgv(this.ctx, targetId, lunId));
  }

  async updateLunParams(targetId: number, lunId: number, params: ReadonlyArray<readonly [string, string]>): Promise<void> {
    await this.run(updateLunParamsArgv(this.ctx, targetId, lunId, params));
  }

  async newAccount(user: string, password: string): Promise<void> {
    await this.run(newAccountArgv(this.ctx, user, password));
  }

  async deleteAccount(user: string): Promise<void> {
    await this.run(deleteAccountArgv(this.ctx, user));
  }

  async bindAccount(targetId: number, user: string): Promise<void> {
    await this.run(bindAccountArgv(this.ctx, targetId, user));
  }

  async unbindAccount(targetId: number, user: string): Promise<void> {
    await this.run(unbindAccountArgv(this.ctx, targetId, user));
  }

  async bindInitiatorName(targetId: number, initiator: string): Promise<void> {
    await this.run(bindInitiatorNameArgv(this.ctx, targetId, initiator));
  }

  async unbindInitiatorName(targetId: number, initiator: string): Promise<void> {
    await this.run(unbindInitiatorNameArgv(this.ctx, targetId, initiator));
  }

  async unbindInitiatorAddress(targetId: number, address: string): Promise<void> {
    await this.run(unbindInitiatorAddressArgv(this.ctx, targetId, address));
  }

  async deleteConnection(targetId: number, sid: number, cid: number): Promise<void> {
    await this.run(deleteConnectionArgv(this.ctx, targetId, sid, cid));
  }

  async newPortal(portal: Portal): Promise<void> {
    await this.run(newPortalArgv(this.ctx, portal));
  }
}
