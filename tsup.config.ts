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
  dts: { entry: { index: 'src/index.ts', 'recipes/common': 'recipes/common.ts', 'recipes/laravel': 'recipes/laravel.ts' } },
  clean: true,
  splitting: true,
  sourcemap: false,
  // Recipes must reach the engine through the published name so that a user's
  // deployfile and the recipe share one module instance.
  external: ['deployfile'],
  banner: ({ format }) => (format === 'esm' ? {} : {}),
})
