// The target part of connection_info for an NVMe-oF export, shaped for os-brick 6.1's
// NVMeOFConnector (CONTRACT-WAVE2 F1/F2). Both of its formats are present at once, which it
// accepts: `target_nqn` + `portals` make it take the new format, and the old keys cinder Zed's
// nvmeof.py sends (`nqn`, `target_portal`, `target_port`, `transport_type`) stay for any reader of
// the old one (nova stores this dict; other tools read it).
//
// Types matter: os-brick compares `ns_id` verbatim with the sysfs `nsid` text, so it must be a
// string (an integer never matches and the attach fails with VolumeDeviceNotFound); ports are
// strings because cinder's come from provider_location.split(' '). `volume_nguid` makes os-brick
// find the device by nguid rather than by the nsid; `host_nqn` makes it pass `-q <nqn>` to
// `nvme connect`, so the target sees exactly the NQN the subsystem admits.
//
// Keys the manager adds on top (encrypted, qos_specs, access_mode, cacheable, discard) are not set.
import type { ConnectionInfo } from './target.js';

export interface NvmeofPortal {
  ip: string;
  port: number;
}

export interface NvmeofPropertiesInput {
  nqn: string;
  nsid: number;
  /** lower-case dashed, as the kernel prints the namespace's nguid */
  nguid: string;
  /** the first is target_portal/target_port */
  portals: readonly NvmeofPortal[];
  /** the connector's nqn */
  hostNqn: string;
  transport?: 'tcp';
}

export function buildNvmeofConnectionInfo(input: NvmeofPropertiesInput): ConnectionInfo {
  const first = input.portals[0];
  if (!first) throw new Error('an NVMe-oF export needs at least one portal');
  const transport = input.transport ?? 'tcp';
  return {
    driver_volume_type: 'nvmeof',
    data: {
      target_nqn: input.nqn,
      nqn: input.nqn,
      transport_type: transport,
      portals: input.portals.map((p) => [p.ip, String(p.port), transport]),
      target_portal: first.ip,
      target_port: String(first.port),
      ns_id: String(input.nsid),
      volume_nguid: input.nguid,
      host_nqn: input.hostNqn,
    },
  };
}
