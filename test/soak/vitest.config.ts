// The soak tests' own config: `npx vitest run -c test/soak/vitest.config.ts`. The default config
// (vitest.config.ts) includes test/unit and test/integration only, so `npm test` and CI never run
// these. The agent logs at info here: the soak waits for its "serving" line and keeps its log.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/soak/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 1_800_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    env: { CINDERBLOCK_LOG_LEVEL: process.env.CINDERBLOCK_LOG_LEVEL ?? 'info' },
  },
});
