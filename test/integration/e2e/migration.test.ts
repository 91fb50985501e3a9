// issue 14 items 1-4: `cinder migrate` (driver-assisted and --force-host-copy) and `cinder retype
// --migration-policy on-demand` through the real cinder-api and scheduler, between two file pools
// served by one agent and by two agents (two hosts) on this machine. Each volume's bytes are
// checksummed before and after, the source's file must be gone and no temporary row left; a
// destination that refuses the create leaves the volume available with migration_status error,
// no orphan, and migratable again; so does a source agent killed (SIGKILL) in the middle of the
// migration, once it is started again; and with two agents, a destination agent killed mid-copy
// makes the completion fail: the volume stays on its source, and the temporary volume's delete
// waits in the destination's queue until it is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openDatabase, type CinderDb } from '../../../src/db/index.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { createCinderDatabase, type TestCinderDb } from '../../helpers/cinder-db.js';
import { startCinderStack, waitFor, WaitAborted, type CinderStack } from '../../helpers/cinder-stack.js';
import { createOwnVhost, type OwnVhost } from '../../helpers/rabbit-vhost.js';

const MiB = 1024 ** 2;

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Writes recognisable data at a few places of a 1 GiB volume file (the rest stays a hole). */
async function writePattern(path: string, seed: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    for (const offset of [0, 300 * MiB, 1023 * MiB]) {
      const buf = Buffer.alloc(MiB, (seed + offset / MiB) % 251);
      await fh.write(buf, 0, buf.length, offset);
    }
  } finally {
    await fh.close();
  }
}

/** A copy of the stack's cinder.conf serving only `backend`, as host `host`, with its own state. */
async function agentConf(stack: CinderStack, host: string, backend: string): Promise<string> {
  const state = join(stack.dir, `state-${backend}`);
  await mkdir(state, { recursive: true });
  const conf = (await readFile(stack.confPath, 'utf8'))
    .replace(/^host = .*$/m, `host = ${host}`)
    .replace(/^enabled_backends = .*$/m, `enabled_backends = ${backend}`)
    .replace(/^state_path = .*$/m, `state_path = ${state}`)
    // an agent's call to a destination that died gives up in 20 s rather than cinder's 60
    .replace(/^rpc_response_timeout = .*$/m, 'rpc_response_timeout = 20');
  const path = join(stack.dir, `cinder-${backend}.conf`);
  await writeFile(path, conf);
  return path;
}

