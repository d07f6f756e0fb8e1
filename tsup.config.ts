import { existsSync, readdirSync } from 'node:fs'
import { defineConfig } from 'tsup'

// First-party plugins (plugins/<name>.ts) are published as `deployfile/plugins/<name>`, like recipes.
const plugins: Record<string, string> = Object.fromEntries(
  (existsSync('plugins') ? readdirSync('plugins') : [])
    .filter((file) => file.endsWith('.ts'))
    .map((file) => [`plugins/${file.slice(0, -3)}`, `plugins/${file}`]),
)

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli/main.ts',
    testing: 'src/testing/rehearse.ts',
    'recipes/common': 'recipes/common.ts',
    'recipes/laravel': 'recipes/laravel.ts',
    ...plugins,
  },
  format: ['esm'],
  target: 'node20',
  dts: {
    entry: { index: 'src/index.ts', testing: 'src/testing/rehearse.ts', 'recipes/common': 'recipes/common.ts', 'recipes/laravel': 'recipes/laravel.ts', ...plugins },
    // The public declarations mention Buffer, Readable and AbortSignal: the directive pulls in the Node
    // types (a dependency of the package) even where tsconfig's "types" is empty, TypeScript 7's
    // default. A banner, because declaration emit drops a directive written in src/index.ts.
    banner: '/// <reference types="node" />',
  },
  clean: true,
  splitting: true,
  sourcemap: false,
  // Recipes must reach the engine through the published name so that a user's
  // deployfile and the recipe share one module instance.
  external: ['deployfile'],
  banner: ({ format }) => (format === 'esm' ? {} : {}),
})
