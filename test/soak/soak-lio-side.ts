// The attach soak's target side on LIO through configfs (in the lab guest: the build host's kernel
// has none). The kernel serves the targets, so nothing is started; they are read from configfs as
// the initiators meet them (node ACLs, LUNs and their storage objects' unit serials), and the
// target-side fault is the loss of all LIO state while the agent runs: every target and storage
// object removed from configfs, as `targetctl clear` or a reload of the target modules leaves it.
// The agent's LIO watch must notice and restore every live export with the same LUN numbers.
import { Configfs, DEFAULT_CONFIGFS_ROOT, nodeConfigfsIo, type ConfigfsIo } from '../../drivers/targets/lio/configfs.js';
import type { SoakTargetSide, SoakTargetView, TargetFaultOutcome } from './soak-target-side.js';

/** `configfsRoot` and `io` are for the unit test's stand-in; the soak uses the kernel's configfs. */
export function lioSoakSide(o: { layout: 'per-volume' | 'per-host'; configfsRoot?: string; io?: ConfigfsIo }): SoakTargetSide {
  const fs = new Configfs(o.configfsRoot ?? DEFAULT_CONFIGFS_ROOT, o.io ?? nodeConfigfsIo);

  return {
    label: `LIO through configfs, target_layout = ${o.layout}`,
    faultKind: 'lio-loss',
    faultWords: 'loss of all LIO state (every target and storage object removed from configfs)',
    controllerLun: null,
    sendTargetsListsAll: true,

    async prepare() {
      if (!(await fs.available())) throw new Error(`no LIO here: ${fs.root} is missing (run in the lab guest)`);
      return {
        backend: { target_helper: 'lioadm', target_protocol: 'iscsi', target_ip_address: '127.0.0.1', target_layout: o.layout },
        extraSections: {},
      };
    },

    async afterAgentStart() {
      // the kernel serves LIO: no process to track
    },

    async targets(): Promise<SoakTargetView[] | null> {
      try {
        const infos = await Promise.all((await fs.listTargets()).map((iqn) => fs.readHostTarget(iqn)));
        return infos
          .filter((t) => t !== null)
          .map((t) => ({
            iqn: t.iqn,
            acls: t.acls.map((a) => a.initiator),
            accounts: [],
            // LIO has no controller LUN: LUN 0 carries a volume like any other
            luns: t.luns.map((l) => ({ lun: l.lun, serial: l.serial })),
            serving: t.enabled && t.portals.length > 0,
          }));
      } catch {
        // a target vanishing while it is read (a terminate, the fault)
        return null;
      }
    },

    async unboundAccounts() {
      return [];
    },

    async injectFault(c): Promise<TargetFaultOutcome> {
      const iqns = await fs.listTargets();
      const stores = await fs.listBackstores();
      c.say(`FAULT: loss of all LIO state: ${iqns.length} target(s) and ${stores.length} storage object(s) removed from configfs`);
      const notes: string[] = [];
      for (const iqn of iqns) await fs.removeTarget(iqn).catch((e: unknown) => notes.push(`remove ${iqn}: ${String(e)}`));
      for (const b of stores) await fs.removeBackstore(b).catch((e: unknown) => notes.push(`remove ${b.name}: ${String(e)}`));
      const left = await fs.listTargets();
      if (left.length) notes.push(`still in configfs after the removal (an export made meanwhile): ${left.join(', ')}`);
      return { old_pid: null, new_pid: null, back_after_s: 0, restarted_by: null, notes };
    },

    async teardown() {
      // the guest powers off; nothing of the host to undo
    },
  };
}
