/**
 * The transpile cache of the loader (issue 11, item 1): it is code this process runs, and it holds
 * the deployfile's literal secrets, so only this user may write or read it. Tests run as root;
 * `nobody` (uid 65534) plays the other local user.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createJiti } from 'jiti'
import { loadDeployfile, TRANSPILE_CACHE_ENTRIES, transpileCacheDir } from '../../src/config/load.js'

const NOBODY = 65534
const repo = fileURLToPath(new URL('../..', import.meta.url))
/** As the loader resolves `deployfile` from source. */
const aliases = { 'deployfile/recipes': join(repo, 'recipes'), deployfile: join(repo, 'src/index.ts') }
const sandbox = realpathSync(mkdtempSync(join(tmpdir(), 'df-cache-')))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const savedXdg = process.env.XDG_CACHE_HOME
let cacheHome: string
let project: string
let count = 0

const planted = () => (globalThis as { __dfPlanted?: boolean }).__dfPlanted === true

beforeEach(() => {
  count += 1
  cacheHome = join(sandbox, `home${count}`)
  mkdirSync(cacheHome, { mode: 0o700 })
  process.env.XDG_CACHE_HOME = cacheHome
  project = join(sandbox, `project${count}`)
  mkdirSync(project)
  writeFileSync(join(project, 'deployfile.ts'), `import { task } from 'deployfile'\nconst n: number = 1\ntask('hello', async () => {}, { description: 'n=' + n })\n`)
  delete (globalThis as { __dfPlanted?: boolean }).__dfPlanted
})
afterEach(() => {
  if (savedXdg === undefined) delete process.env.XDG_CACHE_HOME
  else process.env.XDG_CACHE_HOME = savedXdg
})

const cacheDir = () => join(cacheHome, 'deployfile', 'jiti')
const cacheFiles = () => readdirSync(cacheDir()).map((name) => join(cacheDir(), name))

/** Replaces every cached file with code that marks it ran (keeping jiti's hash trailer, so jiti would take it). */
function plant(owner?: number): string[] {
  const files = cacheFiles()
  expect(files.length).toBeGreaterThan(0)
  for (const file of files) {
    writeFileSync(file, `globalThis.__dfPlanted = true;\n${readFileSync(file, 'utf8')}`)
    if (owner !== undefined) chownSync(file, owner, owner)
  }
  return files
}

