/** -o key=value parsed against the declared type of the key (issue 10, items 9 and 10). */
import { describe, expect, it } from 'vitest'
import { parseOverrides } from '../../src/model/config.js'
import { ConfigError } from '../../src/model/errors.js'
import { SettingsTable } from '../../src/model/settings.js'

const table = new SettingsTable()
const parse = (...options: string[]) => parseOverrides(table, options)
const refused = (...options: string[]): ConfigError => {
  try {
    parse(...options)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).exitCode).toBe(2)
    return error as ConfigError
  }
  throw new Error(`-o ${options.join(' -o ')} was accepted`)
}

describe('-o values are read as their key type', () => {
  it('rollback_to=4 stays the string "4" (a release name, not a number)', () => {
    expect(parse('rollback_to=4').get('rollback_to')).toBe('4')
    expect(parse('release_name=007').get('release_name')).toBe('007')
    expect(parse('branch=123').get('branch')).toBe('123')
    expect(parse('writable_chmod_mode=0775').get('writable_chmod_mode')).toBe('0775')
  })

  it('numbers, booleans and lists are parsed', () => {
    const overrides = parse('keep_releases=7', 'healthcheck_timeout=2.5', 'writable_recursive=false', 'force=yes', 'shared_dirs=["storage","logs"]', 'clear_paths=a, b')
    expect(Object.fromEntries(overrides)).toEqual({
      keep_releases: 7,
      healthcheck_timeout: 2.5,
      writable_recursive: false,
      force: true,
      shared_dirs: ['storage', 'logs'],
      clear_paths: ['a', 'b'],
    })
  })

  it('an = in the value is part of the value', () => {
    expect(parse('healthcheck_command=test "$(cat x)" = ok').get('healthcheck_command')).toBe('test "$(cat x)" = ok')
  })

  it('keep_releases=five is refused (it used to become NaN and delete releases)', () => {
    const error = refused('keep_releases=five')
    expect(error.message).toBe('keep_releases must be a positive integer, got "five" (-o keep_releases=five).')
    expect(error.hint).toBe('keep_releases: How many good releases to keep on each host.')
    expect(refused('keep_releases=0').message).toMatch(/^keep_releases must be a positive integer, got 0 /)
    expect(refused('keep_releases=2.5').message).toMatch(/^keep_releases must be a positive integer, got "2.5" /)
  })

  it('an empty deploy_path= is refused (an unset CI variable used to mean mkdir /.dep)', () => {
    expect(refused('deploy_path=').message).toBe('deploy_path must be a non-empty absolute path, got "" (-o deploy_path=).')
    expect(refused('deploy_path=srv/app').message).toMatch(/^deploy_path must be a non-empty absolute path, got "srv\/app"/)
    expect(parse('deploy_path=/srv/app').get('deploy_path')).toBe('/srv/app')
  })

  it('booleans, enums and lists that do not parse are refused', () => {
    expect(refused('writable_recursive=maybe').message).toBe('writable_recursive must be true or false, got "maybe" (-o writable_recursive=maybe).')
    const mode = refused('writable_mode=chmd')
    expect(mode.message).toMatch(/^writable_mode must be one of acl, chmod, chown, chgrp, skip, got "chmd"/)
    expect(mode.hint).toContain('Did you mean "chmod"?')
    expect(refused('shared_dirs=[1,2]').message).toMatch(/^shared_dirs must be a list of strings, got \[1,2\]/)
    expect(refused('update_code_strategy=svn').message).toMatch(/^update_code_strategy must be one of git, upload/)
  })

  it('an unknown key is refused with the nearest known one', () => {
    const error = refused('keep_releasez=3')
    expect(error.message).toBe('Unknown setting "keep_releasez" (-o keep_releasez=3).')
    expect(error.hint).toMatch(/^Did you mean "keep_releases"\?/)
    expect(error.hint).toContain("declareSetting('keep_releasez'")
  })

  it('a key that is not key=value is refused', () => {
    expect(refused('keep_releases').message).toBe('Option -o "keep_releases" is not key=value.')
  })

  it('a declared key of your own is parsed by its declared type', () => {
    const own = new SettingsTable()
    own.declare('workers', { type: 'positive-integer' })
    own.declare('features', { type: 'string[]' })
    expect(Object.fromEntries(parseOverrides(own, ['workers=3', 'features=a,b']))).toEqual({ workers: 3, features: ['a', 'b'] })
  })

  it('the value of a secret key is masked in the error', () => {
    const own = new SettingsTable()
    own.declare('db_port', { type: 'positive-integer' })
    const error = (() => {
      try {
        parseOverrides(own, ['db_port=hunter2'], new Set(['db_port']))
      } catch (e) {
        return e as ConfigError
      }
    })()
    expect(error?.message).toBe('db_port must be a positive integer, got *** (-o db_port=***).')
  })
})
