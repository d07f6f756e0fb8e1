/** wrapScript(): the cwd/env prefix every transport sends. */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { wrapScript } from '../../src/shell/wrap.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-wrap-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const sh = (text: string) => execFileSync('/bin/sh', ['-c', text], { encoding: 'utf8', cwd: '/', stdio: ['ignore', 'pipe', 'pipe'] })

describe('wrapScript', () => {
  it('returns the script alone without options', () => {
    expect(wrapScript('echo hi')).toBe('echo hi')
  })

  it('exports env vars with quoted values that survive the shell as they are', () => {
    const value = `it's "$(touch ${join(sandbox, 'env-canary')})" \`x\` $HOME\nnext`
    const text = wrapScript(`printf '%s' "$WEIRD"`, { env: { WEIRD: value } })
    expect(text.startsWith('export WEIRD=')).toBe(true)
    expect(sh(text)).toBe(value)
    expect(readdirSync(sandbox)).toEqual([])
  })

  it('changes into a cwd with spaces and quotes', () => {
    const dir = join(sandbox, "my dir's $(x)")
    execFileSync('mkdir', ['-p', dir])
    expect(sh(wrapScript('pwd', { cwd: dir })).trim()).toBe(dir)
    rmSync(dir, { recursive: true })
  })

  it('exits 1 before the script when the cwd does not exist', () => {
    const text = wrapScript('echo should-not-run', { cwd: join(sandbox, 'missing') })
    let out = 'unset'
    let status: number | undefined
    try {
      out = sh(text)
    } catch (error) {
      status = (error as { status: number }).status
      out = String((error as { stdout: string }).stdout)
    }
    expect(status).toBe(1)
    expect(out).not.toContain('should-not-run')
  })

  it('env comes before cd, so the script sees both', () => {
    const text = wrapScript('printf "%s %s" "$A" "$(pwd)"', { cwd: '/tmp', env: { A: 'x y' } })
    expect(text.indexOf('export A=')).toBeLessThan(text.indexOf("cd /tmp"))
    expect(sh(text)).toBe('x y /tmp')
  })

  it.each(['1ABC', 'A-B', 'A B', 'A;touch x', '', 'A=B', '$(x)'])('rejects the env var name %j', (name) => {
    expect(() => wrapScript('true', { env: { [name]: 'v' } })).toThrow(/Invalid environment variable name/)
  })

  it.each(['A', '_x', 'PATH_2', 'lower_case'])('accepts the env var name %j', (name) => {
    expect(() => wrapScript('true', { env: { [name]: 'v' } })).not.toThrow()
  })
})