describe('the transpile cache', () => {
  it('lives in the user cache dir, mode 0700, files 0600, and is used', async () => {
    const { registry } = await loadDeployfile(join(project, 'deployfile.ts'))
    expect(registry.getTask('hello').description).toBe('n=1')
    expect(lstatSync(cacheDir()).mode & 0o777).toBe(0o700)
    expect(lstatSync(join(cacheHome, 'deployfile')).mode & 0o777).toBe(0o700)
    const files = cacheFiles()
    expect(files.length).toBeGreaterThan(0)
    for (const file of files) {
      expect(lstatSync(file).mode & 0o777).toBe(0o600)
      expect(lstatSync(file).uid).toBe(process.getuid!())
    }
    // Our own cached file is loaded (the marker proves it): the cache works.
    plant()
    await loadDeployfile(join(project, 'deployfile.ts'))
    expect(planted()).toBe(true)
  })

  it('keeps only the newest TRANSPILE_CACHE_ENTRIES files (old copies of secrets do not pile up)', async () => {
    const dir = transpileCacheDir(cacheHome)!
    const total = TRANSPILE_CACHE_ENTRIES + 40
    for (let i = 0; i < total; i++) {
      const file = join(dir, `old-${i}.mjs`)
      writeFileSync(file, 'export {}\n', { mode: 0o600 })
      utimesSync(file, 1_000_000 + i, 1_000_000 + i) // old-0 is the oldest
    }
    expect(transpileCacheDir(cacheHome)).toBe(dir)
    const left = readdirSync(dir).sort((a, b) => Number(a.split('-')[1].split('.')[0]) - Number(b.split('-')[1].split('.')[0]))
    expect(left).toHaveLength(TRANSPILE_CACHE_ENTRIES)
    expect(left[0]).toBe(`old-${total - TRANSPILE_CACHE_ENTRIES}.mjs`)
    expect(left.at(-1)).toBe(`old-${total - 1}.mjs`)
    // The deployfile still loads, and its fresh file is kept.
    const { registry } = await loadDeployfile(join(project, 'deployfile.ts'))
    expect(registry.getTask('hello').description).toBe('n=1')
    expect(transpileCacheDir(cacheHome)).toBe(dir)
    expect(readdirSync(dir).filter((name) => !name.startsWith('old-')).length).toBeGreaterThan(0)
  })

  it('never loads a cached file owned by another user (it is deleted and transpiled afresh)', async () => {
    await loadDeployfile(join(project, 'deployfile.ts'))
    const files = plant(NOBODY)
    const { registry } = await loadDeployfile(join(project, 'deployfile.ts'))
    expect(planted()).toBe(false)
    expect(registry.getTask('hello').description).toBe('n=1')
    for (const file of files) expect(lstatSync(file).uid).toBe(process.getuid!())
  })

  it('never loads a cached file that others may write (mode 0666)', async () => {
    await loadDeployfile(join(project, 'deployfile.ts'))
    for (const file of plant()) chmodSync(file, 0o666)
    await loadDeployfile(join(project, 'deployfile.ts'))
    expect(planted()).toBe(false)
  })

  it('refuses a cache directory with mode 0777, and still loads', async () => {
    await loadDeployfile(join(project, 'deployfile.ts'))
    plant()
    chmodSync(cacheDir(), 0o777)
    const warnings: string[] = []
    expect(transpileCacheDir(cacheHome, (m) => warnings.push(m))).toBeUndefined()
    expect(warnings.join('\n')).toMatch(/mode is 777/)
    const { registry } = await loadDeployfile(join(project, 'deployfile.ts'))
    expect(planted()).toBe(false)
    expect(registry.getTask('hello').description).toBe('n=1')
  })

  it('refuses a cache directory created by another user', async () => {
    mkdirSync(cacheDir(), { recursive: true, mode: 0o700 })
    chownSync(cacheDir(), NOBODY, NOBODY)
    const warnings: string[] = []
    expect(transpileCacheDir(cacheHome, (m) => warnings.push(m))).toBeUndefined()
    expect(warnings.join('\n')).toMatch(/belongs to uid 65534/)
  })

  it('refuses a cache directory under a directory others may write (they could swap it)', async () => {
    mkdirSync(join(cacheHome, 'deployfile'), { mode: 0o700 })
    chmodSync(join(cacheHome, 'deployfile'), 0o777)
    const warnings: string[] = []
    expect(transpileCacheDir(cacheHome, (m) => warnings.push(m))).toBeUndefined()
    expect(warnings.join('\n')).toMatch(/writable by others/)
    const parentOwned = join(sandbox, `other${count}`)
    mkdirSync(parentOwned, { mode: 0o755 })
    chownSync(parentOwned, NOBODY, NOBODY)
    expect(transpileCacheDir(parentOwned, () => undefined)).toBeUndefined()
  })

  it("never loads a file planted in the shared $TMPDIR/jiti (the issue's attack), nor writes there", async () => {
    const tmp = join(sandbox, `tmp${count}`)
    mkdirSync(tmp, { mode: 0o1777 })
    chmodSync(tmp, 0o1777)
    // The attacker's file: what jiti's default cache would hold for this deployfile, with code added.
    const planter = createJiti(join(sandbox, 'planter.mjs'), { fsCache: join(tmp, 'jiti'), moduleCache: false, interopDefault: true, alias: aliases })
    await planter.import(join(project, 'deployfile.ts'))
    const plantedFiles = readdirSync(join(tmp, 'jiti')).map((name) => join(tmp, 'jiti', name))
    expect(plantedFiles.length).toBeGreaterThan(0)
    for (const file of plantedFiles) {
      writeFileSync(file, `globalThis.__dfPlanted = true;\n${readFileSync(file, 'utf8')}`)
      chownSync(file, NOBODY, NOBODY)
    }
    chownSync(join(tmp, 'jiti'), NOBODY, NOBODY)
    const before = readdirSync(join(tmp, 'jiti')).sort()
    const saved = process.env.TMPDIR
    process.env.TMPDIR = tmp
    try {
      await loadDeployfile(join(project, 'deployfile.ts'))
    } finally {
      if (saved === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = saved
    }
    expect(planted()).toBe(false)
    expect(readdirSync(tmp)).toEqual(['jiti'])
    expect(readdirSync(join(tmp, 'jiti')).sort()).toEqual(before)
  })
})
