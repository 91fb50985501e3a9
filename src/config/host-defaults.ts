// Machine-dependent defaults, computed the way cinder computes them when its config module loads:
//   host  = socket.gethostname()
//   my_ip = oslo_utils.netutils.get_my_ipv4(): the source address the kernel would pick for a UDP
//           "connection" to 192.0.2.0:80 (TEST-NET-1; nothing is sent); if that fails, the first
//           IPv4 address of the interface holding the default route; else 127.0.0.1.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { hostname as osHostname, networkInterfaces } from 'node:os';

export function defaultHostname(): string {
  return osHostname();
}

/** The fallback branch of get_my_ipv4 (netifaces default gateway), from /proc/net/route. */
export function defaultRouteIpv4(routeTable = '/proc/net/route'): string {
  let text: string;
  try {
    text = readFileSync(routeTable, 'utf8');
  } catch {
    return '127.0.0.1';
  }
  let best: { iface: string; metric: number } | null = null;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , flags, , , metric, mask] = f;
    const up = (Number.parseInt(flags!, 16) & 1) === 1;
    if (dest !== '00000000' || mask !== '00000000' || !up) continue;
    const m = Number(metric);
    if (!best || m < best.metric) best = { iface: iface!, metric: m };
  }
  if (!best) return '127.0.0.1';
  const addr = networkInterfaces()[best.iface]?.find((a) => a.family === 'IPv4');
  return addr?.address ?? '127.0.0.1';
}

/** get_my_ipv4(): UDP connect to 192.0.2.0:80 and read the local address; no packet is sent. */
export function detectMyIpv4(): Promise<string> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let done = false;
    const finish = (ip: string | null): void => {
      if (done) return;
      done = true;
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(ip ?? defaultRouteIpv4());
    };
    sock.on('error', () => finish(null));
    try {
      sock.connect(80, '192.0.2.0', () => {
        try {
          finish(sock.address().address);
        } catch {
          finish(null);
        }
      });
    } catch {
      finish(null);
    }
  });
}
