// NvmetTarget and its configfs layer against a temp directory that STANDS IN for nvmet's configfs
// (nvmet-standin.ts says what it models: allow_any_host, EBUSY/EACCES ordering rules; not
// controllers). Real nvmet behaviour is checked by test/lab/nvmet.lab.test.ts in the qemu lab.
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ANY_HOST } from '../../../../drivers/targets/nvmet/nvmet-configfs.js';
import { NvmetTarget, type NvmetTargetConfig } from '../../../../drivers/targets/nvmet/nvmet-target.js';
import type { ExportedVolume } from '../../../../drivers/targets/target.js';
import type { CommandRunner } from '../../../../src/exec/run-command.js';
import { NvmetStandIn, standInNvmetConfig } from './nvmet-standin.js';

const base = mkdtempSync('/tmp/cinderblock-nvmet-unit-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const ID = '9531a336-8b9f-4724-9d8d-d83f99b240e6';
const NQN = `nqn.iqn.2010-10.org.openstack:-${ID}`;
const A = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b0001';
const B = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b0002';

let n = 0;
async function setup(over: Partial<NvmetTargetConfig> = {}) {
  const dir = join(base, `t${++n}`);
  const root = join(dir, 'nvmet');
  const si = await NvmetStandIn.make(root);
  mkdirSync(join(dir, 'dev'));
  const dev = join(dir, 'dev', `volume-${ID}`);
  writeFileSync(dev, '');
  const calls: string[][] = [];
  const runner: CommandRunner = async (argv) => {
    calls.push([...argv]);
    return { stdout: '', stderr: '', exitCode: 0 };
  };
  const opts: NvmetTargetConfig = { ...standInNvmetConfig(si, join(dir, 'volumes'), runner), ...over };
  mkdirSync(opts.volumesDir, { recursive: true });
  const helper = new NvmetTarget(opts);
  const vol: ExportedVolume = { id: ID, name: `volume-${ID}`, providerLocation: null, providerAuth: null, backingPath: dev, multiattach: false };
  const state = async () => JSON.parse(await readFile(helper.statePath(), 'utf8')) as { exports: Record<string, { nsid: number; hosts: Array<{ nqn: string }> }> };
  return { si, helper, vol, root, dev, state, calls, opts };
}

const ns = `subsystems/${NQN}/namespaces/10`;

describe('NvmetTarget export', () => {
  it('creates the subsystem closed: allow_any_host 0, namespace written but disabled, ports configured then linked', async () => {
    const s = await setup();
    const r = await s.helper.createExport(s.vol);
    expect(r).toEqual({ provider_location: `10.0.0.5:4420 tcp ${NQN} 10`, provider_auth: '' });
    expect(await s.si.read(`subsystems/${NQN}/attr_allow_any_host`)).toBe('0');
    expect(await s.si.read(`${ns}/device_path`)).toBe(s.dev);
    expect(await s.si.read(`${ns}/device_uuid`)).toBe(ID);
    expect(await s.si.read(`${ns}/device_nguid`)).toBe(ID);
    expect(await s.si.read(`${ns}/enable`)).toBe('0');
    for (const [id, ip] of [[1, '10.0.0.5'], [2, '10.0.1.5']] as const) {
      expect(await s.si.read(`ports/${id}/addr_trtype`)).toBe('tcp');
      expect(await s.si.read(`ports/${id}/addr_adrfam`)).toBe('ipv4');
      expect(await s.si.read(`ports/${id}/addr_traddr`)).toBe(ip);
      expect(await s.si.read(`ports/${id}/addr_trsvcid`)).toBe('4420');
      expect(await s.si.exists(`ports/${id}/subsystems/${NQN}`)).toBe(true);
      const addrAt = s.si.log.indexOf(`writeFile ports/${id}/addr_trsvcid`);
      const linkAt = s.si.log.indexOf(`symlink ports/${id}/subsystems/${NQN}`);
      expect(addrAt).toBeGreaterThanOrEqual(0);
      expect(linkAt).toBeGreaterThan(addrAt);
    }
    expect(s.si.log.some((l) => l.includes('attr_allow_any_host') && l.startsWith('writeFile'))).toBe(true);
    const st = statSync(s.helper.statePath());
    expect(st.mode & 0o777).toBe(0o600);
    expect((await s.state()).exports[NQN]).toMatchObject({ nsid: 10, hosts: [] });
  });

  it('is idempotent: a second createExport writes nothing', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    s.si.log.length = 0;
    await s.helper.createExport(s.vol);
    // mkdir attempts answer EEXIST; nothing is written, linked or removed
    expect(s.si.log.filter((l) => !l.startsWith('mkdir'))).toEqual([]);
  });

  it('refuses a missing backing device', async () => {
    const s = await setup();
    await expect(s.helper.createExport({ ...s.vol, backingPath: '/dev/cinder-volumes/nope' })).rejects.toMatchObject({ className: 'InvalidVolume' });
  });

  it('removeExport takes the subsystem, its port links and its host dirs, and the record entry', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A, host: 'compute-a' });
    await s.helper.removeExport(s.vol);
    expect(await s.si.exists(`subsystems/${NQN}`)).toBe(false);
    expect(await s.si.exists(`ports/1/subsystems/${NQN}`)).toBe(false);
    expect(await s.si.exists(`hosts/${A}`)).toBe(false);
    expect((await s.state()).exports[NQN]).toBeUndefined();
    await s.helper.removeExport(s.vol);
  });

  it('never touches a subsystem without our prefix, and lists only ours', async () => {
    const s = await setup();
    const other = 'nqn.2020-01.org.example:other';
    await s.si.io.mkdir(join(s.root, 'subsystems', other));
    await s.helper.createExport(s.vol);
    expect(await s.helper.listExports()).toEqual([NQN]);
    await s.helper.removeExport(s.vol);
    expect(await s.si.exists(`subsystems/${other}`)).toBe(true);
    expect(s.si.log.filter((l) => l.includes(other) && !l.startsWith('mkdir'))).toEqual([]);
  });

  it('findExports lists recorded and live subsystems of ours by volume name, nobody else\'s', async () => {
    const s = await setup();
    await s.si.io.mkdir(join(s.root, 'subsystems', 'nqn.2020-01.org.example:other'));
    await s.helper.createExport(s.vol);
    const left = `nqn.iqn.2010-10.org.openstack:-${'1b4e28ba-2fa1-11d2-883f-0016d3cca427'}`;
    await s.si.io.mkdir(join(s.root, 'subsystems', left));
    const found = await s.helper.findExports();
    expect(found.sort((a, b) => a.iqn.localeCompare(b.iqn))).toEqual([
      // left open to anyone (the stand-in starts a subsystem with allow_any_host 1, as cinder's helper leaves them): the audit's exposure
      { iqn: left, volumeName: 'volume-1b4e28ba-2fa1-11d2-883f-0016d3cca427', backingPath: null, live: true, recorded: false, admitted: [ANY_HOST] },
      { iqn: NQN, volumeName: `volume-${ID}`, backingPath: s.dev, live: true, recorded: true, admitted: [] },
    ]);
    // what the audit checks against the attachments: the host NQNs a subsystem admits
    await s.helper.initializeConnection(s.vol, { nqn: A, host: 'compute-a' });
    expect((await s.helper.findExports()).find((f) => f.iqn === NQN)?.admitted).toEqual([A]);
  });

  it('refuses a port that serves others on another address instead of relinking it', async () => {
    const s = await setup();
    const other = 'nqn.2020-01.org.example:other';
    await s.si.io.mkdir(join(s.root, 'subsystems', other));
    await s.si.io.mkdir(join(s.root, 'ports', '1'));
    await s.si.io.writeFile(join(s.root, 'ports/1/addr_trtype'), 'tcp');
    await s.si.io.writeFile(join(s.root, 'ports/1/addr_adrfam'), 'ipv4');
    await s.si.io.writeFile(join(s.root, 'ports/1/addr_traddr'), '192.168.9.9');
    await s.si.io.writeFile(join(s.root, 'ports/1/addr_trsvcid'), '4420');
    await s.si.io.symlink(join(s.root, 'subsystems', other), join(s.root, 'ports/1/subsystems', other));
    await expect(s.helper.createExport(s.vol)).rejects.toThrow(/Failed to add subsystem/);
    expect(await s.si.exists(`subsystems/${NQN}`)).toBe(false);
    expect(await s.si.read('ports/1/addr_traddr')).toBe('192.168.9.9');
  });

  it('closes a subsystem cinder left with allow_any_host = 1 and takes its stray namespace', async () => {
    const s = await setup();
    await s.si.io.mkdir(join(s.root, 'subsystems', NQN));
    await s.si.io.mkdir(join(s.root, `subsystems/${NQN}/namespaces/7`));
    await s.helper.ensureExport({ ...s.vol, providerLocation: `10.0.0.5:4420 tcp ${NQN} 10` });
    expect(await s.si.read(`subsystems/${NQN}/attr_allow_any_host`)).toBe('0');
    expect(await s.si.exists(`subsystems/${NQN}/namespaces/7`)).toBe(false);
    expect(await s.si.exists(ns)).toBe(true);
  });
});

