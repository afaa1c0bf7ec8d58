import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The native TensorFlow addon is loaded once per process: run test files in child
    // processes, not worker threads, and one at a time on this 2-core machine.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/setup.ts'],
    reporters: ['default', './test/plain-summary-reporter.ts'],
  },
});
