/**
 * upload() of content (a Buffer) over real sshd: it goes as the stdin of `cat` (on the command
 * channel, binary too, up to 16 MiB), byte for byte, with its mode, renamed over the target, in the
 * round trip that carries the queued commands, and without an SFTP session. Content with quotes,
 * `$`, backslashes, digits, newlines, no final newline and text that looks like the channel's own
 * markers arrives intact; a failure names the upload. A directory's tar archive goes the same way,
 * into `tar -x`: a disk that fills up in the middle of it fails the upload and leaves the channel
 * in step for the next command.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dep, writeDeployfile } from '../support/dep.js'
import { withTmpfs } from '../support/tmpfs.js'
import { startSshServers, type SshServers } from '../support/sshd.js'

/** Shell and protocol look-alikes: quotes, expansions, a heredoc end, the loop's markers, no final newline. */
const TRICKY = [
  `A='single' "double" \`tick\` $HOME \${X:-y} $(id) \\n \\`,
  'EOF',
  '@@deployfile-done-0123456789abcdef01234567:0@@',
  '@@deployfile-pgid:1@@',
  '0123456789',
  '',
  'last line, no newline',
].join('\n')

let servers: SshServers
let dir: string
let target: string

/** Content of 100 KiB, binary with NUL bytes: more than the command channel carries. */
const BIG = randomBytes(100 * 1024)

beforeAll(async () => {
  servers = await startSshServers(1, { extraConfig: ['Match all', 'LogLevel VERBOSE'] })
  dir = await mkdtemp(path.join(tmpdir(), 'deployfile-upload-content-'))
  target = path.join(servers.workDir, 'upload-content')
  await writeDeployfile(
    dir,
    `import { host, queue, run, task, upload } from 'deployfile'
import { readFileSync, writeFileSync } from 'node:fs'
for (const [alias, commandChannel] of [['web', true], ['plain', false]] as const) {
  host(alias, { ...${JSON.stringify(servers.hostOptions(0))}, deployPath: ${JSON.stringify(target)} + '/' + alias, commandChannel })
}
task('put', async () => {
  await queue\`mkdir -p {{deploy_path}}/conf && printf old > {{deploy_path}}/conf/wide && chmod 644 {{deploy_path}}/conf/wide\`
  await upload(Buffer.from(${JSON.stringify(TRICKY)}), '{{deploy_path}}/conf/tricky', { mode: 0o600 })
  await upload(Buffer.from('replaced\\n'), '{{deploy_path}}/conf/wide', { mode: 0o640 })
  await upload(Buffer.from('default mode'), '{{deploy_path}}/conf/default')
  await upload(readFileSync(${JSON.stringify(path.join(dir, 'big.bin'))}), '{{deploy_path}}/conf/big.bin')
})
task('put-full', async () => {
  await upload(readFileSync(${JSON.stringify(path.join(dir, 'big.bin'))}), process.env.FULL_TARGET ?? '')
})
task('tree-full', async () => {
  const loop = await run('echo $$')
  const error = await upload(${JSON.stringify(path.join(dir, 'tree'))}, process.env.FULL_TARGET ?? '').then(() => 'none', (e: Error & { details?: { stderr: string } }) => \`\${e.message}\\n\${e.details?.stderr}\`)
  const after = await run('echo $$; echo in step')
  writeFileSync(process.env.OUT ?? '', JSON.stringify({ loop, error, after }))
})
task('put-missing', async () => {
  await upload(Buffer.from('x'), '{{deploy_path}}/no/such/dir/file')
})
`,
  )
  await writeFile(path.join(dir, 'big.bin'), BIG)
  // A tree whose archive (~300 KiB of incompressible files) cannot fit the 64 KiB tmpfs below.
  for (let i = 0; i < 3; i++) {
    await mkdir(path.join(dir, 'tree', `d${i}`), { recursive: true })
    await writeFile(path.join(dir, 'tree', `d${i}`, 'blob.bin'), randomBytes(100 * 1024))
  }
}, 120_000)