describe('NvmetTarget access', () => {
  it('admits exactly the attached host NQN and enables the namespace; returns os-brick connection_info', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    const info = await s.helper.initializeConnection(s.vol, { nqn: A, host: 'compute-a', initiator: 'iqn.x:y' });
    expect(info).toEqual({
      driver_volume_type: 'nvmeof',
      data: {
        target_nqn: NQN,
        nqn: NQN,
        transport_type: 'tcp',
        portals: [
          ['10.0.0.5', '4420', 'tcp'],
          ['10.0.1.5', '4420', 'tcp'],
        ],
        target_portal: '10.0.0.5',
        target_port: '4420',
        ns_id: '10',
        volume_nguid: ID,
        host_nqn: A,
      },
    });
    expect(await s.si.exists(`hosts/${A}`)).toBe(true);
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${A}`)).toBe(true);
    expect(await s.si.read(`subsystems/${NQN}/attr_allow_any_host`)).toBe('0');
    expect(await s.si.read(`${ns}/enable`)).toBe('1');
    expect((await s.state()).exports[NQN]!.hosts.map((h) => h.nqn)).toEqual([A]);
  });

  it('refuses a connector without nqn with cinder InvalidConnectorException text, and a malformed one', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    expect(() => s.helper.validateConnector({ initiator: 'iqn.x:y' })).toThrow("Connector doesn't have required information: nqn");
    await expect(s.helper.initializeConnection(s.vol, { initiator: 'iqn.x:y' })).rejects.toMatchObject({ className: 'InvalidConnectorException' });
    await expect(s.helper.initializeConnection(s.vol, { nqn: 'nqn.x/../../etc' })).rejects.toMatchObject({ className: 'InvalidInput' });
    await expect(s.helper.initializeConnection(s.vol, { nqn: 'nqn.2014-08.org.nvmexpress.discovery' })).rejects.toMatchObject({ className: 'InvalidInput' });
  });

  it('refuses a second compute host presenting an NQN already attached from another', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A, host: 'compute-a' });
    await expect(s.helper.initializeConnection(s.vol, { nqn: A, host: 'compute-b' })).rejects.toMatchObject({ className: 'InvalidInput' });
    await s.helper.initializeConnection(s.vol, { nqn: A, host: 'compute-a' });
  });

  it('refuses initializeConnection without an export', async () => {
    const s = await setup();
    await expect(s.helper.initializeConnection(s.vol, { nqn: A })).rejects.toMatchObject({ className: 'InvalidVolume' });
  });

  it('terminating the last host unlinks it and disables the namespace', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    await s.helper.terminateConnection(s.vol, { nqn: A }, {});
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${A}`)).toBe(false);
    expect(await s.si.read(`${ns}/enable`)).toBe('0');
    expect((await s.state()).exports[NQN]!.hosts).toEqual([]);
    // attach again: the namespace comes back, same nsid
    const info = await s.helper.initializeConnection(s.vol, { nqn: A });
    expect(info.data.ns_id).toBe('10');
    expect(await s.si.read(`${ns}/enable`)).toBe('1');
  });

  it('terminating one of two hosts keeps the namespace and relinks the ports (drops its controllers)', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    await s.helper.initializeConnection(s.vol, { nqn: B });
    s.si.log.length = 0;
    await s.helper.terminateConnection(s.vol, { nqn: A }, {});
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${A}`)).toBe(false);
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${B}`)).toBe(true);
    expect(await s.si.read(`${ns}/enable`)).toBe('1');
    const unlinkHost = s.si.log.indexOf(`unlink subsystems/${NQN}/allowed_hosts/${A}`);
    const unlinkPort = s.si.log.indexOf(`unlink ports/1/subsystems/${NQN}`);
    expect(unlinkHost).toBeGreaterThanOrEqual(0);
    expect(unlinkPort).toBeGreaterThan(unlinkHost);
    expect(s.si.log).toContain(`symlink ports/1/subsystems/${NQN}`);
    expect(await s.si.exists(`ports/1/subsystems/${NQN}`)).toBe(true);
  });

  it('keepAcl leaves the host; no nqn without force revokes nothing; force without connector revokes all', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    await s.helper.initializeConnection(s.vol, { nqn: B });
    await s.helper.terminateConnection(s.vol, { nqn: A }, { keepAcl: true });
    await s.helper.terminateConnection(s.vol, { host: 'x' }, {});
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${A}`)).toBe(true);
    await s.helper.terminateConnection(s.vol, null, { force: true });
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${A}`)).toBe(false);
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${B}`)).toBe(false);
    expect(await s.si.read(`${ns}/enable`)).toBe('0');
  });
});

describe('NvmetTarget restore and extend', () => {
  it('reconcile after a reboot rebuilds the subsystem with the same nsid, hosts and ports', async () => {
    const s = await setup({ nvmetNsId: 42 });
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    expect(await s.helper.missingExports()).toEqual([]);
    await s.si.clear();
    expect(await s.helper.missingExports()).toEqual([NQN]);
    const r = await s.helper.reconcile();
    expect(r).toEqual({ mended: [NQN], failed: [] });
    expect(await s.si.read(`subsystems/${NQN}/namespaces/42/enable`)).toBe('1');
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${A}`)).toBe(true);
    expect(await s.si.exists(`ports/2/subsystems/${NQN}`)).toBe(true);
    expect(await s.helper.missingExports()).toEqual([]);
  });

  it('the watch sees a namespace removed by hand while the subsystem and its port links stay', async () => {
    const s = await setup({ nvmetNsId: 42 });
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    const nsDir = join(s.root, 'subsystems', NQN, 'namespaces', '42');
    await s.si.io.writeFile(join(nsDir, 'enable'), '0');
    await s.si.io.rmdir(nsDir);
    expect(await s.helper.missingExports()).toEqual([NQN]);
    expect((await s.helper.reconcile()).mended).toEqual([NQN]);
    expect(await s.si.read(`subsystems/${NQN}/namespaces/42/enable`)).toBe('1');
    expect(await s.helper.missingExports()).toEqual([]);
  });

  it('ensureExport with the database connectors admits exactly theirs, with the recorded nsid', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    await s.si.clear();
    await s.helper.ensureExport(s.vol, { initiators: [], connectors: [{ nqn: B, host: 'b' }] });
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${B}`)).toBe(true);
    expect(await s.si.exists(`subsystems/${NQN}/allowed_hosts/${A}`)).toBe(false);
    expect(await s.si.read(`${ns}/enable`)).toBe('1');
  });

  it('extendTarget writes revalidate_size', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    s.si.log.length = 0;
    await s.helper.extendTarget(s.vol);
    expect(s.si.log).toEqual([`writeFile ${ns}/revalidate_size`]);
  });

  it('extendTarget without revalidate_size disables and enables the namespace', async () => {
    const s = await setup();
    await s.helper.createExport(s.vol);
    await s.helper.initializeConnection(s.vol, { nqn: A });
    rmSync(join(s.root, ns, 'revalidate_size'));
    s.si.log.length = 0;
    await s.helper.extendTarget(s.vol);
    expect(s.si.log).toEqual([`writeFile ${ns}/enable`, `writeFile ${ns}/enable`]);
    expect(await s.si.read(`${ns}/enable`)).toBe('1');
  });
});

describe('NvmetTarget modules', () => {
  it('loads nvmet and nvmet-tcp through the runner when missing', async () => {
    const s = await setup({ moduleLoaded: async () => false });
    await s.helper.createExport(s.vol);
    expect(s.calls).toEqual([
      ['modprobe', 'nvmet'],
      ['modprobe', 'nvmet-tcp'],
    ]);
  });

  it('names target_helper in the error when they cannot be loaded', async () => {
    const s = await setup({
      moduleLoaded: async () => false,
      runner: async () => ({ stdout: '', stderr: 'modprobe: FATAL: Module nvmet not found\n', exitCode: 1 }),
    });
    await expect(s.helper.createExport(s.vol)).rejects.toThrow(/target_helper = nvmet needs the kernel module nvmet.*Module nvmet not found/);
  });
});

describe('NvmetTarget options', () => {
  it('refuses target_protocol other than nvmet_tcp, host names, and nsid 0', async () => {
    await expect(setup({ targetProtocol: 'iscsi' })).rejects.toThrow(/nvmet_tcp/);
    await expect(setup({ targetProtocol: 'nvmet_rdma' })).rejects.toThrow(/nvmet_tcp/);
    await expect(setup({ targetIpAddress: 'storage.example' })).rejects.toThrow(/IP addresses/);
    await expect(setup({ nvmetNsId: 0 })).rejects.toThrow(/nvmet_ns_id/);
  });
});
