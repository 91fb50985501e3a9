// Host side of bench/lab/host-target-lio-bench.mts (run by test/lab/run-lab.sh as `node --import
// tsx HOOK DIR` for the guest's lifetime). The bench needs no host service; this only hands the
// guest the host's CB_HT_VOLUMES, since a guest sees no host environment but DIR/guest.env.
//   CB_HT_VOLUMES=20 bash test/lab/run-lab.sh bench/lab/host-target-lio-bench.mts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: host-target-lio-bench.host.mts DIR');
const volumes = process.env.CB_HT_VOLUMES;
if (volumes !== undefined && !/^\d+$/.test(volumes)) throw new Error(`CB_HT_VOLUMES must be a number of volumes, got ${JSON.stringify(volumes)}`);
writeFileSync(join(dir, 'guest.env'), volumes ? `CB_HT_VOLUMES=${volumes}\n` : '');
writeFileSync(join(dir, 'ready'), '');
// Nothing to stop: stay until run-lab.sh ends the guest.
process.on('SIGTERM', () => process.exit(0));
setInterval(() => undefined, 60_000);
