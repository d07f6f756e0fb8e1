import { Registry } from '../model/registry.js'
import { asLoaderPackage, assertLoaderPackage } from './package-copy.js'

/*
 * The registry that top-level calls (task, set, host, …) write into. It sits
 * on globalThis so that a deployfile compiled by a TypeScript loader, which may
 * load its own copy of this package, still writes where the loader reads.
 */
const KEY = Symbol.for('deployfile.currentRegistry')
type Holder = { [KEY]?: Registry }
const holder = globalThis as Holder

/** The registry being filled right now. */
export function currentRegistry(): Registry {
  assertLoaderPackage()
  return (holder[KEY] ??= new Registry())
}

/** Runs `fn` (loading a deployfile) with a fresh registry as the current one, and returns it. */
export async function withRegistry(registry: Registry, fn: () => Promise<unknown> | unknown): Promise<Registry> {
  const previous = holder[KEY]
  holder[KEY] = registry
  try {
    await asLoaderPackage(async () => fn())
    return registry
  } finally {
    holder[KEY] = previous
  }
}
