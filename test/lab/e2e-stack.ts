// Host side of the lab's end-to-end suites (run by run-lab.sh for the guest's lifetime through a
// `<suite>.host.mts` hook that names the target options): the real cinder-api and cinder-scheduler on a fresh
// MariaDB database with cinder's schema, on the host's RabbitMQ. The guest cannot write host files,
// so the database is MariaDB (SQLite would live on the host's disk), and everything the guest
// needs to join this stack goes into DIR/guest.env as it sees it from 10.0.2.2.
// SIGTERM: the stack's logs are copied into DIR (kept for post-mortems), then everything stops.
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { createCinderDatabase } from '../helpers/cinder-db.js';
import { freePort } from '../helpers/free-port.js';
import { startCinderStack, waitFor } from '../helpers/cinder-stack.js';
import { startGlance, type GlanceHandle } from '../helpers/glance.js';
import { writeSparseImage } from '../helpers/sparse-image.js';


const GUEST_SEES_HOST = '10.0.2.2';

/** The raw image with 10% data (test/helpers/sparse-image.ts) the image steps create volumes from. */
const SPARSE_IMAGE_BYTES = 512 * 1024 ** 2;

/**
 * Serves the stack until SIGTERM; `target` is the backend's target_* options, `guestEnv` further
 * variables the guest gets in guest.env (a script's own options: the guest inherits no host env).
 * `glance`: Debian's glance-api too (keyless), holding a sparse raw image, for cinder-api and the
 * agent (CBLAB_E2E_GLANCE, CBLAB_E2E_SPARSE_IMAGE and its size in the guest).
 */
export async function serveE2eStack(dir: string, target: Record<string, string>, guestEnv: Record<string, string> = {}, opts: { glance?: boolean } = {}): Promise<void> {
  if (!dir) throw new Error('usage: <suite>.host.mts DIR');

  // A vhost of its own: the scheduler's queue (`cinder-scheduler`) is the same name for every stack,
  // so on a shared vhost another engineer's scheduler would take this API's requests round-robin.
  // A unique `host` keeps the volume queues apart as well.
  const host = `cblab${randomBytes(4).toString('hex')}`;
  const vhost = host;
  // The backend as the scheduler and API know it; the guest's cinder.conf repeats it with its own
  // volume group and lvm_type.
  const backend = {
    volume_driver: 'cinder.volume.drivers.lvm.LVMVolumeDriver',
    volume_backend_name: 'lvm',
    volume_group: 'cinder-volumes',
    target_ip_address: '127.0.0.1',
    ...target,
  };

  const t0 = Date.now();
  await execa('rabbitmqctl', ['-q', 'add_vhost', vhost]);
  await execa('rabbitmqctl', ['-q', 'set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
  const dropVhost = () => execa('rabbitmqctl', ['-q', 'delete_vhost', vhost]).catch((e: unknown) => console.error('vhost delete:', e));
  let db: Awaited<ReturnType<typeof createCinderDatabase>>;
  let stack: Awaited<ReturnType<typeof startCinderStack>>;
  try {
    db = await createCinderDatabase('mysql');
  } catch (err) {
    await dropVhost();
    throw err;
  }
  const apiPort = await freePort();
  let glance: GlanceHandle | null = null;
  const glanceEnv: Record<string, string> = {};
  try {
    if (opts.glance) {
      glance = await startGlance({ port: await freePort() });
      const file = join(dir, 'sparse.raw');
      await writeSparseImage(file, SPARSE_IMAGE_BYTES);
      const image = await glance.createImage({ name: 'lab-sparse', disk_format: 'raw', container_format: 'bare' });
      await glance.uploadFile(image.id, file);
      await rm(file);
      Object.assign(glanceEnv, { CBLAB_E2E_GLANCE: glance.url.replace('127.0.0.1', GUEST_SEES_HOST), CBLAB_E2E_SPARSE_IMAGE: image.id, CBLAB_E2E_SPARSE_IMAGE_SIZE: String(SPARSE_IMAGE_BYTES) });
    }
    stack = await startCinderStack({
      host,
      apiPort,
      databaseUrl: db.url,
      transportUrl: `rabbit://guest:guest@127.0.0.1:5672/${vhost}`,
      backends: { lvm: backend },
      // The volume service joins a minute later, from the guest: the scheduler need not hold requests
      // back waiting for a first capability report at its own start.
      defaults: { scheduler_driver_init_wait_time: '1', ...(glance ? { glance_api_servers: glance.url } : {}) },
    });
  } catch (err) {
    // no `ready`: run-lab.sh reports the failure; leave nothing on the shared servers
    await glance?.stop().catch(() => undefined);
    await db.drop().catch(() => undefined);
    await dropVhost();
    throw err;
  }
  await waitFor('the API to answer', 60_000, async () => ((await stack.api('GET', '/volumes')).status === 200 ? true : undefined));
  console.log(`stack up in ${Date.now() - t0} ms: api :${apiPort}, host ${host}, db ${db.database}`);

  const guest = (url: string) => url.replace('127.0.0.1', GUEST_SEES_HOST);
  const env: Record<string, string> = {
    CBLAB_E2E_API: guest(stack.apiUrl),
    CBLAB_E2E_DB: guest(db.url),
    CBLAB_E2E_TRANSPORT: `rabbit://guest:guest@${GUEST_SEES_HOST}:5672/${vhost}`,
    CBLAB_E2E_HOST: host,
    CBLAB_E2E_BACKEND: 'lvm',
    // single quotes: the guest sources this file with bash
    CBLAB_E2E_BACKEND_OPTS: `'${JSON.stringify(backend)}'`,
    ...glanceEnv,
    ...guestEnv,
  };
  await writeFile(join(dir, 'guest.env'), Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  await writeFile(join(dir, 'ready'), '');

  let stopping = false;
  async function stop(): Promise<void> {
    if (stopping) return;
    stopping = true;
    await writeFile(join(dir, 'stack.log'), await stack.logs()).catch(() => undefined);
    await stack.stop().catch((e: unknown) => console.error('stack stop:', e));
    await glance?.stop().catch((e: unknown) => console.error('glance stop:', e));
    await db.drop().catch((e: unknown) => console.error('db drop:', e));
    await dropVhost();
    console.log('host services stopped');
    process.exit(0);
  }
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
  setInterval(() => undefined, 60_000);
}
