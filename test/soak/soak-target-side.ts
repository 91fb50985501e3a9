// What the attach soak (attach-soak-lib.ts) needs of the target side it runs against, so that the
// same model, watchers and checks run on tgtd (on the build host, soak-tgt-side.ts) and on LIO
// through configfs (in the lab guest, soak-lio-side.ts): the backend's target options, a read of
// every target as the initiators' side sees it, the target-side fault, and the teardown.
import type { CleanupManifest } from '../helpers/soak-watchdog.js';

/** One target as the soak checks it: whom it admits and which volume each LUN serves. */
export interface SoakTargetView {
  iqn: string;
  /** initiator names admitted (tgt: its ACL list; LIO: the node ACLs) */
  acls: string[];
  /** CHAP accounts bound to it (tgt); LIO keeps CHAP inside each ACL, so none */
  accounts: string[];
  /** the LUNs that carry a volume (tgt's controller LUN 0 left out), with their unit serial */
  luns: Array<{ lun: number; serial: string }>;
  /** it accepts logins (LIO: TPG enabled with a portal; a listed target may not) */
  serving: boolean;
}

export interface SoakSideContext {
  logDir: string;
  /** the run's cleanup manifest when a watchdog guards it */
  manifest: CleanupManifest | null;
  say(line: string): void;
  finding(line: string): void;
}

/** What the target-side fault did; the soak then waits for the exports to come back. */
export interface TargetFaultOutcome {
  /** why the fault was not injected (the soak records it as a finding) */
  skipped?: string;
  old_pid: number | null;
  new_pid: number | null;
  /** the daemon serving again (tgt); for LIO, whose kernel never goes away, 0 */
  back_after_s: number | null;
  restarted_by: 'agent' | 'script' | null;
  notes: string[];
}

export interface SoakTargetSide {
  /** for the progress line and the result's config */
  readonly label: string;
  readonly faultKind: 'tgtd-kill' | 'lio-loss';
  /** what the fault is, in the words of the progress line */
  readonly faultWords: string;
  /** a LUN number that is the target's own controller, never a volume (tgt's 0); null for none */
  readonly controllerLun: number | null;
  /** SendTargets names every target on the portal (LIO), not only those admitting the initiator (tgt) */
  readonly sendTargetsListsAll: boolean;
  /** the backend's target options for cinder.conf, and further sections the agent needs */
  prepare(ctx: SoakSideContext): Promise<{ backend: Record<string, string>; extraSections: Record<string, Record<string, string>> }>;
  /** after the agent served: note what it started (tgtd) for the watchdog */
  afterAgentStart(): Promise<void>;
  /** every target there is; null when the target side does not answer */
  targets(): Promise<SoakTargetView[] | null>;
  /** CHAP accounts that exist but are bound to no target (tgt); [] where CHAP lives in the ACL */
  unboundAccounts(): Promise<string[]>;
  /** inject the fault and wait for the target side to serve again (not for the restore) */
  injectFault(ctx: SoakSideContext, t0: () => number): Promise<TargetFaultOutcome>;
  teardown(): Promise<void>;
}

/** A LUN's unit serial names this volume (tgt shows it without dashes, LIO with them). */
export function serialIsVolume(serial: string, volumeId: string): boolean {
  const s = serial.trim().toLowerCase().replaceAll('-', '');
  return s !== '' && s === volumeId.toLowerCase().replaceAll('-', '');
}
