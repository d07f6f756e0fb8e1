/**
 * The shell protocol (src/shell/protocol): every piece deployfile sends, pinned as an exact string,
 * and values carried through the real /bin/sh (dash here) unchanged.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Command, raw, sh } from '../../src/shell/command.js'

/** `echo <value>` carrying the value as a secret (what run(…, { secrets }) does). */
const echoSecret = (value: string) => new Command(`echo ${value}`, [value])
import {
  adHocScript,
  COMMAND_LOOP,
  failedQueuedIndex,
  findPgidMarker,
  interactiveShellScript,
  killScript,
  LOCAL_BOOTSTRAP,
  localPayload,
  loopCanCarry,
  loopEndMarker,
  loopPayload,
  marker,
  parseMarkers,
  PGID_PREAMBLE,
  queuedBatch,
  renderCommand,
  ScriptExit,
  SSH_BOOTSTRAP,
  sshPayload,
  withoutQueuedMarker,
} from '../../src/shell/protocol.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-protocol-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

/** Runs `text` with `/bin/sh -c` (dash on this machine): stdout, stderr and status. */
function dash(text: string, input?: string | Buffer): { stdout: string; stderr: string; status: number } {
  try {
    const stdout = execFileSync('/bin/sh', ['-c', text], { encoding: 'utf8', cwd: '/', input, stdio: ['pipe', 'pipe', 'pipe'] })
    return { stdout, stderr: '', status: 0 }
  } catch (error) {
    const failed = error as { stdout: string; stderr: string; status: number }
    return { stdout: String(failed.stdout), stderr: String(failed.stderr), status: failed.status }
  }
}

/** Quotes, newlines, `$`, digits, backquotes, a backslash and a command substitution that must not run. */
const NASTY = `it's "$(touch ${join(sandbox, 'canary')})" \`x\` $HOME $1 0123\nnext line \\ $$ '' "`

describe('renderCommand: the one place a command becomes shell', () => {
  it('is the script alone without settings', () => {
    expect(renderCommand(new Command('echo hi'))).toBe('echo hi')
  })

  it('exports env, then changes directory (exit 1 before the script when it is missing), then the script', () => {
    const command = new Command("echo 'hi'", [], { cwd: '/srv/my app', env: { A: 'b c', N: '1' } })
    expect(renderCommand(command)).toBe("export A='b c'\nexport N=1\ncd '/srv/my app' || exit 1\necho 'hi'")
  })

  it('a nested command keeps its settings in a subshell', () => {
    const inner = new Command('pwd', [], { cwd: '/tmp' })
    expect(sh`echo before; ${inner}; pwd`.text).toBe('echo before; (\ncd /tmp || exit 1\npwd\n); pwd')
    expect(dash(sh`${inner}; pwd`.text).stdout).toBe('/tmp\n/\n')
  })

  it('with() changes settings and keeps the rest', () => {
    const command = new Command('ls', ['s3cret'], { cwd: '/a', env: { X: '1' } }).with({ cwd: '/b', stdin: 'in' })
    expect([command.text, command.secrets, command.cwd, command.env, command.stdin]).toEqual(['ls', ['s3cret'], '/b', { X: '1' }, 'in'])
  })

  it.each(['1ABC', 'A-B', 'A B', 'A;touch x', '', 'A=B', '$(x)'])('refuses the env var name %j', (name) => {
    expect(() => new Command('true', [], { env: { [name]: 'v' } })).toThrow(/Invalid environment variable name/)
  })

  it('a missing directory exits 1 and runs nothing', () => {
    const result = dash(renderCommand(new Command('echo should-not-run', [], { cwd: join(sandbox, 'missing') })))
    expect(result.status).toBe(ScriptExit.Failed)
    expect(result.stdout).toBe('')
  })

  it('a value with quotes, newlines, $ and digits survives dash unchanged, in env, in sh and in cwd', () => {
    const dir = join(sandbox, "dir 'x' $1 0\nz")
    execFileSync('mkdir', ['-p', dir])
    const command = sh`printf '%s|%s|' "$WEIRD" ${NASTY}; pwd`.with({ env: { WEIRD: NASTY }, cwd: dir })
    expect(dash(renderCommand(command)).stdout).toBe(`${NASTY}|${NASTY}|${dir}\n`)
    expect(readdirSync(sandbox)).not.toContain('canary')
  })
})

