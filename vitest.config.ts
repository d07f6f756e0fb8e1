import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

export default defineConfig({
  resolve: {
    alias: [
      { find: /^deployfile$/, replacement: here('./src/index.ts') },
      { find: /^deployfile\/testing$/, replacement: here('./src/testing/rehearse.ts') },
      { find: /^deployfile\/recipes\/(.*)$/, replacement: here('./recipes/$1.ts') },
      { find: /^deployfile\/plugins\/(.*)$/, replacement: here('./plugins/$1.ts') },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
})
