/**
 * One deployfile package per run: a DSL call through another copy than the loader's is refused
 * with one error naming the copy and, for a copy nested in a plugin, the plugin and the fix.
 */
import { describe, expect, it } from 'vitest'
import { secondCopyError } from '../../src/dsl/package-copy.js'
import { currentRegistry } from '../../src/dsl/registry-scope.js'
import { task } from '../../src/dsl/tasks.js'
import { ConfigError, ExitCode } from '../../src/model/errors.js'
import { Registry } from '../../src/model/registry.js'
import { declare } from './helpers.js'

const LOADER = Symbol.for('deployfile.loaderPackage')
const holder = globalThis as { [LOADER]?: string }

describe('a second copy of deployfile', () => {
  it('is refused when a load belongs to another package directory (exit 2), and allowed again after', async () => {
    const previous = holder[LOADER]
    holder[LOADER] = '/srv/elsewhere/node_modules/deployfile'
    try {
      expect(() => currentRegistry()).toThrow(ConfigError)
      expect(() => task('x', async () => {})).toThrow('Two copies of deployfile in one run')
    } finally {
      holder[LOADER] = previous
    }
    // The same package loaded again (a TypeScript loader's second evaluation) is this copy: fine.
    const registry = await declare(() => void task('x', async () => {}))
    expect(registry).toBeInstanceOf(Registry)
    expect(registry.tasks.has('x')).toBe(true)
  })

  it('names the plugin that nests it, and the fix: a peerDependency, one copy', () => {
    const error = secondCopyError('/p/node_modules/deployfile-plugin-x/node_modules/deployfile', '/p/node_modules/deployfile')
    expect(error.exitCode).toBe(ExitCode.ConfigError)
    expect(error.message).toMatch(/^Two copies of deployfile in one run: deployfile-plugin-x \(\/p\/node_modules\/deployfile-plugin-x\) imports \/p\/node_modules\/deployfile-plugin-x\/node_modules\/deployfile \(\?\), but this run is \/p\/node_modules\/deployfile \(\?\)\./)
    expect(error.hint).toContain('Make deployfile a peerDependency of deployfile-plugin-x (not a dependency)')
    expect(error.hint).toContain('npm ls deployfile')
  })

  it("says to run the project's own dep when the deployfile's copy is not the running one", () => {
    const error = secondCopyError('/p/node_modules/deployfile', '/usr/lib/node_modules/deployfile')
    expect(error.message).toContain('the deployfile imports /p/node_modules/deployfile')
    expect(error.hint).toContain("Run the project's own dep (npx dep …)")
  })
})
