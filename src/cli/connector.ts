// `cinderblock connector connect|disconnect|extend --connection-info FILE|-`: the initiator side
// (src/connector) for an operator, with the connection_info cinder returned (initialize_connection
// or an attachment's connection_info, e.g. `cinder --os-volume-api-version 3.27 attachment-show`).
// The result goes to stdout as one JSON line; logs (secrets masked) to stderr. The file holds the
// CHAP secret: read it from a 0600 file or from stdin, never from the command line. NVMe/TCP
// (driver_volume_type nvmeof) goes through nvme-cli, iSCSI through iscsiadm.
import { readFile } from 'node:fs/promises';
import { IscsiConnector } from '../connector/iscsi-connector.js';
import { NvmeConnector } from '../connector/nvme-connector.js';
import { createLogger } from '../log.js';

export interface ConnectorCommandOptions {
  connectionInfo: string;
  /** connect: force multipath on (true) or off (false); default: on when several portals are given */
  multipath?: boolean;
  /** iscsiadm interface (default `default`) */
  iface?: string;
  /** disconnect: carry on past failures and report them at the end */
  force?: boolean;
  /** e.g. "sudo -n" when not root */
  rootHelper?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function loadConnectionInfo(source: string, read: (p: string) => Promise<string> = (p) => readFile(p, 'utf8'), stdin = readStdin): Promise<unknown> {
  const text = source === '-' ? await stdin() : await read(source).catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read --connection-info ${source}: ${e.code ?? e.message}`);
  });
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`--connection-info ${source === '-' ? '(stdin)' : source} is not JSON: pass the connection_info object cinder returned`);
  }
}

export async function connectorCommand(action: 'connect' | 'disconnect' | 'extend', o: ConnectorCommandOptions, out: { write(s: string): unknown } = process.stdout): Promise<void> {
  const info = await loadConnectionInfo(o.connectionInfo);
  const logger = createLogger({ level: (process.env.CINDERBLOCK_LOG_LEVEL as 'info' | undefined) ?? 'info', destination: 2, pretty: Boolean(process.stderr.isTTY) });
  const rootHelper = o.rootHelper ? { rootHelper: o.rootHelper.split(/\s+/).filter(Boolean) } : {};
  if (isNvmeof(info)) {
    const nvme = new NvmeConnector({ logger, ...rootHelper });
    if (action === 'connect') out.write(`${JSON.stringify(await nvme.connectVolume(info))}\n`);
    else if (action === 'disconnect') out.write(`${JSON.stringify(await nvme.disconnectVolume(info))}\n`);
    else {
      const size = await nvme.extendVolume(info);
      out.write(`${JSON.stringify({ size_bytes: size, size_gib: size / 1024 ** 3 })}\n`);
    }
    return;
  }
  const connector = new IscsiConnector({
    logger,
    ...(o.iface ? { iface: o.iface } : {}),
    ...rootHelper,
  });
  if (action === 'connect') {
    const d = await connector.connectVolume(info, o.multipath === undefined ? {} : { multipath: o.multipath });
    out.write(`${JSON.stringify(d)}\n`);
  } else if (action === 'disconnect') {
    await connector.disconnectVolume(info, { force: Boolean(o.force) });
    out.write(`${JSON.stringify({ disconnected: true })}\n`);
  } else {
    const size = await connector.extendVolume(info);
    out.write(`${JSON.stringify({ size_bytes: size, size_gib: size / 1024 ** 3 })}\n`);
  }
}

/** NVMe-oF connection_info: its driver_volume_type, or (flattened) a target NQN and an nguid. */
export function isNvmeof(info: unknown): boolean {
  const top = (info ?? {}) as Record<string, unknown>;
  if (top.driver_volume_type !== undefined) return top.driver_volume_type === 'nvmeof';
  const d = (top.data ?? top) as Record<string, unknown>;
  return (typeof d.target_nqn === 'string' || typeof d.nqn === 'string') && typeof d.volume_nguid === 'string';
}
