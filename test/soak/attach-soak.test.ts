// A CI-sized attach soak (issue 10): the same run as test/soak/attach-soak.mts, smaller — 6
// volumes, 3 hosts, CB_SOAK_OPS (40) random attachment operations at concurrency 8, a watcher per
// host, kill -9 of the agent and of tgtd on the way — and it must end with no finding. Not part of
// `npm test`; run it with its own config after `npm run build:ts`:
//
//   npx vitest run -c test/soak/vitest.config.ts
import { describe, expect, it } from 'vitest';
import { tgtAvailable } from '../helpers/tgtd.js';
import { qemuIscsiAvailable } from '../helpers/libiscsi.js';
import { runAttachSoak, summaryTable } from './attach-soak-lib.js';
import { tgtSoakSide } from './soak-tgt-side.js';

const ready = (await tgtAvailable()) && (await qemuIscsiAvailable());

describe.runIf(ready)('attach soak, short (cinder-api on MariaDB, agent process, tgtd, qemu-io watchers)', () => {
  it('random concurrent attachments with the agent and tgtd killed: no exposure, no leftover, no stuck volume, patterns intact', async () => {
    const r = await runAttachSoak({
      ops: Number(process.env.CB_SOAK_OPS ?? 40),
      concurrency: 8,
      volumes: Number(process.env.CB_SOAK_VOLUMES ?? 6),
      seed: Number(process.env.CB_SOAK_SEED ?? 7),
      deadlineMs: 1_200_000,
      faults: process.env.CB_SOAK_FAULTS !== '0',
      target: tgtSoakSide({ owner: 'agent', restartWaitMs: 30_000 }),
      watchdog: true,
      progress: (l) => console.log(l),
    });
    console.log(summaryTable(r));
    expect(r.findings).toEqual([]);
    expect(r.exposures).toEqual([]);
    // the run saw something: clean samples of both kinds, and every volume checked
    expect(r.watcher.unattached_samples).toBeGreaterThan(0);
    expect(r.final.patterns.intact).toBe(r.final.patterns.checked);
  }, 1_500_000);
});
