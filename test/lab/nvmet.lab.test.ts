// nvmet (the kernel's NVMe target) + nvme-cli over TCP on 127.0.0.1, all real, inside the lab guest
// (test/lab/run-lab.sh boots it; this file never runs anywhere else: it formats the disk whose
// serial is cblab-pv0).
//
// The target side is built as the agent builds it: cinder.conf text (target_helper = nvmet,
// target_protocol = nvmet_tcp, target_port left at cinder's default) → createTargetSide →
// createDriver (LVM on a real VG) → createExports. The host side is nvme-cli through the argv
// builders and parsers of src/connector/nvme-commands.ts, the device found by nguid in sysfs. Two
// "hosts" share the guest's kernel: each connects with its own host NQN and host id.
//
// Cases: nobody connects before initialize_connection; host A connects with its NQN and its data
// lands on the LV; host B (never attached) is refused while A is connected; in-use extend seen by
// A; terminate takes the namespace from A's connected controller at once; a configfs loss (the
// subsystem removed by hand, what a reboot does) is seen by the supervisor's watch and restored by
// ensureExport with the same nsid, A reconnects and reads its data back; with A and B both
// attached, terminating B drops B's connected controller and A alone gets back in; removeExport
// leaves nothing. Refusals are checked in the kernel log (the target's own "not allowed"). nvme-cli's JSON is saved to $CBLAB_OUT for the unit tests' fixtures.
//
// Then target_layout = per-host on the same kernel (thin LVs, so 20 volumes fit the scratch disk):
// a host's volumes are namespaces of its one subsystem over one controller; another host is refused there and gets its own; a detach takes
// one namespace from the live controller while the others keep serving on it; a re-attach gets a
// new nsid; a configfs loss is restored with the same nsids; the last detaches leave nothing; and
// 200 concurrent attach/detach operations by three connected hosts, with a configfs loss midway,
// during which no host ever sees a namespace it has no mapping of.
//
// Last, two hosts in network namespaces of their own (per host): refused from its namespace when
// attached to nothing; a detach takes the namespace from the host's live controller at once.
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nvmeNamespaces, pattern, readAt, sh, writeAt, until as untilEvery, shTry } from './lab-io.js';
import type { DriverVolume, VolumeDriver } from '../../drivers/driver.js';
import type { VolumeExports } from '../../drivers/exports.js';
import { PER_HOST_LOCATION, type HostTargetExports } from '../../drivers/host-target-exports.js';
import { NvmetConfigfs } from '../../drivers/targets/nvmet/nvmet-configfs.js';
import { hostSubsystemNqn } from '../../drivers/targets/nvmet/nvmet-naming.js';
import type { NvmetTarget } from '../../drivers/targets/nvmet/nvmet-target.js';
import type { ConnectionInfo } from '../../drivers/targets/target.js';
import { createDriver } from '../../src/agent/driver-factory.js';
import { createExports, createTargetSide } from '../../src/agent/target-factory.js';
import { configFromText } from '../../src/config/load.js';
import {
  blockSizePath,
  connectArgv,
  disconnectArgv,
  findByNguid,
  idNsArgv,
  listArgv,
  listSubsysArgv,
  liveControllers,
  nsRescanArgv,
  parseIdNsNguid,
  parseList,
  parseListSubsys,
} from '../../src/connector/nvme-commands.js';
import { NvmeConnector } from '../../src/connector/nvme-connector.js';
import { createLogger, setRootLogger } from '../../src/log.js';

