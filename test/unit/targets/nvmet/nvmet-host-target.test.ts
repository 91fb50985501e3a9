// target_layout = per-host on nvmet: HostTargetExports + NvmetHostTarget + NvmetHostProtocol, as
// the composition root wires them, against the temp directory that STANDS IN for nvmet's configfs
// (nvmet-standin.ts: allow_any_host, EBUSY/EACCES ordering, rmdir rules; no controllers). What a
// connected host sees is checked on the real kernel by test/lab/nvmet.lab.test.ts.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DriverVolume } from '../../../../drivers/driver.js';
import { TargetExports } from '../../../../drivers/exports.js';
import { HostTargetExports, PER_HOST_LOCATION } from '../../../../drivers/host-target-exports.js';
import { HostTargetRegistry } from '../../../../drivers/targets/host-target/host-target-registry.js';
import { NvmetHostProtocol } from '../../../../drivers/targets/nvmet/nvmet-host-protocol.js';
import { ANY_HOST } from '../../../../drivers/targets/nvmet/nvmet-configfs.js';
import { NvmetHostTarget } from '../../../../drivers/targets/nvmet/nvmet-host-target.js';
import { NvmetTarget } from '../../../../drivers/targets/nvmet/nvmet-target.js';
import { NvmetStandIn, standInNvmetConfig } from './nvmet-standin.js';

