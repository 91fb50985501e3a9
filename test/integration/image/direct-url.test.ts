// allowed_direct_url_schemes = file against Debian's glance-api (file store, direct_url and
// locations shown): the agent's Glance client reads the image from the store file, checked against
// the hash glance recorded, and does not ask glance-api for the bytes; a store file that is not
// there falls back to glance-api.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { GlanceClient } from '../../../src/image/glance-client.js';
import { glanceAvailable, startGlance, type GlanceHandle } from '../../helpers/glance.js';
import { startTcpRelay, type TcpRelay } from '../../helpers/tcp-relay.js';

async function drain(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

describe.runIf(glanceAvailable())('allowed_direct_url_schemes = file with the real glance-api', () => {
  let glance: GlanceHandle;
  // the client reaches glance-api through it: cut, it proves the bytes did not come from there
  let relay: TcpRelay;
  beforeAll(async () => {
    glance = await startGlance({ port: 19298 });
    relay = await startTcpRelay(19298);
  }, 240_000);
  afterAll(async () => {
    await relay?.close();
    await glance?.stop();
  });

  it('reads the store file glance names, hash-checked, without glance-api; falls back when the file is not here', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const added = await glance.addImage({ name: 'direct', disk_format: 'raw', container_format: 'bare' }, data);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const client = new GlanceClient({ apiServers: [`http://127.0.0.1:${relay.port}`], numRetries: 0, requestTimeoutSec: 30, allowedDirectUrlSchemes: ['file'], logger });
    const image = await client.show({}, added.id);
    expect(image.direct_url).toBe(`file://${join(glance.dir, 'images', added.id)}`);

    relay.cut();
    try {
      expect((await drain(client.download({}, image))).equals(data)).toBe(true);
    } finally {
      relay.restore();
    }
    expect(lines.join('')).toContain('from its store file');

    // the store on another machine (here: moved away): glance-api sends the bytes
    const stored = join(glance.dir, 'images', added.id);
    await rename(stored, `${stored}.away`);
    try {
      await expect(drain(client.download({}, image))).rejects.toMatchObject({ className: 'ImageDownloadFailed' });
    } finally {
      await rename(`${stored}.away`, stored);
    }
    expect(lines.join('')).toContain('cannot be opened here');
  }, 120_000);
});