afterAll(async () => {
  await servers?.stopAll()
  if (dir) await rm(dir, { recursive: true, force: true })
})

const modeOf = async (file: string) => (await stat(file)).mode & 0o777

describe('upload() of content over SSH', () => {
  it('writes the bytes with their mode over the command channel and without it, and opens no SFTP session', async () => {
    const logBefore = servers.servers[0].log.length
    const result = await dep(['put', '--json'], { cwd: dir, env: { SSH_AUTH_SOCK: '' } })
    expect(result.code, result.output).toBe(0)
    for (const alias of ['web', 'plain']) {
      const conf = path.join(target, alias, 'conf')
      expect(await readFile(path.join(conf, 'tricky'), 'utf8'), alias).toBe(TRICKY)
      expect(await modeOf(path.join(conf, 'tricky')), alias).toBe(0o600)
      expect(await readFile(path.join(conf, 'wide'), 'utf8'), alias).toBe('replaced\n')
      expect(await modeOf(path.join(conf, 'wide')), alias).toBe(0o640)
      expect(await modeOf(path.join(conf, 'default')), alias).toBe(0o600)
      expect((await readFile(path.join(conf, 'big.bin'))).equals(BIG), alias).toBe(true)
      await expect(stat(path.join(conf, 'tricky.deployfile-upload'))).rejects.toThrow()
    }
    const log = servers.servers[0].log.slice(logBefore)
    expect(log).toContain('Starting session')
    expect(log).not.toMatch(/sftp/i)
    // The queued mkdir and the first upload went in one round trip.
    const steps = result.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { type: string; host?: string; roundTrips?: number })
      .filter((event) => event.type === 'step:end')
    for (const alias of ['web', 'plain']) expect(steps.find((e) => e.host === alias)?.roundTrips, alias).toBe(4)
    expect(result.output).not.toContain('last line, no newline')
  }, 120_000)

  it('on a full disk: fails naming the upload and "No space left", and leaves neither the file nor a partial copy', async () => {
    await withTmpfs(path.join(servers.workDir, 'tmpfs-upload'), '64k', async (mount) => {
      const file = path.join(mount, 'big.bin')
      const result = await dep(['put-full', 'web'], { cwd: dir, env: { SSH_AUTH_SOCK: '', FULL_TARGET: file } })
      expect(result.code).not.toBe(0)
      expect(result.output).toContain(`upload (content) → ${file}`)
      expect(result.output).toMatch(/No space left on device/)
      expect(await readdir(mount)).toEqual([])
    })
  }, 120_000)

  it("a directory's archive on the command channel: a disk full in the middle fails the upload, and the loop serves on in step, in one session", async () => {
    const out = path.join(dir, 'tree-full.json')
    await withTmpfs(path.join(servers.workDir, 'tmpfs-tree'), '64k', async (mount) => {
      const logBefore = servers.servers[0].log.length
      const result = await dep(['tree-full', 'web'], { cwd: dir, env: { SSH_AUTH_SOCK: '', FULL_TARGET: path.join(mount, 'release'), OUT: out } })
      expect(result.code, result.output).toBe(0)
      const seen = JSON.parse(await readFile(out, 'utf8')) as { loop: string; error: string; after: string }
      expect(seen.error).toMatch(/exited with code 2: mkdir -p .* && tar -x -f - /)
      expect(seen.error).toMatch(/No space left on device/)
      // The same loop ran the next command, reading its header where it starts.
      expect(seen.after).toBe(`${seen.loop}\nin step`)
      expect(servers.servers[0].log.slice(logBefore).match(/^Starting session: /gm)).toHaveLength(1)
    })
  }, 120_000)

  it('names the upload when the target cannot be written, and leaves no temp file', async () => {
    const result = await dep(['put-missing'], { cwd: dir, env: { SSH_AUTH_SOCK: '' } })
    expect(result.code).not.toBe(0)
    expect(result.output).toContain(`upload (content) → ${path.join(target, 'web', 'no/such/dir/file')}`)
  }, 120_000)
})
