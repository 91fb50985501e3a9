// nvme-cli argv and the reading of its JSON. The 2.x samples in fixtures/ were captured in the lab
// guest (fixtures/README.md); the object-without-host-level sample is written here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  blockNguidPath,
  connectArgv,
  disconnectArgv,
  findByNguid,
  idNsArgv,
  isNamespaceDevice,
  listArgv,
  listSubsysArgv,
  liveControllers,
  nsRescanArgv,
  parseAddress,
  parseIdNsNguid,
  parseList,
  parseListSubsys,
} from '../../../src/connector/nvme-commands.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const SUB = 'nqn.iqn.2010-10.org.openstack:-d1d1d1d1-0000-4000-8000-0000000000e1';
const HOST = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b000a';

describe('nvme argv', () => {
  it('connect over tcp with the host NQN (and host id), as separate argv elements', () => {
    expect(connectArgv({ transport: 'tcp', traddr: '10.0.0.5', trsvcid: 4420, subnqn: SUB, hostnqn: HOST })).toEqual([
      'nvme', 'connect', '-t', 'tcp', '-a', '10.0.0.5', '-s', '4420', '-n', SUB, '--hostnqn', HOST,
    ]);
    expect(connectArgv({ transport: 'tcp', traddr: 'fd00::5', trsvcid: 4420, subnqn: SUB, hostnqn: HOST, hostid: '0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b000a', ctrlLossTmo: -1 }).slice(-4)).toEqual([
      '--hostid', '0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b000a', '-l', '-1',
    ]);
    expect(connectArgv({ transport: 'tcp', traddr: '10.0.0.5', trsvcid: 4420, subnqn: SUB, hostnqn: HOST, reconnectDelay: 1, duplicateConnect: true }).slice(-3)).toEqual(['-c', '1', '-D']);
    expect(() => connectArgv({ transport: 'tcp', traddr: '10.0.0.5', trsvcid: 4420, subnqn: SUB, hostnqn: HOST, reconnectDelay: 0 })).toThrow(/reconnect_delay/);
  });

  it('refuses what could become an option or a path', () => {
    const ok = { transport: 'tcp' as const, traddr: '10.0.0.5', trsvcid: 4420, subnqn: SUB, hostnqn: HOST };
    expect(() => connectArgv({ ...ok, traddr: '-a' })).toThrow(/IP address/);
    expect(() => connectArgv({ ...ok, traddr: 'storage.example' })).toThrow(/IP address/);
    expect(() => connectArgv({ ...ok, trsvcid: 0 })).toThrow(/port/);
    expect(() => connectArgv({ ...ok, subnqn: '--force' })).toThrow(/NVMe qualified name/);
    expect(() => connectArgv({ ...ok, hostnqn: 'nqn.a b' })).toThrow(/NVMe qualified name/);
    expect(() => connectArgv({ ...ok, hostid: 'not-a-uuid' })).toThrow(/host id/);
    expect(() => connectArgv({ ...ok, transport: 'rdma' as 'tcp' })).toThrow(/tcp/);
    expect(() => disconnectArgv('nqn.x/../y')).toThrow(/NVMe qualified name/);
    expect(() => nsRescanArgv('nvme0n1')).toThrow(/controller/);
    expect(() => idNsArgv('sda')).toThrow(/namespace/);
    expect(() => blockNguidPath('../sda')).toThrow(/namespace/);
  });

  it('the other commands', () => {
    expect(disconnectArgv(SUB)).toEqual(['nvme', 'disconnect', '-n', SUB]);
    expect(listSubsysArgv()).toEqual(['nvme', 'list-subsys', '-o', 'json']);
    expect(listArgv()).toEqual(['nvme', 'list', '-o', 'json']);
    expect(nsRescanArgv('nvme0')).toEqual(['nvme', 'ns-rescan', '/dev/nvme0']);
    expect(idNsArgv('nvme0n1')).toEqual(['nvme', 'id-ns', '/dev/nvme0n1', '-o', 'json']);
    expect(blockNguidPath('nvme1n2')).toBe('/sys/class/block/nvme1n2/nguid');
  });
});

