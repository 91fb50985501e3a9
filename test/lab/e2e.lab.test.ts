// issue 4: the end-to-end scenario of test/integration/e2e/volume-lifecycle.test.ts on a REAL
// storage stack, inside the lab guest: the real cinder-api and cinder-scheduler run on the host
// (test/lab/e2e.host.mts, reached at 10.0.2.2), cinderblock runs here as `cinderblock serve` on a
// real volume group with target_helper = lioadm, and the guest's open-iscsi is the initiator (two
// initiator names through two ifaces). Thick LVM (lvm_type = default) with cinder's target per
// volume first, then a shorter thin pass on the same VG with the agent restarted on lvm_type =
// thin and target_layout = per-host (one LIO target per compute host, a LUN per volume): the
// export code differs by layout, not by LVM type, so each layout gets one pass. The thin pass
// also creates volumes from a Glance image (glance-api on the host) with the image-volume cache on:
// the download stays thin, the cache entry and the next create are thin snapshots.
//
// The scratch disk is 8 GiB (7.99 in the VG). Thick, a 2 GiB volume, its 2 GiB snapshot, the clone
// from it and the clone from the volume (which, as in cinder, takes a temporary 2 GiB snapshot of
// its source) do not fit together: the legacy and force-detach steps run on the clone from the
// snapshot, then it and the snapshot are deleted, then the volume is cloned.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js';
import { SPARSE_REGION, sparseImageMismatches, sparseRegions } from '../helpers/sparse-image.js';
import { writeE2eAgentConf } from './e2e-guest.js';
import { cinderApi, waitFor, WaitAborted } from '../helpers/cinder-stack.js';
import {
  diskBytes,
  diskOf,
  ensureIface,
  holdsPattern,
  iscsiadm,
  login,
  loginFrom,
  logout,
  rescan,
  sessions,
  waitSessionDropped,
  writePattern,
  type ChapLogin,
} from '../helpers/iscsiadm.js';

