// The NVMe/TCP initiator against a fake nvme-cli (answers shaped like the lab's captured output)
// and a fake sysfs: connect only what is not connected, find the namespace by nguid, refuse
// without a portal that answers, leave a shared subsystem's controllers, rescan on extend.
import { describe, expect, it } from 'vitest';
import type { CommandResult } from '../../../src/exec/run-command.js';
import type { ConnectorIo } from '../../../src/connector/iscsi-connector.js';
import { NvmeConnector, parseNvmeConnectionInfo } from '../../../src/connector/nvme-connector.js';
import { isNvmeof } from '../../../src/cli/connector.js';

const SUB = 'nqn.iqn.2010-10.org.openstack:-d1d1d1d1-0000-4000-8000-0000000000e1';
const HOST = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b000a';
const NGUID = 'd1d1d1d1-0000-4000-8000-0000000000e1';
const ci = (portals: Array<[string, string, string]> = [['127.0.0.1', '4420', 'tcp']]) => ({
  driver_volume_type: 'nvmeof',
  data: { target_nqn: SUB, nqn: SUB, portals, target_portal: portals[0]![0], target_port: portals[0]![1], transport_type: 'tcp', ns_id: '10', volume_nguid: NGUID, host_nqn: HOST },
});

/** A host: nvme-cli's list-subsys from `paths`, connect adding a live path (or failing), sysfs from `devices`. */
function fakeHost(o: { refuse?: string[]; devices?: Record<string, { nguid: string; sectors?: number }>; subsysChildren?: string[] } = {}) {
  const paths: Array<{ Name: string; Transport: string; Address: string; State: string }> = [];
  const devices = { ...(o.devices ?? {}) };
  const calls: string[][] = [];
  const runner = async (argv: readonly string[]): Promise<CommandResult> => {
    calls.push([...argv]);
    const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' }) as CommandResult;
    if (argv[1] === 'list-subsys') {
      if (!paths.length) return ok('');
      return ok(JSON.stringify([{ HostNQN: HOST, Subsystems: [{ Name: 'nvme-subsys0', NQN: SUB, Paths: paths }] }]));
    }
    if (argv[1] === 'connect') {
      const addr = argv[argv.indexOf('-a') + 1]!;
      if (o.refuse?.includes(addr)) return { exitCode: 1, stdout: '', stderr: 'could not add new controller: failed to write to nvme-fabrics device' } as CommandResult;
      paths.push({ Name: `nvme${paths.length}`, Transport: 'tcp', Address: `traddr=${addr},trsvcid=${argv[argv.indexOf('-s') + 1]}`, State: 'live' });
      devices.nvme0n1 ??= { nguid: NGUID, sectors: 2097152 };
      return ok();
    }
    if (argv[1] === 'disconnect') {
      paths.length = 0;
      return ok();
    }
    if (argv[1] === 'ns-rescan') {
      if (devices.nvme0n1) devices.nvme0n1.sectors = 4194304;
      return ok();
    }
    throw new Error(`unexpected ${argv.join(' ')}`);
  };
  const io: ConnectorIo = {
    readdir: async (p) => {
      if (p === '/sys/class/block') return Object.keys(devices);
      if (p === '/sys/class/nvme-subsystem/nvme-subsys0') return o.subsysChildren ?? ['nvme0n1', 'subsysnqn'];
      return [];
    },
    readFile: async (p) => {
      const m = /^\/sys\/class\/block\/(\w+)\/(nguid|size)$/.exec(p);
      const d = m ? devices[m[1]!] : undefined;
      if (!d) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
      return m![2] === 'nguid' ? `${d.nguid}\n` : `${d.sectors ?? 0}\n`;
    },
    writeFile: async () => undefined,
    exists: async () => true,
  };
  const connector = new NvmeConnector({ runner, io, deviceWaitMs: 200, pollMs: 10 });
  return { connector, calls, paths };
}

