// issue 15: the end-to-end path with target_helper = nvmet on a REAL kernel, inside the lab guest:
// the real cinder-api and scheduler on the host (test/lab/e2e-nvmet.host.mts, at 10.0.2.2),
// cinderblock here as `cinderblock serve` on a real volume group, and the project's NVMe/TCP
// connector (nvme-cli) as the compute host. An attachment made through the v3 API gives os-brick's
// connection_info; the host connects as its NQN, writes, sees an in-use extend (3.42), detaches,
// and is refused afterwards; a host never attached is refused throughout; nothing is left.
// Then the agent again with target_layout = per-host: two volumes attached to host A through the
// API are two namespaces of A's one subsystem, the rows say shared_targets NULL (nova locks), and
// detaching one (host side first, as nova does) leaves the other serving on the same connection.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmeConnector } from '../../src/connector/nvme-connector.js';
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { cinderApi, waitFor, WaitAborted } from '../helpers/cinder-stack.js';
import { writeE2eAgentConf } from './e2e-guest.js';

const env = process.env;
const inLab = env.CINDERBLOCK_LAB === '1' && Boolean(env.CBLAB_DISKS) && Boolean(env.CBLAB_E2E_API);
const DISK = (env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
const VG = 'cinder-volumes';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const WORK = '/tmp/cb-e2e-nvmet';
const NVMET = '/sys/kernel/config/nvmet';
const ID_A = '0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b00aa';
const HOST_A = `nqn.2014-08.org.nvmexpress:uuid:${ID_A}`;
const ID_B = '0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b00bb';
const HOST_B = `nqn.2014-08.org.nvmexpress:uuid:${ID_B}`;
const api = cinderApi(env.CBLAB_E2E_API ?? 'http://10.0.2.2:1/v3');

const sh = (argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const subsystems = (): string[] => (existsSync(`${NVMET}/subsystems`) ? readdirSync(`${NVMET}/subsystems`).filter((n) => n.startsWith('nqn.iqn.2010-10.org.openstack:')) : []);
const lvs = (): string[] => sh(['lvs', '--noheadings', '-o', 'lv_name', VG]).split('\n').map((l) => l.trim()).filter(Boolean);
/** a compute host's connector as os-brick reports it, with only an NVMe host NQN */
const connector = (nqn: string) => ({ nqn, host: 'cblab-guest', ip: '127.0.0.1', platform: 'x86_64', os_type: 'linux2', multipath: false, do_local_attach: false });

async function io(dev: string, op: 'write' | 'read', at: number, data: Buffer): Promise<Buffer> {
  const fh = await open(dev, op === 'write' ? 'r+' : 'r');
  try {
    if (op === 'write') {
      await fh.write(data, 0, data.length, at);
      await fh.datasync();
      return data;
    }
    const b = Buffer.alloc(data.length);
    await fh.read(b, 0, b.length, at);
    return b;
  } finally {
    await fh.close();
  }
}

/** The volume once it has `status`; its going to error fails at once, with the agent's log tail. */
async function waitVolumeStatus(id: string, status: string, tail: () => string, timeoutMs = 180_000): Promise<Record<string, any>> {
  return waitFor(`volume ${id} to be ${status}`, timeoutMs, async () => {
    const v = (await api('GET', `/volumes/${id}`)).body?.volume;
    if (v?.status?.startsWith('error')) throw new WaitAborted(`volume ${id} went to ${v.status}\n${tail()}`);
    return v?.status === status ? v : undefined;
  });
}

describe.skipIf(!inLab).sequential('cinder-api → cinderblock on LVM + nvmet → NVMe/TCP (lab guest)', () => {
  let agent: AgentProcess | null = null;
  const tail = () => (agent ? agent.text().slice(-4000) : '');
  const hostA = new NvmeConnector({ hostId: ID_A, deviceWaitMs: 30_000 });
  const hostB = new NvmeConnector({ hostId: ID_B, deviceWaitMs: 3_000 });
  let vol: Record<string, any>;
  let att: { id: string; connection_info: Record<string, any> };
  let dev = '';
  const data = Buffer.alloc(MiB, 0x6b);

  const waitStatus = (id: string, status: string) => waitVolumeStatus(id, status, tail);

  beforeAll(async () => {
    await mkdir(WORK, { recursive: true });
    sh(['pvcreate', '-y', DISK]);
    sh(['vgcreate', VG, DISK]);
    agent = startAgentProcess(await writeE2eAgentConf(WORK, VG, 'default'));
    await agent.waitForLog(/serving 1 backend/, 120_000);
    await waitFor('the scheduler to know the pool', 90_000, async () => ((await api('GET', '/scheduler-stats/get_pools?detail=true')).body?.pools?.[0] ? true : undefined));
  }, 300_000);
  afterAll(async () => {
    await hostA.disconnectVolume(att?.connection_info ?? {}).catch(() => undefined);
    if (agent) {
      await agent.stop();
      if (env.CBLAB_OUT) await writeFile(join(env.CBLAB_OUT, 'agent.log'), agent.text()).catch(() => undefined);
    }
  });

  it('reports NVMe-oF to the scheduler and creates a volume', async () => {
    const pool = (await api('GET', '/scheduler-stats/get_pools?detail=true')).body.pools[0];
    // cinder's constants.NVMEOF, what its LVM driver reports for the nvmet helper
    expect(pool.capabilities.storage_protocol).toBe('NVMe-oF');
    vol = (await api('POST', '/volumes', { volume: { size: 1, name: 'nvme-data' } })).body.volume;
    vol = await waitStatus(vol.id, 'available');
    expect(lvs()).toContain(`volume-${vol.id}`);
  });

  it("attachment-create with host A's NQN: os-brick's connection_info, a subsystem admitting A only", async () => {
    const r = await api('POST', '/attachments', { attachment: { volume_uuid: vol.id, connector: connector(HOST_A), mode: 'rw' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    att = r.body.attachment;
    const ci = att.connection_info;
    expect(ci).toMatchObject({ driver_volume_type: 'nvmeof', host_nqn: HOST_A, ns_id: expect.any(String), volume_nguid: expect.any(String), transport_type: 'tcp', target_port: '4420' });
    expect(subsystems()).toEqual([ci.target_nqn]);
    expect(readdirSync(`${NVMET}/subsystems/${ci.target_nqn}/allowed_hosts`)).toEqual([HOST_A]);
    expect(sh(['cat', `${NVMET}/subsystems/${ci.target_nqn}/attr_allow_any_host`]).trim()).toBe('0');
    // host B holds the same connection_info but is not attached: the target refuses it
    await expect(hostB.connectVolume({ ...ci, host_nqn: HOST_B })).rejects.toThrow(/could be connected|appeared/);
  });

  it('host A connects, finds the namespace by nguid, writes; attachment complete: in-use', async () => {
    const d = await hostA.connectVolume(att.connection_info);
    dev = d.path;
    await io(dev, 'write', 8 * MiB, data);
    expect((await io(`/dev/${VG}/volume-${vol.id}`, 'read', 8 * MiB, data)).equals(data)).toBe(true);
    expect((await api('POST', `/attachments/${att.id}/action`, { 'os-complete': null })).status).toBe(204);
    await waitStatus(vol.id, 'in-use');
  });

  it('extends in use (3.42): host A sees 2 GiB, data intact', async () => {
    expect((await api('POST', `/volumes/${vol.id}/action`, { 'os-extend': { new_size: 2 } })).status).toBe(202);
    await waitFor('size 2 GiB', 120_000, async () => ((await api('GET', `/volumes/${vol.id}`)).body.volume.size === 2 ? true : undefined));
    await waitStatus(vol.id, 'in-use');
    await waitFor('host A to see 2 GiB', 60_000, async () => ((await hostA.extendVolume(att.connection_info)) === 2 * GiB ? true : undefined));
    expect((await io(dev, 'read', 8 * MiB, data)).equals(data)).toBe(true);
  });

  it('detach: the namespace leaves host A, which is refused afterwards', async () => {
    const ci = att.connection_info;
    expect(await hostA.disconnectVolume(ci)).toEqual({ disconnected: true });
    expect((await api('DELETE', `/attachments/${att.id}`)).status).toBe(200);
    await waitStatus(vol.id, 'available');
    expect(existsSync(`${NVMET}/subsystems/${ci.target_nqn}`) ? readdirSync(`${NVMET}/subsystems/${ci.target_nqn}/allowed_hosts`) : []).toEqual([]);
    await expect(new NvmeConnector({ hostId: ID_A, deviceWaitMs: 3_000 }).connectVolume(ci)).rejects.toThrow(/could be connected|appeared/);
  });

  it('deletes the volume: no LV, no subsystem, no host entry of ours left', async () => {
    expect((await api('DELETE', `/volumes/${vol.id}`)).status).toBe(202);
    await waitFor(`volume ${vol.id} deleted`, 120_000, async () => ((await api('GET', `/volumes/${vol.id}`)).status === 404 ? true : undefined));
    expect(lvs()).not.toContain(`volume-${vol.id}`);
    expect(subsystems()).toEqual([]);
    expect(existsSync(`${NVMET}/hosts`) ? readdirSync(`${NVMET}/hosts`) : []).toEqual([]);
  });
});

describe.skipIf(!inLab).sequential('cinder-api → cinderblock, nvmet with target_layout = per-host (lab guest)', () => {
  let agent: AgentProcess | null = null;
  const tail = () => (agent ? agent.text().slice(-4000) : '');
  const hostA = new NvmeConnector({ hostId: ID_A, deviceWaitMs: 30_000 });
  const vols: Array<Record<string, any>> = [];
  const atts: Array<{ id: string; connection_info: Record<string, any> }> = [];
  const devs: string[] = [];
  const data = [Buffer.alloc(MiB, 0x51), Buffer.alloc(MiB, 0x52)];

  const waitStatus = (id: string, status: string) => waitVolumeStatus(id, status, tail);

  beforeAll(async () => {
    const work = `${WORK}-per-host`;
    await mkdir(work, { recursive: true });
    // the same service (host, backend, database) as above, now exporting a subsystem per compute host
    agent = startAgentProcess(await writeE2eAgentConf(work, VG, 'default', { target_layout: 'per-host' }));
    await agent.waitForLog(/serving 1 backend/, 120_000);
  }, 300_000);
  afterAll(async () => {
    for (const a of atts) await hostA.disconnectVolume(a.connection_info).catch(() => undefined);
    if (agent) {
      await agent.stop();
      if (env.CBLAB_OUT) await writeFile(join(env.CBLAB_OUT, 'agent-per-host.log'), agent.text()).catch(() => undefined);
    }
  });

  it("two volumes attached to host A: one subsystem admitting A only, two nsids, rows shared_targets NULL", async () => {
    for (const name of ['per-host-1', 'per-host-2']) {
      const v = (await api('POST', '/volumes', { volume: { size: 1, name } })).body.volume;
      vols.push(await waitStatus(v.id, 'available'));
    }
    // API 3.70 shows NULL as null (below 3.69 cinder-api renders it true)
    expect(vols.map((v) => v.shared_targets)).toEqual([null, null]);
    for (const v of vols) {
      const r = await api('POST', '/attachments', { attachment: { volume_uuid: v.id, connector: connector(HOST_A), mode: 'rw' } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      atts.push(r.body.attachment);
    }
    const [c1, c2] = atts.map((a) => a.connection_info);
    expect(c1!.target_nqn).toBe(c2!.target_nqn);
    expect(c1!.target_nqn).toMatch(/^nqn\.iqn\.2010-10\.org\.openstack:-cb-cblab-guest-[0-9a-f]{12}$/);
    expect(c1!.ns_id).not.toBe(c2!.ns_id);
    expect(c1).not.toHaveProperty('auth_password');
    expect(subsystems()).toEqual([c1!.target_nqn]);
    expect(readdirSync(`${NVMET}/subsystems/${c1!.target_nqn}/allowed_hosts`)).toEqual([HOST_A]);
    expect(readdirSync(`${NVMET}/subsystems/${c1!.target_nqn}/namespaces`).sort()).toEqual([c1!.ns_id, c2!.ns_id].sort());
  });

  it('host A connects both (one connection), writes each; completed: in-use', async () => {
    for (const [i, a] of atts.entries()) {
      const d = await hostA.connectVolume(a.connection_info);
      devs.push(d.path);
      await io(d.path, 'write', 4 * MiB, data[i]!);
      expect((await io(`/dev/${VG}/volume-${vols[i]!.id}`, 'read', 4 * MiB, data[i]!)).equals(data[i]!)).toBe(true);
      expect((await api('POST', `/attachments/${a.id}/action`, { 'os-complete': null })).status).toBe(204);
    }
    expect(new Set(devs).size).toBe(2);
    for (const v of vols) await waitStatus(v.id, 'in-use');
  });

  it("detaching one leaves the other serving: the host keeps its connection and the second volume's data", async () => {
    const [first, second] = atts;
    // the subsystem still serves the second volume here: the connector leaves its controller, and
    // the first volume's device goes with the target's unmapping
    expect(await hostA.disconnectVolume(first!.connection_info)).toEqual({ disconnected: false });
    expect((await api('DELETE', `/attachments/${first!.id}`)).status).toBe(200);
    await waitStatus(vols[0]!.id, 'available');
    const nqn = second!.connection_info.target_nqn as string;
    expect(readdirSync(`${NVMET}/subsystems/${nqn}/namespaces`)).toEqual([second!.connection_info.ns_id]);
    await waitFor('the first volume to leave host A', 20_000, async () => (existsSync(devs[0]!) ? undefined : true));
    expect(existsSync(devs[1]!)).toBe(true);
    expect((await io(devs[1]!, 'read', 4 * MiB, data[1]!)).equals(data[1]!)).toBe(true);
  });

  it('the last detach and the deletes leave no subsystem, host entry or LV of ours', async () => {
    const last = atts[1]!;
    expect(await hostA.disconnectVolume(last.connection_info)).toEqual({ disconnected: true });
    expect((await api('DELETE', `/attachments/${last.id}`)).status).toBe(200);
    await waitStatus(vols[1]!.id, 'available');
    expect(subsystems()).toEqual([]);
    for (const v of vols) expect((await api('DELETE', `/volumes/${v.id}`)).status).toBe(202);
    for (const v of vols) await waitFor(`volume ${v.id} deleted`, 120_000, async () => ((await api('GET', `/volumes/${v.id}`)).status === 404 ? true : undefined));
    expect(lvs().filter((n) => vols.some((v) => n === `volume-${v.id}`))).toEqual([]);
    expect(existsSync(`${NVMET}/hosts`) ? readdirSync(`${NVMET}/hosts`) : []).toEqual([]);
  });
});
