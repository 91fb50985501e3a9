// The cinder options the nvmet helper reads (cinder/volume/targets/nvmeof.py and the backend's
// volume_opts), resolved and checked once, and the ports they make: target_ip_address on
// nvmet_port_id, each of the secondary addresses on the next port id (upstream cinder 2023.1+
// does the same), all on target_port.
import { isIP } from 'node:net';
import { invalidInput } from '../../../src/errors.js';
import { assertPort } from '../../../src/iscsi/index.js';
import { tcpPortAddress, type PortAddress } from './nvmet-configfs.js';

export interface NvmetTargetOptions {
  /** target_prefix; the subsystem NQN is `nqn.<prefix>-<volume id>` as cinder's nvmet.py makes it */
  targetPrefix: string;
  /** target_ip_address */
  targetIpAddress: string;
  /** iscsi_secondary_ip_addresses (cinder's only name for secondary addresses): one port each */
  targetSecondaryIpAddresses: readonly string[];
  /** target_port: 4420 is NVMe/TCP's registered port */
  targetPort: number;
  /** target_protocol: nvmet_tcp (nvmet_rdma is refused: no RDMA here) */
  targetProtocol: string;
  /** nvmet_port_id: the first port's id, default 1 */
  nvmetPortId: number;
  /** nvmet_ns_id: the namespace id of a per-volume subsystem, default 10 */
  nvmetNsId: number;
}

/** NVMe/TCP's IANA port, recommended at start-up; cinder's target_port default (3260, used as is) is iSCSI's. */
export const NVME_TCP_PORT = 4420;

/** nsid 0 and 0xffffffff are reserved (the kernel answers EINVAL). */
export const MAX_NSID = 0xfffffffe;

export interface NvmetPort {
  id: number;
  ip: string;
  addr: PortAddress;
}

export function validateNvmetOptions(o: NvmetTargetOptions): void {
  if (typeof o.targetPrefix !== 'string' || !/^[A-Za-z0-9._:-]{1,150}$/.test(o.targetPrefix)) {
    throw invalidInput(`target_prefix for target_helper = nvmet must be 1-150 letters, digits, '.', '_', ':' or '-', got ${JSON.stringify(o.targetPrefix)}`);
  }
  for (const ip of [o.targetIpAddress, ...o.targetSecondaryIpAddresses]) {
    if (typeof ip !== 'string' || isIP(ip) === 0) {
      throw invalidInput(`target_helper = nvmet listens on IP addresses; target_ip_address/iscsi_secondary_ip_addresses has ${JSON.stringify(ip)}`);
    }
  }
  assertPort(o.targetPort);
  if (o.targetProtocol !== 'nvmet_tcp') {
    throw invalidInput(`target_helper = nvmet needs target_protocol = nvmet_tcp (nvmet_rdma is not supported by cinderblock), got ${JSON.stringify(o.targetProtocol)}`);
  }
  const last = o.nvmetPortId + o.targetSecondaryIpAddresses.length;
  if (!Number.isSafeInteger(o.nvmetPortId) || o.nvmetPortId < 0 || last > 0xffff) {
    throw invalidInput(`nvmet_port_id must leave room for one port per address (0..65535), got ${o.nvmetPortId} with ${o.targetSecondaryIpAddresses.length + 1} addresses`);
  }
  if (!Number.isSafeInteger(o.nvmetNsId) || o.nvmetNsId < 1 || o.nvmetNsId > MAX_NSID) {
    throw invalidInput(`nvmet_ns_id must be 1..${MAX_NSID}, got ${o.nvmetNsId}`);
  }
}

/** target_ip_address on nvmet_port_id, then each secondary address on the next id. */
export function nvmetPorts(o: NvmetTargetOptions): NvmetPort[] {
  return [o.targetIpAddress, ...o.targetSecondaryIpAddresses].map((ip, i) => ({ id: o.nvmetPortId + i, ip, addr: tcpPortAddress(ip, o.targetPort) }));
}