describe.each([
  { layout: 'one agent, two backends', apiPort: 18910, twoAgents: false },
  { layout: 'two agents (two hosts)', apiPort: 18911, twoAgents: true },
] as const)('migration and retype between two file pools ($layout)', ({ apiPort, twoAgents }) => {
  let stack: CinderStack;
  let testDb: TestCinderDb;
  let vhost: OwnVhost;
  let db: CinderDb;
  const agents: AgentProcess[] = [];
  /** each agent's cinder.conf, to start it again after a kill */
  const confs: string[] = [];
  const dirs: Record<'a' | 'b', string> = { a: '', b: '' };
  const hosts: Record<'a' | 'b', string> = { a: '', b: '' };

  const agentLogs = () => agents.map((a) => a.text().slice(-3000)).join('\n---\n');

  async function volume(id: string) {
    const r = await stack.api('GET', `/volumes/${id}`);
    return r.body.volume as Record<string, any>;
  }
  async function waitVolume(id: string, what: string, done: (v: Record<string, any>) => boolean) {
    return waitFor(`volume ${id} ${what}`, 90_000, async () => {
      const v = await volume(id);
      if (v?.status?.startsWith('error') || v?.migration_status === 'error') {
        throw new WaitAborted(`volume ${id} went to ${v.status}/${v.migration_status}\n${agentLogs()}`);
      }
      return done(v) ? v : undefined;
    });
  }
  /**
   * Nothing but the named volumes in either pool, no live temporary or deleting row, and cinder-api
   * listing only the kept volumes (a delete removes the file before the row: both are waited for).
   */
  async function expectNoLeftovers(kept: Record<'a' | 'b', string[]>) {
    const state = async () => {
      const rows = await db.kysely.selectFrom('volumes').select(['id', 'status', 'migration_status']).where('deleted', '=', false).execute();
      return {
        a: (await readdir(dirs.a)).sort(),
        b: (await readdir(dirs.b)).sort(),
        rows: rows.filter((r) => r.migration_status?.startsWith('target:') || r.status === 'deleting'),
        listed: ((await stack.api('GET', '/volumes/detail?all_tenants=1')).body.volumes as unknown[]).length,
      };
    };
    const wanted = { a: [...kept.a].sort(), b: [...kept.b].sort(), rows: [], listed: kept.a.length + kept.b.length };
    await waitFor('the temporary volumes to be deleted', 60_000, async () => (JSON.stringify(await state()) === JSON.stringify(wanted) ? true : undefined)).catch(
      async (err: unknown) => {
        throw new Error(`${String(err)}: ${JSON.stringify(await state())}\n${agentLogs()}`);
      },
    );
  }
  /** A volume of `type`, or of the default type (no backend named: it may go to either pool). */
  async function createVolume(type: string | null, name: string) {
    const r = await stack.api('POST', '/volumes', { volume: { size: 1, name, ...(type ? { volume_type: type } : {}) } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitVolume(r.body.volume.id, 'available', (v) => v.status === 'available');
  }

  /** Where a default-type volume landed, and the other pool. */
  function sides(v: Record<string, any>): { from: 'a' | 'b'; to: 'a' | 'b' } {
    const from = v['os-vol-host-attr:host'] === hosts.a ? 'a' : 'b';
    return { from, to: from === 'a' ? 'b' : 'a' };
  }
  const kept = (side: 'a' | 'b', file: string) => (side === 'a' ? { a: [file], b: [] } : { a: [], b: [file] });

  beforeAll(async () => {
    testDb = await createCinderDatabase('mysql');
    // the scheduler's queue is shared by every stack on a vhost: this one has its own
    vhost = await createOwnVhost('cb-migration');
    const pool = (name: string) => ({ volume_driver: 'file', volume_backend_name: name, target_helper: 'fake' });
    stack = await startCinderStack({
      databaseUrl: testDb.url,
      transportUrl: vhost.transportUrl,
      apiPort,
      host: `mig${apiPort}`,
      backends: { pool_a: pool('pool_a'), pool_b: pool('pool_b') },
      extraSections: { cinderblock: { metrics_listen: '' } },
    });
    dirs.a = join(stack.dir, 'pool-a');
    dirs.b = join(stack.dir, 'pool-b');
    // file_volume_dir per section (it is not read from [backend_defaults])
    let conf = await readFile(stack.confPath, 'utf8');
    conf = conf.replace('[pool_a]\n', `[pool_a]\nfile_volume_dir = ${dirs.a}\n`).replace('[pool_b]\n', `[pool_b]\nfile_volume_dir = ${dirs.b}\n`);
    await writeFile(stack.confPath, conf);
    await mkdir(dirs.a, { recursive: true });
    await mkdir(dirs.b, { recursive: true });
    if (twoAgents) {
      hosts.a = `${stack.host}-a@pool_a#pool_a`;
      hosts.b = `${stack.host}-b@pool_b#pool_b`;
      confs.push(await agentConf(stack, `${stack.host}-a`, 'pool_a'), await agentConf(stack, `${stack.host}-b`, 'pool_b'));
      for (const conf of confs) agents.push(startAgentProcess(conf));
      await Promise.all(agents.map((a) => a.waitForLog(/serving 1 backend/, 60_000)));
    } else {
      hosts.a = `${stack.host}@pool_a#pool_a`;
      hosts.b = `${stack.host}@pool_b#pool_b`;
      confs.push(stack.confPath);
      agents.push(startAgentProcess(stack.confPath));
      await agents[0]!.waitForLog(/serving 2 backend/, 60_000);
    }
    await waitFor('the scheduler to know both pools', 60_000, async () => {
      const r = await stack.api('GET', '/scheduler-stats/get_pools');
      return r.body?.pools?.length === 2 ? true : undefined;
    });
    db = await openDatabase(testDb.url);
    for (const name of ['pool_a', 'pool_b']) {
      const r = await stack.api('POST', '/types', { volume_type: { name: `type_${name}`, extra_specs: { volume_backend_name: name } } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
  }, 240_000);
  afterAll(async () => {
    // CB_MIGRATION_LOGS=<dir> keeps the agents' and the stack's logs for a failed run
    if (process.env.CB_MIGRATION_LOGS) {
      await writeFile(join(process.env.CB_MIGRATION_LOGS, `agents-${apiPort}.log`), agents.map((a) => a.text()).join('\n'));
      if (stack) await writeFile(join(process.env.CB_MIGRATION_LOGS, `stack-${apiPort}.log`), await stack.logs());
    }
    await db?.close();
    for (const a of agents) await a.stop();
    await stack?.stop();
    await testDb?.drop();
    await vhost?.drop();
  }, 120_000);

  it('migrates an available volume both ways, driver-assisted and with --force-host-copy, bytes intact and nothing left', async () => {
    // the default type names no backend, so the scheduler lets it move to either pool
    const vol = await createVolume(null, 'mig');
    const file = `volume-${vol.id}`;
    const { from, to } = sides(vol);
    await writePattern(join(dirs[from], file), 7);
    const sum = await sha256(join(dirs[from], file));

    // from -> to: same host, another directory: the driver moves the file itself
    await stack.cinder(['migrate', vol.id, hosts[to]]);
    let v = await waitVolume(vol.id, `migrated to ${to}`, (x) => x.migration_status === 'success' && x['os-vol-host-attr:host'] === hosts[to]);
    expect(v.status).toBe('available');
    expect(await sha256(join(dirs[to], file))).toBe(sum);
    await expectNoLeftovers(kept(to, file));

    // to -> from with the host copy: temporary volume, copy, swap, rename to the kept name
    await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[from]]);
    v = await waitVolume(vol.id, `migrated back to ${from}`, (x) => x.migration_status === 'success' && x['os-vol-host-attr:host'] === hosts[from]);
    expect(v.status).toBe('available');
    expect(v.name).toBe('mig');
    expect(await sha256(join(dirs[from], file))).toBe(sum);
    await expectNoLeftovers(kept(from, file));
    const row = await db.volumes.get(vol.id);
    expect(row._name_id).toBeNull();
    expect(row.use_quota).not.toBe(false);

    // and the host copy in the other direction
    await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[to]]);
    await waitVolume(vol.id, `migrated to ${to} again`, (x) => x.migration_status === 'success' && x['os-vol-host-attr:host'] === hosts[to]);
    expect(await sha256(join(dirs[to], file))).toBe(sum);
    await expectNoLeftovers(kept(to, file));

    expect((await stack.api('DELETE', `/volumes/${vol.id}`)).status).toBe(202);
    await expectNoLeftovers({ a: [], b: [] });
  }, 300_000);

  it('retypes with --migration-policy on-demand to a type on the other backend; never is refused', async () => {
    const vol = await createVolume('type_pool_a', 'retype');
    const file = `volume-${vol.id}`;
    await writePattern(join(dirs.a, file), 11);
    const sum = await sha256(join(dirs.a, file));

    // never: the scheduler finds no backend for the type on the current one, nothing moves
    await stack.cinder(['retype', vol.id, 'type_pool_b']).catch(() => undefined);
    await waitVolume(vol.id, 'back to available after the refused retype', (x) => x.status === 'available');
    expect((await volume(vol.id)).volume_type).toBe('type_pool_a');

    await stack.cinder(['retype', '--migration-policy', 'on-demand', vol.id, 'type_pool_b']);
    const v = await waitVolume(vol.id, 'retyped', (x) => x.volume_type === 'type_pool_b' && x.status === 'available' && x.migration_status === 'success');
    expect(v['os-vol-host-attr:host']).toBe(hosts.b);
    expect(await sha256(join(dirs.b, file))).toBe(sum);
    await expectNoLeftovers({ a: [], b: [file] });
    // both reservations committed: one volume of type b in use, none of type a
    const usage = (await stack.api('GET', `/os-quota-sets/${v['os-vol-tenant-attr:tenant_id']}?usage=true`)).body.quota_set;
    expect(usage.volumes_type_pool_b.in_use).toBe(1);
    expect(usage.volumes_type_pool_a.in_use).toBe(0);
    expect(usage.volumes.reserved).toBe(0);

    expect((await stack.api('DELETE', `/volumes/${vol.id}`)).status).toBe(202);
    await expectNoLeftovers({ a: [], b: [] });
  }, 300_000);

  it('a destination that refuses the create leaves the volume available, migration_status error, no orphan, and migratable again', async () => {
    const vol = await createVolume(null, 'refused');
    const file = `volume-${vol.id}`;
    const { from, to } = sides(vol);
    await writePattern(join(dirs[from], file), 13);
    const sum = await sha256(join(dirs[from], file));
    // the destination's directory replaced by a file: its create fails (ENOTDIR) while the
    // scheduler still believes in the pool
    await rename(dirs[to], `${dirs[to]}.away`);
    await writeFile(dirs[to], 'not a directory');
    try {
      await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[to]]);
      const v = await waitFor('the migration to fail', 90_000, async () => {
        const x = await volume(vol.id);
        return x.migration_status === 'error' ? x : undefined;
      });
      expect(v.status).toBe('available');
      expect(v['os-vol-host-attr:host']).toBe(hosts[from]);
    } finally {
      await rm(dirs[to]);
      await rename(`${dirs[to]}.away`, dirs[to]);
    }
    expect(await sha256(join(dirs[from], file))).toBe(sum);
    await expectNoLeftovers(kept(from, file));

    // cinder-api accepts the volume for another migration, which now succeeds
    await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[to]]);
    await waitVolume(vol.id, 'migrated after the failure', (x) => x.migration_status === 'success' && x['os-vol-host-attr:host'] === hosts[to]);
    expect(await sha256(join(dirs[to], file))).toBe(sum);
    expect((await stack.api('DELETE', `/volumes/${vol.id}`)).status).toBe(202);
    await expectNoLeftovers({ a: [], b: [] });
  }, 300_000);

  it('a source agent killed mid-migration ends it at its next start: volume available, migration_status error, temporary volume gone, migratable again', async () => {
    const vol = await createVolume(null, 'killed');
    const file = `volume-${vol.id}`;
    const { from, to } = sides(vol);
    // data enough that the copy is not over before the kill lands
    const fh = await open(join(dirs[from], file), 'r+');
    try {
      const buf = Buffer.alloc(8 * MiB);
      for (let off = 0; off < 512 * MiB; off += buf.length) {
        buf.fill((off / MiB) % 251);
        await fh.write(buf, 0, buf.length, off);
      }
    } finally {
      await fh.close();
    }
    const sum = await sha256(join(dirs[from], file));
    const sourceIndex = twoAgents && from === 'b' ? 1 : 0;
    const source = agents[sourceIndex]!;

    await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[to]]);
    // the temporary volume is made by the destination; the source copies once it sees it
    // available (polling the database): killed then, it dies with the migration `migrating`
    const temp = await waitFor('the temporary volume to be available', 90_000, async () => {
      const rows = await db.kysely.selectFrom('volumes').selectAll().where('deleted', '=', false).where('migration_status', '=', `target:${vol.id}`).execute();
      return rows[0]?.status === 'available' ? rows[0] : undefined;
    });
    await source.stop('SIGKILL');
    const atKill = await db.volumes.get(vol.id);
    expect(atKill.migration_status, 'the kill landed after the copy: make the volume larger').toBe('migrating');
    // stuck so: cinder-api refuses delete, attach and another migration while `migrating`
    expect(['available', 'maintenance']).toContain(atKill.status);

    // started again: the migration is ended as the agent's own failure path ends it
    const again = startAgentProcess(confs[sourceIndex]!);
    agents[sourceIndex] = again;
    await again.waitForLog(/was left migrating by a crash/, 120_000);
    const v = await waitFor('the volume to be usable again', 90_000, async () => {
      const x = await volume(vol.id);
      return x.status === 'available' && x.migration_status === 'error' ? x : undefined;
    });
    expect(v['os-vol-host-attr:host']).toBe(hosts[from]);
    await waitFor(`temporary volume ${temp.id} deleted`, 90_000, async () => ((await db.volumes.find(temp.id)) ? undefined : true));
    expect(await sha256(join(dirs[from], file))).toBe(sum);
    await expectNoLeftovers(kept(from, file));

    // and cinder-api takes it for another migration, which now succeeds
    await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[to]]);
    await waitVolume(vol.id, 'migrated after the kill', (x) => x.migration_status === 'success' && x['os-vol-host-attr:host'] === hosts[to]);
    expect(await sha256(join(dirs[to], file))).toBe(sum);
    expect((await stack.api('DELETE', `/volumes/${vol.id}`)).status).toBe(202);
    await expectNoLeftovers({ a: [], b: [] });
  }, 400_000);

  it.runIf(twoAgents)('a destination agent killed mid-migration: the completion fails, the volume stays on its source (available, migration_status error, bytes intact), the temporary volume goes once the destination is back, migratable again', async () => {
    const vol = await createVolume(null, 'dest-killed');
    const file = `volume-${vol.id}`;
    const { from, to } = sides(vol);
    await writePattern(join(dirs[from], file), 17);
    const sum = await sha256(join(dirs[from], file));
    const destIndex = to === 'a' ? 0 : 1;

    await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[to]]);
    const temp = await waitFor('the temporary volume to be available', 90_000, async () => {
      const rows = await db.kysely.selectFrom('volumes').selectAll().where('deleted', '=', false).where('migration_status', '=', `target:${vol.id}`).execute();
      return rows[0]?.status === 'available' ? rows[0] : undefined;
    });
    // the destination made its volume and dies: the source still copies (the file is on this
    // machine) and then calls update_migrated_volume, which nobody answers
    await agents[destIndex]!.stop('SIGKILL');
    const v = await waitFor('the migration to fail', 150_000, async () => {
      const x = await volume(vol.id);
      return x.migration_status === 'error' ? x : undefined;
    });
    expect(v.status).toBe('available');
    expect(v['os-vol-host-attr:host']).toBe(hosts[from]);
    expect(await sha256(join(dirs[from], file))).toBe(sum);
    // the temporary volume's delete waits in the destination's queue
    expect(await db.volumes.find(temp.id)).toBeTruthy();

    const again = startAgentProcess(confs[destIndex]!);
    agents[destIndex] = again;
    await again.waitForLog(/serving 1 backend/, 60_000);
    await waitFor(`temporary volume ${temp.id} deleted by the destination`, 90_000, async () => ((await db.volumes.find(temp.id)) ? undefined : true));
    await expectNoLeftovers(kept(from, file));

    await stack.cinder(['migrate', '--force-host-copy', 'True', vol.id, hosts[to]]);
    await waitVolume(vol.id, 'migrated after the destination came back', (x) => x.migration_status === 'success' && x['os-vol-host-attr:host'] === hosts[to]);
    expect(await sha256(join(dirs[to], file))).toBe(sum);
    expect((await stack.api('DELETE', `/volumes/${vol.id}`)).status).toBe(202);
    await expectNoLeftovers({ a: [], b: [] });
  }, 400_000);
});
