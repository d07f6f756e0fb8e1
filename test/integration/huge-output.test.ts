/**
 * Issue 11, item 5: a command printing 100 MB, on one line or in lines, streams through in linear
 * time and bounded memory in every output mode (default, -v, --json, --log), locally and over SSH.
 * Asserted: the run succeeds, every byte is accounted for in events/lines of bounded size, and the
 * dep process's peak RSS (VmHWM) stays under 200 MB. Never seconds: the only time bound is the
 * test timeout.
 */
import { spawn } from 'node:child_process'
import { createReadStream, existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { CLI, writeDeployfile } from '../support/dep.js'

const TOTAL = 100_000_000
const LINE = 'abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789'
/** Full lines, and the bytes of the last one (head -c cuts it, without a newline). */
const FULL_LINES = Math.floor(TOTAL / (LINE.length + 1))
const LAST_LINE = TOTAL - FULL_LINES * (LINE.length + 1)
const PIECE = 64 * 1024
const RSS_LIMIT_KB = 200 * 1024

let servers: SshServers
let dir: string

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  servers = await startSshServers(1)
  dir = await mkdtemp(path.join(tmpdir(), 'deployfile-huge-'))
  await writeDeployfile(
    dir,
    `import { host, localhost, run, task } from 'deployfile'
localhost('local')
host('remote', { ...${JSON.stringify(servers.hostOptions(0))}, deployPath: ${JSON.stringify(path.join(servers.workDir, 'huge'))} })
task('one-line', async () => { await run("head -c ${TOTAL} /dev/zero | tr '\\\\0' x") })
task('lines', async () => { await run("yes '${LINE}' | head -c ${TOTAL}") })
`,
  )
}, 120_000)

afterAll(async () => {
  await servers?.stopAll()
  if (dir) await rm(dir, { recursive: true, force: true })
})

interface Counts {
  code: number | null
  peakKb: number
  /** Output events (--json) or output lines (-v, log): how many, how many partial, total text length, longest. */
  outputs: number
  partial: number
  chars: number
  longest: number
  stdoutLines: number
}

/** Runs dep, counting stdout lines as they come (nothing is kept) and sampling the peak RSS. */
function runDep(args: string[], onLine: (line: string, counts: Counts) => void): Promise<Counts> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1', CI: '1', SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
    const counts: Counts = { code: null, peakKb: 0, outputs: 0, partial: 0, chars: 0, longest: 0, stdoutLines: 0 }
    const sample = () => {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
        if (hwm) counts.peakKb = Math.max(counts.peakKb, Number(hwm[1]))
      } catch {
        // exited
      }
    }
    const sampler = setInterval(sample, 50)
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)))
    const lines = createInterface({ input: child.stdout, crlfDelay: Infinity })
    lines.on('line', (line) => {
      counts.stdoutLines++
      onLine(line, counts)
    })
    child.once('error', reject)
    // VmHWM is the peak so far: reading it right before the exit (the 'exit' of the child comes
    // after its streams close) keeps the sample close to the true peak.
    child.once('exit', (code) => {
      clearInterval(sampler)
      counts.code = code
      if (code !== 0) console.log(stderr)
      resolve(counts)
    })
  })
}

function output(counts: Counts, text: string, partial: boolean): void {
  counts.outputs++
  if (partial) counts.partial++
  counts.chars += text.length
  counts.longest = Math.max(counts.longest, text.length)
}

const onJson = (line: string, counts: Counts) => {
  if (!line.includes('"type":"command:output"')) return
  const event = JSON.parse(line) as { text: string; partial?: boolean }
  output(counts, event.text, event.partial === true)
}
const VERBOSE_PREFIX = /^\[(local|remote)\] /
const onVerbose = (line: string, counts: Counts) => {
  if (!VERBOSE_PREFIX.test(line) || line.includes(' $ ')) return
  const text = line.replace(VERBOSE_PREFIX, '')
  // Output lines, not the step's own header line (`[local] lines`).
  if (/^[a-z0-9x]+$/.test(text) && text !== 'lines') output(counts, text, false)
}

async function logCounts(file: string): Promise<Counts> {
  const counts: Counts = { code: 0, peakKb: 0, outputs: 0, partial: 0, chars: 0, longest: 0, stdoutLines: 0 }
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    const match = /^\S+ \[(?:local|remote)\] > (.*)$/.exec(line)
    if (match) output(counts, match[1], false)
  }
  return counts
}

function expectOneLine(counts: Counts, withPartialFlag: boolean): void {
  expect(counts.chars).toBe(TOTAL)
  expect(counts.longest).toBeLessThanOrEqual(PIECE)
  expect(counts.outputs).toBe(Math.ceil(TOTAL / PIECE))
  if (withPartialFlag) expect(counts.partial).toBe(counts.outputs - 1)
}

function expectLines(counts: Counts): void {
  expect(counts.outputs).toBe(FULL_LINES + 1)
  expect(counts.chars).toBe(FULL_LINES * LINE.length + LAST_LINE)
}

describe.each(['local', 'remote'])('100 MB of output on %s', (where) => {
  // Locally every mode; over SSH the same code path after the transport, so two modes suffice.
  const modes = where === 'local' ? ['default', '-v', '--json', '--log'] : ['--json', '--log']

  for (const mode of modes) {
    for (const shape of ['one-line', 'lines'] as const) {
      it(`${shape}, ${mode}: streams through with peak RSS under 200 MB`, async () => {
        const log = path.join(dir, `${where}-${shape}-${mode.replace(/-/g, '')}.log`)
        const args = [shape, where, ...(mode === 'default' ? [] : mode === '--log' ? ['--log', log] : [mode])]
        const counts = await runDep(args, mode === '--json' ? onJson : mode === '-v' ? onVerbose : () => undefined)
        expect(counts.code).toBe(0)
        expect(counts.peakKb, `peak RSS ${counts.peakKb} kB`).toBeGreaterThan(0)
        expect(counts.peakKb, `peak RSS ${counts.peakKb} kB`).toBeLessThan(RSS_LIMIT_KB)
        console.log(`${where} ${shape} ${mode}: peak RSS ${(counts.peakKb / 1024).toFixed(0)} MB`)
        const seen = mode === '--log' ? await logCounts(log) : counts
        if (mode === 'default') {
          // Output is not shown by default: a handful of lines, not a million.
          expect(counts.stdoutLines).toBeLessThan(20)
        } else if (shape === 'one-line') {
          expectOneLine(seen, mode === '--json')
        } else {
          expectLines(seen)
        }
      }, 600_000)
    }
  }
})
