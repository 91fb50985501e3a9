// What os-brick (Debian's python3-os-brick, the one nova-compute runs) does with the volume rows the
// two layouts write. Its rule (os_brick/initiator/utils.py guard_connection): no lock when
// shared_targets is False; with True, a lock only when the host's open-iscsi cannot do manual scans
// (bookworm's can, so it relies on targeted scans); with None, always. The lock is the external
// `os-brick-<service_uuid>`, so service_uuid must be set whenever shared_targets is not False.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const HAVE = existsSync('/usr/lib/python3/dist-packages/os_brick/initiator/utils.py');
const UUID = '3f2a4a36-9f7c-4c1b-8d39-6c1e0f1b2a77';

async function guard(cases: Array<[boolean | null, string, boolean]>): Promise<Array<{ locked: boolean; lock_file: string | null }>> {
  const r = await execa('/usr/bin/python3', [join(import.meta.dirname, 'py', 'os_brick_guard.py'), JSON.stringify(cases)]);
  return JSON.parse(r.stdout) as Array<{ locked: boolean; lock_file: string | null }>;
}

describe.runIf(HAVE)("os-brick's guard_connection on the rows each layout writes", () => {
  // one python (importing os-brick takes seconds): [shared_targets, service_uuid, manual scan]
  let r: Array<{ locked: boolean; lock_file: string | null }>;
  beforeAll(async () => {
    r = await guard([
      [false, UUID, false],
      [false, UUID, true],
      [true, UUID, false],
      [true, UUID, true],
    ]);
  }, 120_000);

  it('per-volume (shared_targets false): never locks', () => {
    expect(r.slice(0, 2)).toEqual([
      { locked: false, lock_file: null },
      { locked: false, lock_file: null },
    ]);
  });

  it("per-host (shared_targets true): locks on the service's uuid only where manual scan is missing", () => {
    expect(r.slice(2)).toEqual([
      { locked: true, lock_file: `os-brick-${UUID}` },
      { locked: false, lock_file: null },
    ]);
  });
});