const inLab = process.env.CINDERBLOCK_LAB === '1' && Boolean(process.env.CBLAB_DISKS);
const DISK = (process.env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
const OUT = process.env.CBLAB_OUT ?? '/tmp/cblab-nvmet-out';
const WORK = '/tmp/cblab-nvmet';
const LOG = `${WORK}/agent.log`;
const VG = 'cinder-volumes';
const ID_A = '0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b000a';
const ID_B = '0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b000b';
const HOST_A = `nqn.2014-08.org.nvmexpress:uuid:${ID_A}`;
const HOST_B = `nqn.2014-08.org.nvmexpress:uuid:${ID_B}`;
const MiB = 1024 ** 2;
const NQN_OF_V1 = 'nqn.iqn.2010-10.org.openstack:-d1d1d1d1-0000-4000-8000-0000000000e1';
const t0 = Date.now();
const timings: Record<string, number> = {};


/** lab-io's until, polling every 100 ms */
const until = <T>(what: string, ms: number, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>): Promise<T> => untilEvery(what, ms, fn, 100);

const namespaces = nvmeNamespaces;
const deviceOf = (nguid: string) => findByNguid(namespaces(), nguid);
const sectors = (dev: string) => Number(readFileSync(blockSizePath(dev), 'utf8').trim());

/** nvme connect as os-brick would from connection_info, as host `hostNqn` (its own host id). */
function connect(info: ConnectionInfo, hostNqn: string, hostid: string, ctrlLossTmo = 5): { code: number; out: string } {
  const [addr, port] = (info.data.portals as string[][])[0]!;
  return shTry(connectArgv({ transport: 'tcp', traddr: addr!, trsvcid: Number(port), subnqn: info.data.target_nqn as string, hostnqn: hostNqn, hostid, ctrlLossTmo, reconnectDelay: 1 }));
}

/**
 * Host B's connect, straight to the kernel's /dev/nvme-fabrics (what nvme-cli writes). Both
 * "hosts" are this one machine: nvme-cli 2.3 answers "already connected" by itself while A has a
 * controller to the same address (even with -D), before the target is asked; the kernel does not,
 * since the host NQN differs. Values are the test's own constants.
 */
function connectB(ctrlLossTmo = 5, subnqn = NQN_OF_V1): { code: number; out: string } {
  return connectFabrics(subnqn, HOST_B, ID_B, ctrlLossTmo);
}

/** A controller to `subnqn` as host `hostNqn`, written straight to /dev/nvme-fabrics (see connectB). */
function connectFabrics(subnqn: string, hostNqn: string, hostId: string, ctrlLossTmo: number): { code: number; out: string } {
  const opts = `nqn=${subnqn},transport=tcp,traddr=127.0.0.1,trsvcid=4420,hostnqn=${hostNqn},hostid=${hostId},ctrl_loss_tmo=${ctrlLossTmo},reconnect_delay=1`;
  let fd: number | undefined;
  try {
    fd = openSync('/dev/nvme-fabrics', 'r+');
    writeSync(fd, opts);
    const b = Buffer.alloc(256);
    return { code: 0, out: b.toString('utf8', 0, readSync(fd, b, 0, b.length, null)) };
  } catch (e) {
    return { code: 1, out: String(e) };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** How many times the kernel log says the target refused `host` on our subsystem. */
function refusals(nqn: string, host: string): number {
  return sh(['dmesg']).split('\n').filter((l) => l.includes(`Connect for subsystem ${nqn} is not allowed, hostnqn: ${host}`)).length;
}

/**
 * The states of the controllers host `host` has to subsystem `nqn`, from sysfs (list-subsys lists a
 * shared namespace's paths under every host NQN, so it cannot tell the two "hosts" apart).
 */
function pathStates(nqn: string, host: string): string[] {
  const out: string[] = [];
  for (const c of readdirSync('/sys/class/nvme')) {
    try {
      const attr = (a: string) => readFileSync(`/sys/class/nvme/${c}/${a}`, 'utf8').trim();
      if (attr('subsysnqn') === nqn && attr('hostnqn') === host) out.push(attr('state'));
    } catch {
      // controller deleted while read
    }
  }
  return out;
}

/** The subsystem NQN serving a namespace block device (its multipath head's subsystem, or its controller's). */
function subsystemOfDevice(dev: string): string | null {
  try {
    return readFileSync(`/sys/class/block/${dev}/device/subsysnqn`, 'utf8').trim();
  } catch {
    for (const s of existsSync('/sys/class/nvme-subsystem') ? readdirSync('/sys/class/nvme-subsystem') : []) {
      if (existsSync(`/sys/class/nvme-subsystem/${s}/${dev}`)) return readFileSync(`/sys/class/nvme-subsystem/${s}/subsysnqn`, 'utf8').trim();
    }
    return null;
  }
}

/** The names of host `host`'s controllers to subsystem `nqn` (a reconnect makes a new one). */
function controllers(nqn: string, host: string): string[] {
  return readdirSync('/sys/class/nvme').filter((c) => {
    try {
      const attr = (a: string) => readFileSync(`/sys/class/nvme/${c}/${a}`, 'utf8').trim();
      return attr('subsysnqn') === nqn && attr('hostnqn') === host && attr('state') === 'live';
    } catch {
      return false;
    }
  });
}

/** The agent's cinder.conf for an nvmet backend on the lab's VG, listening on 127.0.0.1:4420. */
function nvmetConf(work: string, lvmType: 'default' | 'thin', layout: 'per-volume' | 'per-host'): string {
  return `
[DEFAULT]
enabled_backends = lvm
state_path = ${work}
[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = ${VG}
lvm_type = ${lvmType}
volume_clear = none
target_helper = nvmet
target_protocol = nvmet_tcp
target_layout = ${layout}
target_ip_address = 127.0.0.1
target_port = 4420
volumes_dir = ${work}/volumes
`;
}

/** The driver (set up on the lab's VG) and the per-host exports of an nvmet conf, state and locks under `work`. */
async function perHostBackend(conf: string, work: string, myIp: string): Promise<{ driver: VolumeDriver; exports: HostTargetExports }> {
  const config = configFromText(conf, { hostname: 'cblab-guest', myIp });
  const backend = config.backends[0]!;
  const side = createTargetSide(backend, { logger: createLogger({ level: 'warn', pretty: false }), probeIntervalMs: 0 });
  const driver = createDriver(config, backend);
  await driver.doSetup();
  await driver.checkForSetupError();
  return { driver, exports: createExports(driver, side, { backend, statePath: work, lockPath: `${work}/locks` }) as HostTargetExports };
}

function vol(id: string): DriverVolume {
  return { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false };
}

describe.skipIf(!inLab).sequential('nvmet + nvme-cli over TCP (lab guest)', () => {
  const fs = new NvmetConfigfs();
  let driver: VolumeDriver;
  let exports: VolumeExports;
  let helper: NvmetTarget;
  const V1 = vol('d1d1d1d1-0000-4000-8000-0000000000e1');
  const NQN = NQN_OF_V1;
  const lv = `/dev/${VG}/${V1.name}`;
  let info: ConnectionInfo;
  let dev = '';
  const data = pattern('nvme-a', 64 * 1024);
  const conf = nvmetConf(WORK, 'default', 'per-volume');

  beforeAll(async () => {
    const t = Date.now();
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });
    mkdirSync(OUT, { recursive: true });
    setRootLogger(createLogger({ level: 'debug', pretty: false, destination: LOG }));
    sh(['pvcreate', '-y', DISK]);
    sh(['vgcreate', VG, DISK]);
    const config = configFromText(conf, { hostname: 'cblab-guest', myIp: '127.0.0.1' });
    const backend = config.backends[0]!;
    const side = createTargetSide(backend, { logger: createLogger({ level: 'warn', pretty: false }), probeIntervalMs: 0 });
    if (!side) throw new Error('no target helper for target_helper = nvmet');
    helper = side.helper as NvmetTarget;
    driver = createDriver(config, backend);
    await driver.doSetup();
    await driver.checkForSetupError();
    exports = createExports(driver, side);
    timings.setup_s = (Date.now() - t) / 1000;
  });

  afterAll(() => {
    shTry(disconnectArgv(NQN));
    timings.suite_s = (Date.now() - t0) / 1000;
    writeFileSync(`${OUT}/timings.json`, JSON.stringify(timings, null, 1));
    if (existsSync(LOG)) writeFileSync(`${OUT}/agent.log`, readFileSync(LOG));
  });

  it('exports V1 closed: allow_any_host 0, namespace on the LV with the volume id as nguid, port 127.0.0.1:4420', async () => {
    await driver.createVolume(V1);
    const mu = (await exports.createExport(V1))!;
    V1.providerLocation = mu.provider_location as string;
    expect(V1.providerLocation).toBe(`127.0.0.1:4420 tcp ${NQN} 10`);
    const s = (await fs.readSubsystem(NQN))!;
    expect(s.allowAnyHost).toBe(false);
    expect(s.hosts).toEqual([]);
    expect(s.namespaces).toEqual([{ nsid: 10, devicePath: lv, deviceUuid: V1.id, deviceNguid: V1.id, enabled: false }]);
    expect(await fs.readPort(1)).toEqual({ id: 1, addr: { trtype: 'tcp', adrfam: 'ipv4', traddr: '127.0.0.1', trsvcid: '4420' }, subsystems: [NQN] });
    expect(await helper.listExports()).toEqual([NQN]);
  });

  it('nobody connects before initialize_connection: the target refuses the host', () => {
    const pre = { driver_volume_type: 'nvmeof', data: { target_nqn: NQN, portals: [['127.0.0.1', '4420', 'tcp']] } };
    const before = refusals(NQN, HOST_A);
    const r = connect(pre, HOST_A, ID_A);
    expect(r.code).not.toBe(0);
    expect(refusals(NQN, HOST_A)).toBe(before + 1);
    expect(liveControllers(parseListSubsys(shTry(listSubsysArgv()).out), NQN)).toEqual([]);
  });

  it('host A, once attached, connects with its NQN, finds the device by nguid, and its data lands on the LV', async () => {
    info = await exports.initializeConnection(V1, { nqn: HOST_A, host: 'host-a' });
    expect(info).toEqual({
      driver_volume_type: 'nvmeof',
      data: expect.objectContaining({ target_nqn: NQN, nqn: NQN, portals: [['127.0.0.1', '4420', 'tcp']], target_portal: '127.0.0.1', target_port: '4420', ns_id: '10', volume_nguid: V1.id, host_nqn: HOST_A, transport_type: 'tcp' }),
    });
    const t = Date.now();
    const r = connect(info, HOST_A, ID_A);
    expect(r.code, r.out).toBe(0);
    dev = await until('host A namespace by nguid', 20_000, () => deviceOf(V1.id));
    timings.connect_to_device_ms = Date.now() - t;
    await writeAt(`/dev/${dev}`, 3 * MiB, data);
    expect((await readAt(`/dev/${dev}`, 3 * MiB, data.length)).equals(data)).toBe(true);
    expect((await readAt(lv, 3 * MiB, data.length)).equals(data)).toBe(true);
    // the real nvme-cli output, read by our parsers and kept for the unit tests' fixtures
    const subsys = sh(listSubsysArgv());
    const list = sh(listArgv());
    const idNs = sh(idNsArgv(dev));
    writeFileSync(`${OUT}/nvme-list-subsys.json`, subsys);
    writeFileSync(`${OUT}/nvme-list.json`, list);
    writeFileSync(`${OUT}/nvme-id-ns.json`, idNs);
    console.log(`NVME-LIST-SUBSYS ${JSON.stringify(subsys)}`);
    console.log(`NVME-LIST ${JSON.stringify(list)}`);
    console.log(`NVME-ID-NS-NGUID ${JSON.stringify((JSON.parse(idNs) as { nguid?: string }).nguid)}`);
    const mine = parseListSubsys(subsys).filter((s) => s.nqn === NQN);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.paths.map((p) => [p.transport, p.traddr, p.trsvcid, p.state])).toEqual([['tcp', '127.0.0.1', '4420', 'live']]);
    expect(parseList(list).map((d) => d.devicePath)).toContain(`/dev/${dev}`);
    expect(parseIdNsNguid(idNs)).toBe(V1.id.replace(/-/g, ''));
    expect((await fs.readSubsystem(NQN))!.hosts).toEqual([HOST_A]);
  });

  it('host B, never attached, is refused by the target while A is connected and sees no namespace', () => {
    const before = namespaces().length;
    const refused = refusals(NQN, HOST_B);
    const r = connectB();
    expect(r.code).not.toBe(0);
    expect(refusals(NQN, HOST_B)).toBe(refused + 1);
    expect(pathStates(NQN, HOST_B)).toEqual([]);
    expect(namespaces().length).toBe(before);
    expect(liveControllers(parseListSubsys(sh(listSubsysArgv())), NQN)).toHaveLength(1);
  });

  it('in-use extend: the LV grows and host A sees the new size', async () => {
    const before = sectors(dev);
    const t = Date.now();
    await driver.extendVolume(V1, 2);
    await exports.extendTarget(V1);
    let rescanned = false;
    await until('the new size on host A', 20_000, () => {
      if (sectors(dev) === 2 * 1024 * 2048) return true;
      // without an AEN (a kernel without revalidate_size), the connector's rescan shows it
      if (!rescanned && Date.now() - t > 5000) {
        for (const c of liveControllers(parseListSubsys(sh(listSubsysArgv())), NQN)) shTry(nsRescanArgv(c));
        rescanned = true;
      }
      return false;
    });
    timings.extend_seen_ms = Date.now() - t;
    timings.extend_needed_rescan = rescanned ? 1 : 0;
    expect(before).toBe(1024 * 2048);
    expect((await readAt(`/dev/${dev}`, 3 * MiB, data.length)).equals(data)).toBe(true);
  });

  it('terminate takes the namespace from the connected host at once', async () => {
    const t = Date.now();
    await exports.terminateConnection(V1, { nqn: HOST_A, host: 'host-a' }, {});
    await until('the namespace gone from host A', 10_000, () => deviceOf(V1.id) === null);
    timings.revoke_to_gone_ms = Date.now() - t;
    expect(existsSync(`/sys/class/block/${dev}`)).toBe(false);
    const s = (await fs.readSubsystem(NQN))!;
    expect(s.hosts).toEqual([]);
    expect(s.namespaces[0]!.enabled).toBe(false);
    // reconnecting is refused too, by the target
    shTry(disconnectArgv(NQN));
    const refused = refusals(NQN, HOST_A);
    expect(connect(info, HOST_A, ID_A).code).not.toBe(0);
    expect(refusals(NQN, HOST_A)).toBe(refused + 1);
  });

  it('a configfs loss (subsystem removed by hand) is seen by the watch and restored by ensureExport with the same nsid', async () => {
    info = await exports.initializeConnection(V1, { nqn: HOST_A, host: 'host-a' });
    // what a reboot leaves: nothing of ours in configfs (the port is someone's too; our link goes)
    await fs.removeSubsystem(NQN);
    expect(await fs.readSubsystem(NQN)).toBeNull();
    expect(await helper.missingExports()).toEqual([NQN]);
    const t = Date.now();
    await exports.ensureExport(V1, [], [{ nqn: HOST_A, host: 'host-a' }]);
    timings.restore_ms = Date.now() - t;
    const s = (await fs.readSubsystem(NQN))!;
    expect(s.allowAnyHost).toBe(false);
    expect(s.hosts).toEqual([HOST_A]);
    expect(s.namespaces).toEqual([{ nsid: 10, devicePath: lv, deviceUuid: V1.id, deviceNguid: V1.id, enabled: true }]);
    expect((await fs.readPort(1))!.subsystems).toEqual([NQN]);
    expect(await helper.missingExports()).toEqual([]);
    const r = connect(info, HOST_A, ID_A);
    expect(r.code, r.out).toBe(0);
    dev = await until('host A namespace after restore', 20_000, () => deviceOf(V1.id));
    expect(sh(['cat', `/sys/class/block/${dev}/nsid`]).trim()).toBe('10');
    expect((await readAt(`/dev/${dev}`, 3 * MiB, data.length)).equals(data)).toBe(true);
  });

  it('two hosts attached: terminating B drops its connected controller and refuses it; A reconnects and keeps its data', async () => {
    const infoB = await exports.initializeConnection(V1, { nqn: HOST_B, host: 'host-b' });
    expect(infoB.data.host_nqn).toBe(HOST_B);
    const r = connectB(30);
    expect(r.code, r.out).toBe(0);
    await until('B live', 10_000, () => pathStates(NQN, HOST_B).includes('live'));
    expect(pathStates(NQN, HOST_A)).toEqual(['live']);
    const refused = refusals(NQN, HOST_B);
    const t = Date.now();
    await exports.terminateConnection(V1, { nqn: HOST_B, host: 'host-b' }, {});
    // the subsystem's ports were relinked: every controller dropped; only A is let back in
    await until('B refused on reconnect', 20_000, () => refusals(NQN, HOST_B) > refused);
    await until('A live again', 20_000, () => pathStates(NQN, HOST_A).join() === 'live');
    timings.multi_revoke_to_a_live_ms = Date.now() - t;
    expect(pathStates(NQN, HOST_B)).not.toContain('live');
    const s = (await fs.readSubsystem(NQN))!;
    expect(s.hosts).toEqual([HOST_A]);
    expect(s.namespaces[0]!.enabled).toBe(true);
    dev = await until('A namespace', 10_000, () => deviceOf(V1.id));
    expect((await readAt(`/dev/${dev}`, 3 * MiB, data.length)).equals(data)).toBe(true);
  });

  it('detach and removeExport leave nothing of ours', async () => {
    shTry(disconnectArgv(NQN));
    await exports.terminateConnection(V1, { nqn: HOST_A, host: 'host-a' }, {});
    await exports.removeExport(V1);
    expect(await fs.readSubsystem(NQN)).toBeNull();
    expect(existsSync(fs.hostPath(HOST_A))).toBe(false);
    expect((await fs.readPort(1))?.subsystems ?? []).toEqual([]);
    expect(await helper.listExports()).toEqual([]);
    await driver.deleteVolume(V1);
  });

  it("the project's connector carries a second volume: connect by nguid, I/O, extend seen through its rescan, disconnect", async () => {
    const V2 = vol('d2d2d2d2-0000-4000-8000-0000000000e2');
    await driver.createVolume(V2);
    const mu = await exports.createExport(V2);
    const v2 = { ...V2, providerLocation: mu?.provider_location ?? null };
    const ci = await exports.initializeConnection(v2, { nqn: HOST_A, host: 'host-a' });
    const connector = new NvmeConnector({ hostId: ID_A, deviceWaitMs: 20_000 });
    const d = await connector.connectVolume(ci);
    expect(d.path).toMatch(/^\/dev\/nvme\d+n\d+$/);
    expect(d.connected).toEqual(['127.0.0.1:4420']);
    const bytes = pattern('nvme-v2', 64 * 1024);
    await writeAt(d.path, MiB, bytes);
    expect((await readAt(`/dev/${VG}/${V2.name}`, MiB, bytes.length)).equals(bytes)).toBe(true);
    await driver.extendVolume(v2, 2);
    await exports.extendTarget(v2);
    const t = Date.now();
    expect(await until('the connector to see 2 GiB', 20_000, async () => ((await connector.extendVolume(ci)) === 2 * 1024 ** 3 ? true : null))).toBe(true);
    timings.connector_extend_ms = Date.now() - t;
    expect(await connector.disconnectVolume(ci)).toEqual({ disconnected: true });
    expect(pathStates(helper.nqnOf(V2), HOST_A)).toEqual([]);
    await exports.terminateConnection(v2, { nqn: HOST_A, host: 'host-a' }, {});
    await exports.removeExport(v2);
    await driver.deleteVolume(V2);
    expect(await helper.listExports()).toEqual([]);
  });
});

