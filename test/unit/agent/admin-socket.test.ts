import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { AdminSocketError, adminRequest, adminSocketPath, startAdminSocket, type AdminSocket } from '../../../src/agent/admin-socket.js';
import type { Logger } from '../../../src/log.js';

const logger = pino({ level: 'silent' }) as unknown as Logger;

describe('admin socket', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  async function started(handlers: Parameters<typeof startAdminSocket>[1]): Promise<{ path: string; sock: AdminSocket; dir: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'cb-admin-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const path = adminSocketPath(dir);
    const sock = await startAdminSocket(path, handlers, logger);
    cleanup.push(() => sock.close());
    return { path, sock, dir };
  }

  it('lives at <state_path>/cinderblock/admin.sock, mode 0600 in a 0700 directory', async () => {
    const { path, dir } = await started({});
    expect(path).toBe(join(dir, 'cinderblock', 'admin.sock'));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'cinderblock'))).mode & 0o777).toBe(0o700);
  });

  it('answers one JSON request with the handler result, and refuses an unknown op with the known ones', async () => {
    const { path } = await started({ status: async (req) => ({ echoed: req.x }) });
    expect(await adminRequest(path, { op: 'status', x: 5 })).toEqual({ echoed: 5 });
    await expect(adminRequest(path, { op: 'reboot' })).rejects.toThrow(/unknown op "reboot"; known: status/);
    await expect(adminRequest(path, { op: 'toString' })).rejects.toThrow(/unknown op/);
  });

  it('passes a handler failure back as a refusal, and drops what is not a JSON object', async () => {
    const { path } = await started({ boom: async () => Promise.reject(new Error('no backend x')) });
    const err = await adminRequest(path, { op: 'boom' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdminSocketError);
    expect((err as AdminSocketError).unreachable).toBe(false);
    expect((err as Error).message).toBe('the agent refused: no backend x');
    const raw = await new Promise<string>((resolve) => {
      const s = createConnection(path);
      let buf = '';
      s.on('connect', () => s.write('[1,2]\n'));
      s.on('data', (d) => (buf += d.toString()));
      s.on('end', () => resolve(buf));
    });
    expect(JSON.parse(raw)).toEqual({ ok: false, error: 'a request is one JSON object on one line' });
  });

  it('says unreachable when nothing listens, so the CLI falls back to the database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cb-admin-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const err = await adminRequest(join(dir, 'none.sock'), { op: 'status' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ unreachable: true });
    // a stale file left by a crash is not a listener either
    await writeFile(join(dir, 'stale.sock'), '');
    expect(await adminRequest(join(dir, 'stale.sock'), { op: 'status' }).catch((e: unknown) => e)).toMatchObject({ unreachable: true });
  });

  it('takes over a stale socket file, but not one a live agent answers on', async () => {
    const { path } = await started({ status: async () => 'first' });
    await expect(startAdminSocket(path, {}, logger)).rejects.toThrow(/another process answers on the admin socket/);
    expect(await adminRequest(path, { op: 'status' })).toBe('first');
    const dir = await mkdtemp(join(tmpdir(), 'cb-admin-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const stale = adminSocketPath(dir);
    await startAdminSocket(stale, {}, logger).then((s) => s.close());
    await writeFile(stale, 'left by a crash');
    const again = await startAdminSocket(stale, { status: async () => 'second' }, logger);
    cleanup.push(() => again.close());
    expect(await adminRequest(stale, { op: 'status' })).toBe('second');
  });
});
