// sdNotify against a real AF_UNIX datagram socket (a python receiver standing in for systemd),
// by path and in the abstract namespace.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { NativeError, notifyReady, notifyStatus, notifyStopping, notifyWatchdog, sdNotify } from '../../../src/native/index.js';
import { LineChild, SYSTEM_PYTHON } from './helpers.js';

const receiverScript = path.join(import.meta.dirname, 'fixtures', 'notify_receiver.py');
const dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-notify-'));
const children: LineChild[] = [];

afterEach(() => children.splice(0).forEach((c) => c.kill()));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function receiver(address: string, count: number): Promise<LineChild> {
  const c = LineChild.spawn(SYSTEM_PYTHON, [receiverScript, address, String(count)]);
  children.push(c);
  await c.waitFor('BOUND');
  return c;
}

async function received(c: LineChild): Promise<string[]> {
  expect(await c.exited).toBe(0);
  return c.lines.slice(1).map((l) => JSON.parse(l) as string);
}

const havePython = existsSync(SYSTEM_PYTHON);
if (!havePython) console.warn(`sdNotify tests skipped: they need ${SYSTEM_PYTHON} to receive datagrams`);

describe.skipIf(!havePython)('sdNotify', () => {
  it('sends READY=1 and the other states to a socket path', async () => {
    const address = path.join(dir, 'notify.sock');
    const r = await receiver(address, 5);
    const env = { NOTIFY_SOCKET: address };
    expect(notifyReady(env)).toBe(true);
    expect(notifyStatus('serving 3 volumes\nsecond line', env)).toBe(true);
    expect(notifyWatchdog(env)).toBe(true);
    expect(notifyStopping(env)).toBe(true);
    expect(sdNotify('RELOADING=1\nMONOTONIC_USEC=123', env)).toBe(true);
    expect(await received(r)).toEqual([
      'READY=1',
      'STATUS=serving 3 volumes second line',
      'WATCHDOG=1',
      'STOPPING=1',
      'RELOADING=1\nMONOTONIC_USEC=123',
    ]);
  });

  it('sends to an abstract socket written as @name', async () => {
    const address = `@cinderblock-test-${process.pid}-${Date.now()}`;
    const r = await receiver(address, 1);
    expect(sdNotify('READY=1', { NOTIFY_SOCKET: address })).toBe(true);
    expect(await received(r)).toEqual(['READY=1']);
  });

  it('reads $NOTIFY_SOCKET from process.env by default', async () => {
    const address = path.join(dir, 'default-env.sock');
    const r = await receiver(address, 1);
    const saved = process.env.NOTIFY_SOCKET;
    process.env.NOTIFY_SOCKET = address;
    try {
      expect(notifyReady()).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
    expect(await received(r)).toEqual(['READY=1']);
  });

  it('returns false when NOTIFY_SOCKET is unset or empty', () => {
    expect(sdNotify('READY=1', {})).toBe(false);
    expect(notifyReady({ NOTIFY_SOCKET: '' })).toBe(false);
  });

  it('throws a NativeError when nobody listens, or the address is not usable', () => {
    const missing = path.join(dir, 'nobody.sock');
    let err: unknown;
    try {
      notifyReady({ NOTIFY_SOCKET: missing });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'sendto', path: missing });
    expect((err as Error).message).toContain('NOTIFY_SOCKET');
    expect(() => notifyReady({ NOTIFY_SOCKET: 'vsock:2:1234' })).toThrow(expect.objectContaining({ code: 'EAFNOSUPPORT' }));
    expect(() => notifyReady({ NOTIFY_SOCKET: `/${'x'.repeat(200)}` })).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });
});
