// Where the attach soak's cinder-api and cinder-scheduler run, and how the soak reads what it needs
// of them besides the API: the attachment rows of cinder's database and the depth of the volume
// service's queues. Two places:
//   - localSoakStack: started here (MariaDB database, RabbitMQ vhost, Debian's cinder-api and
//     scheduler), the volume backend a file pool (the build host has no device-mapper);
//   - labSoakStack: the lab guest joins the stack its host hook serves (test/lab/e2e-stack.ts,
//     reached at 10.0.2.2) with an LVM backend, as the lab's end-to-end suites do.
import amqp from 'amqplib';
import { readFile, readdir } from 'node:fs/promises';
import { brokerEndpoints, parseTransportUrl } from '../../src/rpc/transport-url.js';
import { openHandle, type DbHandle } from '../../src/db/connect.js';
import { createCinderDatabase } from '../helpers/cinder-db.js';
import { createOwnVhost } from '../helpers/rabbit-vhost.js';
import { freePort } from '../helpers/free-port.js';
import { startCinderStack } from '../helpers/cinder-stack.js';
import type { CleanupManifest } from '../helpers/soak-watchdog.js';
import { cmdline } from './soak-tgt-side.js';

export interface AttachmentRow {
  id: string;
  volumeId: string;
  status: string;
  initiator: string | null;
  host: string | null;
}

export interface SoakStack {
  apiUrl: string;
  /** the agent's cinder.conf */
  confPath: string;
  /** the volume backend's name (host targets are named from it) */
  backendName: string;
  label: string;
  /** the database's live attachment rows (deleted = 0) */
  attachmentRows(volumeId?: string): Promise<AttachmentRow[]>;
  /** messages ready in the volume service's queues (the topic queue and the backend's own) */
  volumeQueueDepth(): Promise<number>;
  stop(): Promise<void>;
}

export interface SoakStackRequest {
  /** the target side's backend options and sections (soak-target-side.ts) */
  target: { backend: Record<string, string>; extraSections: Record<string, Record<string, string>> };
  layout: 'per-volume' | 'per-host';
  manifest: CleanupManifest | null;
}

export type SoakStackFactory = (r: SoakStackRequest) => Promise<SoakStack>;

async function attachmentRows(db: DbHandle, volumeId?: string): Promise<AttachmentRow[]> {
  let q = db.kysely.selectFrom('volume_attachment').select(['id', 'volume_id', 'attach_status', 'connector']).where('deleted', '=', false);
  if (volumeId) q = q.where('volume_id', '=', volumeId);
  return (await q.execute()).map((r) => {
    let c: Record<string, unknown> | null = null;
    try {
      c = r.connector ? (JSON.parse(r.connector) as Record<string, unknown>) : null;
    } catch {
      c = null;
    }
    return {
      id: r.id,
      volumeId: r.volume_id,
      status: r.attach_status ?? '',
      initiator: typeof c?.initiator === 'string' ? c.initiator : null,
      host: typeof c?.host === 'string' ? c.host : null,
    };
  });
}

/** Messages ready on `cinder-volume` and `cinder-volume.<host>@<backend>` (a missing queue holds none). */
async function volumeQueueDepth(transportUrl: string, server: string): Promise<number> {
  const ep = brokerEndpoints(parseTransportUrl(transportUrl))[0]!;
  const conn = await amqp.connect({ hostname: ep.hostname, port: ep.port, username: ep.username, password: ep.password, vhost: ep.vhost });
  conn.on('error', () => undefined);
  try {
    let n = 0;
    for (const q of ['cinder-volume', `cinder-volume.${server}`]) {
      // a passive declare of a missing queue closes its channel: one channel per queue
      const ch = await conn.createChannel();
      ch.on('error', () => undefined);
      try {
        n += (await ch.checkQueue(q)).messageCount;
        await ch.close();
      } catch {
        // no such queue
      }
    }
    return n;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Children of `parent` whose command line contains `word` (cinder-api and cinder-scheduler of our stack). */
async function childPids(parent: number, word: string): Promise<number[]> {
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = await readFile(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent && cmdline(Number(d)).includes(word)) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

/** cinder-api and cinder-scheduler started here on a MariaDB database and a vhost of their own; a file pool. */
export const localSoakStack: SoakStackFactory = async (r) => {
  const BACKEND = 'file';
  const db = await createCinderDatabase('mysql');
  r.manifest?.add({ kind: 'db', name: db.database! });
  const vhost = await createOwnVhost('cb-soak').catch(async (err: unknown) => {
    await db.drop().catch(() => undefined);
    throw err;
  });
  r.manifest?.add({ kind: 'vhost', name: vhost.name });
  const dropBoth = async () => {
    await vhost.drop().catch(() => undefined);
    await db.drop().catch(() => undefined);
  };
  let stack: Awaited<ReturnType<typeof startCinderStack>>;
  try {
    stack = await startCinderStack({
      apiPort: await freePort(),
      transportUrl: vhost.transportUrl,
      databaseUrl: db.url,
      backends: { [BACKEND]: { volume_driver: 'file', volume_backend_name: BACKEND, ...r.target.backend, target_layout: r.layout } },
      extraSections: r.target.extraSections,
    });
  } catch (err) {
    await dropBoth();
    throw err;
  }
  if (r.manifest) {
    r.manifest.add({ kind: 'dir', path: stack.dir });
    for (const pid of await childPids(process.pid, stack.confPath)) r.manifest.add({ kind: 'pid', pid, word: stack.confPath });
  }
  const handle = await openHandle(db.url);
  return {
    apiUrl: stack.apiUrl,
    confPath: stack.confPath,
    backendName: BACKEND,
    label: `cinder-api ${stack.apiUrl}, vhost ${vhost.name}, db ${db.database}`,
    attachmentRows: (v) => attachmentRows(handle, v),
    volumeQueueDepth: () => volumeQueueDepth(vhost.transportUrl, `${stack.host}@${BACKEND}`),
    async stop() {
      await handle.close().catch(() => undefined);
      await stack.stop().catch(() => undefined);
      await dropBoth();
    },
  };
};

/**
 * The stack of the lab's host hook (its guest.env: CBLAB_E2E_API, _DB, _TRANSPORT, _HOST, _BACKEND)
 * with the agent's cinder.conf the guest wrote for it (test/lab/e2e-guest.ts). The hook drops the
 * database and vhost when the guest is gone.
 */
export function labSoakStack(agentConfPath: string): SoakStackFactory {
  return async () => {
    const env = process.env;
    const need = (k: string) => {
      const v = env[k];
      if (!v) throw new Error(`${k} is not set: run through test/lab/run-lab.sh with the soak's host hook`);
      return v;
    };
    const [apiUrl, dbUrl, transport, host, backend] = ['CBLAB_E2E_API', 'CBLAB_E2E_DB', 'CBLAB_E2E_TRANSPORT', 'CBLAB_E2E_HOST', 'CBLAB_E2E_BACKEND'].map(need) as [string, string, string, string, string];
    const handle = await openHandle(dbUrl);
    return {
      apiUrl,
      confPath: agentConfPath,
      backendName: backend,
      label: `cinder-api ${apiUrl} on the lab host, service host ${host}`,
      attachmentRows: (v) => attachmentRows(handle, v),
      volumeQueueDepth: () => volumeQueueDepth(transport, `${host}@${backend}`),
      async stop() {
        await handle.close().catch(() => undefined);
      },
    };
  };
}
