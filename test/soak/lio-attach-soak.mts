// The attach soak on LIO (issue 12), in the lab guest: the run of attach-soak-lib.ts — three
// hosts (the kernel's initiator, an iscsiadm iface each with its own initiator name, keeping its own
// sessions and disks: soak-kernel-initiator.ts; CB_SOAK_INITIATOR=libiscsi for fresh libiscsi
// logins instead), multiattach
// volumes, random concurrent attachment create / complete / delete through the real cinder-api,
// a watcher per host reading with the credentials it last got and, per host, discovering its LUNs
// by serial — against cinderblock serving an LVM thin pool on the guest's scratch disk and
// exporting through LIO in configfs. The faults: kill -9 of the agent at ~1/3 of the ops and, at
// ~2/3, the loss of all LIO state (every target and storage object removed from configfs while
// the agent runs), which the agent's LIO watch must notice and restore with the same LUN numbers.
// cinder-api and cinder-scheduler run on the host (lio-attach-soak.host.mts).
//
//   CB_SOAK_OPS=200 CBLAB_SUITE_TIMEOUT=3300 CBLAB_TOTAL_TIMEOUT=3400 \
//     bash test/lab/run-lab.sh test/soak/lio-attach-soak.mts
//
// Env (set on the host; the hook hands CB_SOAK_* to the guest): CB_SOAK_OPS (200),
// CB_SOAK_CONCURRENCY (8), CB_SOAK_VOLUMES (20), CB_SOAK_SEED (1), CB_SOAK_FAULTS (1; 0 = none),
// CB_SOAK_LAYOUT (per-host | per-volume), CB_SOAK_INITIATOR (kernel | libiscsi), CB_SOAK_DEADLINE_S (2400: the whole run; the op phase
// stops issuing at 65% of it). The result comes back as tmp/lab-out/lio-attach-soak/
// lio-attach-soak.json with the agent's log; exit 0 only when the run has no finding.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { runAttachSoak } from './attach-soak-lib.js';
import { printSoakReport, soakExitCode, soakOptionsFromEnv } from './soak-script.js';
import { lioSoakSide } from './soak-lio-side.js';
import { libiscsiInitiator } from './soak-initiator.js';
import { kernelInitiator, netnsIscsiProbe } from './soak-kernel-initiator.js';
import { labSoakStack } from './soak-stack.js';
import { writeE2eAgentConf } from '../lab/e2e-guest.js';
import { labScratchDiskOrExit, LAB_VG } from '../lab/lio-lab-backend.js';
import { sh } from '../lab/lab-io.js';
import { stopOnSignalsOrDeadline } from '../helpers/soak-watchdog.js';

const disk = labScratchDiskOrExit();
const out = process.env.CBLAB_OUT ?? '/tmp/cb-lio-soak-out';
const work = '/tmp/cb-lio-soak';
const logDir = join(work, 'logs');
mkdirSync(out, { recursive: true });
mkdirSync(logDir, { recursive: true });

const opts = soakOptionsFromEnv('per-host');
const layout = opts.targetLayout;

// thin: twenty 1 GiB volumes fit the 8 GiB scratch disk
sh(['pvcreate', '-y', disk]);
sh(['vgcreate', LAB_VG, disk]);
const confPath = await writeE2eAgentConf(work, LAB_VG, 'thin');

const kernel = process.env.CB_SOAK_INITIATOR !== 'libiscsi';
// why the kernel's hosts are ifaces in one network namespace, not namespaces of their own
const netns = kernel ? await netnsIscsiProbe() : null;
if (netns) console.log(netns);

const stop = stopOnSignalsOrDeadline(opts.deadlineMs + 300_000);
console.log(`LIO attach soak: ${JSON.stringify(opts)}`);
const result = await runAttachSoak({
  ...opts,
  initiator: kernel ? kernelInitiator() : libiscsiInitiator(),
  target: lioSoakSide({ layout }),
  stack: labSoakStack(confPath),
  logDir,
  keepLogs: true,
  signal: stop.signal,
  progress: (l) => console.log(l),
});
stop.clear();

printSoakReport(result);
writeFileSync(join(out, 'lio-attach-soak.json'), `${JSON.stringify(netns ? { ...result, netns_probe: netns } : result, null, 2)}\n`);
// the agent's log, the op and sample logs: what a post-mortem needs, brought back to the host
// (compressed: the results disk is 64 MiB and the agent's info log of a run is tens of MiB)
for (const f of ['agent.log', 'ops.jsonl', 'samples.jsonl']) if (existsSync(join(logDir, f))) writeFileSync(join(out, `${f}.gz`), gzipSync(readFileSync(join(logDir, f))));
process.exit(soakExitCode(result, stop));
