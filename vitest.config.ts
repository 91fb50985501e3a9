import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // Integration tests share one RabbitMQ, one MariaDB and fixed ports for cinder-api:
    // running files one at a time keeps them from stepping on each other.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    reporters: ['default'],
    // Many tests provoke errors on purpose; their log lines would bury the report. Tests that
    // assert on logs install a logger of their own. CINDERBLOCK_LOG_LEVEL=debug brings them back.
    env: { CINDERBLOCK_LOG_LEVEL: process.env.CINDERBLOCK_LOG_LEVEL ?? 'silent' },
  },
});
