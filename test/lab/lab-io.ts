// Small helpers the lab suites share: run a host tool, read or write a block device at an offset
// through the device itself (not a page cache another device node may have left stale), and list
// NVMe namespaces by nguid.
// Not a suite: vitest's lab config only picks up *.lab.test.ts.
import { execFileSync } from 'node:child_process';
import { constants as fsc, readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { blockNguidPath, isNamespaceDevice } from '../../src/connector/nvme-commands.js';
import { flushBufferCache } from '../../src/native/index.js';

/** Runs argv (no shell) with LVM's fd warnings off and C messages; throws on a non-zero exit. */
export function sh(argv: string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    input,
    env: { ...process.env, LC_ALL: 'C', LVM_SUPPRESS_FD_WARNINGS: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** sh, with the failure as a value: the exit code and what the tool printed. */
export function shTry(argv: string[]): { code: number; out: string } {
  try {
    return { code: 0, out: sh(argv) };
  } catch (e) {
    const x = e as { status?: number; stdout?: string; stderr?: string };
    return { code: x.status ?? -1, out: `${x.stdout ?? ''}${x.stderr ?? ''}` };
  }
}

/** Polls `fn` every `pollMs` until it gives a truthy value, or fails naming `what` after `ms`. */
export async function until<T>(what: string, ms: number, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, pollMs = 250): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** A test pattern: `tag|tag|…` repeated over `size` bytes, so a stray block says whose it was. */
export function pattern(tag: string, size = 4096): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < b.length; i += tag.length + 1) b.write(`${tag}|`, i);
  return b;
}

/** Writes and waits for the data to be on the device (O_DSYNC). */
export async function writeAt(dev: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(dev, fsc.O_WRONLY | fsc.O_DSYNC);
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

/** Reads from the device itself: its buffer cache is dropped first. */
export async function readAt(dev: string, offset: number, length = 4096): Promise<Buffer> {
  await flushBufferCache(dev);
  const fh = await open(dev, fsc.O_RDONLY);
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, offset);
    return b;
  } finally {
    await fh.close();
  }
}

/** NVMe namespace block devices and their sysfs nguid, as the NVMe connector looks for a volume. */
export function nvmeNamespaces(): Array<{ name: string; nguid: string }> {
  const out: Array<{ name: string; nguid: string }> = [];
  for (const name of readdirSync('/sys/class/block').filter(isNamespaceDevice)) {
    try {
      out.push({ name, nguid: readFileSync(blockNguidPath(name), 'utf8') });
    } catch {
      // gone between the listing and the read
    }
  }
  return out;
}
