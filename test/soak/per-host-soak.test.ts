// The attach soak in the per-host layout (issue 12's "done when"): three initiator hosts, CB_SOAK_VOLUMES
// (20) multiattach volumes, CB_SOAK_OPS (200) random attach / complete / detach operations through
// the real cinder-api at concurrency 8, a watcher per host that keeps logging in with the
// credentials it last had and, every fourth round, discovers its host target and reads every LUN's
// serial, the agent and then tgtd killed -9 on the way. It must end with no finding: no host ever
// reaches a volume it has no attachment of, no LUN number serves two volumes to one host, the
// restore puts every host target back, `cinderblock audit` is clean at quiescence, nothing is left.
//
//   npx vitest run -c test/soak/vitest.config.ts test/soak/per-host-soak.test.ts
import { describe, expect, it } from 'vitest';
import { tgtAvailable } from '../helpers/tgtd.js';
import { qemuIscsiAvailable } from '../helpers/libiscsi.js';
import { runAttachSoak, summaryTable } from './attach-soak-lib.js';

const ready = (await tgtAvailable()) && (await qemuIscsiAvailable());

describe.runIf(ready)('attach soak, per-host targets (cinder-api on MariaDB, agent process, tgtd, qemu-io and discovery watchers)', () => {
  it('random concurrent attachments to shared host targets with the agent and tgtd killed: no exposure, no LUN reuse, clean audit, nothing left', async () => {
    const r = await runAttachSoak({
      ops: Number(process.env.CB_SOAK_OPS ?? 200),
      concurrency: 8,
      volumes: Number(process.env.CB_SOAK_VOLUMES ?? 20),
      seed: Number(process.env.CB_SOAK_SEED ?? 12),
      deadlineMs: 1_500_000,
      faults: process.env.CB_SOAK_FAULTS !== '0',
      tgtdOwner: 'agent',
      tgtdRestartWaitMs: 30_000,
      targetLayout: 'per-host',
      watchdog: true,
      progress: (l) => console.log(l),
    });
    console.log(summaryTable(r));
    expect(r.findings).toEqual([]);
    expect(r.exposures).toEqual([]);
    expect(r.watcher.unattached_samples).toBeGreaterThan(0);
    expect(r.watcher.discovery_samples).toBeGreaterThan(0);
    expect(r.quiescence_audit.cinderblock_audit_exit).toBe(0);
    expect(r.final.patterns.intact).toBe(r.final.patterns.checked);
  }, 1_800_000);
});
