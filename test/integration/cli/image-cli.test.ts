// `cinderblock image fetch` and `image upload` against Debian's glance-api: the built CLI, as an
// operator runs it, from a cinder.conf naming that glance. Bytes checked both ways; a hostile image
// refused with a message and a failing exit code; a failed upload leaves no queued image.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../../helpers/fixtures.js';
import { glanceAvailable, startGlance, type GlanceHandle } from '../../helpers/glance.js';

const MiB = 1024 * 1024;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(repoRoot, 'bin', 'cinderblock.js'), ...args], { timeout: 120_000, maxBuffer: 16 * MiB }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

describe.runIf(glanceAvailable())('cinderblock image fetch / upload with the real glance-api', () => {
  let glance: GlanceHandle;
  let work: string;
  let conf: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'cb-image-cli-'));
    glance = await startGlance({ port: 19299 });
    conf = join(work, 'cinder.conf');
    await writeFile(
      conf,
      `[DEFAULT]\nstate_path = ${work}\nglance_api_servers = ${glance.url}\nimage_conversion_dir = ${join(work, 'conversion')}\nenabled_backends = file\n[file]\nvolume_driver = file\nfile_volume_dir = ${join(work, 'volumes')}\n`,
    );
  }, 240_000);
  afterAll(async () => {
    await glance?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('fetches raw and qcow2 images onto a file, uploads a file as qcow2, refuses a backing file', async () => {
    const content = Buffer.concat([randomBytes(2 * MiB), Buffer.alloc(4 * MiB), randomBytes(2 * MiB)]);
    const rawFile = join(work, 'content.raw');
    await writeFile(rawFile, content);
    const raw = await glance.addImage({ name: 'cli-raw', disk_format: 'raw', container_format: 'bare' }, content);
    const dest = join(work, 'dest');
    await writeFile(dest, '');
    await truncate(dest, 16 * MiB);

    const fetched = await cli(['image', 'fetch', raw.id, dest, '--sparse', '--json', '--config-file', conf]);
    expect(fetched.code, fetched.stderr).toBe(0);
    expect(JSON.parse(fetched.stdout)).toMatchObject({ image_id: raw.id, path: 'stream', downloaded_bytes: content.length });
    expect((await readFile(dest)).subarray(0, content.length).equals(content)).toBe(true);

    const qcow = join(work, 'content.qcow2');
    await execa('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', rawFile, qcow]);
    const q = await glance.addImage({ name: 'cli-qcow2', disk_format: 'qcow2', container_format: 'bare' }, await readFile(qcow));
    await truncate(dest, 0);
    await truncate(dest, 16 * MiB);
    const fromQcow = await cli(['image', 'fetch', q.id, dest, '--json', '--config-file', conf]);
    expect(fromQcow.code, fromQcow.stderr).toBe(0);
    expect(JSON.parse(fromQcow.stdout)).toMatchObject({ path: 'convert' });
    expect((await readFile(dest)).subarray(0, content.length).equals(content)).toBe(true);

    const up = await cli(['image', 'upload', dest, '--name', 'cli-up', '--disk-format', 'qcow2', '--json', '--config-file', conf]);
    expect(up.code, up.stderr).toBe(0);
    const upId = JSON.parse(up.stdout).image_id as string;
    expect((await glance.show(upId)).body).toMatchObject({ status: 'active', disk_format: 'qcow2', name: 'cli-up' });
    const got = join(work, 'uploaded.qcow2');
    await writeFile(got, await glance.download(upId));
    const cmp = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', dest, got], { reject: false });
    expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);

    // a qcow2 naming a host file as its backing file: refused before a byte lands on dest
    const backed = join(work, 'backed.qcow2');
    await execa('qemu-img', ['create', '-f', 'qcow2', '-b', '/etc/hostname', '-F', 'raw', backed]);
    const b = await glance.addImage({ name: 'cli-backed', disk_format: 'qcow2', container_format: 'bare' }, await readFile(backed));
    const refused = await cli(['image', 'fetch', b.id, dest, '--config-file', conf]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/backed by|backing file|safety check/);
    expect((await readFile(dest)).subarray(0, content.length).equals(content)).toBe(true);

    // a format qemu-img cannot write: refused, and the image record made for it removed
    const imageCount = async () => ((await (await fetch(`${glance.url}/v2/images`)).json()) as { images: unknown[] }).images.length;
    const before = await imageCount();
    const bad = await cli(['image', 'upload', dest, '--name', 'cli-bad', '--disk-format', 'iso', '--config-file', conf]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('cannot be written by cinderblock');
    expect(await imageCount()).toBe(before);

    // a missing destination: a usage error naming it
    const missing = await cli(['image', 'fetch', raw.id, join(work, 'nope'), '--config-file', conf]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file or device');
  }, 240_000);
});
