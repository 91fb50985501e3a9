// The lab guest as an LVM storage node with LIO and an iSCSI compute host at once, and a backend
// built as the agent builds it (cinder.conf text -> createTargetSide -> createDriver ->
// createExports). Shared by the per-host LIO lab suite and the LIO benches.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { DriverVolume, VolumeDriver } from '../../drivers/driver.js';
import type { ConnectionInfo } from '../../drivers/targets/target.js';
import type { VolumeExports } from '../../drivers/exports.js';
import { createDriver } from '../../src/agent/driver-factory.js';
import { createExports, createTargetSide } from '../../src/agent/target-factory.js';
import { configFromText } from '../../src/config/load.js';
import { IscsiConnector } from '../../src/connector/iscsi-connector.js';
import { createLogger, setRootLogger } from '../../src/log.js';
import { sh } from './lab-io.js';

export const LAB_VG = 'cinder-volumes';

export interface LioLabPaths {
  /** holds lvm/lvm.conf and locks/ */
  workDir: string;
  /** state_path; volumes_dir is under it */
  statePath: string;
}

/** cinder.conf of one LVM backend `lvm` on LIO through configfs, portal 127.0.0.1. */
export function lioLabConf(p: LioLabPaths & { layout: 'per-volume' | 'per-host'; lvmType: 'thin' | 'default' }): string {
  return `
[DEFAULT]
enabled_backends = lvm
state_path = ${p.statePath}
[oslo_concurrency]
lock_path = ${p.workDir}/locks
[lvm]
volume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver
volume_group = ${LAB_VG}
lvm_type = ${p.lvmType}
volume_clear = none
lvm_conf_file = ${p.workDir}/lvm/lvm.conf
target_helper = lioadm
target_protocol = iscsi
target_ip_address = 127.0.0.1
target_layout = ${p.layout}
volumes_dir = ${p.statePath}/volumes
`;
}

/**
 * The VG on the scratch disk and iscsid running with `initiator` as its default name. LVM must not
 * scan the host side's iSCSI disks, or every LVM command waits out a session in recovery (120 s)
 * after a configfs loss: done as cinder's operators do it, lvm_conf_file with a filter (cinder's
 * own docs advise it for LVM on hosts that also attach iSCSI).
 */
export function prepareLabStorageAndInitiator(p: { disk: string; workDir: string; initiator: string }): void {
  mkdirSync(`${p.workDir}/lvm`, { recursive: true });
  mkdirSync(`${p.workDir}/locks`, { recursive: true });
  writeFileSync(`${p.workDir}/lvm/lvm.conf`, `devices {\n    global_filter = [ "a|^${p.disk}$|", "r|.*|" ]\n}\n`);
  sh(['pvcreate', '-y', p.disk]);
  sh(['vgcreate', LAB_VG, p.disk]);
  mkdirSync('/etc/iscsi', { recursive: true });
  writeFileSync('/etc/iscsi/initiatorname.iscsi', `InitiatorName=${p.initiator}\n`);
  writeFileSync('/etc/iscsi/iscsid.conf', readFileSync('/etc/iscsi/iscsid.conf', 'utf8').replace(/^node\.startup = .*$/m, 'node.startup = manual'));
  sh(['iscsid']);
}

/** The driver (set up and checked) and the exports of the conf's backend. */
export async function lioLabBackend(confText: string, p: LioLabPaths): Promise<{ driver: VolumeDriver; exports: VolumeExports; hasHostHelper: boolean }> {
  const config = configFromText(confText, { hostname: 'cblab-guest', myIp: '127.0.0.1' });
  const backend = config.backends[0]!;
  const side = createTargetSide(backend, { logger: createLogger({ level: 'warn', pretty: false }), probeIntervalMs: 0 });
  const driver = createDriver(config, backend);
  await driver.doSetup();
  await driver.checkForSetupError();
  return { driver, exports: createExports(driver, side, { backend, statePath: p.statePath, lockPath: `${p.workDir}/locks` }), hasHostHelper: Boolean(side?.hostTargets) };
}

/** The guest's scratch disk (run-lab.sh's CBLAB_DISKS); a script run any other way stops here. */
export function labScratchDiskOrExit(): string {
  const disk = (process.env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
  if (!disk) {
    console.error('run through test/lab/run-lab.sh (no scratch disk)');
    process.exit(2);
  }
  return disk;
}

/** What attachment_update runs in the agent: create_export, then initialize_connection. */
export async function agentAttach(exports: VolumeExports, v0: DriverVolume, host: { host: string; initiator: string }): Promise<{ v: DriverVolume; ci: ConnectionInfo }> {
  const mu = await exports.createExport(v0);
  const v = { ...v0, providerLocation: mu?.provider_location ?? v0.providerLocation, providerAuth: mu?.provider_auth ?? v0.providerAuth };
  return { v, ci: await exports.initializeConnection(v, { ...host }) };
}

/** One direct read of the first block: the device the host got is usable. */
export function readFirstBlock(device: string): void {
  execFileSync('dd', [`if=${device}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct', 'status=none'], { timeout: 120_000 });
}

/**
 * A bench's start in the guest: fresh work and output directories, the agent's log (warnings and
 * up) in workDir/agent.log, the VG and iscsid; returns the project's connector for the host side.
 */
export function freshLabBenchHost(p: { disk: string; workDir: string; outDir: string; initiator: string }): IscsiConnector {
  rmSync(p.workDir, { recursive: true, force: true });
  mkdirSync(p.outDir, { recursive: true });
  mkdirSync(p.workDir, { recursive: true });
  setRootLogger(createLogger({ level: 'warn', pretty: false, destination: `${p.workDir}/agent.log` }));
  prepareLabStorageAndInitiator(p);
  return new IscsiConnector({ deviceWaitMs: 60_000 });
}
