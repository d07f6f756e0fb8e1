/**
 * Issue 10, scenario 12: two SIGINTs to a real `dep` process whose task holds
 * a remote command (real sshd) and whose recovery is still running when the
 * second one comes. The run stops at once, but first the task's onAbort
 * handler runs a command over SSH and its line is printed; exit 5, not 130.
 */
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, startDep, waitFor, writeDeployfile } from '../support/dep.js'
import { startSshServers, type SshServers } from '../support/sshd.js'

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-abort-')))
let ssh: SshServers

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
  ssh = await startSshServers(1)
}, 120_000)

afterAll(async () => {
  await ssh?.stopAll()
  rmSync(sandbox, { recursive: true, force: true })
})

describe('a second SIGINT', () => {
  it('runs the onAbort handler over SSH, prints its line, and exits 5 with the recovery hint', async () => {
    const dir = path.join(sandbox, 'hold')
    await writeDeployfile(
      dir,
      `import { fail, host, run, task } from 'deployfile'
host('web1', ${JSON.stringify({ ...ssh.hostOptions(0), connectTimeout: 5000 })})
task('hold', async (ctx) => {
  ctx.onAbort(async () => {
    // Runs over SSH although the run was aborted: the handler's commands get no abort signal.
    const seen = await ctx.run('echo remote-answered')
    return \`lock held on \${ctx.host.alias} (\${seen}): run dep deploy:unlock --force \${ctx.host.alias}\`
  })
  await run\`sleep 60\`
})
// The recovery is still busy when the second SIGINT comes.
fail('hold', async () => { await run\`sleep 50\` })
`,
    )
    const dep = startDep(['hold', '-v'], { cwd: dir })
    let seen = ''
    dep.child.stdout!.on('data', (chunk: Buffer) => (seen += chunk.toString()))
    await waitFor(() => seen.includes('$ sleep 60'), 30_000, 'the remote sleep')
    dep.child.kill('SIGINT')
    await waitFor(() => seen.includes('$ sleep 50'), 30_000, 'the recovery to start')
    dep.child.kill('SIGINT')
    const r = await Promise.race([
      dep.result,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('dep did not stop within 30 s of the second SIGINT')), 30_000)),
    ])
    expect(r.code, r.output).toBe(5)
    expect(r.output).toContain('SIGINT again: stopping at once')
    expect(r.output).toContain('[web1] ⚠ lock held on web1 (remote-answered): run dep deploy:unlock --force web1')
    expect(r.stderr).toContain('Stopped at once by a second SIGINT')
    expect(r.stderr).toContain('then run dep deploy again (or dep rollback)')
    expect(r.stderr).toContain('✖ hold stopped at once')
    expect(r.stderr).toContain('(exit 5)')
  }, 120_000)
})
