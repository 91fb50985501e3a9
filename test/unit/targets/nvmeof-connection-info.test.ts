// connection_info for NVMe/TCP as os-brick 6.1's NVMeOFConnector reads it. Checked against the
// installed os-brick itself (Debian's python3-os-brick): its NVMeOFConnProps must take the new
// format, keep ns_id a string (compared verbatim with sysfs nsid), and normalise the nguid.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildNvmeofConnectionInfo } from '../../../drivers/targets/nvmeof-connection-info.js';

const NQN = 'nqn.iqn.2010-10.org.openstack:-9531a336-8b9f-4724-9d8d-d83f99b240e6';
const HOST = 'nqn.2014-08.org.nvmexpress:uuid:0f8b4d52-8e0c-4b4e-9a4e-4a7c3e2b0001';
const input = {
  nqn: NQN,
  nsid: 10,
  nguid: '9531a336-8b9f-4724-9d8d-d83f99b240e6',
  portals: [
    { ip: '10.0.0.5', port: 4420 },
    { ip: '10.0.1.5', port: 4420 },
  ],
  hostNqn: HOST,
};

describe('buildNvmeofConnectionInfo', () => {
  it('has both formats, strings for ns_id and ports, nguid and host_nqn', () => {
    const info = buildNvmeofConnectionInfo(input);
    expect(info.driver_volume_type).toBe('nvmeof');
    expect(info.data).toEqual({
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
      volume_nguid: input.nguid,
      host_nqn: HOST,
    });
  });

  it('refuses an export without portals', () => {
    expect(() => buildNvmeofConnectionInfo({ ...input, portals: [] })).toThrow(/portal/);
  });

  const osBrick = '/usr/lib/python3/dist-packages/os_brick/initiator/connectors/nvmeof.py';
  it.skipIf(!existsSync(osBrick))('is read by os-brick NVMeOFConnProps as one target with our portals, nsid, nguid and host NQN', () => {
    const script = [
      'import json, sys',
      'from os_brick.initiator.connectors import nvmeof',
      'data = json.load(sys.stdin)',
      'p = nvmeof.NVMeOFConnProps(data)',
      't = p.targets[0]',
      'print(json.dumps({"n": len(p.targets), "nqn": t.nqn, "ns_id": t.ns_id, "nguid": t.nguid, "uuid": t.uuid, "host_nqn": t.host_nqn,',
      '  "portals": [[x.address, x.port, x.transport] for x in t.portals], "replicated": p.is_replicated}))',
    ].join('\n');
    const out = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(buildNvmeofConnectionInfo(input).data), encoding: 'utf8' })) as Record<string, unknown>;
    expect(out).toEqual({
      n: 1,
      nqn: NQN,
      ns_id: '10',
      nguid: input.nguid,
      uuid: null,
      host_nqn: HOST,
      portals: [
        ['10.0.0.5', '4420', 'tcp'],
        ['10.0.1.5', '4420', 'tcp'],
      ],
      replicated: false,
    });
  });
});
