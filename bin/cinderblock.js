#!/usr/bin/env -S node --max-semi-space-size=1
// Launcher for the compiled CLI. `npm run build` produces dist/; without it, say so plainly.
//
// The node flags on the first line are the product's, for every way it is started (systemd's
// ExecStart, /usr/bin/cinderblock, the container's ENTRYPOINT, a shell): a 1 MiB young-generation
// semi-space. The agent's garbage is small RPC and database objects that die young; V8's default
// semi-space grows to 16 MiB under load, and an agent serving volumes then held ~120 MiB RSS
// against ~90 MiB with 1 MiB, at no measurable cost in CPU (bench/README.md, "A fleet on one
// machine"). Anything that spawns this file with process.execPath reads them from this line
// (test/helpers/launcher-node-flags.ts) so tests and benches run what operators run.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const entry = join(root, 'dist', 'src', 'cli', 'main.js');
if (!existsSync(entry)) {
  process.stderr.write(`cinderblock: ${entry} is missing; run \`npm run build\` in ${root} first\n`);
  process.exit(2);
}
const { run } = await import(entry);
await run(process.argv);
