// A TCP relay a test can cut and restore, to take a real server (MariaDB, RabbitMQ, glance-api)
// away from the agent without stopping the shared server itself. `stallAfter` holds each new
// connection's answer after so many bytes, so a test can cut a download in its middle instead of
// racing a fast local transfer.
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpRelay {
  port: number;
  /** Drop every open connection and refuse new ones. */
  cut(): void;
  /** From now on, stop relaying a connection's answer once it passed `bytes` (null: never). */
  stallAfter(bytes: number | null): void;
  /** How many connections are held by stallAfter now. */
  stalled(): number;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpRelay(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpRelay> {
  let open = true;
  let stallLimit: number | null = null;
  let stalledNow = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream);
    // the answer by hand rather than piped: counted, and held once past the stall limit
    const limit = stallLimit;
    let relayed = 0;
    let held = false;
    upstream.on('data', (chunk: Buffer) => {
      relayed += chunk.length;
      if (!client.write(chunk)) upstream.pause();
      if (limit !== null && relayed >= limit && !held) {
        held = true;
        stalledNow++;
        upstream.pause();
      }
    });
    client.on('drain', () => {
      if (!held) upstream.resume();
    });
    upstream.on('end', () => client.end());
    client.on('close', () => {
      if (held) stalledNow--;
      held = false;
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    stallAfter(bytes) {
      stallLimit = bytes;
    },
    stalled: () => stalledNow,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
