/** The settings table: each type, its error message, parsing of -o text, declarations and suggestions. */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/model/errors.js'
import {
  BUILTIN_SETTINGS,
  SettingsTable,
  closeSettings,
  inferType,
  isLiteral,
  parseText,
  type SettingType,
} from '../../src/model/settings.js'

/** The error `check()` throws for a value of key `k` declared with `type`, or undefined. */
function problemOf(type: SettingType, value: unknown): ConfigError | undefined {
  const table = new SettingsTable({})
  table.declare('k', { type })
  return table.problem('k', value, 'test')
}

describe('types: what each accepts and what it says otherwise', () => {
  const cases: Array<{ type: SettingType; good: unknown[]; bad: unknown[]; says: string }> = [
    { type: 'string', good: ['', 'x', '4'], bad: [4, true, ['a'], null], says: 'k must be a string' },
    { type: 'absolute-path', good: ['/', '/srv/app', '/a b'], bad: ['', 'srv/app', './x', 5, ['/a']], says: 'k must be a non-empty absolute path' },
    { type: 'positive-integer', good: [1, 5, 1000], bad: [0, -1, 2.5, '5', Number.NaN, Infinity], says: 'k must be a positive integer' },
    { type: 'integer', good: [0, -3, 7], bad: [1.5, '1', Number.NaN], says: 'k must be an integer' },
    { type: 'number', good: [0, -1.5, 5], bad: ['5', Number.NaN, Infinity, true], says: 'k must be a number' },
    { type: 'boolean', good: [true, false], bad: ['true', 1, 0, null], says: 'k must be true or false' },
    { type: 'string[]', good: [[], ['a', 'b']], bad: ['a', [1], ['a', 2], { 0: 'a' }], says: 'k must be a list of strings' },
    { type: { oneOf: ['acl', 'chmod'] }, good: ['acl', 'chmod'], bad: ['ACL', '', 'chown', 1], says: 'k must be one of acl, chmod' },
  ]
  for (const { type, good, bad, says } of cases) {
    it(`${JSON.stringify(type)}`, () => {
      for (const value of good) expect(problemOf(type, value), JSON.stringify(value)).toBeUndefined()
      for (const value of bad) {
        const error = problemOf(type, value)
        expect(error, String(value)).toBeInstanceOf(ConfigError)
        expect(error!.exitCode).toBe(2)
        expect(error!.message.startsWith(`${says}, got `)).toBe(true)
        expect(error!.message.endsWith('(test).')).toBe(true)
      }
    })
  }

  it("'any' accepts everything", () => {
    for (const value of ['x', 1, { a: 1 }, [1], null]) expect(problemOf('any', value)).toBeUndefined()
  })

  it('the error shows the value, masked for a secret key', () => {
    expect(problemOf('positive-integer', 'five')!.message).toBe('k must be a positive integer, got "five" (test).')
    const table = new SettingsTable({})
    table.declare('token', { type: 'string', secret: true })
    expect(table.problem('token', 12345, 'here')!.message).toBe('token must be a string, got *** (here).')
    table.declare('pin', { type: 'string' })
    expect(table.problem('pin', 98765, 'here', { secret: true })!.message).toBe('pin must be a string, got *** (here).')
  })

  it('a one-of error suggests the close value, and the hint gives the description', () => {
    const table = new SettingsTable()
    const error = table.problem('writable_mode', 'chmd', '-o writable_mode=chmd')!
    expect(error.message).toBe('writable_mode must be one of acl, chmod, chown, chgrp, skip, got "chmd" (-o writable_mode=chmd).')
    expect(error.hint).toContain('Did you mean "chmod"?')
    expect(error.hint).toContain('writable_mode: How to make writable_dirs writable.')
  })

  it('lazy and templated values are not checked as given (only once they resolve)', () => {
    const table = new SettingsTable()
    expect(isLiteral(() => 'x')).toBe(false)
    expect(isLiteral('{{deploy_path}}/releases')).toBe(false)
    expect(isLiteral(['{{x}}'])).toBe(false)
    expect(isLiteral('\\{{x}}')).toBe(true)
    expect(table.problem('release_path', '{{deploy_path}}/releases/{{release_name}}', 'w')).toBeUndefined()
    expect(table.problem('keep_releases', () => 'five', 'w')).toBeUndefined()
    expect(table.problem('release_path', 'srv/releases/1', 'w', { resolved: true })?.message).toMatch(/^release_path must be a non-empty absolute path/)
  })

  it('unknown keys are not a type problem (checkKnown refuses them)', () => {
    const table = new SettingsTable()
    expect(table.problem('nope', 1, 'w')).toBeUndefined()
    expect(() => table.checkKnown('nope', 1, 'w')).toThrow('Unknown setting "nope" (w).')
  })
})

