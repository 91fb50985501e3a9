#!/usr/bin/env node
// Launcher for the compiled CLI. `npm run build` produces dist/; without it, say so plainly.
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
