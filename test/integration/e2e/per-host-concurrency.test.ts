// Issue 12, "done when", on the host for tgt: three initiator hosts, 20 multiattach volumes, 200
// random concurrent attach / complete / detach operations through the real cinder-api (MariaDB, its
// own RabbitMQ vhost) against the agent as a process with target_layout = per-host, the agent and
// then tgtd killed -9 in the middle. Watchers on each host keep logging in with the credentials
// they last had and, every fourth round, discover their host target and read every LUN's serial.
// Afterwards and at every sample: no host reached a volume it had no attachment of (by serial), no
// LUN number served two volumes to one host, the restore put every host target back, the ACLs and
// LUNs match the database at quiescence, `cinderblock audit` is clean, and nothing is left once
// every attachment is deleted (no target, account, session; every volume available, its data
// intact). The machinery is the attach soak's (test/soak/attach-soak-lib.ts).
import { describe, expect, it } from 'vitest';
import { tgtAvailable } from '../../helpers/tgtd.js';
import { qemuIscsiAvailable } from '../../helpers/libiscsi.js';
import { runAttachSoak, summaryTable } from '../../soak/attach-soak-lib.js';
import { tgtSoakSide } from '../../soak/soak-tgt-side.js';

const ready = (await tgtAvailable()) && (await qemuIscsiAvailable());

describe.runIf(ready)('per-host targets under concurrent attach/detach through cinder-api, with kill -9 of the agent and tgtd', () => {
  it('no host ever reaches a volume not attached to it; restore, audit and cleanup hold', async () => {
    const r = await runAttachSoak({
      ops: 200,
      concurrency: 8,
      volumes: 20,
      seed: 12,
      deadlineMs: 1_500_000,
      faults: true,
      target: tgtSoakSide({ owner: 'agent', restartWaitMs: 30_000 }),
      targetLayout: 'per-host',
      watchdog: true,
    });
    const table = summaryTable(r);
    expect(r.findings, table).toEqual([]);
    expect(r.exposures).toEqual([]);
    expect(r.corruptions).toEqual([]);
    expect(r.watcher.unattached_samples).toBeGreaterThan(0);
    expect(r.watcher.discovery_samples).toBeGreaterThan(0);
    expect(r.quiescence_audit.cinderblock_audit_exit).toBe(0);
    expect(r.final.leftover_targets).toEqual([]);
    expect(r.final.patterns.intact).toBe(r.final.patterns.checked);
  }, 1_800_000);
});