describe('parseText: -o text read as the type', () => {
  it('string keys keep their text, digits included', () => {
    expect(parseText('string', '4')).toBe('4')
    expect(parseText('string', ' 0775 ')).toBe(' 0775 ')
    expect(parseText('string', 'true')).toBe('true')
    expect(parseText('absolute-path', '')).toBe('')
    expect(parseText({ oneOf: ['1', '2'] }, '1')).toBe('1')
  })

  it('integers, numbers and booleans are parsed; text that does not parse stays text', () => {
    expect(parseText('positive-integer', '7')).toBe(7)
    expect(parseText('positive-integer', ' 7 ')).toBe(7)
    expect(parseText('positive-integer', 'five')).toBe('five')
    expect(parseText('positive-integer', '2.5')).toBe('2.5')
    expect(parseText('integer', '-3')).toBe(-3)
    expect(parseText('number', '2.5')).toBe(2.5)
    expect(parseText('number', '')).toBe('')
    expect(parseText('number', 'abc')).toBe('abc')
    for (const yes of ['true', 'yes', '1', 'on', 'TRUE']) expect(parseText('boolean', yes)).toBe(true)
    for (const no of ['false', 'no', '0', 'off']) expect(parseText('boolean', no)).toBe(false)
    expect(parseText('boolean', 'maybe')).toBe('maybe')
  })

  it('lists are JSON or comma-separated', () => {
    expect(parseText('string[]', '["a","b c"]')).toEqual(['a', 'b c'])
    expect(parseText('string[]', 'storage, logs,')).toEqual(['storage', 'logs'])
    expect(parseText('string[]', 'one')).toEqual(['one'])
    expect(parseText('string[]', '')).toEqual([])
    expect(parseText('string[]', '[broken')).toBe('[broken')
  })

  it("'any' parses what looks like JSON", () => {
    expect(parseText('any', '{"a":1}')).toEqual({ a: 1 })
    expect(parseText('any', '3')).toBe(3)
    expect(parseText('any', 'deploy/.env')).toBe('deploy/.env')
  })
})

describe('the table of built-in settings', () => {
  it('has every key of DeployConfig, each with a description', () => {
    const source = readFileSync(fileURLToPath(new URL('../../src/model/config-types.ts', import.meta.url)), 'utf8')
    const body = source.slice(source.indexOf('export interface DeployConfig'))
    const keys = [...body.matchAll(/^ {2}'?([\w/]+)'?: /gm)].map((m) => m[1])
    expect(keys.length).toBeGreaterThan(30)
    expect(Object.keys(BUILTIN_SETTINGS).sort()).toEqual([...keys].sort())
    for (const [name, spec] of Object.entries(BUILTIN_SETTINGS)) expect(spec.description, name).toBeTruthy()
  })

  it('gives the types the issue names', () => {
    expect(BUILTIN_SETTINGS.keep_releases).toMatchObject({ type: 'positive-integer', default: 5 })
    expect(BUILTIN_SETTINGS.deploy_path.type).toBe('absolute-path')
    expect(BUILTIN_SETTINGS.writable_mode.type).toEqual({ oneOf: ['acl', 'chmod', 'chown', 'chgrp', 'skip'] })
    expect(BUILTIN_SETTINGS.shared_dirs.type).toBe('string[]')
    expect(BUILTIN_SETTINGS.writable_recursive.type).toBe('boolean')
    expect(BUILTIN_SETTINGS.release_name.type).toBe('string')
    expect(BUILTIN_SETTINGS.rollback_to.type).toBe('string')
  })

  it('its defaults are of their own types', () => {
    const table = new SettingsTable()
    for (const [name, spec] of Object.entries(BUILTIN_SETTINGS)) {
      if (spec.default !== undefined) expect(table.problem(name, spec.default, 'default'), name).toBeUndefined()
    }
  })
})

