// issue 3, "done when": python-cinderclient's API (the v3 REST API, as the CLI drives it) against
// the real cinder-api and scheduler, cinderblock as the volume service on the file pool with a
// real tgtd, and libiscsi/qemu as the initiator proving each export serves the data written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCinderStack, waitFor, WaitAborted, type CinderStack } from '../../helpers/cinder-stack.js';
import { startAgentProcess, type AgentProcess } from '../../helpers/agent-process.js';
import { startTgtd, tgtAvailable, type TgtdHandle } from '../../helpers/tgtd.js';
import { iscsiReadCapacity16, qemuIo, qemuIscsiAvailable, type IscsiLogin } from '../../helpers/libiscsi.js';
import { hostTargetIqn } from '../../../drivers/targets/host-target/host-target-name.js';
import { parseShowTargets } from '../../../drivers/targets/tgt/tgtadm-parse.js';
import { execa } from 'execa';
import { launcherNodeFlags, launcherPath } from '../../helpers/launcher-node-flags.js';

const GiB = 1024 ** 3;
const INITIATOR_A = 'iqn.1994-05.com.redhat:compute-a';
const INITIATOR_B = 'iqn.1994-05.com.redhat:compute-b';
const INTRUDER = 'iqn.1994-05.com.redhat:intruder';
const ready = (await tgtAvailable()) && (await qemuIscsiAvailable());

function connector(initiator: string, host: string) {
  return { initiator, ip: '127.0.0.1', host, platform: 'x86_64', os_type: 'linux2', multipath: false };
}

function login(ci: Record<string, any>, initiator: string): IscsiLogin {
  return { portal: ci.target_portal, iqn: ci.target_iqn, lun: ci.target_lun, initiator, user: ci.auth_username, password: ci.auth_password };
}

