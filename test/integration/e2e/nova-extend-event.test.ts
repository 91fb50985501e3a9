// issue 14 item 6, "done when": an in-use extend through the real cinder-api (os-extend at a
// microversion >= 3.42) and scheduler makes cinderblock send `volume-extended` to Debian's
// nova-api running without keystone, which accepts it (207, a per-instance result); with nova
// down the extend still completes and cinder's user message (extend volume / compute service
// failed) is written. The volume is attached with the legacy os-attach (attach_volume on the
// agent), which records the instance without an export, so no target daemon is needed here.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCinderStack, waitFor, WaitAborted, type CinderStack } from '../../helpers/cinder-stack.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { createCinderDatabase, type TestCinderDb } from '../../helpers/cinder-db.js';
import { createOwnVhost, type OwnVhost } from '../../helpers/rabbit-vhost.js';
import { novaAvailable, startNovaApi, type NovaApi } from '../../helpers/nova.js';

const NOVA_PORT = 18774;
const API_PORT = 18920;

describe.runIf(novaAvailable())('volume-extended to a keyless nova-api after an in-use extend', () => {
  let nova: NovaApi | null = null;
  let stack: CinderStack;
  let agent: AgentProcess;
  let db: TestCinderDb;
  // every stack's scheduler consumes `cinder-scheduler`: a vhost of our own, or other stacks take our requests
  let vhost: OwnVhost;

  async function volume(id: string) {
    return (await stack.api('GET', `/volumes/${id}`)).body.volume as Record<string, any>;
  }
  async function waitVolume(id: string, want: (v: Record<string, any>) => boolean, what: string) {
    // a loaded host (a lab VM beside this test) makes cinder-api and the scheduler slow
    return waitFor(`volume ${id} ${what}`, 150_000, async () => {
      const v = await volume(id);
      if (v?.status?.startsWith('error')) throw new WaitAborted(`volume ${id} went to ${v.status}\n${agent.text().slice(-3000)}`);
      return want(v) ? v : undefined;
    }).catch(async (err: Error) => {
      throw new Error(`${err.message} (now ${JSON.stringify((await volume(id))?.status)})\n${agent.text().slice(-3000)}\n${(await stack.logs()).slice(-2000)}`);
    });
  }
  async function inUseVolume(instance: string) {
    const r = await stack.api('POST', '/volumes', { volume: { size: 1, name: `nova-${instance.slice(0, 8)}` } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const id = r.body.volume.id as string;
    await waitVolume(id, (v) => v.status === 'available', 'to be available');
    expect((await stack.api('POST', `/volumes/${id}/action`, { 'os-reserve': null })).status).toBe(202);
    const a = await stack.api('POST', `/volumes/${id}/action`, { 'os-attach': { instance_uuid: instance, mountpoint: '/dev/vdb', mode: 'rw' } });
    expect(a.status, JSON.stringify(a.body)).toBe(202);
    await waitVolume(id, (v) => v.status === 'in-use', 'to be in-use');
    return id;
  }
  async function extend(id: string, size: number) {
    // OpenStack-API-Version volume 3.70 (>= 3.42): cinder-api takes os-extend of an in-use volume
    const r = await stack.api('POST', `/volumes/${id}/action`, { 'os-extend': { new_size: size } });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitVolume(id, (v) => v.size === size && v.status === 'in-use', `to be in-use at ${size} GiB`);
  }
  async function messagesOf(id: string) {
    const r = await stack.api('GET', `/messages?resource_uuid=${id}`);
    return (r.body.messages as Array<Record<string, any>>).filter((m) => m.resource_uuid === id);
  }

  beforeAll(async () => {
    nova = await startNovaApi({ port: NOVA_PORT });
    // MariaDB: api, scheduler and agent lock a SQLite file out on a loaded host
    db = await createCinderDatabase('mysql');
    vhost = await createOwnVhost('nb-nova');
    stack = await startCinderStack({
      apiPort: API_PORT,
      databaseUrl: db.url,
      transportUrl: vhost.transportUrl,
      startTimeoutMs: 180_000,
      backends: { file: { volume_driver: 'file', volume_backend_name: 'file', target_helper: 'fake' } },
      extraSections: {
        cinderblock: { metrics_listen: '' },
        // the keyless nova of CONTRACT-WAVE2 D: a fixed endpoint and noauth2's admin token
        nova: { auth_type: 'admin_token', endpoint: nova.endpoint, token: 'admin:admin', timeout: '20' },
      },
    });
    agent = startAgentProcess(stack.confPath);
    await agent.waitForLog(/serving 1 backend/);
    await waitFor('the scheduler to know the pool', 30_000, async () => {
      const r = await stack.api('GET', '/scheduler-stats/get_pools');
      return r.body?.pools?.length ? true : undefined;
    });
  }, 420_000);

  afterAll(async () => {
    await agent?.stop();
    await stack?.stop();
    await nova?.stop();
    await db?.drop();
    await vhost?.drop();
  }, 60_000);

  it('nova-api accepts volume-extended for the attached instance (207, per-instance result); no user message', async () => {
    const instance = randomUUID();
    const id = await inUseVolume(instance);
    await extend(id, 2).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${agent.text().slice(-3000)}\n${(await stack.logs()).slice(-3000)}`);
    });
    // nova logged the POST with its 207 and the event it dropped for this (unknown) instance
    const log = await waitFor('nova-api to log the events call', 30_000, async () => {
      const text = await nova!.log();
      return text.includes(`Dropping event volume-extended:${id} for unknown instance ${instance}`) ? text : undefined;
    });
    expect(log).toMatch(/"POST \/v2\.1\/os-server-external-events HTTP\/1\.1" status: 207/);
    // the agent read the per-instance result: a warning for the 404, the call delivered
    await agent.waitForLog(/Nova event returned with failed status/);
    expect(agent.text()).toMatch(/Nova accepted volume-extended/);
    expect(await messagesOf(id)).toEqual([]);
    // the token never reaches the agent's log
    expect(agent.text()).not.toContain('admin:admin');
  }, 400_000);

  it('with nova down the extend completes and cinder writes its user message', async () => {
    await nova!.stop();
    nova = null;
    const id = await inUseVolume(randomUUID());
    const v = await extend(id, 3);
    expect(v.status).toBe('in-use');
    const msgs = await waitFor('the user message', 30_000, async () => {
      const m = await messagesOf(id);
      return m.length ? m : undefined;
    });
    expect(msgs).toHaveLength(1);
    expect(msgs[0]).toMatchObject({ event_id: 'VOLUME_VOLUME_007_009', resource_type: 'VOLUME', message_level: 'ERROR' });
    // cinder-api's own wording: '<action>:<detail>'
    expect(msgs[0]!.user_message).toBe('extend volume:Compute service failed to extend volume.');
    // the extend was neither undone nor failed
    expect((await volume(id)).size).toBe(3);
  }, 400_000);
});
