// Host side of bench/lab/nvmet-vs-lio-bench.mts (run by test/lab/run-lab.sh for the guest's
// lifetime): no host service, only the host's CB_BENCH_* counts handed to the guest.
//   CB_BENCH_SAMPLES=10 CB_BENCH_RESTORE=50 CBLAB_SUITE_TIMEOUT=1500 bash test/lab/run-lab.sh bench/lab/nvmet-vs-lio-bench.mts
import { serveGuestEnv } from './guest-env-hook.js';

serveGuestEnv('nvmet-vs-lio-bench.host.mts', ['CB_BENCH_SAMPLES', 'CB_BENCH_RESTORE', 'CB_BENCH_FIO_S', 'CB_BENCH_FIO_MIB']);
