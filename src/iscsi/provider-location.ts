// provider_location for iSCSI exports: the line iSCSI discovery would print,
//   "<ip>:<port>[;<ip2>:<port>...],<tid> <iqn> <lun>"
// (targets/iscsi.py _iscsi_location, IPv6 addresses bracketed by volume_utils.sanitize_host),
// and its reading as _get_iscsi_properties does it. For tgt <tid> is tgtd's target id and the LUN
// is 1; for LIO <tid> is the IQN itself and the LUN 0.
import { isIP, isIPv6 } from 'node:net';
import { invalidInput } from '../errors.js';
import { describeUntrusted as describe } from '../validation/untrusted.js';

export interface Portal {
  /** IP address (IPv6 without brackets) or host name */
  host: string;
  port: number;
}

export interface ProviderLocation {
  /** portals as written, e.g. `127.0.0.1:3260`, `[::1]:3260` */
  portals: string[];
  /** the part after the comma: tgt tid, or the IQN for LIO; '' when absent */
  tid: string;
  iqn: string;
  /** 0 when missing or not a number, as cinder does */
  lun: number;
}

/** volume_utils.sanitize_host: brackets around an IPv6 literal. */
export function sanitizeHost(host: string): string {
  return isIPv6(host) ? `[${host}]` : host;
}

export function formatPortal(p: Portal): string {
  return `${sanitizeHost(p.host)}:${p.port}`;
}

/** Split `host:port` / `[v6]:port` back into its parts. */
export function parsePortal(text: string): Portal {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) throw invalidInput(`portal must be host:port or [ipv6]:port, got ${JSON.stringify(text)}`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidInput(`portal port out of range in ${JSON.stringify(text)}`);
  return { host: m[1] as string, port };
}

/** _iscsi_location(ip, tid, iqn, lun, ip_secondary) */
export function formatProviderLocation(args: { ips: readonly string[]; port: number; tid: string | number; iqn: string; lun: number }): string {
  if (args.ips.length === 0) throw invalidInput('provider_location needs at least one portal address');
  const portals = args.ips.map((ip) => formatPortal({ host: ip, port: args.port })).join(';');
  return `${portals},${args.tid} ${args.iqn} ${args.lun}`;
}

/** The reading of _get_iscsi_properties: portals before the comma, IQN second word, LUN third. */
export function parseProviderLocation(location: string): ProviderLocation {
  const words = location.split(' ');
  const first = words[0] ?? '';
  const iqn = words[1];
  if (!first || !iqn) throw invalidInput(`provider_location must be "<portal>[;<portal>...],<tid> <iqn> <lun>", got ${JSON.stringify(location)}`);
  const comma = first.indexOf(',');
  const portalPart = comma === -1 ? first : first.slice(0, comma);
  const tid = comma === -1 ? '' : first.slice(comma + 1);
  const lunText = words[2];
  const lun = lunText !== undefined && /^-?\d+$/.test(lunText) ? Number.parseInt(lunText, 10) : 0;
  return { portals: portalPart.split(';'), tid, iqn, lun };
}

/** IPv4 or IPv6 literal, or a host name (cinder allows a name in target_ip_address). */
export function assertPortalHost(value: unknown): asserts value is string {
  if (typeof value !== 'string') throw invalidInput(`portal address must be a string, got ${describe(value)}`);
  if (isIP(value)) return;
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*$/.test(value)) {
    throw invalidInput(`portal address must be an IP address or host name, got ${describe(value)}`);
  }
}

export function assertPort(value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw invalidInput(`port must be an integer 1-65535, got ${describe(String(value))}`);
  }
}