const base = mkdtempSync('/tmp/cinderblock-nvmet-host-unit-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const PREFIX = 'iqn.2010-10.org.openstack:';
const A = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b0001';
const B = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b0002';
const HOST_A = { host: 'compute-a', nqn: A };
const HOST_B = { host: 'compute-b', nqn: B };
const IDS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'];

let n = 0;
async function setup() {
  const dir = join(base, `t${++n}`);
  const root = join(dir, 'nvmet');
  const si = await NvmetStandIn.make(root);
  mkdirSync(join(dir, 'dev'));
  mkdirSync(join(dir, 'volumes'));
  for (const id of IDS) writeFileSync(join(dir, 'dev', `volume-${id}`), '');
  const nvmet = new NvmetTarget(standInNvmetConfig(si, join(dir, 'volumes')));
  const driver = { exportPath: (v: Pick<DriverVolume, 'name'>) => join(dir, 'dev', v.name), prepareExport: async () => undefined };
  const protocol = new NvmetHostProtocol({ targetPrefix: PREFIX, backend: 'lvm', portals: () => nvmet.portals() });
  const registry = new HostTargetRegistry({ path: join(dir, 'state', 'host-targets-lvm.json'), backend: 'lvm', lockPath: null });
  const helper = new NvmetHostTarget(nvmet, { targetPrefix: PREFIX, nvmetNsId: 10 });
  const exports = new HostTargetExports({ protocol, helper, registry, supervisor: null, lockPath: null, driver, perVolume: new TargetExports({ target: nvmet, supervisor: null, driver }) });
  const vol = (i: number): DriverVolume => ({ id: IDS[i]!, name: `volume-${IDS[i]}`, size: 1, providerLocation: PER_HOST_LOCATION, providerAuth: null, multiattach: true });
  const sub = (host: string) => protocol.targetName(host);
  return { si, dir, nvmet, exports, registry, helper, protocol, vol, sub, dev: (i: number) => join(dir, 'dev', `volume-${IDS[i]}`) };
}

describe('nvmet per-host layout (a subsystem per compute host)', () => {
  it("maps a host's volumes as namespaces of one closed subsystem, admitting only its NQN, with os-brick's connection_info", async () => {
    const s = await setup();
    expect(await s.exports.createExport({ ...s.vol(0), providerLocation: null })).toEqual({ provider_location: PER_HOST_LOCATION, provider_auth: null });
    const c0 = await s.exports.initializeConnection(s.vol(0), HOST_A);
    const c1 = await s.exports.initializeConnection(s.vol(1), HOST_A);
    const nqn = s.sub('compute-a');
    expect(nqn).toMatch(/^nqn\.iqn\.2010-10\.org\.openstack:-cb-compute-a-[0-9a-f]{12}$/);
    expect(c0.driver_volume_type).toBe('nvmeof');
    expect(c0.data).toMatchObject({ target_nqn: nqn, nqn, ns_id: '10', volume_nguid: IDS[0], host_nqn: A, portals: [['10.0.0.5', '4420', 'tcp'], ['10.0.1.5', '4420', 'tcp']] });
    expect(c1.data).toMatchObject({ target_nqn: nqn, ns_id: '11', volume_nguid: IDS[1] });
    expect(c0.data).not.toHaveProperty('auth_password');
    expect(await s.si.read(`subsystems/${nqn}/attr_allow_any_host`)).toBe('0');
    expect(await s.si.exists(`subsystems/${nqn}/allowed_hosts/${A}`)).toBe(true);
    for (const [nsid, i] of [[10, 0], [11, 1]] as const) {
      expect(await s.si.read(`subsystems/${nqn}/namespaces/${nsid}/device_path`)).toBe(s.dev(i));
      expect(await s.si.read(`subsystems/${nqn}/namespaces/${nsid}/device_nguid`)).toBe(IDS[i]);
      expect(await s.si.read(`subsystems/${nqn}/namespaces/${nsid}/enable`)).toBe('1');
    }
    for (const port of [1, 2]) expect(await s.si.exists(`ports/${port}/subsystems/${nqn}`)).toBe(true);
    // the host link is made before any namespace is enabled: the subsystem is never open to nobody-in-particular
    const hostAt = s.si.log.indexOf(`symlink subsystems/${nqn}/allowed_hosts/${A}`);
    expect(hostAt).toBeGreaterThan(s.si.log.findIndex((l) => l === `writeFile subsystems/${nqn}/attr_allow_any_host`));
    // no CHAP in the record (admission is by NQN), and the record is 0600 as every state file
    const rec = (await s.registry.read()).targets[0]!;
    expect(rec.chap).toBeNull();
    expect(rec.iqn).toBe(nqn);
    expect(statSync(s.registry.path).mode & 0o777).toBe(0o600);
    expect(s.exports.sharedTargets).toBeNull();
  });

  it('another host gets its own subsystem; a multi-attached volume is a namespace of both, and neither admits the other', async () => {
    const s = await setup();
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    const cb = await s.exports.initializeConnection(s.vol(0), HOST_B);
    const [na, nb] = [s.sub('compute-a'), s.sub('compute-b')];
    expect(na).not.toBe(nb);
    expect(cb.data).toMatchObject({ target_nqn: nb, ns_id: '10', volume_nguid: IDS[0], host_nqn: B });
    expect(await s.si.exists(`subsystems/${na}/allowed_hosts/${B}`)).toBe(false);
    expect(await s.si.exists(`subsystems/${nb}/allowed_hosts/${A}`)).toBe(false);
    expect(await s.si.exists(`subsystems/${nb}/allowed_hosts/${B}`)).toBe(true);
  });

  it('detach removes only that namespace: the other volumes keep serving (no port relink, no controller dropped)', async () => {
    const s = await setup();
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    await s.exports.initializeConnection(s.vol(1), HOST_A);
    const nqn = s.sub('compute-a');
    const from = s.si.log.length;
    await s.exports.terminateConnection(s.vol(0), HOST_A, { remaining: [] });
    const ops = s.si.log.slice(from);
    expect(await s.si.exists(`subsystems/${nqn}/namespaces/10`)).toBe(false);
    expect(await s.si.read(`subsystems/${nqn}/namespaces/11/enable`)).toBe('1');
    expect(ops.filter((l) => /^(unlink|symlink|writeFile) ports\//.test(l))).toEqual([]);
    expect(ops.filter((l) => l.includes('namespaces/11') && /^(writeFile|rmdir|unlink)/.test(l))).toEqual([]);
    // the number is not handed out again in this generation: the next volume gets 12, not 10
    const c = await s.exports.initializeConnection(s.vol(2), HOST_A);
    expect(c.data.ns_id).toBe('12');
  });

  it('a second attachment from the same host keeps the namespace; the last detach deletes the subsystem and the host entry', async () => {
    const s = await setup();
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    const nqn = s.sub('compute-a');
    await s.exports.terminateConnection(s.vol(0), HOST_A, { remaining: [HOST_A] });
    expect(await s.si.read(`subsystems/${nqn}/namespaces/10/enable`)).toBe('1');
    await s.exports.terminateConnection(s.vol(0), HOST_A, { remaining: [] });
    expect(await s.si.exists(`subsystems/${nqn}`)).toBe(false);
    expect(await s.si.exists(`hosts/${A}`)).toBe(false);
    expect(await s.helper.list()).toEqual([]);
  });

  it('refuses a connector without nqn, and a second compute host presenting an NQN already attached', async () => {
    const s = await setup();
    await expect(s.exports.initializeConnection(s.vol(0), { host: 'compute-a', initiator: 'iqn.1994-05.com.redhat:a' })).rejects.toThrow("Connector doesn't have required information: nqn");
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    await expect(s.exports.initializeConnection(s.vol(1), { host: 'compute-z', nqn: A })).rejects.toThrow(/already attached from compute host compute-a; compute-z presents the same NQN/);
    expect(await s.si.exists(`subsystems/${s.sub('compute-z')}`)).toBe(false);
  });

  it('a configfs loss is reported by missingHostTargets and ensureExport rebuilds it with the same nsids', async () => {
    const s = await setup();
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    await s.exports.initializeConnection(s.vol(1), HOST_A);
    const nqn = s.sub('compute-a');
    expect(await s.exports.missingHostTargets()).toEqual([]);
    await s.si.clear();
    expect(await s.exports.missingHostTargets()).toEqual([nqn]);
    await s.exports.ensureExport(s.vol(0), undefined, [HOST_A]);
    await s.exports.ensureExport(s.vol(1), undefined, [HOST_A]);
    expect(await s.exports.missingHostTargets()).toEqual([]);
    expect(await s.si.read(`subsystems/${nqn}/namespaces/10/device_nguid`)).toBe(IDS[0]);
    expect(await s.si.read(`subsystems/${nqn}/namespaces/11/device_nguid`)).toBe(IDS[1]);
    expect(await s.si.read(`subsystems/${nqn}/attr_allow_any_host`)).toBe('0');
  });

  it('a namespace removed by hand (subsystem and links still there) is reported by missingHostTargets and put back by a reapply', async () => {
    const s = await setup();
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    await s.exports.initializeConnection(s.vol(1), HOST_A);
    const nqn = s.sub('compute-a');
    const ns = join(s.si.root, 'subsystems', nqn, 'namespaces', '11');
    await s.si.io.writeFile(join(ns, 'enable'), '0');
    await s.si.io.rmdir(ns);
    expect(await s.exports.missingHostTargets()).toEqual([nqn]);
    await s.exports.reapplyHostTarget(nqn);
    expect(await s.si.read(`subsystems/${nqn}/namespaces/11/device_nguid`)).toBe(IDS[1]);
    expect(await s.exports.missingHostTargets()).toEqual([]);
  });

  it('a lost registry is rebuilt from the attachments with the nsid their connection_info told the host', async () => {
    const s = await setup();
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    await s.exports.initializeConnection(s.vol(1), HOST_A);
    const told = await s.exports.initializeConnection(s.vol(1), HOST_A);
    rmSync(s.registry.path);
    await s.si.clear();
    await s.exports.ensureExport(s.vol(1), undefined, [HOST_A], [told as unknown as Record<string, unknown>]);
    const nqn = s.sub('compute-a');
    expect(await s.si.read(`subsystems/${nqn}/namespaces/11/device_nguid`)).toBe(IDS[1]);
    expect((await s.registry.read()).targets[0]!.luns.map((m) => m.lun)).toEqual([11]);
  });

  it("the audit's view: a subsystem opened to any host shows as admitting anyone, and applying its record closes it", async () => {
    const s = await setup();
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    const nqn = s.sub('compute-a');
    // someone unlinks the host and opens the subsystem (what cinder's own helper does)
    rmSync(join(s.si.root, 'subsystems', nqn, 'allowed_hosts', A));
    writeFileSync(join(s.si.root, 'subsystems', nqn, 'attr_allow_any_host'), '1');
    expect((await s.helper.list())[0]!.initiators).toEqual([ANY_HOST]);
    await s.exports.reapplyHostTarget(nqn);
    expect(await s.si.read(`subsystems/${nqn}/attr_allow_any_host`)).toBe('0');
    expect((await s.helper.list())[0]!.initiators).toEqual([A]);
  });

  it("leaves every subsystem that is not a host subsystem of ours alone (per-volume ones, other owners')", async () => {
    const s = await setup();
    await s.nvmet.createExport({ id: IDS[2]!, name: `volume-${IDS[2]}`, providerLocation: null, providerAuth: null, backingPath: s.dev(2), multiattach: false });
    mkdirSync(join(s.si.root, 'subsystems', 'nqn.2020-01.com.example:other'));
    await s.exports.initializeConnection(s.vol(0), HOST_A);
    expect((await s.helper.list()).map((t) => t.iqn)).toEqual([s.sub('compute-a')]);
    expect(await s.nvmet.listExports()).toEqual([`nqn.${PREFIX}-${IDS[2]}`]);
    await expect(s.helper.remove('nqn.2020-01.com.example:other')).rejects.toThrow(/left alone/);
  });
});
