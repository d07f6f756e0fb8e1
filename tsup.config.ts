import { defineConfig } from 'tsup'

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli/main.ts',
    'recipes/common': 'recipes/common.ts',
    'recipes/laravel': 'recipes/laravel.ts',
  },
  format: ['esm'],
  target: 'node20',
  dts: {
    entry: { index: 'src/index.ts', 'recipes/common': 'recipes/common.ts', 'recipes/laravel': 'recipes/laravel.ts' },
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
