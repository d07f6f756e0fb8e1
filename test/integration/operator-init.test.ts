/**
 * `dep init` with the built CLI: the deployfile it writes loads, plans, type
 * checks against the package's types, and deploys as written; it refuses to
 * overwrite, checks its answers, and writes a GitHub Actions workflow on request.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, dep, REPO_ROOT } from '../support/dep.js'

const sandbox = realpathSync(mkdtempSync(path.join(tmpdir(), 'df-init-')))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))
beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsup\` first.`)
})

function project(name: string, files: Record<string, string> = {}): string {
  const dir = path.join(sandbox, name)
  mkdirSync(dir, { recursive: true })
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    writeFileSync(path.join(dir, file), text)
  }
  return dir
}

/** tsc on a directory's deployfile.ts with the package's published types (dist/*.d.ts), as an ESM project. */
function typecheck(dir: string): Promise<{ code: number; output: string }> {
  if (!existsSync(path.join(dir, 'package.json'))) writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }))
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
        typeRoots: [path.join(REPO_ROOT, 'node_modules/@types')],
        paths: {
          deployfile: [path.join(REPO_ROOT, 'dist/index.d.ts')],
          'deployfile/recipes/*': [path.join(REPO_ROOT, 'dist/recipes/*.d.ts')],
        },
      },
      files: ['deployfile.ts'],
    }),
  )
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` })
    })
  })
}

describe('dep init --yes', () => {
  it('writes a localhost deployfile that lists, plans, type checks and deploys as written', async () => {
    const dir = project('local-app', { 'index.html': '<h1>hello</h1>\n' })
    const target = path.join(sandbox, 'local-srv')
    const init = await dep(['init', '--yes', '-o', 'recipe=common', '-o', 'repository=', '-o', 'hosts=localhost', '-o', `deploy_path=${target}`], { cwd: dir })
    expect(init.code, init.output).toBe(0)
    // The summary is the result: on stdout, nothing on stderr.
    expect(init.stderr).toBe('')
    expect(init.stdout).toContain('Wrote deployfile.ts, tsconfig.json.')
    expect(init.stdout).toContain(`into ${target}`)
    const text = readFileSync(path.join(dir, 'deployfile.ts'), 'utf8')
    expect(text).toContain(`localhost('localhost', { deployPath: '${target}'`)
    expect(text).toContain('use(common)')

    const list = await dep(['list'], { cwd: dir })
    expect(list.code, list.output).toBe(0)
    expect(list.stdout).toMatch(/^\s+deploy\s+Deploys a new release/m)
    const plan = await dep(['deploy', '--plan'], { cwd: dir })
    expect(plan.code, plan.output).toBe(0)
    expect(plan.stdout).toMatch(/^deploy:symlink\s+switch\s+●/m)

    const deploy = await dep(['deploy'], { cwd: dir })
    expect(deploy.code, deploy.output).toBe(0)
    expect(readlinkSync(path.join(target, 'current'))).toBe('releases/1')
    expect(readFileSync(path.join(target, 'current', 'index.html'), 'utf8')).toBe('<h1>hello</h1>\n')
    // The deployfile itself is not shipped.
    expect(existsSync(path.join(target, 'current', 'deployfile.ts'))).toBe(false)

    const types = await typecheck(dir)
    expect(types.code, types.output).toBe(0)
  }, 60_000)

  it('the type check is real: a wrong setting in the same project fails it', async () => {
    const dir = project('local-app-broken')
    const init = await dep(['init', '--yes', '-o', 'hosts=localhost', '-o', `deploy_path=${path.join(sandbox, 'x')}`, '-o', 'repository='], { cwd: dir })
    expect(init.code, init.output).toBe(0)
    writeFileSync(path.join(dir, 'deployfile.ts'), `${readFileSync(path.join(dir, 'deployfile.ts'), 'utf8')}\nset('keep_releases', 'five')\n`)
    const types = await typecheck(dir)
    expect(types.code).not.toBe(0)
    expect(types.output).toMatch(/error TS2345: Argument of type 'string' is not assignable to parameter of type 'SettingValue<number>'/)
  }, 60_000)

  it('writes a Laravel deployfile for several SSH hosts, and a GitHub Actions workflow', async () => {
    const dir = project('shop')
    const init = await dep(
      [
        'init',
        '--yes',
        '-o', 'recipe=laravel',
        '-o', 'repository=git@github.com:acme/shop.git',
        '-o', 'hosts=web1.example.com,web2.example.com',
        '-o', 'deploy_path=/var/www/app',
        '-o', 'remote_user=deploy',
        '-o', 'github=true',
      ],
      { cwd: dir },
    )
    expect(init.code, init.output).toBe(0)
    const text = readFileSync(path.join(dir, 'deployfile.ts'), 'utf8')
    expect(text).toContain(`import { laravel } from 'deployfile/recipes/laravel'`)
    expect(text).toContain(`set('repository', 'git@github.com:acme/shop.git')`)
    expect(text).toContain(`host('web1.example.com', { remoteUser: 'deploy', deployPath: '/var/www/app'`)
    expect(text).toContain(`host('web2.example.com', {`)
    // docs/laravel.md says to set http_user: the written file does.
    expect(text).toContain(`set('http_user', 'www-data')`)

    const plan = await dep(['deploy', '--plan'], { cwd: dir })
    expect(plan.code, plan.output).toBe(0)
    expect(plan.stdout).toContain('web1.example.com  web2.example.com')

    const workflow = readFileSync(path.join(dir, '.github/workflows/deploy.yml'), 'utf8')
    expect(workflow).toContain('npx dep deploy --revision "$GITHUB_SHA" --log deploy.log')
    expect(workflow).toContain('secrets.DEPLOY_SSH_KEY')
    expect(workflow).toContain('secrets.DEPLOY_KNOWN_HOSTS')
    expect(workflow).toMatch(/branches: \[main\]/)
    expect(workflow).not.toMatch(/\t/)

    const types = await typecheck(dir)
    expect(types.code, types.output).toBe(0)
  }, 60_000)

  it('with --yes and no hosts, deploys into the project (.deploy/<name>), never into a system path', async () => {
    const dir = project('first-try', { 'index.html': '<h1>first</h1>\n' })
    const init = await dep(['init', '--yes'], { cwd: dir })
    expect(init.code, init.output).toBe(0)
    expect(init.stdout).toContain('to this machine (localhost)')
    expect(init.stdout).toContain('into .deploy/first-try (next to the deployfile)')
    const text = readFileSync(path.join(dir, 'deployfile.ts'), 'utf8')
    expect(text).not.toContain('/var/www')
    // Node 20.0 has no import.meta.dirname (engines says >=20).
    expect(text).not.toContain('import.meta.dirname')
    expect(text).toContain(`localhost('localhost', { deployPath: here('.deploy/first-try')`)
    // Run from another directory: the paths are the deployfile's, not the working directory's.
    const elsewhere = project('elsewhere')
    const deploy = await dep(['deploy', '-f', path.join(dir, 'deployfile.ts')], { cwd: elsewhere })
    expect(deploy.code, deploy.output).toBe(0)
    expect(readFileSync(path.join(dir, '.deploy/first-try/current/index.html'), 'utf8')).toBe('<h1>first</h1>\n')
    expect(existsSync(path.join(dir, '.deploy/first-try/current/.deploy'))).toBe(false)
  }, 60_000)

  it('writes the SSH port, key and known_hosts file given for SSH hosts', async () => {
    const dir = project('ssh-options')
    const init = await dep(
      ['init', '--yes', '-o', 'hosts=web1.example.com', '-o', 'port=2222', '-o', 'identity_file=~/.ssh/deploy', '-o', 'known_hosts_file=~/.ssh/known_hosts_deploy', '-o', 'repository='],
      { cwd: dir },
    )
    expect(init.code, init.output).toBe(0)
    const text = readFileSync(path.join(dir, 'deployfile.ts'), 'utf8')
    expect(text).toContain(`host('web1.example.com', { port: 2222, identityFile: '~/.ssh/deploy', knownHostsFile: '~/.ssh/known_hosts_deploy', deployPath: '/var/www/ssh-options'`)
    const bad = await dep(['init', '--yes', '-o', 'port=ssh'], { cwd: project('bad-port') })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('port must be a number, got "ssh"')
  })

  it('refuses to overwrite a deployfile (or a workflow) without --force', async () => {
    const dir = project('existing', { 'deployfile.ts': '// mine\n', '.github/workflows/deploy.yml': '# mine\n' })
    const args = ['init', '--yes', '-o', 'hosts=localhost', '-o', 'deploy_path=/srv/app', '-o', 'repository=']
    const again = await dep(args, { cwd: dir })
    expect(again.code).toBe(2)
    expect(again.stderr).toContain('deployfile.ts already exists; dep init does not overwrite it.')
    expect(again.stderr).toContain('dep init --force')
    expect(readFileSync(path.join(dir, 'deployfile.ts'), 'utf8')).toBe('// mine\n')

    const workflow = await dep([...args, '--force', '-o', 'github=true'], { cwd: path.join(dir) })
    expect(workflow.code).toBe(0) // --force replaces both
    expect(readFileSync(path.join(dir, '.github/workflows/deploy.yml'), 'utf8')).toContain('npx dep deploy')

    rmSync(path.join(dir, 'deployfile.ts'))
    writeFileSync(path.join(dir, '.github/workflows/deploy.yml'), '# mine again\n')
    const only = await dep([...args, '-o', 'github=true'], { cwd: dir })
    expect(only.code).toBe(2)
    expect(only.stderr).toContain('.github/workflows/deploy.yml already exists')
    expect(existsSync(path.join(dir, 'deployfile.ts'))).toBe(false)
  })

  it('checks its answers', async () => {
    const dir = project('answers')
    const recipe = await dep(['init', '--yes', '-o', 'recipe=rails'], { cwd: dir })
    expect(recipe.code).toBe(2)
    expect(recipe.stderr).toContain('recipe must be "common" or "laravel", got "rails"')
    const relative = await dep(['init', '--yes', '-o', 'deploy_path=var/www'], { cwd: dir })
    expect(relative.code).toBe(2)
    expect(relative.stderr).toContain('deploy_path must be an absolute path')
    const typo = await dep(['init', '--yes', '-o', 'hostz=web1'], { cwd: dir })
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain('dep init does not know "hostz".')
    expect(typo.stderr).toContain('Did you mean "hosts"')
    expect(existsSync(path.join(dir, 'deployfile.ts'))).toBe(false)
  })

  it('without a terminal and without --yes, says how to run it in a script', async () => {
    const dir = project('no-tty')
    const r = await dep(['init'], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('dep init asks questions, and there is no terminal to ask on.')
    expect(r.stderr).toContain('dep init --yes')
  })
})
