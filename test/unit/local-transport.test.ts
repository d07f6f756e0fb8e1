/** LocalTransport: real /bin/sh on this machine. */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { afterAll, describe, expect, it } from 'vitest'
import { Host } from '../../src/model/host.js'
import { LocalTransport } from '../../src/transport/local/local-transport.js'
import { sleep } from './helpers.js'
import { Command } from '../../src/shell/command.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-local-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const transport = () => new LocalTransport(new Host('localhost', {}, true))

/** Processes whose command line contains `needle` (ps, this machine). */
function processesMatching(needle: string): string[] {
  const out = execFileSync('ps', ['-eo', 'pid,pgid,args'], { encoding: 'utf8' })
  return out.split('\n').filter((line) => line.includes(needle) && !line.includes('ps -eo'))
}

describe('exec', () => {
  it('returns exit code, stdout and stderr', async () => {
    const t = transport()
    const result = await t.exec("echo out; echo err >&2; exit 4")
    expect(result).toEqual({ code: 4, signal: null, stdout: 'out\n', stderr: 'err\n', timedOut: false, aborted: false })
  })

  it('runs POSIX sh (dash), not bash', async () => {
    const result = await transport().exec('echo "${BASH_VERSION:-none}"')
    expect(result.stdout).toBe('none\n')
  })

  it('honours cwd and env (values with quotes and $)', async () => {
    const dir = join(sandbox, "cwd with 'quotes'")
    mkdirSync(dir)
    const result = await transport().exec(new Command('printf "%s|%s" "$PWD" "$VALUE"', [], { cwd: dir, env: { VALUE: `it's $(not run) "x"` } }))
    expect(result.stdout).toBe(`${dir}|it's $(not run) "x"`)
  })

  it('a missing cwd fails before the script runs', async () => {
    const result = await transport().exec(new Command('echo ran', [], { cwd: join(sandbox, 'missing') }))
    expect(result.code).toBe(1)
    expect(result.stdout).toBe('')
  })

  it('passes stdin as a string, a Buffer and a stream', async () => {
    const t = transport()
    expect((await t.exec(new Command('cat', [], { stdin: 'from a string' }))).stdout).toBe('from a string')
    expect((await t.exec(new Command('wc -c', [], { stdin: Buffer.alloc(100_000, 97) }))).stdout.trim()).toBe('100000')
    expect((await t.exec(new Command('cat', [], { stdin: Readable.from(['a', 'b', 'c']) }))).stdout).toBe('abc')
  })

  it('streams output and can skip collecting it', async () => {
    const chunks: string[] = []
    const result = await transport().exec('echo streamed', { onStdout: (c) => chunks.push(c.toString()), collect: false })
    expect(chunks.join('')).toBe('streamed\n')
    expect(result.stdout).toBe('')
  })

  it('counts round trips', async () => {
    const t = transport()
    await t.exec('true')
    await t.exec('true')
    expect(t.roundTrips).toBe(2)
  })

  it('a timeout kills the whole process group', async () => {
    const marker = `sleep ${3000 + Math.floor(Math.random() * 999)}`
    const pending = transport().exec(`${marker} & ${marker}; echo never`, { timeoutMs: 600 })
    await sleep(250)
    // Positive control: while it runs, ps does see both sleeps.
    expect(processesMatching(marker).length).toBeGreaterThanOrEqual(2)
    const result = await pending
    expect(result.timedOut).toBe(true)
    expect(result.code).not.toBe(0)
    expect(result.stdout).not.toContain('never')
    // The background sleep belonged to the group: it must be gone too.
    let left = processesMatching(marker)
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(100)
      left = processesMatching(marker)
    }
    expect(left).toEqual([])
  })

  it('an abort signal kills the command', async () => {
    const marker = `sleep ${4000 + Math.floor(Math.random() * 999)}`
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 200)
    const result = await transport().exec(`${marker} & ${marker}`, { signal: controller.signal })
    expect(result.aborted).toBe(true)
    expect(result.timedOut).toBe(false)
    let left = processesMatching(marker)
    for (let i = 0; i < 20 && left.length > 0; i++) {
      await sleep(100)
      left = processesMatching(marker)
    }
    expect(left).toEqual([])
  })

  it('an already aborted signal does not run the command to completion', async () => {
    const controller = new AbortController()
    controller.abort()
    const file = join(sandbox, 'pre-aborted')
    const result = await transport().exec(`sleep 1; touch ${file}`, { signal: controller.signal })
    expect(result.aborted).toBe(true)
    await sleep(1200)
    expect(readdirSync(sandbox)).not.toContain('pre-aborted')
  })

  it('close() kills running commands', async () => {
    const t = transport()
    const pending = t.exec('sleep 20')
    await sleep(150)
    await t.close()
    const result = await pending
    expect(result.code).not.toBe(0)
  })
})

describe('put and get', () => {
  it('put of a Buffer writes mode 0600 by default, and never leaves the temporary file', async () => {
    const target = join(sandbox, 'put', 'deep', '.env')
    const progress: Array<[number, number]> = []
    await transport().put(Buffer.from('SECRET=1\n'), target, { onProgress: (b, t) => progress.push([b, t]) })
    expect(readFileSync(target, 'utf8')).toBe('SECRET=1\n')
    expect(statSync(target).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(sandbox, 'put', 'deep'))).toEqual(['.env'])
    expect(progress).toEqual([[9, 9]])
  })

  it('put of a Buffer with an explicit mode', async () => {
    const target = join(sandbox, 'put-mode')
    await transport().put(Buffer.from('x'), target, { mode: 0o640 })
    expect(statSync(target).mode & 0o777).toBe(0o640)
  })

  it('put of a file keeps its content; mode applies when given', async () => {
    const source = join(sandbox, 'source-file')
    writeFileSync(source, 'content')
    chmodSync(source, 0o755)
    await transport().put(source, join(sandbox, 'copied-file'))
    expect(readFileSync(join(sandbox, 'copied-file'), 'utf8')).toBe('content')
    expect(statSync(join(sandbox, 'copied-file')).mode & 0o777).toBe(0o755)
    await transport().put(source, join(sandbox, 'copied-file-600'), { mode: 0o600 })
    expect(statSync(join(sandbox, 'copied-file-600')).mode & 0o777).toBe(0o600)
  })

  it('put and get of a directory tree', async () => {
    const tree = join(sandbox, 'tree')
    mkdirSync(join(tree, 'sub', 'deeper'), { recursive: true })
    writeFileSync(join(tree, 'a.txt'), 'A')
    writeFileSync(join(tree, 'sub', 'deeper', 'b.txt'), 'B')
    chmodSync(join(tree, 'a.txt'), 0o600)
    const t = transport()
    await t.put(tree, join(sandbox, 'uploaded'))
    expect(readFileSync(join(sandbox, 'uploaded', 'sub', 'deeper', 'b.txt'), 'utf8')).toBe('B')
    expect(statSync(join(sandbox, 'uploaded', 'a.txt')).mode & 0o777).toBe(0o600)
    await t.get(join(sandbox, 'uploaded'), join(sandbox, 'downloaded'))
    expect(readFileSync(join(sandbox, 'downloaded', 'a.txt'), 'utf8')).toBe('A')
    expect(readFileSync(join(sandbox, 'downloaded', 'sub', 'deeper', 'b.txt'), 'utf8')).toBe('B')
    expect(t.roundTrips).toBe(2)
  })

  it('get of a missing path rejects', async () => {
    await expect(transport().get(join(sandbox, 'nope'), join(sandbox, 'x'))).rejects.toThrow(/ENOENT/)
  })
})
