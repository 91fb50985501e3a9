// _migrate_volume_generic's wait for the destination's create: the source reads the temporary
// row from the database (not RPC), sleeping tries² seconds (1, 4, 9, ...) between reads, until the
// row is available, in error, or migration_create_volume_timeout_secs have passed.

export type TargetOutcome = 'available' | 'error' | 'timeout';

export interface PollClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: PollClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** `readStatus` gives the temporary row's status (undefined once the row is gone: an error). */
export async function waitForMigrationTarget(readStatus: () => Promise<string | null | undefined>, timeoutSecs: number, clock: PollClock = realClock): Promise<TargetOutcome> {
  const deadline = clock.now() + timeoutSecs * 1000;
  let status = await readStatus();
  for (let tries = 1; status !== 'available'; tries++) {
    if (status === 'error' || status === undefined) return 'error';
    if (clock.now() > deadline) return 'timeout';
    await clock.sleep(tries ** 2 * 1000);
    status = await readStatus();
  }
  return 'available';
}