describe('device by nguid', () => {
  it('matches sysfs (dashed) and id-ns (bare) forms; ignores multipath legs and zero nguids', () => {
    const devices = [
      { name: 'nvme0c0n1', nguid: 'd1d1d1d1-0000-4000-8000-0000000000e1\n' },
      { name: 'nvme0n2', nguid: '00000000-0000-0000-0000-000000000000\n' },
      { name: 'nvme0n1', nguid: 'd1d1d1d1-0000-4000-8000-0000000000e1\n' },
    ];
    expect(findByNguid(devices, 'D1D1D1D1-0000-4000-8000-0000000000E1')).toBe('nvme0n1');
    expect(findByNguid(devices, 'd1d1d1d100004000800000000000000e1'.slice(0, 32))).toBe(null);
    expect(findByNguid(devices, 'd1d1d1d1000040008000' + '0000000000e1')).toBe('nvme0n1');
    expect(findByNguid(devices, '00000000-0000-0000-0000-000000000000')).toBe(null);
    expect(isNamespaceDevice('nvme12n3')).toBe(true);
    expect(isNamespaceDevice('nvme0c1n1')).toBe(false);
    expect(isNamespaceDevice('nvme0')).toBe(false);
  });
});

describe('nvme list-subsys', () => {
  it('reads nvme-cli 2.x output (fixtures/nvme-list-subsys-2.json)', () => {
    const subs = parseListSubsys(fixture('nvme-list-subsys-2.json'));
    const mine = subs.filter((s) => s.nqn === SUB);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.paths.map((p) => [p.name, p.transport, p.traddr, p.trsvcid, p.state])).toEqual([['nvme0', 'tcp', '127.0.0.1', '4420', 'live']]);
    expect(liveControllers(subs, SUB)).toEqual(['nvme0']);
    expect(liveControllers(subs, 'nqn.2020-01.org.example:other')).toEqual([]);
  });

  it('reads one object without the host level, paths as the next element, and empty output', () => {
    const v1 = JSON.stringify({
      Subsystems: [
        { Name: 'nvme-subsys0', NQN: SUB },
        { Paths: [{ Name: 'nvme0', Transport: 'tcp', Address: 'traddr=10.0.0.5 trsvcid=4420', State: 'connecting' }] },
      ],
    });
    const subs = parseListSubsys(v1);
    expect(subs).toEqual([{ name: 'nvme-subsys0', nqn: SUB, hostNqn: null, paths: [{ name: 'nvme0', transport: 'tcp', traddr: '10.0.0.5', trsvcid: '4420', state: 'connecting' }] }]);
    expect(liveControllers(subs, SUB)).toEqual([]);
    expect(parseListSubsys('')).toEqual([]);
    expect(parseListSubsys('[]')).toEqual([]);
  });

  it('splits an address', () => {
    expect(parseAddress('traddr=127.0.0.1,trsvcid=4420,src_addr=127.0.0.1')).toEqual({ traddr: '127.0.0.1', trsvcid: '4420', src_addr: '127.0.0.1' });
  });
});

describe('nvme list and id-ns', () => {
  it('reads nvme list -o json (fixtures/nvme-list-2.json)', () => {
    const l = parseList(fixture('nvme-list-2.json'));
    expect(l.map((d) => d.devicePath)).toContain('/dev/nvme0n1');
    const d = l.find((x) => x.devicePath === '/dev/nvme0n1')!;
    expect(d.modelNumber).toBe('Linux');
    expect(parseList('')).toEqual([]);
    expect(parseList('{}')).toEqual([]);
  });

  it('reads the nguid of id-ns -o json (fixtures/nvme-id-ns-2.json), none when zero', () => {
    expect(parseIdNsNguid(fixture('nvme-id-ns-2.json'))).toBe('d1d1d1d10000400080000000000000e1');
    const listed = parseList(fixture('nvme-list-2.json'))[0]!;
    expect([listed.nsid, listed.physicalSize, listed.serialNumber]).toEqual([10, 1073741824, '07d3c7f53af5dc15c2d3']);
    expect(parseIdNsNguid(JSON.stringify({ nsze: 2097152, nguid: 'd1d1d1d1000040008000000000000000e1'.slice(0, 32) }))).toBe('d1d1d1d1000040008000000000000000');
    expect(parseIdNsNguid(JSON.stringify({ nguid: '00000000000000000000000000000000' }))).toBe(null);
    expect(parseIdNsNguid(JSON.stringify({}))).toBe(null);
  });
});
