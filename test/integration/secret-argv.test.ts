/**
 * Issue 11, item 3: no secret in any process's argv, remote or local. A real sshd on loopback (so
 * the "remote" processes are this machine's): a run uses a secret in 5 concurrent `run()` commands
 * (more than the spare channels; on a second host with maxChannels 2, so that some open channels
 * of their own), in 2 commands that also get
 * stdin, and in a `runLocally()`, while a bounded loop reads every /proc/<pid>/cmdline. The secret
 * is found nowhere; the commands' own `sleep` markers are found (the sampler saw them run).
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startSshServers, type SshServers } from '../support/sshd.js'
import { startDep, writeDeployfile } from '../support/dep.js'

const RANDOM = Math.random().toString(36).slice(2, 10)
/** With a quote: the POSIX-quoted form differs from the raw one. */
const SECRET = `argv'Secret-${RANDOM}`
/** Digits for `sleep 1.<MARK><n>`: what the sampler must see, so it looked while commands ran. */
const MARK = String(Math.floor(Math.random() * 9000) + 1000)

let servers: SshServers
let dir: string

beforeAll(async () => {
  servers = await startSshServers(1)
  dir = await mkdtemp(path.join(tmpdir(), 'deployfile-argv-'))
  await writeDeployfile(
    dir,
    `import { host, info, run, runLocally, secret, task } from 'deployfile'
host('web', { ...${JSON.stringify(servers.hostOptions(0))}, deployPath: ${JSON.stringify(path.join(servers.workDir, 'argv'))} })
// Two channels at most: the commands past the first two wait for a slot and open channels of their own.
host('narrow', { ...${JSON.stringify(servers.hostOptions(0))}, deployPath: ${JSON.stringify(path.join(servers.workDir, 'argv-narrow'))}, maxChannels: 2 })
secret('api_token', ${JSON.stringify(SECRET)})
task('leak', async () => {
  const outputs = await Promise.all([1, 2, 3, 4, 5].map((n) => run(\`T={{api_token}}; sleep 1.${MARK}\${n}; echo "ran \${n} \${'$'}{#T}"\`)))
  info(outputs.join(' / '))
  const withStdin = await Promise.all([6, 7].map((n) => run(\`T={{api_token}}; sleep 1.${MARK}\${n}; echo "stdin \${n}: $(wc -c) bytes"\`, { stdin: 'twelve bytes' })))
  info(withStdin.join(' / '))
  info(await runLocally(\`T={{api_token}}; sleep 1.${MARK}8; echo local \${'$'}{#T}\`))
})
`,
  )
}, 120_000)

afterAll(async () => {
  await servers?.stopAll()
  if (dir) await rm(dir, { recursive: true, force: true })
})

/** The command lines of every process now (NUL-separated argv joined with spaces). */
async function commandLines(): Promise<string[]> {
  const lines: string[] = []
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const raw = await readFile(`/proc/${entry}/cmdline`)
      if (raw.length) lines.push(raw.toString('utf8').replaceAll('\0', ' '))
    } catch {
      // gone already
    }
  }
  return lines
}

describe('process lists during a run that uses a secret', () => {
  it('never show the secret, in any form, on the host or here', async () => {
    const run = startDep(['leak', '-v'], { cwd: dir, env: { SSH_AUTH_SOCK: '' } })
    let exited = false
    void run.result.then(() => (exited = true))
    const forms = [SECRET, SECRET.replace(/'/g, `'\\''`), RANDOM]
    const seen = new Set<string>()
    const leaks: string[] = []
    let samples = 0
    // Bounded: at most 600 samples (the run takes a few seconds; a sample takes a few ms).
    for (let i = 0; i < 600 && !exited; i++) {
      const lines = await commandLines()
      samples++
      for (const line of lines) {
        for (const form of forms) if (line.includes(form)) leaks.push(line)
        const mark = new RegExp(`sleep 1\\.${MARK}(\\d)`).exec(line)
        if (mark) seen.add(mark[1])
        if (line.includes('#@@deployfile-end@@')) seen.add('bootstrap')
      }
    }
    const result = await run.result
    expect(result.code, result.output).toBe(0)
    expect(leaks, `the secret was in a process's argv (${samples} samples)`).toEqual([])
    // The sampler saw the commands run: all five concurrent ones, the stdin ones, the local one,
    // and the remote bootstrap shells (whose argv is the fixed bootstrap, without the script).
    expect([...seen].sort(), `${samples} samples`).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', 'bootstrap'])
    // The commands got the secret (its length), and their stdin intact after the script.
    for (const host of ['web', 'narrow']) {
      for (let n = 1; n <= 5; n++) expect(result.stdout).toMatch(new RegExp(`\\[${host}\\] .*ran ${n} ${SECRET.length}`))
      expect(result.stdout).toMatch(new RegExp(`\\[${host}\\] stdin 6: 12 bytes / stdin 7: 12 bytes`))
      expect(result.stdout).toContain(`[${host}] local ${SECRET.length}`)
    }
    expect(result.output).not.toContain(RANDOM)
  }, 120_000)
})
