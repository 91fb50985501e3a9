// target_helper in cinder.conf → the helper the agent builds. No daemon or configfs is touched
// here: helpers start their daemon or reconcile lazily, at the first export operation.
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configFromText } from '../../../src/config/index.js';
import { createExports, createTargetHelper, createTargetSide } from '../../../src/agent/target-factory.js';
import { HostTargetExports } from '../../../drivers/host-target-exports.js';
import type { VolumeDriver } from '../../../drivers/driver.js';
import { LioHostTarget } from '../../../drivers/targets/lio/lio-host-target.js';
import { TgtHostTarget } from '../../../drivers/targets/tgt/tgt-host-target.js';
import { NvmetHostTarget } from '../../../drivers/targets/nvmet/nvmet-host-target.js';
import { NvmetTarget } from '../../../drivers/targets/nvmet/nvmet-target.js';
import { storageProtocol } from '../../../src/agent/driver-factory.js';
import { createLogger } from '../../../src/log.js';

const logger = createLogger({ level: 'silent' });

function backendWith(helper: string, extra = '') {
  const dir = mkdtempSync(join(tmpdir(), 'cb-tf-'));
  const config = configFromText(`[DEFAULT]\nenabled_backends = b\nstate_path = ${dir}\n[b]\nvolume_driver = file\ntarget_helper = ${helper}\n${extra}`);
  return config.backends[0]!;
}

describe('createTargetHelper', () => {
  it('builds a helper for tgtadm and lioadm, none for fake', () => {
    for (const helper of ['tgtadm', 'lioadm']) {
      const t = createTargetHelper(backendWith(helper), { logger });
      expect(t, helper).not.toBeNull();
      // The connector check is cinder's, whatever the helper.
      expect(() => t!.validateConnector({ host: 'h' })).toThrow(/initiator/);
      expect(() => t!.validateConnector({ initiator: 'iqn.1994-05.com.redhat:a', host: 'h' })).not.toThrow();
    }
    expect(createTargetHelper(backendWith('fake'), { logger })).toBeNull();
  });

  it('refuses a helper it does not have rather than exporting through the wrong one', () => {
    expect(createTargetHelper(backendWith('scstadmin'), { logger })).toBeNull();
    expect(createTargetHelper(backendWith('lioadm', 'target_protocol = nvmet_tcp'), { logger })).toBeNull();
  });

  it('target_layout = per-host: both helpers have a host target side (LIO through configfs)', () => {
    const driver = { exportPath: () => '/dev/x', prepareExport: async () => undefined } as unknown as VolumeDriver;
    for (const [helper, kind] of [
      ['tgtadm', TgtHostTarget],
      ['lioadm', LioHostTarget],
    ] as const) {
      const backend = backendWith(helper, 'target_layout = per-host');
      const side = createTargetSide(backend, { logger, probeIntervalMs: 0 })!;
      expect(side.hostTargets(backend.name).helper, helper).toBeInstanceOf(kind);
      expect(side.hostTargets(backend.name).protocol.sharedTargets, helper).toBe(true);
      const exports = createExports(driver, side, { backend, statePath: mkdtempSync(join(tmpdir(), 'cb-tf-state-')), lockPath: null });
      expect(exports, helper).toBeInstanceOf(HostTargetExports);
    }
  });

  it('target_helper = nvmet: the nvmet helper (on target_port, 3260 by default as cinder), nqn required; per host a subsystem per compute host', async () => {
    const backend = backendWith('nvmet', 'target_protocol = nvmet_tcp\ntarget_ip_address = 10.0.0.5');
    const side = createTargetSide(backend, { logger, probeIntervalMs: 0 })!;
    expect(side.helper).toBeInstanceOf(NvmetTarget);
    expect(side.supervisor.watch.name).toBe('nvmet (configfs)');
    expect(() => side.helper.validateConnector({ initiator: 'iqn.1994-05.com.redhat:a', host: 'h' })).toThrow("Connector doesn't have required information: nqn");
    expect(() => side.helper.validateConnector({ nqn: 'nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427' })).not.toThrow();
    expect((side.helper as NvmetTarget).portals()).toEqual([{ ip: '10.0.0.5', port: 3260 }]);
    expect((createTargetSide(backendWith('nvmet', 'target_protocol = nvmet_tcp\ntarget_ip_address = 10.0.0.5\ntarget_port = 4430'), { logger, probeIntervalMs: 0 })!.helper as NvmetTarget).portals()).toEqual([{ ip: '10.0.0.5', port: 4430 }]);
    // cinder's subsystem NQN: nqn.<target_prefix>-<volume id>
    expect((side.helper as NvmetTarget).nqnOf({ id: '1b4e28ba-2fa1-11d2-883f-0016d3cca427' })).toBe('nqn.iqn.2010-10.org.openstack:-1b4e28ba-2fa1-11d2-883f-0016d3cca427');
    const driver = { exportPath: () => '/dev/x', prepareExport: async () => undefined } as unknown as VolumeDriver;
    const perHost = backendWith('nvmet', 'target_protocol = nvmet_tcp\ntarget_ip_address = 10.0.0.5\ntarget_layout = per-host');
    const s2 = createTargetSide(perHost, { logger, probeIntervalMs: 0 })!;
    const exports = createExports(driver, s2, { backend: perHost, statePath: mkdtempSync(join(tmpdir(), 'cb-tf-state-')), lockPath: null });
    expect(exports).toBeInstanceOf(HostTargetExports);
    // NVMe-oF with shared subsystems: volumes written shared_targets NULL, so nova always locks
    expect(exports.sharedTargets).toBeNull();
    expect(s2.hostTargets(perHost.name).helper).toBeInstanceOf(NvmetHostTarget);
    expect(() => exports.validateConnector({ initiator: 'iqn.1994-05.com.redhat:a', host: 'h' })).toThrow("Connector doesn't have required information: nqn");
    // nsids above the kernel target's 1024 namespaces would leave a host subsystem none: refused at start, naming the option
    const tooHigh = backendWith('nvmet', 'target_protocol = nvmet_tcp\ntarget_ip_address = 10.0.0.5\ntarget_layout = per-host\nnvmet_ns_id = 2000');
    expect(() => createExports(driver, createTargetSide(tooHigh, { logger, probeIntervalMs: 0 }), { backend: tooHigh, statePath: mkdtempSync(join(tmpdir(), 'cb-tf-state-')), lockPath: null })).toThrow(/nvmet_ns_id = 2000/);
  });

  it('target_helper = nvmet refuses target_protocol iscsi at start-up, naming the option', () => {
    expect(() => createTargetSide(backendWith('nvmet', 'target_ip_address = 10.0.0.5'), { logger, probeIntervalMs: 0 })).toThrow(/target_protocol = nvmet_tcp/);
  });

  it("storage_protocol for the capability report: 'nvmeof' for nvmet, as cinder's LVM driver reports it", () => {
    expect(storageProtocol('nvmet_tcp')).toBe('nvmeof');
    expect(storageProtocol('nvmet_rdma')).toBe('nvmeof');
    expect(storageProtocol('iscsi')).toBe('iSCSI');
  });
});
