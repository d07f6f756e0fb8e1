/** redact() and SecretRegistry: what every output channel masks through. */
import { describe, expect, it } from 'vitest'
import { MASK, redact, SecretRegistry } from '../../src/shell/redact.js'

describe('redact', () => {
  it('replaces every occurrence of a secret', () => {
    expect(redact('pw=hunter2 again hunter2', ['hunter2'])).toBe('pw=*** again ***')
    expect(MASK).toBe('***')
  })

  it('masks the longest secret first, so a secret containing another is masked whole', () => {
    // Shorter first would leave "***-extended" and reveal that the longer one starts with it.
    expect(redact('token=abc123-extended', ['abc123', 'abc123-extended'])).toBe('token=***')
    expect(redact('token=abc123-extended', ['abc123-extended', 'abc123'])).toBe('token=***')
    expect(redact('a abc123 b abc123-extended', ['abc123', 'abc123-extended'])).toBe('a *** b ***')
  })

  it('ignores empty strings and duplicates', () => {
    expect(redact('abc', ['', ''])).toBe('abc')
    expect(redact('x secret x', ['secret', 'secret'])).toBe('x *** x')
  })

  it('treats secrets as plain text, not patterns', () => {
    expect(redact('a.b a+b (x)', ['a.b', '(x)'])).toBe('*** a+b ***')
    expect(redact('a+b axb', ['a+b'])).toBe('*** axb')
  })

  it('masks across lines inside one text', () => {
    expect(redact('line1\nmy-secret\nline3', ['my-secret'])).toBe('line1\n***\nline3')
  })
})

describe('SecretRegistry', () => {
  it('starts empty and leaves text alone', () => {
    const secrets = new SecretRegistry()
    expect(secrets.list()).toEqual([])
    expect(secrets.redact('nothing to hide')).toBe('nothing to hide')
  })

  it('masks what was added, longest first', () => {
    const secrets = new SecretRegistry()
    secrets.add('pass', 'password123')
    expect(secrets.redact('password123 / pass')).toBe('*** / ***')
    expect(secrets.has('pass')).toBe(true)
  })

  it('ignores values shorter than 3 characters (they would mask ordinary text)', () => {
    const secrets = new SecretRegistry()
    secrets.add('a', 'ab', '', 'abc')
    expect(secrets.list()).toEqual(['abc'])
    expect(secrets.redact('a ab abc')).toBe('a ab ***')
    expect(secrets.has('ab')).toBe(false)
  })

  it('ignores null, undefined and non-strings', () => {
    const secrets = new SecretRegistry()
    secrets.add(undefined, null, 12345 as unknown as string)
    expect(secrets.list()).toEqual([])
  })

  it('keeps each value once', () => {
    const secrets = new SecretRegistry()
    secrets.add('same-value', 'same-value')
    secrets.add('same-value')
    expect(secrets.list()).toEqual(['same-value'])
  })
})
