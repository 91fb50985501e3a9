// What a lab bench's host hook does when the bench needs no host service, only some of the host's
// environment: a guest sees no host environment but DIR/guest.env, which run-lab.sh exports there.
// Writes the named variables that are set (each must be a whole number) and `ready`, then stays
// until run-lab.sh ends the guest (SIGTERM).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function serveGuestEnv(hook: string, names: readonly string[]): void {
  const dir = process.argv[2];
  if (!dir) throw new Error(`usage: ${hook} DIR`);
  const lines: string[] = [];
  for (const name of names) {
    const value = process.env[name];
    if (value === undefined) continue;
    if (!/^\d+$/.test(value)) throw new Error(`${name} must be a whole number, got ${JSON.stringify(value)}`);
    lines.push(`${name}=${value}\n`);
  }
  writeFileSync(join(dir, 'guest.env'), lines.join(''));
  writeFileSync(join(dir, 'ready'), '');
  process.on('SIGTERM', () => process.exit(0));
  setInterval(() => undefined, 60_000);
}
