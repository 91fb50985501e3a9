// Attach soak (issue 10): three hosts, 20 multiattach volumes, 200 random concurrent attachment
// operations (create with a connector, os-complete, delete) at concurrency 8 through the real
// cinder-api on MariaDB, cinderblock as a process on the file pool exporting through a real tgtd,
// a watcher per host logging in (qemu-io, its own initiator name, the CHAP credentials it last got)
// and reading throughout, kill -9 of the agent at ~1/3 of the ops and of tgtd at ~2/3. It fails on
// any read by a host not attached to the volume, any wrong pattern, a stale ACL at quiescence, a
// target or CHAP account left without an attachment, a volume left reserved/attaching/detaching/
// error_*, or a fault the agent does not recover from (tgtd not back within 30 s). See
// attach-soak-lib.ts for the model and the checks.
//
//   npm run build:ts                      # the agent runs from dist/
//   npx tsx test/soak/attach-soak.mts     # about 10 minutes; as root, with RabbitMQ, MariaDB,
//                                         # cinder-api/scheduler (Debian's cinder), tgt, qemu-block-extra
//
// Env: CB_SOAK_OPS (200), CB_SOAK_CONCURRENCY (8), CB_SOAK_VOLUMES (20), CB_SOAK_SEED (1: the random
// op sequence; watchers and timing still vary), CB_SOAK_FAULTS (1; 0 = no kills),
// CB_SOAK_TGTD (agent: the agent starts tgtd, as in production | script: the script starts it and
// the agent treats it as someone else's), CB_SOAK_TGTD_WAIT_S (30: how long the agent has to bring
// tgtd back), CB_SOAK_DEADLINE_S (2400: the whole run; the op phase stops issuing at 65% of it),
// CB_SOAK_LAYOUT (per-volume | per-host: the backend's target_layout), CB_SOAK_JSON (bench/results/attach-soak.json; "" = none), CB_SOAK_KEEP_LOGS (1 = keep the log
// directory also when the run passes; it is kept anyway on a failure).
//
// Exit code: 0 pass, 1 findings, 2 the run itself failed, 3 deadline, 130 interrupted. Everything it
// starts (cinder-api, cinder-scheduler, the agent, tgtd, the RabbitMQ vhost, the MariaDB database,
// temp dirs) is removed at the end, on Ctrl-C too; a watchdog in its own session removes what is
// left if the script is killed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAttachSoak } from './attach-soak-lib.js';
import { envNumber, printSoakReport, soakExitCode, soakOptionsFromEnv } from './soak-script.js';
import { tgtSoakSide } from './soak-tgt-side.js';
import { stopOnSignalsOrDeadline } from '../helpers/soak-watchdog.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const opts = { ...soakOptionsFromEnv('per-volume'), keepLogs: process.env.CB_SOAK_KEEP_LOGS === '1', watchdog: true };
const jsonPath = process.env.CB_SOAK_JSON ?? resolve(repoRoot, 'bench', 'results', 'attach-soak.json');

if (process.getuid?.() !== 0) {
  console.error('the attach soak needs root (tgtd, /var/run/tgtd)');
  process.exit(2);
}

// the whole run must end: past the deadline (+5 min for the teardown), abort; 5 min later, exit
const stop = stopOnSignalsOrDeadline(opts.deadlineMs + 300_000);

const tgtd = { owner: (process.env.CB_SOAK_TGTD === 'script' ? 'script' : 'agent') as 'agent' | 'script', restartWaitMs: envNumber('CB_SOAK_TGTD_WAIT_S', 30) * 1000 };
console.log(`attach soak: ${JSON.stringify({ ...opts, tgtd })}`);
const result = await runAttachSoak({ ...opts, target: tgtSoakSide(tgtd), signal: stop.signal, progress: (l) => console.log(l) });
stop.clear();

printSoakReport(result);
if (result.log_dir) console.log(`\nlogs kept in ${result.log_dir} (agent.log, ops.jsonl, samples.jsonl)`);
if (jsonPath) {
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`result: ${jsonPath}`);
}
process.exit(soakExitCode(result, stop));