describe('parseNvmeConnectionInfo', () => {
  it('reads the new and the old format, and refuses what must not reach nvme-cli', () => {
    expect(parseNvmeConnectionInfo(ci())).toEqual({ nqn: SUB, portals: [{ address: '127.0.0.1', port: 4420 }], nguid: NGUID.replace(/-/g, ''), hostNqn: HOST });
    expect(parseNvmeConnectionInfo({ nqn: SUB, target_portal: '10.0.0.5', target_port: '3260', volume_nguid: NGUID }).portals).toEqual([{ address: '10.0.0.5', port: 3260 }]);
    expect(() => parseNvmeConnectionInfo({ ...ci(), driver_volume_type: 'iscsi' })).toThrow(/not nvmeof/);
    expect(() => parseNvmeConnectionInfo({ data: { ...ci().data, volume_nguid: undefined } })).toThrow(/never by ns_id alone/);
    expect(() => parseNvmeConnectionInfo({ data: { ...ci().data, target_nqn: 'nqn.x; rm -rf /' } })).toThrow();
    expect(() => parseNvmeConnectionInfo(ci([['10.0.0.5', '4420', 'rdma']]))).toThrow(/only NVMe\/TCP/);
    expect(() => parseNvmeConnectionInfo(ci([['10.0.0.5', '99999', 'tcp']]))).toThrow(/1-65535/);
  });
});

describe('cinderblock connector', () => {
  it('sends NVMe-oF connection_info to nvme-cli and the rest to iscsiadm', () => {
    expect(isNvmeof(ci())).toBe(true);
    expect(isNvmeof(ci().data)).toBe(true);
    expect(isNvmeof({ driver_volume_type: 'iscsi', data: { target_iqn: 'iqn.x', target_portal: '1.2.3.4:3260', target_lun: 0 } })).toBe(false);
    expect(isNvmeof({ target_iqn: 'iqn.x', target_portal: '1.2.3.4:3260', target_lun: 0 })).toBe(false);
  });
});

describe('NvmeConnector', () => {
  it('connects each portal once as the host NQN, finds the namespace by nguid, and disconnects', async () => {
    const h = fakeHost();
    const d = await h.connector.connectVolume(ci([['127.0.0.1', '4420', 'tcp'], ['127.0.0.2', '4420', 'tcp']]));
    expect(d).toEqual({ path: '/dev/nvme0n1', controllers: ['nvme0', 'nvme1'], connected: ['127.0.0.1:4420', '127.0.0.2:4420'] });
    const connects = h.calls.filter((c) => c[1] === 'connect');
    expect(connects).toHaveLength(2);
    expect(connects[0]).toEqual(['nvme', 'connect', '-t', 'tcp', '-a', '127.0.0.1', '-s', '4420', '-n', SUB, '--hostnqn', HOST, '-l', '-1']);
    // again: nothing new to connect
    expect((await h.connector.connectVolume(ci([['127.0.0.1', '4420', 'tcp'], ['127.0.0.2', '4420', 'tcp']]))).connected).toEqual([]);
    expect(await h.connector.extendVolume(ci())).toBe(4194304 * 512);
    expect(h.calls.filter((c) => c[1] === 'ns-rescan').map((c) => c[2])).toEqual(['/dev/nvme0', '/dev/nvme1']);
    expect(await h.connector.disconnectVolume(ci())).toEqual({ disconnected: true });
    expect(h.calls.at(-1)).toEqual(['nvme', 'disconnect', '-n', SUB]);
  });

  it('says which host NQN was refused when no portal connects, and that a namespace not mapped never shows', async () => {
    const refused = fakeHost({ refuse: ['127.0.0.1'] });
    await expect(refused.connector.connectVolume(ci())).rejects.toThrow(`no portal of ${SUB} could be connected as ${HOST}`);
    // connected, but the target maps another volume's namespace only: never taken for ours
    const other = fakeHost({ devices: { nvme0n1: { nguid: 'aaaaaaaa-0000-4000-8000-000000000001' } } });
    await expect(other.connector.connectVolume(ci())).rejects.toThrow(/no namespace with nguid .* appeared/);
  });

  it('leaves the controllers of a subsystem that still serves another namespace here', async () => {
    const h = fakeHost({ subsysChildren: ['nvme0n1', 'nvme0n2'] });
    await h.connector.connectVolume(ci());
    const before = h.calls.length;
    expect(await h.connector.disconnectVolume(ci())).toEqual({ disconnected: false });
    expect(h.calls.some((c) => c[1] === 'disconnect')).toBe(false);
    // one list-subsys serves both the live controllers and the subsystem's namespaces
    expect(h.calls.slice(before).filter((c) => c[1] === 'list-subsys')).toHaveLength(1);
  });
});
