// A real agent (startAgent: RabbitMQ, cinder's schema on SQLite, the file pool on a temp dir, and a
// private tgtd when this machine can run one) and an RPC client that talks to it as cinder does.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { startAgent, type Agent, type AgentOptions } from '../../../src/agent/agent.js';
import { configFromText } from '../../../src/config/load.js';
import { openDatabase, type CinderDb } from '../../../src/db/index.js';
import { createLogger, setRootLogger } from '../../../src/log.js';
import { AmqpConnection, RpcClient } from '../../../src/rpc/index.js';
import { formatOvoDatetime, VersionedObject } from '../../../src/rpc/ovo.js';
import { createCinderDatabase, type TestCinderDb } from '../../helpers/cinder-db.js';
import { startTgtd, tgtAvailable, type TgtdHandle } from '../../helpers/tgtd.js';

export const BROKER = process.env.CINDERBLOCK_TEST_RABBIT_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/';
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

export interface Harness {
  host: string;
  backendHost: string;
  poolHost: string;
  dir: string;
  poolDir: string;
  volumesDir: string;
  testDb: TestCinderDb;
  db: CinderDb;
  agent: Agent;
  tgtd: TgtdHandle | null;
  client: RpcClient;
  conn: AmqpConnection;
  confText: string;
  call(method: string, args: Record<string, unknown>, version?: string): Promise<unknown>;
  cast(method: string, args: Record<string, unknown>, version?: string): Promise<void>;
  restartAgent(): Promise<void>;
  close(): Promise<void>;
}

export function ctx(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    user: null,
    project_id: 'b4b7d5f1c8f64d3f9d6b7f6d2f0a1c11',
    is_admin: true,
    auth_token: null,
    request_id: `req-${randomBytes(8).toString('hex')}`,
    global_request_id: null,
    roles: ['admin'],
    read_deleted: 'no',
    ...extra,
  };
}

export async function startHarness(
  opts: {
    poolDir?: string;
    withTgtd?: boolean;
    backend?: 'sqlite' | 'mysql';
    inProcessAgent?: boolean;
    /** more options for the in-process agent (e.g. the restore's injection point) */
    agentOptions?: Partial<AgentOptions>;
    /** return from (re)starts before the background restore of exports is done; default: wait for it */
    awaitRestore?: boolean;
  } = {},
): Promise<Harness> {
  const host = `t-${randomBytes(5).toString('hex')}`;
  const dir = await mkdtemp(join(tmpdir(), 'cb-manager-'));
  const poolDir = opts.poolDir ?? join(dir, 'pool');
  const volumesDir = join(dir, 'volumes');
  await mkdir(volumesDir, { recursive: true });
  const testDb = await createCinderDatabase(opts.backend ?? 'sqlite');
  const tgtd = opts.withTgtd !== false && (await tgtAvailable()) ? await startTgtd() : null;
  const confText = [
    '[DEFAULT]',
    `host = ${host}`,
    `transport_url = ${BROKER}`,
    'enabled_backends = file',
    `state_path = ${dir}`,
    'report_interval = 10',
    '[database]',
    `connection = ${testDb.url}`,
    '[oslo_concurrency]',
    `lock_path = ${join(dir, 'locks')}`,
    '[file]',
    'volume_driver = file',
    'volume_backend_name = file',
    `file_volume_dir = ${poolDir}`,
    `volumes_dir = ${volumesDir}`,
    `target_helper = ${tgtd ? 'tgtadm' : 'fake'}`,
    'target_ip_address = 127.0.0.1',
    `target_port = ${tgtd?.port ?? 3260}`,
    '',
  ].join('\n');
  const config = configFromText(confText);
  const logger = createLogger({ level: (process.env.CB_TEST_LOG as 'info' | undefined) ?? 'silent', pretty: false });
  setRootLogger(logger);
  const start = async () => {
    const a = await startAgent(config, { logger, ...(tgtd ? { tgtControlPort: tgtd.controlPort } : {}), ...opts.agentOptions });
    // the exports are restored in the background; tests that look at tgtd right after a start want them back
    if (opts.awaitRestore !== false) await a.exportsRestored;
    return a;
  };
  let agent = (opts.inProcessAgent === false ? null : await start()) as Agent;
  const db = await openDatabase(testDb.url);
  const conn = new AmqpConnection(BROKER, {});
  await conn.start();
  const client = new RpcClient({ connection: conn, rpcResponseTimeout: 30 });
  const target = { topic: `cinder-volume.${host}@file`, server: host };
  const h: Harness = {
    host,
    backendHost: `${host}@file`,
    poolHost: `${host}@file#file`,
    dir,
    poolDir,
    volumesDir,
    testDb,
    db,
    get agent() {
      return agent;
    },
    tgtd,
    client,
    conn,
    confText,
    call: (method, args, version = '3.0') => client.call(target, method, args, ctx(), version),
    cast: (method, args, version = '3.0') => client.cast(target, method, args, ctx(), version),
    async restartAgent() {
      await agent?.stop();
      agent = await start();
    },
    async close() {
      await client.close().catch(() => undefined);
      await conn.close().catch(() => undefined);
      await agent?.stop().catch(() => undefined);
      await db.close().catch(() => undefined);
      await tgtd?.stop().catch(() => undefined);
      await testDb.drop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
  };
  return h;
}

function d(x: Date | null | undefined): string | null {
  return x ? formatOvoDatetime(x) : null;
}

/** A Volume object as cinder-api would send it, from the row. */
export async function volumeObject(db: CinderDb, id: string): Promise<VersionedObject> {
  const v = await db.volumes.get(id);
  return new VersionedObject('Volume', {
    id: v.id,
    _name_id: v._name_id,
    host: v.host,
    size: v.size,
    status: v.status,
    attach_status: v.attach_status,
    project_id: v.project_id,
    user_id: v.user_id,
    volume_type_id: v.volume_type_id,
    snapshot_id: v.snapshot_id,
    source_volid: v.source_volid,
    provider_location: v.provider_location,
    provider_auth: v.provider_auth,
    encryption_key_id: v.encryption_key_id,
    multiattach: Boolean(v.multiattach),
    migration_status: v.migration_status,
    created_at: d(v.created_at),
    scheduled_at: d(v.scheduled_at),
    admin_metadata: {},
    metadata: {},
  });
}

export async function snapshotObject(db: CinderDb, id: string): Promise<VersionedObject> {
  const s = await db.snapshots.get(id);
  return new VersionedObject('Snapshot', {
    id: s.id,
    volume_id: s.volume_id,
    status: s.status,
    volume_size: s.volume_size,
    project_id: s.project_id,
    user_id: s.user_id,
    progress: s.progress,
    created_at: d(s.created_at),
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Copies of every message published to the openstack exchange with routing key `key`. */
export async function tapRoutingKey(key: string): Promise<{ messages: Array<Record<string, unknown>>; close(): Promise<void> }> {
  const c = await amqp.connect(AMQP_URL);
  const ch = await c.createChannel();
  await ch.assertExchange('openstack', 'topic', { durable: false, autoDelete: false });
  const q = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  await ch.bindQueue(q.queue, 'openstack', key);
  const messages: Array<Record<string, unknown>> = [];
  await ch.consume(q.queue, (m) => {
    if (!m) return;
    const env = JSON.parse(m.content.toString()) as Record<string, string>;
    messages.push(JSON.parse(env['oslo.message']!) as Record<string, unknown>);
  }, { noAck: true });
  return {
    messages,
    async close() {
      await ch.close().catch(() => undefined);
      await c.close().catch(() => undefined);
    },
  };
}