const env = process.env;
const inLab = env.CINDERBLOCK_LAB === '1' && Boolean(env.CBLAB_DISKS) && Boolean(env.CBLAB_E2E_API);
const DISK = (env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
const VG = 'cinder-volumes';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const PATTERN = 4 * MiB;
const INITIATOR_A = 'iqn.2024-01.org.cinderblock:lab-guest-a';
const INITIATOR_B = 'iqn.2024-01.org.cinderblock:lab-guest-b';
const IFACE_B = 'cbb';
const LIO = '/sys/kernel/config/target';
const WORK = '/tmp/cb-e2e';
const INTERNAL_PROJECT = 'cinder-internal-project';
const INTERNAL_USER = 'cinder-internal-user';
const api = cinderApi(env.CBLAB_E2E_API ?? 'http://10.0.2.2:1/v3');

function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...env, LC_ALL: 'C', LVM_SUPPRESS_FD_WARNINGS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function connector(initiator: string, host: string) {
  return { initiator, ip: '127.0.0.1', host, platform: 'x86_64', os_type: 'linux2', multipath: false, do_local_attach: false };
}

function lvs(): string[] {
  return sh(['lvs', '--noheadings', '-o', 'lv_name', VG]).split('\n').map((l) => l.trim()).filter(Boolean);
}
function lvSizeBytes(lv: string): number {
  return Number(sh(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', `${VG}/${lv}`]).trim());
}
/** Our targets in LIO (iqn.2010-10.org.openstack:*). */
function lioTargets(): string[] {
  return existsSync(`${LIO}/iscsi`) ? readdirSync(`${LIO}/iscsi`).filter((n) => n.startsWith('iqn.2010-10.org.openstack:')) : [];
}
function lioAcls(iqn: string): string[] {
  const d = `${LIO}/iscsi/${iqn}/tpgt_1/acls`;
  return existsSync(d) ? readdirSync(d) : [];
}
/** Storage objects under core/iblock_* (directories; hba_info/hba_mode are files). */
function lioBackstores(): string[] {
  if (!existsSync(`${LIO}/core`)) return [];
  return readdirSync(`${LIO}/core`)
    .filter((h) => h.startsWith('iblock_'))
    .flatMap((h) => readdirSync(`${LIO}/core/${h}`, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => `${h}/${e.name}`));
}

describe.skipIf(!inLab).sequential('cinder-api → cinderblock on LVM + LIO → open-iscsi (lab guest)', () => {
  let agent: AgentProcess | null = null;
  const agentLogs: string[] = [];

  const tail = () => (agent ? agent.text().slice(-4000) : '');

  async function waitStatus(kind: 'volumes' | 'snapshots', id: string, status: string, timeoutMs = 120_000) {
    return waitFor(`${kind} ${id} to be ${status}`, timeoutMs, async () => {
      const r = await api('GET', `/${kind}/${id}`);
      const obj = r.body?.[kind === 'volumes' ? 'volume' : 'snapshot'];
      if (obj?.status?.startsWith('error')) throw new WaitAborted(`${kind} ${id} went to ${obj.status}\n${tail()}`);
      return obj?.status === status ? obj : undefined;
    });
  }
  async function waitGone(kind: 'volumes' | 'snapshots', id: string, timeoutMs = 120_000) {
    await waitFor(`${kind} ${id} deleted`, timeoutMs, async () => {
      const r = await api('GET', `/${kind}/${id}`);
      const obj = r.body?.[kind === 'volumes' ? 'volume' : 'snapshot'];
      if (obj?.status?.startsWith('error')) throw new WaitAborted(`${kind} ${id} went to ${obj.status}\n${tail()}`);
      return r.status === 404 ? true : undefined;
    });
  }
  /** The scheduler's view of the pool: its free capacity follows the agent's reports. */
  async function waitFreeGb(gb: number) {
    await waitFor(`the pool to report ${gb} GiB free`, 90_000, async () => {
      const r = await api('GET', '/scheduler-stats/get_pools?detail=true');
      const free = Number(r.body?.pools?.[0]?.capabilities?.free_capacity_gb ?? 0);
      return free >= gb ? true : undefined;
    });
  }
  async function createVolume(body: Record<string, unknown>) {
    const r = await api('POST', '/volumes', { volume: body });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitStatus('volumes', r.body.volume.id, 'available', 240_000);
  }
  async function attach(volumeId: string, initiator: string) {
    const r = await api('POST', '/attachments', { attachment: { volume_uuid: volumeId, connector: connector(initiator, 'cblab-guest'), mode: 'rw' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.attachment as { id: string; connection_info: Record<string, any> };
  }
  async function detach(volumeId: string, attachmentId: string) {
    expect((await api('DELETE', `/attachments/${attachmentId}`)).status).toBe(200);
    await waitStatus('volumes', volumeId, 'available');
  }
  /** Logs in, checks that it is refused; leaves no node record behind. */
  async function refused(t: ChapLogin): Promise<boolean> {
    const r = await login(t, { loginTimeoutS: 4 });
    const s = (await sessions()).filter((x) => x.iqn === t.iqn && x.state === 'LOGGED_IN');
    await logout(t);
    return r.code !== 0 && s.length === 0;
  }
  /** Attach, log in, check the pattern, log out, detach (refusal after detach has its own steps). */
  async function attachedHolds(volumeId: string, byte: number): Promise<boolean> {
    const at = await attach(volumeId, INITIATOR_A);
    const t = loginFrom(at.connection_info);
    const r = await login(t);
    expect(r.code, r.out).toBe(0);
    const ok = await holdsPattern(await diskOf(t.iqn), byte, PATTERN);
    await logout(t);
    await detach(volumeId, at.id);
    expect(lioTargets()).not.toContain(t.iqn);
    return ok;
  }

  /** Attach, log in, write the pattern, log out, detach. */
  async function attachedWrite(volumeId: string, byte: number): Promise<void> {
    const at = await attach(volumeId, INITIATOR_A);
    const t = loginFrom(at.connection_info);
    const r = await login(t);
    expect(r.code, r.out).toBe(0);
    const d = await diskOf(t.iqn);
    await writePattern(d, byte, PATTERN);
    expect(await holdsPattern(d, byte, PATTERN)).toBe(true);
    await logout(t);
    await detach(volumeId, at.id);
  }

  async function startAgent(lvmType: 'default' | 'thin', backendExtra: Record<string, string> = {}, defaultsExtra: Record<string, string> = {}) {
    const confPath = await writeE2eAgentConf(WORK, VG, lvmType, backendExtra, defaultsExtra);
    agent = startAgentProcess(confPath);
    await agent.waitForLog(/serving 1 backend/, 120_000);
    await waitFor('the scheduler to know the pool', 90_000, async () => {
      const r = await api('GET', '/scheduler-stats/get_pools?detail=true');
      const caps = r.body?.pools?.[0]?.capabilities;
      return caps && (lvmType === 'thin' ? caps.thin_provisioning_support === true : caps.thick_provisioning_support === true) ? true : undefined;
    });
  }
  async function stopAgent() {
    if (!agent) return;
    await agent.stop();
    agentLogs.push(agent.text());
    agent = null;
  }

  beforeAll(async () => {
    await mkdir(WORK, { recursive: true });
    sh(['pvcreate', '-y', DISK]);
    sh(['vgcreate', VG, DISK]);
    // open-iscsi as a compute host has it: an initiator name, manual node startup, iscsid running
    await mkdir('/run/lock/iscsi', { recursive: true });
    await writeFile('/etc/iscsi/initiatorname.iscsi', `InitiatorName=${INITIATOR_A}\n`);
    await execa('sed', ['-i', 's/^node.startup = .*/node.startup = manual/', '/etc/iscsi/iscsid.conf']);
    // daemons: their forked children must not hold our pipes open
    await execa('dbus-daemon', ['--system', '--fork'], { reject: false, stdio: 'ignore' });
    await execa('iscsid', [], { stdio: 'ignore' });
    await ensureIface(IFACE_B, INITIATOR_B);
  });
  afterAll(async () => {
    await stopAgent();
    if (env.CBLAB_OUT) await writeFile(join(env.CBLAB_OUT, 'agent.log'), agentLogs.join('\n---- agent restarted ----\n')).catch(() => undefined);
    await iscsiadm('-m', 'node', '-u');
    await iscsiadm('-m', 'node', '-o', 'delete');
  });

  describe.sequential('thick (lvm_type = default)', () => {
    let vol: any;
    let snap: any;
    let fromSnap: any;
    let fromVol: any;
    let att: { id: string; connection_info: Record<string, any> };
    let a: ChapLogin;
    let disk = '';

    beforeAll(async () => {
      await startAgent('default');
    });

    it('creates a volume: an LV in the VG', async () => {
      vol = await createVolume({ size: 1, name: 'lab-data' });
      expect(lvs()).toContain(`volume-${vol.id}`);
      expect(lvSizeBytes(`volume-${vol.id}`)).toBe(GiB);
    });

    it('attachment-create with the guest connector: a LIO target with an ACL for it only, and CHAP', async () => {
      att = await attach(vol.id, INITIATOR_A);
      const ci = att.connection_info;
      expect(ci).toMatchObject({ driver_volume_type: 'iscsi', target_discovered: false, auth_method: 'CHAP', target_lun: 0, volume_id: vol.id, access_mode: 'rw', attachment_id: att.id, target_portal: '127.0.0.1:3260' });
      expect(ci.target_iqn).toBe(`iqn.2010-10.org.openstack:volume-${vol.id}`);
      expect(lioTargets()).toEqual([ci.target_iqn]);
      expect(lioAcls(ci.target_iqn)).toEqual([INITIATOR_A]);
      a = loginFrom(ci);
      // B holds the right CHAP secret but is not attached: refused
      expect(await refused({ ...a, iface: IFACE_B })).toBe(true);
      // A with a wrong secret: refused
      expect(await refused({ ...a, password: 'wrongsecret12345' })).toBe(true);
    });

    it('logs in with the returned CHAP and writes a pattern', async () => {
      const r = await login(a);
      expect(r.code, r.out).toBe(0);
      disk = await diskOf(a.iqn);
      expect(await diskBytes(disk)).toBe(GiB);
      await writePattern(disk, 0x5a, PATTERN);
      expect(await holdsPattern(disk, 0x5a, PATTERN)).toBe(true);
    });

    it('attachment complete: in-use', async () => {
      expect((await api('POST', `/attachments/${att.id}/action`, { 'os-complete': null })).status).toBe(204);
      await waitStatus('volumes', vol.id, 'in-use');
    });

    it('extends in use (3.42): the initiator sees 2 GiB after a rescan, data intact', async () => {
      expect((await api('POST', `/volumes/${vol.id}/action`, { 'os-extend': { new_size: 2 } })).status).toBe(202);
      await waitFor('size 2 GiB', 120_000, async () => ((await api('GET', `/volumes/${vol.id}`)).body.volume.size === 2 ? true : undefined));
      await waitStatus('volumes', vol.id, 'in-use');
      expect(lvSizeBytes(`volume-${vol.id}`)).toBe(2 * GiB);
      await rescan(a.iqn);
      await waitFor('the disk to show 2 GiB', 30_000, async () => ((await diskBytes(disk)) === 2 * GiB ? true : undefined));
      expect(await holdsPattern(disk, 0x5a, PATTERN)).toBe(true);
    });

    it('detach: the ACL goes, the target drops the session, a new login is refused', async () => {
      await detach(vol.id, att.id);
      expect(lioAcls(a.iqn)).toEqual([]);
      const state = await waitSessionDropped(a.iqn);
      expect(state).not.toBe('LOGGED_IN');
      await logout(a);
      expect(await refused(a)).toBe(true);
    });

    it('snapshot, overwrite, revert to the snapshot', async () => {
      const r = await api('POST', '/snapshots', { snapshot: { volume_id: vol.id, name: 'lab-snap' } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      snap = await waitStatus('snapshots', r.body.snapshot.id, 'available');
      expect(lvs()).toContain(`_snapshot-${snap.id}`);
      await attachedWrite(vol.id, 0x77);
      expect((await api('POST', `/volumes/${vol.id}/action`, { revert: { snapshot_id: snap.id } })).status).toBe(202);
      await waitFor('the revert to finish', 180_000, async () => {
        const v = (await api('GET', `/volumes/${vol.id}`)).body.volume;
        if (v.status === 'error') throw new WaitAborted(`revert failed\n${tail()}`);
        return v.status === 'available' ? true : undefined;
      });
      await waitStatus('snapshots', snap.id, 'available');
      expect(await attachedHolds(vol.id, 0x5a)).toBe(true);
    });

    it('clone from the snapshot holds the pattern', async () => {
      fromSnap = await createVolume({ size: 2, snapshot_id: snap.id, name: 'from-snap' });
      expect(lvs()).toContain(`volume-${fromSnap.id}`);
      expect(await attachedHolds(fromSnap.id, 0x5a)).toBe(true);
    });

    it('legacy os-initialize_connection / os-terminate_connection', async () => {
      const c = connector(INITIATOR_B, 'cblab-guest-b');
      const init = await api('POST', `/volumes/${fromSnap.id}/action`, { 'os-initialize_connection': { connector: c } });
      expect(init.status, JSON.stringify(init.body)).toBe(200);
      const t = loginFrom(init.body.connection_info.data, IFACE_B);
      expect(lioAcls(t.iqn)).toEqual([INITIATOR_B]);
      expect((await login(t)).code).toBe(0);
      expect(await holdsPattern(await diskOf(t.iqn), 0x5a, MiB)).toBe(true);
      expect((await api('POST', `/volumes/${fromSnap.id}/action`, { 'os-terminate_connection': { connector: c } })).status).toBe(202);
      await waitFor('the ACL to go', 60_000, async () => (lioAcls(t.iqn).length === 0 ? true : undefined));
      await waitSessionDropped(t.iqn);
      await logout(t);
      expect(await refused(t)).toBe(true);
    });

    it('os-force_detach: the attached initiator is cut off', async () => {
      const at3 = await attach(fromSnap.id, INITIATOR_B);
      const t = loginFrom(at3.connection_info, IFACE_B);
      expect((await login(t)).code).toBe(0);
      expect(await holdsPattern(await diskOf(t.iqn), 0x5a, MiB)).toBe(true);
      const r = await api('POST', `/volumes/${fromSnap.id}/action`, { 'os-force_detach': { attachment_id: at3.id, connector: connector(INITIATOR_B, 'cblab-guest') } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      await waitStatus('volumes', fromSnap.id, 'available');
      await waitSessionDropped(t.iqn);
      await logout(t);
      expect(await refused(t)).toBe(true);
    });

    it('deletes the snapshot and that clone (room for the clone from the volume)', async () => {
      expect((await api('DELETE', `/snapshots/${snap.id}`)).status).toBe(202);
      await waitGone('snapshots', snap.id);
      expect(lvs()).not.toContain(`_snapshot-${snap.id}`);
      expect((await api('DELETE', `/volumes/${fromSnap.id}`)).status).toBe(202);
      await waitGone('volumes', fromSnap.id);
      expect(lvs()).toEqual([`volume-${vol.id}`]);
      await waitFreeGb(4);
    });

    it('clone from the volume holds the pattern', async () => {
      fromVol = await createVolume({ size: 2, source_volid: vol.id, name: 'from-vol' });
      expect(await attachedHolds(fromVol.id, 0x5a)).toBe(true);
      // the temporary snapshot of the source is gone again
      expect(lvs().sort()).toEqual([`volume-${fromVol.id}`, `volume-${vol.id}`].sort());
    });

    it('deletes the remaining volumes', async () => {
      for (const v of [fromVol, vol]) {
        expect((await api('DELETE', `/volumes/${v.id}`)).status).toBe(202);
        await waitGone('volumes', v.id);
      }
    });

    it('leaves nothing behind: no LV, no LIO target/ACL/backstore, no session, no secret in the log', async () => {
      expect(lvs()).toEqual([]);
      expect(lioTargets()).toEqual([]);
      expect(lioBackstores()).toEqual([]);
      expect((await sessions()).length).toBe(0);
      expect(agent!.text()).not.toContain(att.connection_info.auth_password);
    });
  });

  // Shorter: the thin paths differ in create (thin pool made by the agent), extend, snapshot (no
  // size), revert (the driver refuses, the manager copies through a temporary volume) and delete
  // (no clearing); attach and export are the same code as above.
  describe.sequential('thin (lvm_type = thin) and target_layout = per-host, same VG, agent restarted', () => {
    let vol: any;
    let snap: any;
    let clone: any;
    let at: { id: string; connection_info: Record<string, any> };
    let t: ChapLogin;
    let disk = '';

    beforeAll(async () => {
      await stopAgent();
      await startAgent(
        'thin',
        { target_layout: 'per-host', image_volume_cache_enabled: 'True' },
        { glance_api_servers: env.CBLAB_E2E_GLANCE ?? '', cinder_internal_tenant_project_id: INTERNAL_PROJECT, cinder_internal_tenant_user_id: INTERNAL_USER },
      );
    });

    it('thin: creates a thin volume in the pool the agent made', async () => {
      vol = await createVolume({ size: 1, name: 'thin-data' });
      expect(lvs()).toEqual(expect.arrayContaining([`${VG}-pool`, `volume-${vol.id}`]));
      expect(sh(['lvs', '--noheadings', '-o', 'pool_lv', `${VG}/volume-${vol.id}`]).trim()).toBe(`${VG}-pool`);
    });

    it('thin, per host: attach gives the host target (CHAP of the host), login, write, complete, extend in use seen after a rescan', async () => {
      // volumes of a per-host backend are written shared_targets true (API 3.70 shows it)
      expect((await api('GET', `/volumes/${vol.id}`)).body.volume.shared_targets).toBe(true);
      at = await attach(vol.id, INITIATOR_A);
      expect(at.connection_info.target_iqn).toMatch(/^iqn\.2010-10\.org\.openstack:cb-cblab-guest-[0-9a-f]{12}$/);
      t = loginFrom(at.connection_info);
      const r = await login(t);
      expect(r.code, r.out).toBe(0);
      disk = await diskOf(t.iqn);
      await writePattern(disk, 0x5a, PATTERN);
      expect((await api('POST', `/attachments/${at.id}/action`, { 'os-complete': null })).status).toBe(204);
      await waitStatus('volumes', vol.id, 'in-use');
      expect((await api('POST', `/volumes/${vol.id}/action`, { 'os-extend': { new_size: 2 } })).status).toBe(202);
      await waitFor('size 2 GiB', 120_000, async () => ((await api('GET', `/volumes/${vol.id}`)).body.volume.size === 2 ? true : undefined));
      await waitStatus('volumes', vol.id, 'in-use');
      await rescan(t.iqn);
      await waitFor('the disk to show 2 GiB', 30_000, async () => ((await diskBytes(disk)) === 2 * GiB ? true : undefined));
      expect(await holdsPattern(disk, 0x5a, PATTERN)).toBe(true);
    });

    it('thin, per host: detach of the last LUN takes the host target, drops the session and refuses a new login', async () => {
      await detach(vol.id, at.id);
      await waitSessionDropped(t.iqn);
      await logout(t);
      expect(await refused(t)).toBe(true);
    });

    it('thin: snapshot, overwrite, revert (generic, through a temporary volume)', async () => {
      const r = await api('POST', '/snapshots', { snapshot: { volume_id: vol.id, name: 'thin-snap' } });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      snap = await waitStatus('snapshots', r.body.snapshot.id, 'available');
      await attachedWrite(vol.id, 0x77);
      expect((await api('POST', `/volumes/${vol.id}/action`, { revert: { snapshot_id: snap.id } })).status).toBe(202);
      await waitFor('the revert to finish', 180_000, async () => {
        const v = (await api('GET', `/volumes/${vol.id}`)).body.volume;
        if (v.status === 'error') throw new WaitAborted(`revert failed\n${tail()}`);
        return v.status === 'available' ? true : undefined;
      });
      expect(await attachedHolds(vol.id, 0x5a)).toBe(true);
    });

    it('thin: clone from the snapshot holds the pattern', async () => {
      clone = await createVolume({ size: 2, snapshot_id: snap.id, name: 'thin-from-snap' });
      expect(await attachedHolds(clone.id, 0x5a)).toBe(true);
    });

    it('thin, from a raw image with 10% data: the miss streams it and stays thin, the cache entry and the hit are thin snapshots', async () => {
      const imageId = env.CBLAB_E2E_SPARSE_IMAGE!;
      const imageBytes = Number(env.CBLAB_E2E_SPARSE_IMAGE_SIZE);
      const lvPercent = (id: string) => Number(sh(['lvs', '--noheadings', '-o', 'data_percent', `${VG}/volume-${id}`]).trim());
      const origin = (id: string) => sh(['lvs', '--noheadings', '-o', 'origin', `${VG}/volume-${id}`]).trim();
      const t0 = Date.now();
      // 2 GB from a 512 MiB image: made at 1 GB, snapshotted into the cache at that size, then extended
      const miss = await createVolume({ size: 2, imageRef: imageId, name: 'thin-from-image' });
      const missSecs = (Date.now() - t0) / 1000;
      expect(miss.bootable).toBe('true');
      expect(lvSizeBytes(`volume-${miss.id}`)).toBe(2 * GiB);
      // only the image's data reached the pool (10% of it, 2.5% of the LV), none of its zero runs
      expect(lvPercent(miss.id)).toBeLessThanOrEqual(((sparseRegions(imageBytes) * SPARSE_REGION) / (2 * GiB)) * 100 + 0.5);
      expect(await sparseImageMismatches(`/dev/${VG}/volume-${miss.id}`, imageBytes, 4)).toEqual([]);
      const cached = (await api('GET', `/volumes/detail?all_tenants=1&name=image-${imageId}`)).body.volumes as Array<Record<string, any>>;
      expect(cached).toHaveLength(1);
      expect(cached[0]).toMatchObject({ size: 1, status: 'available', 'os-vol-tenant-attr:tenant_id': INTERNAL_PROJECT });
      expect(origin(cached[0]!.id)).toBe(`volume-${miss.id}`);

      const t1 = Date.now();
      const hit = await createVolume({ size: 2, imageRef: imageId, name: 'thin-from-cache' });
      const hitSecs = (Date.now() - t1) / 1000;
      expect(origin(hit.id)).toBe(`volume-${cached[0]!.id}`);
      expect(hit.volume_image_metadata).toMatchObject({ image_id: imageId });
      expect(await sparseImageMismatches(`/dev/${VG}/volume-${hit.id}`, imageBytes, 4)).toEqual([]);
      expect(agent?.text()).toMatch(new RegExp(`Created volume ${hit.id} from image ${imageId} by cloning`));
      console.log(`create from a ${imageBytes / MiB} MiB image with 10% data: ${missSecs.toFixed(1)} s from Glance (cache filled), ${hitSecs.toFixed(1)} s from the cache`);

      for (const id of [hit.id, miss.id, cached[0]!.id]) {
        expect((await api('DELETE', `/volumes/${id}`)).status).toBe(202);
        await waitGone('volumes', id);
      }
    });

    it('thin: deletes everything; only the pool is left', async () => {
      expect((await api('DELETE', `/snapshots/${snap.id}`)).status).toBe(202);
      await waitGone('snapshots', snap.id);
      for (const v of [clone, vol]) {
        expect((await api('DELETE', `/volumes/${v.id}`)).status).toBe(202);
        await waitGone('volumes', v.id);
      }
      expect(lvs()).toEqual([`${VG}-pool`]);
      expect(lioTargets()).toEqual([]);
      expect(lioBackstores()).toEqual([]);
      expect((await sessions()).length).toBe(0);
    });
  });
});
