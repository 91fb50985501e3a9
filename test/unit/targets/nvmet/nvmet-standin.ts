// A STAND-IN for /sys/kernel/config/nvmet (mechanics shared with LIO in ../configfs-standin-base.ts):
// a temp directory plus a ConfigfsIo imitating the nvmet
// rules the helper depends on. It is not configfs. Modelled:
//  - mkdir of a subsystem, namespace or port creates its default groups and attribute files;
//    a new subsystem starts with attr_allow_any_host = 1 here (the worst case), so a helper that
//    does not write 0 is caught;
//  - EINVAL linking a host into allowed_hosts while attr_allow_any_host = 1;
//  - EBUSY writing device_path/device_uuid/device_nguid while the namespace is enabled;
//  - EACCES writing a port's addr_* while a subsystem is linked to it;
//  - rmdir refused (ENOTEMPTY) while user-made children or links remain;
//  - an operation log and failure injection.
// NOT modelled: controllers and connections (what unlinking a host or a port does to them), value
// parsing, enable opening the device, module loading.
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { NvmetTargetConfig } from '../../../../drivers/targets/nvmet/nvmet-target.js';
import type { CommandRunner } from '../../../../src/exec/run-command.js';
import { ConfigfsStandInBase, errnoError, type DefaultGroups } from '../configfs-standin-base.js';

export type { Op } from '../configfs-standin-base.js';

const ZERO = '00000000-0000-0000-0000-000000000000';

function autoFor(rel: string): DefaultGroups | null {
  const p = rel.split('/');
  if (p.length === 2 && p[0] === 'subsystems') return { dirs: ['allowed_hosts', 'namespaces'], files: { attr_allow_any_host: '1', attr_serial: 'abc', attr_version: '1.3' } };
  if (p.length === 4 && p[0] === 'subsystems' && p[2] === 'namespaces') {
    return { dirs: [], files: { device_path: '', device_uuid: ZERO, device_nguid: ZERO, enable: '0', revalidate_size: '', buffered_io: '0', ana_grpid: '1' } };
  }
  if (p.length === 2 && p[0] === 'ports') return { dirs: ['subsystems', 'referrals', 'ana_groups'], files: { addr_trtype: '', addr_adrfam: '', addr_traddr: '', addr_trsvcid: '', addr_treq: 'not specified' } };
  if (p.length === 2 && p[0] === 'hosts') return { dirs: [], files: {} };
  return null;
}

export class NvmetStandIn extends ConfigfsStandInBase {
  static async make(root: string): Promise<NvmetStandIn> {
    for (const d of ['hosts', 'ports', 'subsystems']) await fsp.mkdir(join(root, d), { recursive: true });
    return new NvmetStandIn(root);
  }

  protected defaultsFor(rel: string): DefaultGroups | null {
    return autoFor(rel);
  }

  /** allowed_hosts/ with a host linked, namespaces/ with a namespace, and so on */
  protected async defaultGroupBlocks(dir: string): Promise<boolean> {
    return (await fsp.readdir(dir)).length > 0;
  }

  protected override async refuseWrite(p: string, d: string): Promise<void> {
    const rel = this.rel(p).split('/');
    const file = basename(p);
    if (rel[0] === 'subsystems' && rel[2] === 'namespaces' && /^device_/.test(file) && (await this.text(join(dirname(p), 'enable'))) === '1') throw errnoError('EBUSY', p);
    if (rel[0] === 'ports' && /^addr_/.test(file) && (await fsp.readdir(join(dirname(p), 'subsystems'))).length > 0) throw errnoError('EACCES', p);
    if (rel[0] === 'subsystems' && file === 'attr_allow_any_host' && d.trim() === '1' && (await fsp.readdir(join(dirname(p), 'allowed_hosts'))).length > 0) throw errnoError('EINVAL', p);
  }

  protected override async refuseLink(_t: string, p: string): Promise<void> {
    const rel = this.rel(p).split('/');
    if (rel[0] === 'subsystems' && rel[2] === 'allowed_hosts' && (await this.text(join(this.root, 'subsystems', rel[1]!, 'attr_allow_any_host'))) === '1') throw errnoError('EINVAL', p);
  }

  private async text(p: string): Promise<string> {
    return (await fsp.readFile(p, 'utf8')).trim();
  }

  async read(rel: string): Promise<string> {
    return this.text(join(this.root, rel));
  }

  async exists(rel: string): Promise<boolean> {
    return (await this.io.kind(join(this.root, rel))) !== null;
  }

  /** Wipes the tree as a reboot would (keeps the top-level groups). */
  async clear(): Promise<void> {
    for (const d of ['hosts', 'ports', 'subsystems']) {
      await fsp.rm(join(this.root, d), { recursive: true, force: true });
      await fsp.mkdir(join(this.root, d));
    }
    this.auto.clear();
  }
}

/**
 * The nvmet helper's options the unit tests share: two addresses (ports 1 and 2) on 4420,
 * nvmet_ns_id 10, configfs = the stand-in, modules reported loaded, modprobe through `runner`.
 */
export function standInNvmetConfig(si: NvmetStandIn, volumesDir: string, runner: CommandRunner = async () => ({ stdout: '', stderr: '', exitCode: 0 })): NvmetTargetConfig {
  return {
    targetPrefix: 'iqn.2010-10.org.openstack:',
    targetIpAddress: '10.0.0.5',
    targetSecondaryIpAddresses: ['10.0.1.5'],
    targetPort: 4420,
    targetProtocol: 'nvmet_tcp',
    nvmetPortId: 1,
    nvmetNsId: 10,
    volumesDir,
    configfsRoot: si.root,
    io: si.io,
    runner,
    moduleLoaded: async () => true,
  };
}
