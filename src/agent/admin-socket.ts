// The agent's local admin socket, what `cinderblock status` and `cinderblock log-level` talk to.
// A unix socket, never a TCP port: the only gate is the file's permissions (0600, owned by the
// agent's user, in a 0700 directory), so only root (or whoever runs the agent) can ask. The
// protocol is one JSON line in, one JSON line out, then the agent closes the connection:
//   {"op":"status"}                                  -> {"ok":true,"result":{...}}
//   {"op":"set-log-level","level":"DEBUG","backend":"lvm"} -> {"ok":true,"result":{...}}
// Nothing sent back holds a secret: the snapshot is counts, names and states.
import { chmod, mkdir, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** Where the agent listens: under state_path, beside the RPC poison record. */
export function adminSocketPath(statePath: string): string {
  return join(statePath, 'cinderblock', 'admin.sock');
}

export type AdminHandler = (request: Record<string, unknown>) => Promise<unknown>;

export interface AdminSocket {
  readonly path: string;
  close(): Promise<void>;
}

/** A request line longer than this is not ours; the connection is dropped. */
const MAX_REQUEST_BYTES = 64 * 1024;

/** Is some process accepting on `path`? (a stale file from a crash is not) */
async function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function serve(socket: Socket, handlers: Record<string, AdminHandler>, logger: Logger): void {
  let buf = '';
  let done = false;
  const reply = (body: unknown) => {
    if (done) return;
    done = true;
    socket.end(`${JSON.stringify(body)}\n`);
  };
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    if (done) return;
    buf += chunk;
    if (buf.length > MAX_REQUEST_BYTES) {
      reply({ ok: false, error: 'request too long' });
      return;
    }
    const nl = buf.indexOf('\n');
    if (nl === -1) return;
    let request: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(buf.slice(0, nl));
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      request = parsed as Record<string, unknown>;
    } catch {
      reply({ ok: false, error: 'a request is one JSON object on one line' });
      return;
    }
    const op = typeof request.op === 'string' ? request.op : '';
    const handler = Object.hasOwn(handlers, op) ? handlers[op] : undefined;
    if (!handler) {
      reply({ ok: false, error: `unknown op ${JSON.stringify(op)}; known: ${Object.keys(handlers).join(', ')}` });
      return;
    }
    handler(request).then(
      (result) => reply({ ok: true, result }),
      (err: unknown) => {
        // a refused request (unknown backend, bad level) is the caller's mistake; the caller gets the reason
        logger.debug({ err, op }, 'admin socket request refused');
        reply({ ok: false, error: err instanceof Error ? err.message : String(err) });
      },
    );
  });
}

/**
 * Listens on `path` (mode 0600). A socket file another live agent answers on is not taken over:
 * two agents on one state_path would serve the same backends twice.
 */
export async function startAdminSocket(path: string, handlers: Record<string, AdminHandler>, logger: Logger): Promise<AdminSocket> {
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // the directory is the gate between bind() and the chmod below (the umask is process-wide and
  // other work runs meanwhile, so it is not touched)
  await chmod(dir, 0o700);
  if (await answers(path)) {
    throw new Error(`another process answers on the admin socket ${path}: is a second cinderblock running with this state_path?`);
  }
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  const server: Server = createServer((s) => serve(s, handlers, logger));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  server.unref();
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // node removes the socket file on close; nothing else to clean
      }),
  };
}

export class AdminSocketError extends Error {
  constructor(
    message: string,
    /** the agent is not running (or not listening): callers fall back to the database */
    readonly unreachable: boolean,
  ) {
    super(message);
    this.name = 'AdminSocketError';
  }
}

/** One request to the agent; AdminSocketError(unreachable) when nothing listens on `path`. */
export async function adminRequest(path: string, request: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path);
    let buf = '';
    let connected = false;
    const timer = setTimeout(() => {
      s.destroy();
      reject(new AdminSocketError(`the agent did not answer on ${path} within ${timeoutMs / 1000} s; its event loop may be stuck (see \`journalctl -u cinderblock\`)`, false));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => {
      connected = true;
      s.write(`${JSON.stringify(request)}\n`);
    });
    s.on('data', (c: string) => {
      buf += c;
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) {
        reject(new AdminSocketError(`no agent is listening on ${path}`, true));
      } else if (err.code === 'EACCES') {
        reject(new AdminSocketError(`permission denied on ${path}: run this as the agent's user (root)`, false));
      } else {
        reject(new AdminSocketError(`admin socket ${path}: ${err.message}`, false));
      }
    });
    s.on('end', () => {
      clearTimeout(timer);
      let body: { ok?: boolean; result?: unknown; error?: string };
      try {
        body = JSON.parse(buf.trim()) as typeof body;
      } catch {
        reject(new AdminSocketError(`the agent sent no readable answer on ${path}`, false));
        return;
      }
      if (body.ok) resolve(body.result);
      else reject(new AdminSocketError(`the agent refused: ${body.error ?? 'no reason given'}`, false));
    });
  });
}
