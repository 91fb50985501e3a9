// issue 2, "done when": real cinder-api and cinder-scheduler with no cinder-volume; cinderblock
// serve on the same cinder.conf shows up as an `up` cinder-volume service with its pool, and goes
// down when it stops. Then the database taken away at start and during heartbeats.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCinderStack, parseTable, waitFor, writeCinderConf, type CinderStack } from '../../helpers/cinder-stack.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { createCinderDatabase, type TestCinderDb } from '../../helpers/cinder-db.js';
import { startTcpRelay, type TcpRelay } from '../../helpers/tcp-relay.js';

function volumeRow(rows: Array<Record<string, string>>, host: string) {
  return rows.find((r) => r.Binary === 'cinder-volume' && r.Host === host);
}

describe('cinderblock as the volume service of a real cinder deployment', () => {
  let stack: CinderStack;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    stack = await startCinderStack({ backends: { file: { volume_driver: 'file', volume_backend_name: 'file' } }, apiPort: 18776 });
  });
  afterAll(async () => {
    await agent?.stop('SIGKILL');
    await stack?.stop();
  });

  it('shows up in service-list, reports its pool, and goes down after it stops', async () => {
    const host = `${stack.host}@file`;
    const before = parseTable(await stack.cinder(['service-list']));
    expect(volumeRow(before, host)).toBeUndefined();

    agent = startAgentProcess(stack.confPath);
    await agent.waitForLog(/serving 1 backend/);

    const row = await waitFor('the cinder-volume row to be up', 20_000, async () => {
      const r = volumeRow(parseTable(await stack.cinder(['service-list'])), host);
      return r?.State === 'up' ? r : undefined;
    });
    expect(row).toMatchObject({ Status: 'enabled', Zone: 'nova', 'Backend State': 'up' });

    // The CLI shows the pool as the scheduler has it...
    const pools = await waitFor('the scheduler to list the pool', 20_000, async () => {
      const out = await stack.cinder(['get-pools', '--detail']);
      return out.includes(`${host}#file`) ? out : undefined;
    });
    const props = Object.fromEntries(parseTable(pools).map((r) => [r.Property, r.Value]));
    expect(props).toMatchObject({ name: `${host}#file`, pool_name: 'file', storage_protocol: 'iSCSI', vendor_name: 'Open Source', volume_backend_name: 'file', backend_state: 'up' });

    // ...and the API gives the same report with its types: every capability cinder/volume/drivers/lvm.py _update_volume_stats reports.
    const res = await stack.api('GET', '/scheduler-stats/get_pools?detail=true');
    expect(res.status).toBe(200);
    const pool = (res.body.pools as Array<{ name: string; capabilities: Record<string, unknown> }>).find((p) => p.name === `${host}#file`)!;
    const caps = pool.capabilities;
    for (const key of [
      'volume_backend_name', 'vendor_name', 'driver_version', 'storage_protocol', 'pool_name', 'total_capacity_gb',
      'free_capacity_gb', 'reserved_percentage', 'location_info', 'QoS_support', 'provisioned_capacity_gb',
      'max_over_subscription_ratio', 'thin_provisioning_support', 'thick_provisioning_support', 'total_volumes',
      'filter_function', 'goodness_function', 'multiattach', 'backend_state', 'allocated_capacity_gb', 'cacheable', 'timestamp',
    ]) {
      expect(caps, key).toHaveProperty(key);
    }
    expect(caps).toMatchObject({ multiattach: true, cacheable: true, QoS_support: false, max_over_subscription_ratio: '20.0', thin_provisioning_support: true, allocated_capacity_gb: 0 });
    expect(typeof caps.total_capacity_gb).toBe('number');
    expect(caps.free_capacity_gb as number).toBeGreaterThan(0);

    // The volume manager answers cinder's own calls: secure_file_operations_enabled is asked by
    // cinder-backup; get_capabilities by `cinder get-capabilities`.
    const capsOut = await stack.cinder(['get-capabilities', host]);
    expect(capsOut).toContain('thin_provisioning');
    expect(capsOut).toContain('Open Source');

    const code = await agent.stop();
    expect(code).toBe(0);
    expect(agent.text()).toMatch(/cinderblock stopped/);
    // report_interval 2 s, service_down_time 10 s in the stack's cinder.conf.
    await waitFor('the cinder-volume row to go down', 30_000, async () => {
      const r = volumeRow(parseTable(await stack.cinder(['service-list'])), host);
      return r?.State === 'down' ? r : undefined;
    });
  });
});

describe('database faults', () => {
  let db: TestCinderDb;
  let relay: TcpRelay;
  let dir: string;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    db = await createCinderDatabase('mysql');
    relay = await startTcpRelay(3306);
    dir = await mkdtemp(join(tmpdir(), 'cb-dbfault-'));
    await mkdir(join(dir, 'locks'));
  });
  afterAll(async () => {
    await agent?.stop('SIGKILL');
    await relay?.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps retrying a database that is down at start, then while heartbeating, and never crashes', async () => {
    relay.cut();
    const url = db.url.replace(':3306/', `:${relay.port}/`);
    const confPath = join(dir, 'cinder.conf');
    const host = `cbdb${process.pid}`;
    await writeFile(
      confPath,
      writeCinderConf(dir, {
        host,
        apiPort: 0,
        databaseUrl: url,
        backends: { file: { volume_driver: 'file' } },
        defaults: { report_interval: '1' },
      }).replace('[database]\n', '[database]\nmax_retries = 1\nretry_interval = 1\n') + '\n[cinderblock]\nmetrics_listen =\n',
    );
    agent = startAgentProcess(confPath);

    // Down at start: a clear line naming what to check, the password never shown, still running.
    const line = await agent.waitForLog(/cannot open the database/, 30_000);
    expect(String(line.msg)).toMatch(/Check \[database\] connection/);
    await agent.waitForLog(/cannot open the database .*round 2/, 30_000);
    expect(agent.child.exitCode).toBeNull();

    // The database comes back: the agent finishes starting by itself.
    relay.restore();
    await agent.waitForLog(/serving 1 backend/, 60_000);

    // Lost while heartbeating: logged, not fatal; restored: logged again.
    relay.cut();
    await agent.waitForLog(/heartbeat for .* could not be written/, 60_000);
    expect(agent.child.exitCode).toBeNull();
    relay.restore();
    await agent.waitForLog(/heartbeat for .* restored/, 60_000);

    expect(await agent.stop()).toBe(0);
    expect(agent.text()).not.toMatch(/"password"\s*:\s*"[^*]/);
  });
});