// Both target layouts: one target per volume (cinder's), and one per compute host (issue 12).
describe.runIf(ready).each([
  { layout: 'per-volume', apiPort: 18778, tgtPort: 13300 },
  { layout: 'per-host', apiPort: 18779, tgtPort: 13320 },
] as const)('volume lifecycle through cinder-api, cinderblock, tgt and libiscsi ($layout targets)', ({ layout, apiPort, tgtPort }) => {
  let stack: CinderStack;
  let agent: AgentProcess;
  let tgtd: TgtdHandle;
  let logDir: string;

  async function waitStatus(kind: 'volumes' | 'snapshots', id: string, status: string, timeoutMs = 60_000) {
    return waitFor(`${kind} ${id} to be ${status}`, timeoutMs, async () => {
      const r = await stack.api('GET', `/${kind}/${id}`);
      const obj = r.body[kind === 'volumes' ? 'volume' : 'snapshot'];
      if (obj?.status?.startsWith('error')) throw new WaitAborted(`${kind} ${id} went to ${obj.status}\n${agent.text().slice(-3000)}`);
      return obj?.status === status ? obj : undefined;
    });
  }
  // An unexpected answer from cinder-api fails with the tail of its log: a 500 is a traceback
  // there, and the stack's directory is gone once the suite ends.
  async function expectAnswer(r: { status: number; body: unknown }, status: number, what: string) {
    if (r.status !== status) expect.fail(`${what}: ${r.status} ${JSON.stringify(r.body)}\n${(await stack.logs()).slice(-6000)}`);
  }
  async function createVolume(body: Record<string, unknown>) {
    const r = await stack.api('POST', '/volumes', { volume: body });
    await expectAnswer(r, 202, 'POST /volumes');
    return waitStatus('volumes', r.body.volume.id, 'available');
  }
  async function attach(volumeId: string, initiator: string) {
    const r = await stack.api('POST', '/attachments', { attachment: { volume_uuid: volumeId, connector: connector(initiator, 'compute-a'), mode: 'rw' } });
    await expectAnswer(r, 200, 'POST /attachments');
    return r.body.attachment as { id: string; connection_info: Record<string, any> };
  }

  beforeAll(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'cb-life-'));
    tgtd = await startTgtd({ port: tgtPort, logDir });
    stack = await startCinderStack({
      apiPort,
      backends: {
        file: {
          volume_driver: 'file',
          volume_backend_name: 'file',
          target_helper: 'tgtadm',
          target_ip_address: '127.0.0.1',
          target_port: String(tgtd.port),
          target_layout: layout,
        },
      },
      extraSections: { cinderblock: { tgt_control_port: String(tgtd.controlPort), metrics_listen: '' } },
    });
    agent = startAgentProcess(stack.confPath);
    await agent.waitForLog(/serving 1 backend/);
    await waitFor('the scheduler to know the pool', 30_000, async () => {
      const r = await stack.api('GET', '/scheduler-stats/get_pools');
      return r.body?.pools?.length ? true : undefined;
    });
  });
  afterAll(async () => {
    await agent?.stop();
    await stack?.stop();
    await tgtd?.stop();
    await rm(logDir, { recursive: true, force: true });
  });

  it('creates, attaches, writes, extends in use, snapshots, reverts, clones, detaches and deletes', async () => {
    const vol = await createVolume({ size: 1, name: 'e2e-data' });
    expect(vol.size).toBe(1);

    // Attach A: connection_info with CHAP; A logs in and writes a pattern.
    const att = await attach(vol.id, INITIATOR_A);
    const ci = att.connection_info;
    expect(ci).toMatchObject({ driver_volume_type: 'iscsi', target_discovered: false, auth_method: 'CHAP', target_lun: 1, volume_id: vol.id, access_mode: 'rw', encrypted: false, attachment_id: att.id });
    expect(ci.target_iqn).toBe(layout === 'per-volume' ? `iqn.2010-10.org.openstack:volume-${vol.id}` : hostTargetIqn('iqn.2010-10.org.openstack:', 'file', 'compute-a'));
    // what os-brick's guard_connection reads (3.48+): shared per host, and the service's uuid
    const shown = (await stack.api('GET', `/volumes/${vol.id}`)).body.volume;
    expect(shown.shared_targets).toBe(layout === 'per-host');
    expect(shown.service_uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(ci.auth_username).toHaveLength(20);
    expect(ci.auth_password).toHaveLength(16);
    const a = login(ci, INITIATOR_A);
    expect((await qemuIo(a, 'write -P 0x5a 0 4M')).outcome).toBe('ok');
    // B holds the right CHAP secret but is not attached: refused.
    expect((await qemuIo({ ...a, initiator: INITIATOR_B }, 'read -P 0x5a 0 4M')).outcome).toBe('target-not-found');

    expect((await stack.api('POST', `/attachments/${att.id}/action`, { 'os-complete': null })).status).toBe(204);
    await waitStatus('volumes', vol.id, 'in-use');

    // In-use extend (3.42): the initiator sees the new capacity.
    expect((await stack.api('POST', `/volumes/${vol.id}/action`, { 'os-extend': { new_size: 2 } })).status).toBe(202);
    await waitFor('size 2 GiB', 60_000, async () => ((await stack.api('GET', `/volumes/${vol.id}`)).body.volume.size === 2 ? true : undefined));
    await waitStatus('volumes', vol.id, 'in-use');
    const cap = await iscsiReadCapacity16(a);
    expect(cap.sizeBytes).toBe(2 * GiB);
    expect((await qemuIo(a, 'read -P 0x5a 0 4M')).outcome).toBe('ok');

    // The audit on this tgtd (issue 12): clean while A is attached; an initiator admitted by hand
    // with no attachment (bug 2004555's class) is found, in either layout, and --fix revokes it
    // without touching A.
    const audit = async (...extra: string[]) => {
      const r = await execa(process.execPath, [...launcherNodeFlags(), launcherPath, 'audit', '--config-file', stack.confPath, '--json', ...extra], { reject: false, timeout: 120_000 });
      return { exitCode: r.exitCode, report: JSON.parse(String(r.stdout) || '{}') as { backends?: Array<{ findings: Array<{ class: string; initiator?: string }> }> }, stderr: String(r.stderr) };
    };
    const clean = await audit();
    expect(clean.exitCode, clean.stderr).toBe(0);
    const targets = parseShowTargets((await tgtd.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout);
    const tid = targets.find((t) => t.iqn === ci.target_iqn)!.tid;
    const bound = await tgtd.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-name', INTRUDER);
    expect(bound.exitCode, bound.stderr).toBe(0);
    const found = await audit();
    expect(found.exitCode).toBe(3);
    expect(found.report.backends?.[0]?.findings.map((f) => [f.class, f.initiator])).toEqual([['unadmitted-initiator', INTRUDER]]);
    expect((await audit('--fix')).exitCode).toBe(0);
    const acls = parseShowTargets((await tgtd.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout).find((t) => t.tid === tid)!.acls;
    expect(acls).not.toContain(INTRUDER);
    expect(acls).toContain(INITIATOR_A);
    expect((await audit()).exitCode).toBe(0);
    expect((await qemuIo(a, 'read -P 0x5a 0 4M')).outcome).toBe('ok');

    // Detach: A is refused from now on.
    expect((await stack.api('DELETE', `/attachments/${att.id}`)).status).toBe(200);
    await waitStatus('volumes', vol.id, 'available');
    expect((await qemuIo(a, 'read -P 0x5a 0 4M')).outcome).not.toBe('ok');

    // Snapshot holds pattern 0x5a; overwrite with 0x77, then revert to the snapshot.
    const snapR = await stack.api('POST', '/snapshots', { snapshot: { volume_id: vol.id, name: 'e2e-snap' } });
    await expectAnswer(snapR, 202, 'POST /snapshots');
    const snap = await waitStatus('snapshots', snapR.body.snapshot.id, 'available');
    const att2 = await attach(vol.id, INITIATOR_A);
    expect((await qemuIo(login(att2.connection_info, INITIATOR_A), 'write -P 0x77 0 4M')).outcome).toBe('ok');
    expect((await stack.api('DELETE', `/attachments/${att2.id}`)).status).toBe(200);
    await waitStatus('volumes', vol.id, 'available');
    expect((await stack.api('POST', `/volumes/${vol.id}/action`, { revert: { snapshot_id: snap.id } })).status).toBe(202);
    await waitStatus('volumes', vol.id, 'available');

    // One volume from the snapshot, one from the (reverted) volume: both hold 0x5a.
    const fromSnap = await createVolume({ size: 2, snapshot_id: snap.id, name: 'from-snap' });
    const fromVol = await createVolume({ size: 2, source_volid: vol.id, name: 'from-vol' });
    for (const v of [vol, fromSnap, fromVol]) {
      const at = await attach(v.id, INITIATOR_A);
      expect((await qemuIo(login(at.connection_info, INITIATOR_A), 'read -P 0x5a 0 4M')).outcome, `volume ${v.name}`).toBe('ok');
      expect((await stack.api('DELETE', `/attachments/${at.id}`)).status).toBe(200);
      await waitStatus('volumes', v.id, 'available');
      expect((await qemuIo(login(at.connection_info, INITIATOR_A), 'read -P 0x5a 0 4M')).outcome).not.toBe('ok');
    }

    // Legacy actions: os-initialize_connection / os-terminate_connection, and os-force_detach.
    const init = await stack.api('POST', `/volumes/${fromVol.id}/action`, { 'os-initialize_connection': { connector: connector(INITIATOR_B, 'compute-b') } });
    expect(init.status, JSON.stringify(init.body)).toBe(200);
    const legacy = init.body.connection_info.data;
    expect((await qemuIo(login(legacy, INITIATOR_B), 'read -P 0x5a 0 1M')).outcome).toBe('ok');
    expect((await stack.api('POST', `/volumes/${fromVol.id}/action`, { 'os-terminate_connection': { connector: connector(INITIATOR_B, 'compute-b') } })).status).toBe(202);
    expect((await qemuIo(login(legacy, INITIATOR_B), 'read -P 0x5a 0 1M')).outcome).not.toBe('ok');
    const att3 = await attach(fromSnap.id, INITIATOR_B);
    expect((await stack.api('POST', `/volumes/${fromSnap.id}/action`, { 'os-force_detach': { attachment_id: att3.id, connector: connector(INITIATOR_B, 'compute-b') } })).status).toBe(202);
    await waitStatus('volumes', fromSnap.id, 'available');
    expect((await qemuIo(login(att3.connection_info, INITIATOR_B), 'read -P 0x5a 0 1M')).outcome).not.toBe('ok');

    // Delete everything: no file, no target, no live row.
    expect((await stack.api('DELETE', `/snapshots/${snap.id}`)).status).toBe(202);
    await waitFor('snapshot deleted', 60_000, async () => ((await stack.api('GET', `/snapshots/${snap.id}`)).status === 404 ? true : undefined));
    for (const v of [fromSnap, fromVol, vol]) {
      expect((await stack.api('DELETE', `/volumes/${v.id}`)).status).toBe(202);
      await waitFor(`volume ${v.name} deleted`, 60_000, async () => ((await stack.api('GET', `/volumes/${v.id}`)).status === 404 ? true : undefined));
    }
    expect(await readdir(join(stack.dir, 'file-volumes'))).toEqual([]);
    expect((await tgtd.tgtadm('--lld', 'iscsi', '--mode', 'target', '--op', 'show')).stdout.trim()).toBe('');
    expect(agent.text()).not.toContain(ci.auth_password);
  });
});