describe('the SSH wire', () => {
  it('pins the process-group preamble', () => {
    expect(PGID_PREAMBLE.text).toBe(
      [
        '__df_pg=$$',
        'if [ -r /proc/$$/stat ]; then read -r __df_st < /proc/$$/stat && __df_st=${__df_st##*) } && set -- $__df_st && __df_pg=${3:-$$}; set --; fi',
        `printf '@@deployfile-pgid:%s@@\\n' "$__df_pg" >&2`,
        'unset __df_pg __df_st __df_s',
      ].join('\n'),
    )
  })

  it('pins the bootstrap: a fixed exec request, the script read from stdin', () => {
    expect(SSH_BOOTSTRAP.text).toBe(
      [
        `exec /bin/sh -c 'IFS=" " read -r __df_n __df_m || exit 0`,
        'if [ "$__df_m" = 1 ]; then __df_s=$(dd bs=1 count="$__df_n" 2>/dev/null; echo .); else __df_s=$(cat; echo .); fi',
        '__df_s=${__df_s%.}',
        `case $__df_s in *'\\''#@@deployfile-end@@'\\'') ;; *) echo '\\''deployfile: the script arrived incomplete; it did not run.'\\'' >&2; exit 86;; esac`,
        'unset __df_n __df_m',
        `eval "$__df_s"'`,
      ].join('\n'),
    )
  })

  it('pins the payload: header, preamble, rendered command, trailer; no secret in the exec request', () => {
    const command = echoSecret('S3CRET').with({ cwd: '/srv/app', env: { A: 'b c' }, stdin: 'x' })
    const body = `${PGID_PREAMBLE.text}\nexport A='b c'\ncd /srv/app || exit 1\necho S3CRET\n#@@deployfile-end@@`
    expect(sshPayload(command).toString()).toBe(`${Buffer.byteLength(body)} 1\n${body}`)
    expect(sshPayload(new Command('x')).toString()).toMatch(/^\d+ 0\n/)
    expect(SSH_BOOTSTRAP.text).not.toContain('S3CRET')
  })

  it('runs end to end in dash: bootstrap, payload, then the command\'s own stdin', () => {
    const command = sh`printf '%s|' ${NASTY}; cat`.with({ stdin: `${NASTY}\n` })
    const result = execFileSync('/bin/sh', ['-c', SSH_BOOTSTRAP.text], {
      input: Buffer.concat([sshPayload(command), Buffer.from(command.stdin as string)]),
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    expect(result).toBe(`${NASTY}|${NASTY}\n`)
  })

  it('refuses a script cut short with ScriptExit.IncompleteScript, running none of it', () => {
    const payload = sshPayload(new Command(`touch ${join(sandbox, 'half')}`)).toString()
    const cut = payload.slice(0, payload.lastIndexOf('#@@'))
    const result = dash(SSH_BOOTSTRAP.text, cut)
    expect(result.status).toBe(ScriptExit.IncompleteScript)
    expect(readdirSync(sandbox)).not.toContain('half')
  })

  it('the preamble reports the process group, and findPgidMarker reads it', () => {
    const result = execFileSync('/bin/sh', ['-c', `${PGID_PREAMBLE.text}\necho err >&2`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    expect(result).toBe('')
    const stderr = '@@deployfile-pgid:4242@@\nerr\n'
    expect(findPgidMarker(`login noise\n${stderr}`)).toEqual({ index: 12, length: 25, pgid: 4242 })
    expect(findPgidMarker('err\n')).toBeUndefined()
  })

  it('pins the kill script (`kill -SIG -PGID`, the form dash accepts)', () => {
    expect(killScript([123, 456.7]).text).toBe(
      [
        `alive() { a=$(ps -A -o pgid= -o stat= 2>/dev/null) || { kill -0 -$1 2>/dev/null; return; }; printf '%s\\n' "$a" | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit f ? 0 : 1 }'; }`,
        'for p in 123 456; do kill -TERM -$p 2>/dev/null; done',
        'i=0',
        'while [ $i -lt 20 ]; do',
        '  left=; for p in 123 456; do alive $p && left=1; done',
        '  [ -z "$left" ] && exit 0',
        '  sleep 0.1 2>/dev/null || sleep 1',
        '  i=$((i+1))',
        'done',
        'for p in 123 456; do kill -KILL -$p 2>/dev/null; done',
        'exit 0',
      ].join('\n'),
    )
  })
})

describe('the command channel wire', () => {
  it('pins the loop: a fixed exec request, each command in a subshell forked before it comes (or a shell of its own session), then the end markers', () => {
    expect(COMMAND_LOOP.text).toBe(
      [
        `exec /bin/sh -c 'IFS= read -r __df_k || exit 0`,
        `if command -v setsid >/dev/null 2>&1; then __df_x=setsid; else __df_x=; fi`,
        `__df_pg=$$`,
        "if [ -r /proc/$$/stat ]; then read -r __df_st < /proc/$$/stat && __df_st=${__df_st##*) } && set -- $__df_st && __df_pg=${3:-$$}; set --; fi",
        `unset __df_st`,
        `trap '\\''exit 0'\\'' USR1`,
        `exec 4>&2 2>/dev/null`,
        `while :; do`,
        `  (IFS=" " read -r __df_n __df_i __df_g || { kill -s USR1 $$; exit 0; }`,
        `    if [ "$__df_g" = 1 ]; then`,
        `      exec $__df_x /bin/sh -c '\\''exec 2>&4 4>&-`,
        `__df_n=$1 __df_i=$2`,
        `set --`,
        `__df_s=`,
        `while [ "$__df_n" -gt 0 ] && IFS= read -r __df_l; do __df_s="$__df_s$__df_l`,
        `"; __df_n=$((__df_n - 1)); done`,
        `case $__df_s in *'\\''\\'\\'''\\''#@@deployfile-end@@'\\''\\'\\'''\\''"`,
        `") ;; *) echo '\\''\\'\\'''\\''deployfile: the script arrived incomplete; it did not run.'\\''\\'\\'''\\'' >&2; exit 86;; esac`,
        `unset __df_n __df_l`,
        `if [ "$__df_i" -gt 0 ] 2>/dev/null; then`,
        `  { if [ "$__df_i" -lt 1024 ]; then dd bs=1 count="$__df_i"`,
        `elif [ "$__df_i" -lt 65536 ]; then dd bs="$__df_i" count=1 iflag=fullblock || dd bs=1 count="$__df_i"`,
        `elif dd bs=65536 count=$((__df_i / 65536)) iflag=fullblock; then [ $((__df_i % 65536)) -eq 0 ] || dd bs=$((__df_i % 65536)) count=1 iflag=fullblock`,
        `else dd bs=1 count="$__df_i"; fi; } 2>/dev/null | { (unset __df_i; eval "$__df_s"); __df_i=$?; cat >/dev/null; exit $__df_i; }`,
        `else`,
        `  unset __df_i`,
        `  exec </dev/null`,
        `  eval "$__df_s"`,
        `fi'\\'' sh "$__df_n" "$__df_i"`,
        `    fi`,
        `    printf '\\''@@deployfile-pgid:%s@@\\n'\\'' "$__df_pg" >&4`,
        `    set -- "$__df_n" "$__df_i"; unset __df_k __df_x __df_g __df_r __df_pg`,
        `exec 2>&4 4>&-`,
        `__df_n=$1 __df_i=$2`,
        `set --`,
        `__df_s=`,
        `while [ "$__df_n" -gt 0 ] && IFS= read -r __df_l; do __df_s="$__df_s$__df_l`,
        `"; __df_n=$((__df_n - 1)); done`,
        `case $__df_s in *'\\''#@@deployfile-end@@'\\''"`,
        `") ;; *) echo '\\''deployfile: the script arrived incomplete; it did not run.'\\'' >&2; exit 86;; esac`,
        `unset __df_n __df_l`,
        `if [ "$__df_i" -gt 0 ] 2>/dev/null; then`,
        `  { if [ "$__df_i" -lt 1024 ]; then dd bs=1 count="$__df_i"`,
        `elif [ "$__df_i" -lt 65536 ]; then dd bs="$__df_i" count=1 iflag=fullblock || dd bs=1 count="$__df_i"`,
        `elif dd bs=65536 count=$((__df_i / 65536)) iflag=fullblock; then [ $((__df_i % 65536)) -eq 0 ] || dd bs=$((__df_i % 65536)) count=1 iflag=fullblock`,
        `else dd bs=1 count="$__df_i"; fi; } 2>/dev/null | { (unset __df_i; eval "$__df_s"); __df_i=$?; cat >/dev/null; exit $__df_i; }`,
        `else`,
        `  unset __df_i`,
        `  exec </dev/null`,
        `  eval "$__df_s"`,
        `fi)`,
        `  __df_r=$?`,
        `  printf '\\''@@deployfile-done-%s:%s@@\\n'\\'' "$__df_k" "$__df_r"`,
        `  printf '\\''@@deployfile-done-%s:%s@@\\n'\\'' "$__df_k" "$__df_r" >&4`,
        `done'`,
      ].join('\n'),
    )
  })

  it('pins the payload: header `<lines> <stdin-bytes> <own-session>`, preamble, rendered command, trailer and newline, the stdin', () => {
    const command = echoSecret('S3CRET').with({ cwd: '/srv/app', env: { A: 'b c' } })
    // In a subshell of the loop (the loop reports the group), and in a session of its own (with the preamble).
    const body = `export A='b c'\ncd /srv/app || exit 1\necho S3CRET\n#@@deployfile-end@@\n`
    expect(loopPayload(command, undefined).toString()).toBe(`5 0 0\nunset __df_s\n${body}`)
    const own = `${PGID_PREAMBLE.text}\n${body}`
    expect(loopPayload(command, Buffer.from('in'), true).toString()).toBe(`${own.split('\n').length - 1} 2 1\n${own}in`)
    expect(COMMAND_LOOP.text).not.toContain('S3CRET')
    expect(loopEndMarker('abc')).toBe('@@deployfile-done-abc:')
    expect(loopCanCarry(new Command('echo a'))).toBe(true)
    expect(loopCanCarry(new Command('echo a\0'))).toBe(false)
  })

  for (const [shell, own] of [
    ['/bin/sh', false],
    ['/bin/sh', true],
    ['/bin/bash', false],
    ['/bin/bash', true],
  ] as const) {
    it(`runs commands in sequence under ${shell}${own ? ', each in a session of its own' : ''}: exit codes, stdin given and drained, markers on both streams`, () => {
      const input = Buffer.concat([
        Buffer.from('N0NCE\n'),
        loopPayload(sh`printf '%s|' ${NASTY}; echo err >&2; exit 3`, undefined, own),
        loopPayload(
          new Command('wc -c; printf "%s|" "${__df_k-unset}" "${__df_s-unset}" "${__df_x-unset}" "${__df_g-unset}" "${__df_r-unset}" "$#"'),
          Buffer.from('12 0\nabc\n'),
          own,
        ),
        loopPayload(new Command('head -c 2'), Buffer.from('xyz\n#@@deployfile-end@@\n'), own),
        loopPayload(new Command('cat; echo last'), undefined, own),
      ])
      const result = execFileSync(shell, ['-c', COMMAND_LOOP.text.replace(/^exec /, '')], { input, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8' })
      const done = (status: number) => `@@deployfile-done-N0NCE:${status}@@\n`
      expect(result).toBe(`${NASTY}|${done(3)}9\nunset|unset|unset|unset|unset|0|${done(0)}xy${done(0)}last\n${done(0)}`)
    })
  }

  // Sizes around each way EXACT_STDIN copies: dd bs=1, one fullblock dd, 64 KiB blocks and a remainder.
  const sizes = [1, 1023, 1024, 5000, 65535, 65536, 65537, 200_000]
  for (const [shell, fullblock] of [
    ['/bin/sh', true],
    ['/bin/bash', true],
    ['/bin/sh', false],
  ] as const) {
    it(`passes on exactly the stdin bytes of each command under ${shell}${fullblock ? '' : ', with a dd that has no iflag=fullblock'}, and stays in step`, () => {
      const blobs = sizes.map((size, i) => {
        const blob = Buffer.alloc(size)
        for (let at = 0; at < size; at++) blob[at] = (at * 31 + i) % 256 // binary, newlines and NULs included
        return blob
      })
      const input = Buffer.concat([
        Buffer.from('K\n'),
        ...blobs.map((blob) => loopPayload(new Command('sha256sum | cut -c1-64'), blob)),
        loopPayload(new Command('echo in step'), undefined),
      ])
      // A dd that logs how it is called; without fullblock, it refuses iflag= before it reads anything.
      const bin = join(sandbox, `dd-${shell.replace(/\W/g, '')}-${fullblock}`)
      const log = join(bin, 'calls')
      mkdirSync(bin, { recursive: true })
      const refuse = fullblock ? '' : 'case "$*" in *iflag=*) echo "dd: invalid input flag" >&2; exit 1;; esac\n'
      writeFileSync(join(bin, 'dd'), `#!/bin/sh\necho "$*" >> '${log}'\n${refuse}exec /bin/dd "$@"\n`, { mode: 0o755 })
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` }
      const result = execFileSync(shell, ['-c', COMMAND_LOOP.text.replace(/^exec /, '')], { input, env, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 24 })
      const done = '@@deployfile-done-K:0@@\n'
      const hashes = blobs.map((blob) => `${createHash('sha256').update(blob).digest('hex')}\n${done}`)
      expect(result).toBe(`${hashes.join('')}in step\n${done}`)
      const calls = readFileSync(log, 'utf8').trim().split('\n')
      if (fullblock) {
        // One byte per read(2) only below 1 KiB; 200,000 bytes are three 64 KiB blocks and 3,392 more.
        expect(calls.filter((call) => /^bs=1 count=\d+$/.test(call))).toEqual(['bs=1 count=1', 'bs=1 count=1023'])
        expect(calls.slice(-2)).toEqual(['bs=65536 count=3 iflag=fullblock', 'bs=3392 count=1 iflag=fullblock'])
      } else {
        expect(calls.filter((call) => /^bs=1 count=\d+$/.test(call)).length).toBe(sizes.length)
      }
    })
  }

  it('refuses a script cut short (ScriptExit.IncompleteScript), running none of it, and ends at EOF', () => {
    const payload = loopPayload(new Command(`touch ${join(sandbox, 'half-loop')}`), undefined).toString()
    const cut = payload.slice(0, payload.lastIndexOf('#@@'))
    const result = dash(COMMAND_LOOP.text, `K\n${cut}`)
    expect(result.status).toBe(0)
    expect(result.stdout).toBe(`@@deployfile-done-K:${ScriptExit.IncompleteScript}@@\n`)
    expect(readdirSync(sandbox)).not.toContain('half-loop')
  })
})

describe('the local wire', () => {
  it('pins the bootstrap (script on fd 3) and the payload', () => {
    expect(LOCAL_BOOTSTRAP.text).toBe(
      [
        '__df_s=$(cat <&3; echo .)',
        'exec 3<&-',
        '__df_s=${__df_s%.}',
        `case $__df_s in *'#@@deployfile-end@@') ;; *) echo 'deployfile: the script arrived incomplete; it did not run.' >&2; exit 86;; esac`,
        'eval "$__df_s"',
      ].join('\n'),
    )
    expect(localPayload(new Command('true', [], { cwd: '/srv' }))).toBe('cd /srv || exit 1\ntrue\n#@@deployfile-end@@')
  })
})

describe('the queued batch', () => {
  const batch = queuedBatch(
    [new Command('touch a', [], { cwd: '/srv/a b', env: { X: '1' } }), echoSecret('s3cret')],
    new Command('ls', ['own'], { cwd: '/srv', stdin: 'in' }),
  )

  it('pins the script: each queued command in a subshell, the first failure named, then the own command', () => {
    expect(batch.text).toBe(
      [
        '(',
        'export X=1',
        "cd '/srv/a b' || exit 1",
        'touch a',
        ') </dev/null',
        `rc=$?; if [ $rc -ne 0 ]; then printf '\\n%s %s\\n' @@deployfile-queued-failed 0 >&2; exit $rc; fi`,
        '(',
        'echo s3cret',
        ') </dev/null',
        `rc=$?; if [ $rc -ne 0 ]; then printf '\\n%s %s\\n' @@deployfile-queued-failed 1 >&2; exit $rc; fi`,
        'cd /srv || exit 1',
        'ls',
      ].join('\n'),
    )
    expect([batch.secrets, batch.stdin, batch.cwd, batch.env]).toEqual([['s3cret', 'own'], 'in', undefined, undefined])
  })

  it('in dash, names the queued command that failed and runs nothing after it', () => {
    const failing = queuedBatch([new Command('echo one'), new Command('echo two; exit 7'), new Command('echo three')], new Command('echo own'))
    const result = dash(failing.text)
    expect(result.status).toBe(7)
    expect(result.stdout).toBe('one\ntwo\n')
    expect(failedQueuedIndex(result.stderr)).toBe(1)
    expect(withoutQueuedMarker(`boom${result.stderr}`)).toBe('boom')
    expect(failedQueuedIndex('no marker')).toBe(-1)
  })
})

describe('wrappers', () => {
  it('pins `dep run`: the current release, else deploy_path, else the login directory', () => {
    expect(adHocScript('uptime', '/srv/my app').text).toBe(
      "if [ -d '/srv/my app/current' ]; then cd '/srv/my app/current'; elif [ -d '/srv/my app' ]; then cd '/srv/my app'; fi\nuptime",
    )
    expect(adHocScript('uptime').text).toBe('uptime')
  })

  it('pins `dep ssh`: the first directory that exists, then the login shell', () => {
    expect(interactiveShellScript(['/srv/app/current', '/srv/app']).text).toBe(
      `cd /srv/app/current 2>/dev/null || cd /srv/app 2>/dev/null || echo 'deployfile: /srv/app/current nor /srv/app exists; staying in the home directory.' >&2; exec "\${SHELL:-/bin/sh}" -l`,
    )
    expect(interactiveShellScript([]).text).toBe('exec "${SHELL:-/bin/sh}" -l')
  })
})

describe('markers', () => {
  it('pins the emitted lines', () => {
    expect(marker('revision', 'abc').text).toBe(`printf '@revision %s\\n' abc`)
    expect(marker('revision', raw('"$rev"')).text).toBe(`printf '@revision %s\\n' "$rev"`)
    expect(marker('switched_back').text).toBe('echo @switched_back')
    expect(() => marker('bad name')).toThrow(/Invalid marker name/)
  })

  it('parses names, values, repeats and blocks out of ordinary output', () => {
    const output = ['noise', '@lock held', '@owner {"user":"a b"}', '@release\t1\t0\tabc\t12', '@release\t1\t1\t\t13', '@mv_t', '@log_begin', 'x', '@y z', '@log_end', 'tail @lock no'].join('\n')
    const markers = parseMarkers(output)
    expect(markers.get('lock')).toBe('held')
    expect(markers.get('owner')).toBe('{"user":"a b"}')
    expect(markers.all('release')).toEqual(['1\t0\tabc\t12', '1\t1\t\t13'])
    expect([markers.has('mv_t'), markers.get('mv_t'), markers.has('missing'), markers.get('missing')]).toEqual([true, '', false, undefined])
    expect(markers.block('log')).toBe('x\n@y z')
    expect(markers.block('other')).toBe('')
  })

  it('a value with quotes, newlines, $ and digits comes back through dash as it went in (one line each)', () => {
    const lines = NASTY.split('\n')
    const script = lines.map((line, index) => marker(`v${index}`, line).text).join('\n')
    const markers = parseMarkers(dash(script).stdout)
    expect(lines.map((_, index) => markers.get(`v${index}`))).toEqual(lines)
  })
})

describe('ScriptExit', () => {
  it('pins the named exit codes', () => {
    expect(ScriptExit).toEqual({ Ok: 0, Failed: 1, RefusedState: 3, NotFound: 4, MissingPrerequisite: 5, MissingRelease: 6, IncompleteScript: 86 })
  })
})
