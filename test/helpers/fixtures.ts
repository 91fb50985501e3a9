// Loader for the captured cinder RPC traffic in <shared>/cinder/fixtures (see its README.md).
// <shared> is ../shared next to the repository root unless CINDERBLOCK_SHARED points elsewhere.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function sharedDir(): string {
  return process.env.CINDERBLOCK_SHARED ? resolve(process.env.CINDERBLOCK_SHARED) : resolve(repoRoot, '..', 'shared');
}

export function fixturesDir(): string {
  return join(sharedDir(), 'cinder', 'fixtures');
}

/** One AMQP publish as seen by the firehose. */
export interface FixtureRecord {
  ts: string;
  exchange: string;
  routing_keys: string[];
  properties: Record<string, unknown>;
  routed_queues: string[];
  /** the exact body bytes as text */
  body_raw: string;
  body: Record<string, unknown>;
  oslo_message: Record<string, unknown>;
}

export interface Fixture {
  /** file name, e.g. volume.initialize_connection.e2e.json */
  file: string;
  /** 'volume' | 'scheduler' | 'other' */
  kind: string;
  method: string;
  source: string;
  phase?: string;
  call: boolean;
  request: FixtureRecord;
  replies: FixtureRecord[];
}

export function fixtureFiles(): string[] {
  return readdirSync(fixturesDir())
    .filter((f) => f.endsWith('.json'))
    .sort();
}

export function loadFixture(file: string): Fixture {
  const raw = JSON.parse(readFileSync(join(fixturesDir(), file), 'utf8')) as Omit<Fixture, 'file' | 'kind' | 'method'>;
  const [kind = '', method = ''] = file.split('.');
  return { ...raw, file, kind, method };
}

export function loadFixtures(): Fixture[] {
  return fixtureFiles().map(loadFixture);
}
