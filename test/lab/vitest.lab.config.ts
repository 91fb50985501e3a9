// vitest configuration for the lab suites: they run inside a qemu guest (test/lab/run-lab.sh), one
// suite per VM, against real device-mapper, LIO and iSCSI. Never part of `npm test`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/lab/**/*.lab.test.ts'],
    fileParallelism: false,
    // Software emulation is slow: one lvcreate takes about a second, one node start 2.5 s.
    testTimeout: 240_000,
    hookTimeout: 240_000,
    reporters: ['default'],
  },
});