// target_layout = per-host: a subsystem per compute host on the same kernel, VG and port. What the
// per-volume layout cannot do: take one volume from a connected host without touching its others.
describe.skipIf(!inLab).sequential('nvmet per-host layout: a subsystem per compute host (lab guest)', () => {
  const fs = new NvmetConfigfs();
  const WORK2 = `${WORK}-per-host`;
  let driver: VolumeDriver;
  let exports: HostTargetExports;
  const P = ['e1e1e1e1-0000-4000-8000-0000000000f1', 'e2e2e2e2-0000-4000-8000-0000000000f2', 'e3e3e3e3-0000-4000-8000-0000000000f3'].map((id) => ({ ...vol(id), providerLocation: PER_HOST_LOCATION }));
  const A = { nqn: HOST_A, host: 'host-a' };
  const B = { nqn: HOST_B, host: 'host-b' };
  let subA = '';
  let subB = '';
  const data = P.map((v) => pattern(`per-host-${v.id}`, 64 * 1024));
  const devOf = (i: number) => deviceOf(P[i]!.id);

  beforeAll(async () => {
    rmSync(WORK2, { recursive: true, force: true });
    mkdirSync(WORK2, { recursive: true });
    ({ driver, exports } = await perHostBackend(nvmetConf(WORK2, 'thin', 'per-host'), WORK2, '127.0.0.1'));
    expect(exports.sharedTargets).toBeNull();
    for (const v of P) await driver.createVolume(v);
  });

  afterAll(() => {
    for (const n of [subA, subB]) if (n) shTry(disconnectArgv(n));
  });

  it("host A's two volumes are two namespaces of its one subsystem, over one controller; its data lands on the LVs", async () => {
    const c0 = await exports.initializeConnection(P[0]!, A);
    const c1 = await exports.initializeConnection(P[1]!, A);
    subA = c0.data.target_nqn as string;
    expect(c1.data.target_nqn).toBe(subA);
    expect([c0.data.ns_id, c1.data.ns_id]).toEqual(['10', '11']);
    const s = (await fs.readSubsystem(subA))!;
    expect(s.allowAnyHost).toBe(false);
    expect(s.hosts).toEqual([HOST_A]);
    const t = Date.now();
    const r = connect(c0, HOST_A, ID_A);
    expect(r.code, r.out).toBe(0);
    const d0 = await until('P0 on host A', 20_000, () => devOf(0));
    const d1 = await until('P1 on host A', 20_000, () => devOf(1));
    timings.per_host_connect_to_devices_ms = Date.now() - t;
    expect(controllers(subA, HOST_A)).toHaveLength(1);
    expect([subsystemOfDevice(d0), subsystemOfDevice(d1)]).toEqual([subA, subA]);
    for (const [i, d] of [[0, d0], [1, d1]] as const) {
      await writeAt(`/dev/${d}`, 2 * MiB, data[i]!);
      expect((await readAt(`/dev/${VG}/${P[i]!.name}`, 2 * MiB, data[i]!.length)).equals(data[i]!)).toBe(true);
    }
  });

  it("host B is refused on A's subsystem; attached to another volume it gets its own subsystem, serving only that volume", async () => {
    const refused = refusals(subA, HOST_B);
    expect(connectB(5, subA).code).not.toBe(0);
    expect(refusals(subA, HOST_B)).toBe(refused + 1);
    const c2 = await exports.initializeConnection(P[2]!, B);
    subB = c2.data.target_nqn as string;
    expect(subB).not.toBe(subA);
    expect(c2.data.ns_id).toBe('10');
    const r = connectB(5, subB);
    expect(r.code, r.out).toBe(0);
    const d2 = await until('P2 on host B', 20_000, () => devOf(2));
    expect(subsystemOfDevice(d2)).toBe(subB);
    // B's subsystem serves P2 alone: A's volumes are not namespaces of it
    expect((await fs.readSubsystem(subB))!.namespaces.map((n) => n.deviceNguid)).toEqual([P[2]!.id]);
    expect((await fs.readSubsystem(subB))!.hosts).toEqual([HOST_B]);
  });

  it("detaching one of A's volumes takes that namespace from A's live controller at once; the other keeps serving on the same controller", async () => {
    const ctrl = controllers(subA, HOST_A);
    const d1 = devOf(1)!;
    const t = Date.now();
    await exports.terminateConnection(P[0]!, A, { remaining: [] });
    await until('P0 gone from host A', 10_000, () => devOf(0) === null);
    timings.per_host_revoke_to_gone_ms = Date.now() - t;
    expect(controllers(subA, HOST_A)).toEqual(ctrl);
    expect(devOf(1)).toBe(d1);
    expect((await readAt(`/dev/${d1}`, 2 * MiB, data[1]!.length)).equals(data[1]!)).toBe(true);
    expect((await fs.readSubsystem(subA))!.namespaces.map((n) => n.nsid)).toEqual([11]);
  });

  it('attached again, the volume gets a new nsid (never the one just released) and appears on the connected host by its nguid', async () => {
    const t = Date.now();
    const c0 = await exports.initializeConnection(P[0]!, A);
    expect(c0.data.ns_id).toBe('12');
    let rescanned = false;
    const d0 = await until('P0 back on host A', 20_000, () => {
      // the target announces the new namespace (AEN); a rescan stands in where the host missed it
      if (!rescanned && Date.now() - t > 5000) {
        for (const c of controllers(subA, HOST_A)) shTry(nsRescanArgv(c));
        rescanned = true;
      }
      return devOf(0);
    });
    timings.per_host_map_to_device_ms = Date.now() - t;
    timings.per_host_map_needed_rescan = rescanned ? 1 : 0;
    expect(sh(['cat', `/sys/class/block/${d0}/nsid`]).trim()).toBe('12');
    expect((await readAt(`/dev/${d0}`, 2 * MiB, data[0]!.length)).equals(data[0]!)).toBe(true);
  });

  it('a configfs loss is seen and restored with the same nsids; host A reconnects and reads both volumes', async () => {
    shTry(disconnectArgv(subA));
    await fs.removeSubsystem(subA);
    expect(await exports.missingHostTargets()).toEqual([subA]);
    const t = Date.now();
    for (const v of [P[0]!, P[1]!]) await exports.ensureExport(v, [], [A]);
    timings.per_host_restore_ms = Date.now() - t;
    expect(await exports.missingHostTargets()).toEqual([]);
    const s = (await fs.readSubsystem(subA))!;
    expect(s.namespaces.map((n) => [n.nsid, n.deviceNguid, n.enabled])).toEqual([[11, P[1]!.id, true], [12, P[0]!.id, true]]);
    const r = connect({ driver_volume_type: 'nvmeof', data: { target_nqn: subA, portals: [['127.0.0.1', '4420', 'tcp']] } }, HOST_A, ID_A);
    expect(r.code, r.out).toBe(0);
    for (const i of [0, 1]) {
      const d = await until(`P${i} after restore`, 20_000, () => devOf(i));
      expect((await readAt(`/dev/${d}`, 2 * MiB, data[i]!.length)).equals(data[i]!)).toBe(true);
    }
  });

  it('the last detaches delete both subsystems and their host entries; nothing of ours is left', async () => {
    for (const n of [subA, subB]) shTry(disconnectArgv(n));
    for (const v of [P[0]!, P[1]!]) await exports.terminateConnection(v, A, { remaining: [] });
    await exports.terminateConnection(P[2]!, B, { remaining: [] });
    expect(await fs.readSubsystem(subA)).toBeNull();
    expect(await fs.readSubsystem(subB)).toBeNull();
    expect(existsSync(fs.hostPath(HOST_A))).toBe(false);
    expect(existsSync(fs.hostPath(HOST_B))).toBe(false);
    expect((await fs.readPort(1))?.subsystems ?? []).toEqual([]);
    expect((await exports.inventory()).hostTargets!.live).toEqual([]);
    for (const v of P) await driver.deleteVolume(v);
  });

  it('200 concurrent attach/detach operations by three connected hosts: no host ever sees a namespace it has no mapping of; a configfs loss midway is restored; nothing is left', async () => {
    // the issue's concurrency run over NVMe/TCP, at the exports level (the manager's per-volume
    // connection lock is the chain below): three hosts, each with its own NQN and a controller to
    // its own subsystem kept (re)connecting by a watcher; 20 multi-attach thin volumes; random attach
    // or detach of (volume, host) at concurrency 8. Every 200 ms each host's visible namespaces
    // (by nguid, under its subsystem) must be volumes mapped to it, being mapped, or unmapped less
    // than GRACE ago (the kernel's removal is asynchronous: 0.2-0.6 s measured above, more under load).
    const GRACE = 5000;
    const hosts = [
      { name: 'conc-a', nqn: HOST_A, id: ID_A },
      { name: 'conc-b', nqn: HOST_B, id: ID_B },
      { name: 'conc-c', nqn: `nqn.2014-08.org.nvmexpress:uuid:${ID_A.slice(0, -1)}c`, id: `${ID_A.slice(0, -1)}c` },
    ];
    const vols = Array.from({ length: 20 }, (_, i) => ({ ...vol(`c0c0c0c0-0000-4000-8000-${String(i).padStart(12, '0')}`), providerLocation: PER_HOST_LOCATION, multiattach: true }));
    for (const v of vols) await driver.createVolume(v);
    const sub = new Map(hosts.map((h) => [h.nqn, hostSubsystemNqn('iqn.2010-10.org.openstack:', 'lvm', h.name)]));
    const mapped = new Map<string, Set<string>>(vols.map((v) => [v.id, new Set()]));
    const busy = new Set<string>();
    const unmappedAt = new Map<string, number>();
    const violations: string[] = [];
    const byNguid = new Map(vols.map((v) => [v.id, v]));
    let running = true;
    let samples = 0;
    let reconnects = 0;
    const visible = (h: (typeof hosts)[number]): string[] =>
      namespaces()
        .filter((n) => subsystemOfDevice(n.name) === sub.get(h.nqn))
        .map((n) => n.nguid.trim());
    const watcher = (async () => {
      while (running) {
        for (const h of hosts) {
          const nqn = sub.get(h.nqn)!;
          // a controller once the host has a subsystem; -1: it keeps reconnecting through a loss
          if (controllers(nqn, h.nqn).length === 0 && pathStates(nqn, h.nqn).length === 0 && existsSync(fs.allowedHostPath(nqn, h.nqn))) {
            if (connectFabrics(nqn, h.nqn, h.id, -1).code === 0) reconnects += 1;
          }
          for (const g of visible(h)) {
            const v = byNguid.get(g);
            const key = `${v?.id}|${h.nqn}`;
            const ok = v && (mapped.get(v.id)!.has(h.nqn) || busy.has(key) || Date.now() - (unmappedAt.get(key) ?? 0) < GRACE);
            if (!ok) violations.push(`${new Date().toISOString()} ${h.name} sees ${g} with no mapping`);
          }
        }
        samples += 1;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const chains = new Map<string, Promise<void>>();
    const onVolume = (id: string, fn: () => Promise<void>): Promise<void> => {
      const next = (chains.get(id) ?? Promise.resolve()).then(fn, fn);
      chains.set(id, next.catch(() => undefined));
      return next;
    };
    const connectorOf = (h: (typeof hosts)[number]) => ({ nqn: h.nqn, host: h.name });
    let seed = 15;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const errors: string[] = [];
    let done = 0;
    const op = async (): Promise<void> => {
      const v = vols[rand(vols.length)]!;
      const h = hosts[rand(hosts.length)]!;
      await onVolume(v.id, async () => {
        const key = `${v.id}|${h.nqn}`;
        const set = mapped.get(v.id)!;
        busy.add(key);
        try {
          if (set.has(h.nqn)) {
            set.delete(h.nqn);
            await exports.terminateConnection(v, connectorOf(h), { remaining: hosts.filter((x) => set.has(x.nqn)).map(connectorOf) });
            unmappedAt.set(key, Date.now());
          } else {
            await exports.initializeConnection(v, connectorOf(h));
            set.add(h.nqn);
          }
        } catch (e) {
          errors.push(`${h.name} ${v.id}: ${(e as Error).message}`);
        } finally {
          busy.delete(key);
          done += 1;
        }
      });
    };
    const t = Date.now();
    const runOps = async (n: number) => {
      let next = 0;
      await Promise.all(Array.from({ length: 8 }, async () => {
        while (next < n) {
          next += 1;
          await op();
        }
      }));
    };
    await runOps(100);
    // what a reboot leaves of ours in configfs: nothing; then the manager's restore, volume by volume
    for (const n of new Set(sub.values())) await fs.removeSubsystem(n);
    const lost = await exports.missingHostTargets();
    const tr = Date.now();
    for (const v of vols) await exports.ensureExport(v, [], hosts.filter((h) => mapped.get(v.id)!.has(h.nqn)).map(connectorOf));
    timings.concurrency_restore_ms = Date.now() - tr;
    expect(await exports.missingHostTargets()).toEqual([]);
    await runOps(100);
    timings.concurrency_200_ops_s = (Date.now() - t) / 1000;
    // quiescence: each host sees exactly its mappings (new namespaces arrive by AEN)
    const want = (h: (typeof hosts)[number]) => vols.filter((v) => mapped.get(v.id)!.has(h.nqn)).map((v) => v.id).sort();
    const same = (h: (typeof hosts)[number]) => visible(h).sort().join() === want(h).join();
    const settled: string[] = [];
    for (const h of hosts) {
      const ok = await until(`${h.name} to see exactly its mappings`, 20_000, () => same(h)).then(() => true, () => false);
      if (ok) continue;
      // a namespace the host has not picked up yet: what os-brick's connector does, a rescan. The
      // three "hosts" share one kernel, which ignores a namespace whose nguid another subsystem
      // on it already shows ("ignoring nsid N because of duplicate IDs": a multi-attached volume
      // in two hosts' subsystems); separate compute hosts never meet that. Late is counted, not failed.
      const nqn = sub.get(h.nqn)!;
      const ctrls = readdirSync('/sys/class/nvme').filter((c) => existsSync(`/sys/class/nvme/${c}/subsysnqn`) && readFileSync(`/sys/class/nvme/${c}/subsysnqn`, 'utf8').trim() === nqn);
      const before = { visible: visible(h).sort(), want: want(h), states: pathStates(nqn, h.nqn) };
      for (const c of ctrls) shTry(nsRescanArgv(c));
      const late = await until(`${h.name} after a rescan`, 10_000, () => same(h)).then(() => true, () => false);
      settled.push(`${h.name}: ${JSON.stringify(before)} rescanned ${ctrls.join(',')} -> ${late ? 'matched' : JSON.stringify({ visible: visible(h).sort(), states: pathStates(nqn, h.nqn) })}`);
    }
    const inv = (await exports.inventory()).hostTargets!;
    for (const r of inv.records.filter((x) => x.luns.length > 0)) {
      const l = inv.live.find((x) => x.iqn === r.iqn)!;
      expect(l.luns.map((x) => x.lun).sort(), r.host).toEqual(r.luns.map((x) => x.lun).sort());
      expect(l.initiators, r.host).toEqual(r.luns.flatMap((m) => m.initiators).filter((x, i, a) => a.indexOf(x) === i));
    }
    running = false;
    await watcher;
    timings.concurrency_samples = samples;
    timings.concurrency_reconnects = reconnects;
    console.log(`CONCURRENCY ops=${done} samples=${samples} reconnects=${reconnects} lost=${lost.length} restore_ms=${timings.concurrency_restore_ms} errors=${errors.length} violations=${violations.length} settled=${JSON.stringify(settled)}`);
    expect(errors).toEqual([]);
    expect(violations).toEqual([]);
    // a namespace seen late is reported above (settled); one still wrong after a rescan fails
    expect(settled.filter((x) => !x.endsWith('matched'))).toEqual([]);
    expect(done).toBe(200);
    expect(lost.length).toBeGreaterThan(0);
    // everything detached: no subsystem, host entry or namespace of ours
    for (const h of hosts) shTry(disconnectArgv(sub.get(h.nqn)!));
    for (const v of vols) {
      for (const h of hosts) if (mapped.get(v.id)!.delete(h.nqn)) await exports.terminateConnection(v, connectorOf(h), { remaining: hosts.filter((x) => mapped.get(v.id)!.has(x.nqn)).map(connectorOf) });
      await driver.deleteVolume(v);
    }
    expect((await exports.inventory()).hostTargets!.live).toEqual([]);
    for (const h of hosts) expect(existsSync(fs.hostPath(h.nqn))).toBe(false);
    timings.suite_s = (Date.now() - t0) / 1000;
    writeFileSync(`${OUT}/timings.json`, JSON.stringify(timings, null, 1));
  }, 600_000);
});

// Two compute hosts in network namespaces of their own (issue 15): each host's TCP connections to the
// target leave from its own namespace over a veth on a bridge (the target listens on the bridge's
// 10.77.0.1:4420), with its own host NQN. The per-host layout: a detach takes the namespace from
// the host's live controller without dropping it, so no reconnect is involved. (The kernel's NVMe/TCP
// host reconnects from a kernel worker in the initial namespace, whatever namespace the connect came
// from: a test that needs a reconnect cannot keep a host inside its namespace.)
describe.skipIf(!inLab).sequential('nvmet per host, hosts in network namespaces of their own (lab guest)', () => {
  const fs = new NvmetConfigfs();
  const WORK3 = `${WORK}-netns`;
  const TARGET_IP = '10.77.0.1';
  const NS = [
    { ns: 'cbhost-a', ip: '10.77.0.2', nqn: HOST_A, id: ID_A, host: 'host-a' },
    { ns: 'cbhost-b', ip: '10.77.0.3', nqn: HOST_B, id: ID_B, host: 'host-b' },
  ] as const;
  const [NA, NB] = NS;
  let driver: VolumeDriver;
  let exports: HostTargetExports;
  const V = { ...vol('a7a7a7a7-0000-4000-8000-0000000000a7'), providerLocation: PER_HOST_LOCATION };
  const W = { ...vol('b7b7b7b7-0000-4000-8000-0000000000b7'), providerLocation: PER_HOST_LOCATION };
  const W2 = { ...vol('c7c7c7c7-0000-4000-8000-0000000000c7'), providerLocation: PER_HOST_LOCATION };
  const dataV = pattern('netns-host-a', 64 * 1024);
  const dataW = pattern('netns-host-b', 64 * 1024);
  let subA = '';
  let subB = '';
  // a port of its own (2): port 1 is the earlier cases' 127.0.0.1
  const conf = `${nvmetConf(WORK3, 'thin', 'per-host').replace('target_ip_address = 127.0.0.1', `target_ip_address = ${TARGET_IP}`)}nvmet_port_id = 2\n`;

  /** nvme-cli's connect, run inside the host's namespace */
  const connectFrom = (h: (typeof NS)[number], info: ConnectionInfo) =>
    shTry(['ip', 'netns', 'exec', h.ns, ...connectArgv({ transport: 'tcp', traddr: TARGET_IP, trsvcid: 4420, subnqn: info.data.target_nqn as string, hostnqn: h.nqn, hostid: h.id, ctrlLossTmo: 5, reconnectDelay: 1 })]);
  /**
   * A connect written straight to /dev/nvme-fabrics from inside the host's namespace: for a subsystem
   * another host already has a controller to at that address, where nvme-cli answers "already
   * connected" by itself (see connectB). Exit code 0 only if the kernel made the controller.
   */
  const fabricsFrom = (h: (typeof NS)[number], subnqn: string) => {
    const opts = `nqn=${subnqn},transport=tcp,traddr=${TARGET_IP},trsvcid=4420,hostnqn=${h.nqn},hostid=${h.id},ctrl_loss_tmo=5,reconnect_delay=1`;
    try {
      sh(['ip', 'netns', 'exec', h.ns, 'dd', 'of=/dev/nvme-fabrics', 'bs=4096', 'status=none'], opts);
      return 0;
    } catch {
      return 1;
    }
  };
  /** the host's established connections to the target, as its own namespace sees them */
  const tcpFrom = (h: (typeof NS)[number]) => sh(['ip', 'netns', 'exec', h.ns, 'ss', '-Htn', 'state', 'established', 'dst', `${TARGET_IP}:4420`]).trim().split('\n').filter(Boolean);
  /** the source address of host `h`'s live controllers to `nqn` (sysfs `address`: src_addr=) */
  const srcAddrs = (nqn: string, h: (typeof NS)[number]) =>
    controllers(nqn, h.nqn).map((c) => /src_addr=([\d.]+)/.exec(readFileSync(`/sys/class/nvme/${c}/address`, 'utf8'))?.[1] ?? '?');

  beforeAll(async () => {
    rmSync(WORK3, { recursive: true, force: true });
    mkdirSync(WORK3, { recursive: true });
    sh(['ip', 'link', 'add', 'cbbr0', 'type', 'bridge']);
    sh(['ip', 'addr', 'add', `${TARGET_IP}/24`, 'dev', 'cbbr0']);
    sh(['ip', 'link', 'set', 'cbbr0', 'up']);
    for (const h of NS) {
      sh(['ip', 'netns', 'add', h.ns]);
      sh(['ip', 'link', 'add', `v-${h.host}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.ns]);
      sh(['ip', 'link', 'set', `v-${h.host}`, 'master', 'cbbr0', 'up']);
      sh(['ip', 'netns', 'exec', h.ns, 'ip', 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      sh(['ip', 'netns', 'exec', h.ns, 'ip', 'link', 'set', 'eth0', 'up']);
      sh(['ip', 'netns', 'exec', h.ns, 'ip', 'link', 'set', 'lo', 'up']);
    }
    ({ driver, exports } = await perHostBackend(conf, WORK3, TARGET_IP));
    for (const v of [V, W, W2]) await driver.createVolume(v);
  });

  afterAll(() => {
    for (const n of [subA, subB]) if (n) shTry(disconnectArgv(n));
    for (const h of NS) shTry(['ip', 'netns', 'del', h.ns]);
    shTry(['ip', 'link', 'del', 'cbbr0']);
    writeFileSync(`${OUT}/timings.json`, JSON.stringify(timings, null, 1));
  });

  it("host A connects from its own namespace to its subsystem and writes to its volume; host B, attached to nothing, is refused there from its namespace and has no controller and no namespace", async () => {
    const info = await exports.initializeConnection(V, { nqn: NA.nqn, host: NA.host });
    subA = info.data.target_nqn as string;
    expect(info.data.portals).toEqual([[TARGET_IP, '4420', 'tcp']]);
    const r = connectFrom(NA, info);
    expect(r.code, r.out).toBe(0);
    const dev = await until('V on host A', 20_000, () => deviceOf(V.id));
    expect(subsystemOfDevice(dev)).toBe(subA);
    // the connection is host A's own: it leaves from A's namespace and address
    expect(tcpFrom(NA).length).toBeGreaterThan(0);
    expect(tcpFrom(NB)).toEqual([]);
    expect(srcAddrs(subA, NA)).toEqual([NA.ip]);
    await writeAt(`/dev/${dev}`, MiB, dataV);
    expect((await readAt(`/dev/${VG}/${V.name}`, MiB, dataV.length)).equals(dataV)).toBe(true);

    const refused = refusals(subA, NB.nqn);
    expect(fabricsFrom(NB, subA)).not.toBe(0);
    expect(refusals(subA, NB.nqn)).toBe(refused + 1);
    expect(pathStates(subA, NB.nqn)).toEqual([]);
    expect(tcpFrom(NB)).toEqual([]);
    expect(readdirSync('/sys/class/nvme').filter((c) => readFileSync(`/sys/class/nvme/${c}/hostnqn`, 'utf8').trim() === NB.nqn)).toEqual([]);
  });

  it('host B, attached to two volumes of its own, connects from its namespace and sees those alone; one detached, it loses that namespace at once on its live controller, which keeps serving the other; A is undisturbed', async () => {
    const info = await exports.initializeConnection(W, { nqn: NB.nqn, host: NB.host });
    subB = info.data.target_nqn as string;
    expect(subB).not.toBe(subA);
    expect((await exports.initializeConnection(W2, { nqn: NB.nqn, host: NB.host })).data.target_nqn).toBe(subB);
    const r = connectFrom(NB, info);
    expect(r.code, r.out).toBe(0);
    const devW = await until('W on host B', 20_000, () => deviceOf(W.id));
    const devW2 = await until('W2 on host B', 20_000, () => deviceOf(W2.id));
    expect([subsystemOfDevice(devW), subsystemOfDevice(devW2)]).toEqual([subB, subB]);
    await writeAt(`/dev/${devW2}`, MiB, dataW);
    expect(srcAddrs(subB, NB)).toEqual([NB.ip]);
    await writeAt(`/dev/${devW}`, MiB, dataW);
    expect((await readAt(`/dev/${VG}/${W.name}`, MiB, dataW.length)).equals(dataW)).toBe(true);
    // still refused on A's subsystem, attached or not
    expect(fabricsFrom(NB, subA)).not.toBe(0);
    const ctrlB = controllers(subB, NB.nqn);
    expect(ctrlB).toHaveLength(1);

    const t = Date.now();
    await exports.terminateConnection(W, { nqn: NB.nqn, host: NB.host }, { remaining: [] });
    await until('W gone from host B', 10_000, () => !deviceOf(W.id));
    timings.netns_detach_to_gone_ms = Date.now() - t;
    // the same controller, never dropped (no reconnect: still from B's own address), serves W2 alone
    expect(controllers(subB, NB.nqn)).toEqual(ctrlB);
    expect(srcAddrs(subB, NB)).toEqual([NB.ip]);
    expect((await readAt(`/dev/${deviceOf(W2.id)!}`, MiB, dataW.length)).equals(dataW)).toBe(true);
    expect((await fs.readSubsystem(subB))!.namespaces.map((n) => n.deviceNguid)).toEqual([W2.id]);
    // A is undisturbed: same controller, same namespace, its data, still from its own address
    const devV = deviceOf(V.id)!;
    expect((await readAt(`/dev/${devV}`, MiB, dataV.length)).equals(dataV)).toBe(true);
    expect(srcAddrs(subA, NA)).toEqual([NA.ip]);
  });

  it('the last detach and the deletes leave nothing of ours', async () => {
    for (const n of [subA, subB]) shTry(disconnectArgv(n));
    await exports.terminateConnection(V, { nqn: NA.nqn, host: NA.host }, { remaining: [] });
    await exports.terminateConnection(W2, { nqn: NB.nqn, host: NB.host }, { remaining: [] });
    for (const n of [subA, subB]) expect(await fs.readSubsystem(n)).toBeNull();
    expect((await exports.inventory()).hostTargets!.live).toEqual([]);
    for (const v of [V, W, W2]) await driver.deleteVolume(v);
    for (const h of NS) expect(tcpFrom(h)).toEqual([]);
  });
});