describe('declarations', () => {
  it('a new key is known with its spec', () => {
    const table = new SettingsTable()
    table.declare('slack_webhook', { type: 'string', description: 'Where deploys are announced' })
    expect(table.get('slack_webhook')).toMatchObject({ type: 'string', description: 'Where deploys are announced', origin: 'declared' })
    expect(table.names()).toContain('slack_webhook')
  })

  it('declaring again with the same type updates it; another type is an error', () => {
    const table = new SettingsTable()
    table.declare('keep_releases', { type: 'positive-integer', description: 'mine' })
    expect(table.get('keep_releases')).toMatchObject({ origin: 'builtin', description: 'mine', default: 5 })
    expect(() => table.declare('keep_releases', { type: 'string' })).toThrow(
      'Setting "keep_releases" is already declared as a positive integer; it cannot also be a string.',
    )
  })

  it('an inferred declaration never overrides a declared one, and a declared one replaces an inferred one', () => {
    const table = new SettingsTable()
    table.declare('deploy_path', { type: 'string' }, 'inferred')
    expect(table.get('deploy_path')!.type).toBe('absolute-path')
    table.declare('workers', { type: 'number' }, 'inferred')
    table.declare('workers', { type: 'positive-integer' })
    expect(table.get('workers')).toMatchObject({ type: 'positive-integer', origin: 'declared' })
  })

  it('a bad type, a default not of the type, or a name with spaces is refused', () => {
    const table = new SettingsTable()
    expect(() => table.declare('x', { type: 'text' as never })).toThrow(/type must be one of 'string', 'absolute-path'.*got "text"/)
    expect(() => table.declare('x', { type: { oneOf: [] } })).toThrow(/type must be one of/)
    expect(() => table.declare('x', { type: 'positive-integer', default: 0 })).toThrow("declareSetting('x', …): the default 0 is not a positive integer.")
    expect(() => table.declare('my key', { type: 'string' })).toThrow(/white space/)
    expect(() => table.declare('', { type: 'string' })).toThrow(/needs a setting name/)
  })

  it('inferType: from the value given to setDefault()/secret()', () => {
    expect(inferType('x')).toBe('string')
    expect(inferType(3)).toBe('number')
    expect(inferType(false)).toBe('boolean')
    expect(inferType(['a'])).toBe('string[]')
    expect(inferType([1])).toBe('any')
    expect(inferType({ a: 1 })).toBe('any')
    expect(inferType(() => 'x')).toBe('any')
  })
})

describe('unknown keys: did you mean', () => {
  const table = new SettingsTable()

  it('names the nearest known key and how to declare one of your own', () => {
    const error = table.unknown('keep_release', "set('keep_release', …) at deployfile.ts:4", 3)
    expect(error.exitCode).toBe(2)
    expect(error.message).toBe(`Unknown setting "keep_release" (set('keep_release', …) at deployfile.ts:4).`)
    expect(error.hint).toMatch(/^Did you mean "keep_releases"\? /)
    expect(error.hint).toContain(`declareSetting('keep_release', { type: 'number' })`)
    expect(error.hint).toContain(`imported from 'deployfile'`)
  })

  it('suggests nothing when nothing is close', () => {
    expect(table.unknown('slack_webhook', 'w', 'x').hint).not.toContain('Did you mean')
  })

  it('suggests only close names: not upload_path for deploy_path', () => {
    expect(closeSettings('deploy_pth', table.names())).toEqual(['deploy_path'])
    expect(closeSettings('deploy_paht', table.names())).toEqual(['deploy_path'])
    expect(closeSettings('deploy_path', ['upload_path', 'release_path', 'current_path'])).toEqual([])
    expect(closeSettings('writable_mod', table.names())[0]).toBe('writable_mode')
  })
})
