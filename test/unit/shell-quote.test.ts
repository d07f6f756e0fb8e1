/**
 * quote() and the sh`` tag, checked against real shells: every value must come
 * back byte for byte and nothing in it may run.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { quote } from '../../src/shell/quote.js'
import { Command, raw, script, sh } from '../../src/shell/command.js'

const sandbox = mkdtempSync(join(tmpdir(), 'df-quote-'))
afterAll(() => rmSync(sandbox, { recursive: true, force: true }))

const canary = (name: string) => join(sandbox, name)

const VALUES: Array<[string, string]> = [
  ['single quote', "it's"],
  ['only single quotes', "'''"],
  ['double quotes', 'say "hi"'],
  ['dollar variable', '$HOME and ${PATH}'],
  ['command substitution', `$(touch ${canary('dollar-paren')})`],
  ['backticks', `\`touch ${canary('backtick')}\``],
  ['backslashes', 'a\\b\\\\c\\n\\'],
  ['newlines', 'line1\nline2\n\nline4\n'],
  ['spaces', '  leading and trailing  '],
  ['tabs', '\ttab\tseparated\t'],
  ['glob star', '*'],
  ['glob mix', '/etc/* ?.txt [abc]'],
  ['empty string', ''],
  ['unicode', 'héllo wörld ✓ 日本語 🚀'],
  ['leading dash', '-n'],
  ['leading dashes', '--help'],
  ['semicolon injection', `x; touch ${canary('semicolon')}`],
  ['ampersand and pipe', `a && touch ${canary('and')} | cat`],
  ['redirection', `> ${canary('redirect')}`],
  ['tilde', '~root'],
  ['hash', '#not a comment'],
  ['equals in word', 'FOO=bar'],
  ['percent and printf escape', '%s %d \\x41'],
  ['exclamation', '!!'],
  ['braces', '{a,b}'],
  ['everything', `'"$\`\\\n\t* $(touch ${canary('everything')}) 'x'`],
]

const SHELLS = ['/bin/sh', ...(existsSync('/bin/dash') ? ['/bin/dash'] : []), ...(existsSync('/bin/bash') ? ['/bin/bash'] : [])]

function runIn(shell: string, text: string): string {
  return execFileSync(shell, ['-c', text], { encoding: 'utf8', cwd: sandbox })
}

describe('quote() round-trips through real shells', () => {
  for (const shell of SHELLS) {
    describe(shell, () => {
      for (const [name, value] of VALUES) {
        it(`${name}: ${JSON.stringify(value)}`, () => {
          const command = sh`printf '%s' ${value}`
          expect(runIn(shell, command.text)).toBe(value)
        })
      }
    })
  }

  it('nothing in any value was executed (no canary file exists)', () => {
    for (const shell of SHELLS) for (const [, value] of VALUES) runIn(shell, sh`printf '%s' ${value}`.text)
    expect(readdirSync(sandbox)).toEqual([])
  })

  it('a value is one word, whatever it contains', () => {
    for (const [, value] of VALUES) {
      expect(runIn('/bin/sh', sh`set -- ${value}; printf '%s' "$#"`.text)).toBe('1')
    }
  })

  it('leaves safe words bare and quotes everything else', () => {
    expect(quote('abc')).toBe('abc')
    expect(quote('/var/www/site-1.2_x:y@z%+,=')).toBe('/var/www/site-1.2_x:y@z%+,=')
    expect(quote(42)).toBe('42')
    expect(quote(true)).toBe('true')
    expect(quote('')).toBe("''")
    expect(quote('a b')).toBe("'a b'")
    expect(quote("it's")).toBe("'it'\\''s'")
    expect(quote('$x')).toBe("'$x'")
  })

  it('never produces bash-only $\'…\' quoting', () => {
    for (const [, value] of VALUES) expect(quote(value)).not.toMatch(/^\$'/)
  })
})

describe('sh`` tag', () => {
  it('numbers and booleans are rendered as words', () => {
    expect(sh`sleep ${5} && test ${true}`.text).toBe('sleep 5 && test true')
  })

  it('null and undefined become an empty word', () => {
    expect(sh`printf '[%s]' ${null} ${undefined}`.text).toBe("printf '[%s]' '' ''")
    expect(runIn('/bin/sh', sh`printf '[%s]' ${null} ${undefined}`.text)).toBe('[][]')
  })

  it('an array becomes several quoted words', () => {
    const files = ['a b', "c'd", '$(e)']
    const command = sh`printf '<%s>' ${files}`
    expect(command.text).toBe(`printf '<%s>' 'a b' 'c'\\''d' '$(e)'`)
    expect(runIn('/bin/sh', command.text)).toBe("<a b><c'd><$(e)>")
  })

  it('an empty array adds no word', () => {
    expect(runIn('/bin/sh', sh`set -- ${[]}; printf '%s' "$#"`.text)).toBe('0')
  })

  it('nested arrays flatten into words', () => {
    expect(runIn('/bin/sh', sh`printf '<%s>' ${['a', ['b c', ['d']]]}`.text)).toBe('<a><b c><d>')
  })

  it('raw() is inserted verbatim', () => {
    const command = sh`echo ${raw('$((1 + 2)) | tr 3 x')}`
    expect(command.text).toBe('echo $((1 + 2)) | tr 3 x')
    expect(runIn('/bin/sh', command.text)).toBe('x\n')
  })

  it('a nested Command is inserted as a command, not quoted as a word', () => {
    const inner = sh`printf '%s' ${'a b'}`
    const outer = sh`${inner} && printf '%s' ${'!'}`
    expect(outer.text).toBe(`printf '%s' 'a b' && printf '%s' '!'`)
    expect(runIn('/bin/sh', outer.text)).toBe('a b!')
  })

  it('secrets of nested commands are carried to the outer command', () => {
    const inner = new Command(`echo 'inner-secret'`, ['inner-secret'])
    const outer = sh`${inner}; echo ${[inner]}`
    expect(outer.secrets).toEqual(['inner-secret', 'inner-secret'])
  })

  it('returns a Command whose toString is the text', () => {
    const command = sh`ls ${'-la'}`
    expect(command).toBeInstanceOf(Command)
    expect(`${command}`).toBe('ls -la')
  })
})

describe('script()', () => {
  it('joins commands with set -e first and drops blank ones', () => {
    const s = script(sh`mkdir -p ${'a b'}`, '', '   ', 'echo done')
    expect(s.text).toBe("set -e\nmkdir -p 'a b'\necho done")
  })

  it('stops at the first failing line when run', () => {
    const s = script('echo one', 'false', 'echo two')
    expect(() => runIn('/bin/sh', s.text)).toThrow()
    let out = ''
    try {
      runIn('/bin/sh', s.text)
    } catch (error) {
      out = String((error as { stdout?: string }).stdout)
    }
    expect(out).toBe('one\n')
  })

  it('collects the secrets of every command', () => {
    expect(script(new Command('a s1-xyz', ['s1-xyz']), 'b', sh`c ${new Command('s2-xyz', ['s2-xyz'])}`).secrets).toEqual(['s1-xyz', 's2-xyz'])
  })
})
