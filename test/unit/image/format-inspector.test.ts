// The header inspection against images qemu-img itself writes: each format detected, and the
// unsafe ones (backing file, data file, QED, a VMDK type not allowed) refused.
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expectedQemuFormat, inspectImageHead } from '../../../src/image/format-inspector.js';
import { readHead as head } from '../../../src/image/fetch-to-volume.js';

let dir: string;
const ALLOWED = ['streamOptimized', 'monolithicSparse'];


async function made(name: string, args: string[]): Promise<Buffer> {
  const p = join(dir, name);
  await execa('qemu-img', ['create', ...args.map((a) => a.replace('$DIR', dir)), p, '1M']);
  return head(p);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cb-inspect-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('inspectImageHead on images qemu-img wrote', () => {
  it('finds a plain qcow2 safe, with its virtual size', async () => {
    expect(inspectImageHead(await made('plain.qcow2', ['-f', 'qcow2']))).toEqual({ format: 'qcow2', virtualSize: 1024 * 1024, unsafe: null });
  });
  it('refuses a qcow2 with a backing file on the host', async () => {
    const h = await made('backed.qcow2', ['-f', 'qcow2', '-b', '/etc/hostname', '-F', 'raw']);
    expect(inspectImageHead(h).unsafe).toBe('qcow2 image has a backing file');
  });
  it('refuses a qcow2 with an external data file', async () => {
    const h = await made('datafile.qcow2', ['-f', 'qcow2', '-o', 'data_file=$DIR/data.raw']);
    expect(inspectImageHead(h).unsafe).toBe('qcow2 image has an external data file');
  });
  it('refuses unknown incompatible feature bits', async () => {
    const h = Buffer.from(await made('future.qcow2', ['-f', 'qcow2']));
    h.writeBigUInt64BE(1n << 10n, 0x48);
    expect(inspectImageHead(h).unsafe).toMatch(/unknown incompatible features/);
  });
  it('always refuses QED', async () => {
    expect(inspectImageHead(await made('x.qed', ['-f', 'qed']))).toMatchObject({ format: 'qed', unsafe: expect.any(String) });
  });
  it('detects vpc, vhdx and vdi', async () => {
    expect(inspectImageHead(await made('x.vhd', ['-f', 'vpc'])).format).toBe('vpc');
    expect(inspectImageHead(await made('x.vhdx', ['-f', 'vhdx'])).format).toBe('vhdx');
    expect(inspectImageHead(await made('x.vdi', ['-f', 'vdi']))).toMatchObject({ format: 'vdi', virtualSize: 1024 * 1024, unsafe: null });
  });
  it('reads the VMDK createType and applies vmdk_allowed_types', async () => {
    const so = await made('so.vmdk', ['-f', 'vmdk', '-o', 'subformat=streamOptimized']);
    expect(inspectImageHead(so, { vmdkAllowedTypes: ALLOWED })).toEqual({ format: 'vmdk', unsafe: null, vmdkCreateType: 'streamOptimized' });
    expect(inspectImageHead(so, { vmdkAllowedTypes: [] }).unsafe).toBe('Invalid VMDK create-type specified: streamOptimized');
  });
  it('calls anything else raw, a qcow2 header cut short included', async () => {
    await writeFile(join(dir, 'r'), Buffer.alloc(4096, 7));
    expect(inspectImageHead(await head(join(dir, 'r')))).toEqual({ format: 'raw', unsafe: null });
    expect(inspectImageHead(Buffer.from([0x51, 0x46, 0x49, 0xfb])).format).toBe('raw');
  });
});

describe('expectedQemuFormat (fixup_disk_format)', () => {
  it('maps glance names to what qemu-img detects', () => {
    expect(expectedQemuFormat('iso')).toBe('raw');
    expect(expectedQemuFormat('vhd')).toBe('vpc');
    expect(expectedQemuFormat('ploop')).toBe('parallels');
    expect(expectedQemuFormat('qcow2')).toBe('qcow2');
    expect(expectedQemuFormat('ami')).toBeNull();
  });
});
