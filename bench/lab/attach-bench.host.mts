// Host side of bench/lab/attach-bench.mts (run by test/lab/run-lab.sh as `node --import tsx
// HOOK DIR` for the guest's lifetime): a fresh MariaDB database with cinder's real schema, and
// the real cinder-api + cinder-scheduler on it, on this machine's RabbitMQ. Both volume services
// (cinder-volume, then cinderblock) run in the guest against this database and broker, reached at
// 10.0.2.2 through qemu's user networking, which forwards to this host's loopback. The guest cannot
// write host files, hence MariaDB rather than SQLite. On SIGTERM the API/scheduler logs are
// copied into DIR (so a run can be examined afterwards), then everything is stopped and dropped.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCinderDatabase } from '../../test/helpers/cinder-db.js';
import { startCinderStack } from '../../test/helpers/cinder-stack.js';
import { freePort } from '../../test/helpers/free-port.js';

const dirArg = process.argv[2];
if (!dirArg) throw new Error('usage: attach-bench.host.mts DIR');
const dir: string = dirArg;
// a free port unless one is asked for: two runs at once must not reach each other's cinder-api
const API_PORT = process.env.CB_BENCH_API_PORT ? Number(process.env.CB_BENCH_API_PORT) : await freePort();
// queue names derive from the host name: a per-run name keeps concurrent runs apart
const host = `cbbench${Math.random().toString(36).slice(2, 8)}`;
const say = (m: string) => console.log(`[hook ${new Date().toISOString()}] ${m}`);

// A vhost of its own: every cinder-scheduler on a broker consumes the one `cinder-scheduler` queue,
// so another stack's scheduler (other tests on this machine) would take this run's create_volume
// casts and fail them against its own database, leaving the volumes `creating` forever.
const vhost = host;
const rabbitmqctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe', timeout: 60_000, env: { ...process.env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}` } });
rabbitmqctl('add_vhost', vhost);
rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
say(`vhost ${vhost}`);
const transportUrl = `rabbit://guest:guest@127.0.0.1:5672/${vhost}`;

const db = await createCinderDatabase('mysql');
say(`database ${db.database}`);
// The guest's services heartbeat from an emulated CPU: a generous down time keeps the scheduler
// from calling them down between two slow reports.
const timing = { report_interval: '5', service_down_time: '120', rpc_response_timeout: '900' };
// 121 volumes in one project: above cinder's default quota of 10
const quotas = { quota_volumes: '-1', quota_gigabytes: '-1' };
const stack = await startCinderStack({
  host,
  apiPort: API_PORT,
  databaseUrl: db.url,
  transportUrl,
  defaults: { ...timing, ...quotas },
  backends: { lvm: { volume_backend_name: 'lvm', volume_driver: 'cinder.volume.drivers.lvm.LVMVolumeDriver', volume_group: 'cinder-volumes', target_helper: 'lioadm' } },
});
say(`cinder-api ${stack.apiUrl}, conf ${stack.confPath}`);

const guestUrl = (u: string) => u.replace('127.0.0.1', '10.0.2.2');
writeFileSync(
  join(dir, 'guest.env'),
  [
    `CB_BENCH_HOST=${host}`,
    `CB_BENCH_API_URL=${guestUrl(stack.apiUrl)}`,
    `CB_BENCH_DB_URL=${guestUrl(db.url)}`,
    `CB_BENCH_TRANSPORT_URL=${guestUrl(transportUrl)}`,
    `CB_BENCH_REPORT_INTERVAL=${timing.report_interval}`,
    `CB_BENCH_SERVICE_DOWN_TIME=${timing.service_down_time}`,
    // the bench's knobs, set where run-lab.sh is started, reach the guest only through this file
    ...Object.entries(process.env)
      .filter(([k]) => /^CB_BENCH_(SAMPLES|MIN_SAMPLES|WARMUP|RESTORE|RESERVE_S|END_BY|PEER)$/.test(k))
      .map(([k, v]) => `${k}=${v}`),
    '',
  ].join('\n'),
);
writeFileSync(join(dir, 'ready'), '');
say('ready');

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('stopping');
  for (const f of ['cinder-api.log', 'cinder-scheduler.log']) {
    const p = join(stack.dir, 'logs', f);
    if (existsSync(p)) copyFileSync(p, join(dir, f));
  }
  await stack.stop().catch((e: unknown) => say(`stack stop: ${String(e)}`));
  await db.drop().catch((e: unknown) => say(`db drop: ${String(e)}`));
  try {
    rabbitmqctl('delete_vhost', vhost);
  } catch (e) {
    say(`delete_vhost: ${String(e)}`);
  }
  say('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
setInterval(() => undefined, 60_000);
