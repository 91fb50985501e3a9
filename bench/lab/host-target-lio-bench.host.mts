// Host side of bench/lab/host-target-lio-bench.mts (run by test/lab/run-lab.sh as `node --import
// tsx HOOK DIR` for the guest's lifetime): no host service, only the host's CB_HT_VOLUMES.
//   CB_HT_VOLUMES=20 bash test/lab/run-lab.sh bench/lab/host-target-lio-bench.mts
import { serveGuestEnv } from './guest-env-hook.js';

serveGuestEnv('host-target-lio-bench.host.mts', ['CB_HT_VOLUMES']);
