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

  it('ignores null, undefined and non-strings, but takes numbers of 4+ digits (issue 11)', () => {
    const secrets = new SecretRegistry()
    secrets.add(undefined, null, {} as unknown as string, 123)
    expect(secrets.list()).toEqual([])
    secrets.add(12345)
    expect(secrets.list()).toEqual(['12345'])
    expect(secrets.redact('pin 12345')).toBe('pin ***')
  })

  it('keeps each value once', () => {
    const secrets = new SecretRegistry()
    secrets.add('same-value', 'same-value')
    secrets.add('same-value')
    expect(secrets.list()).toEqual(['same-value'])
  })
})

describe('every rendered form of a secret (issue 11)', () => {
  const TOKEN = `tok'en"$x\\y \`z&/?=`

  it('masks the POSIX single-quoted form that run() prints, alone and inside a longer quoted word', () => {
    const secrets = new SecretRegistry()
    secrets.add(TOKEN)
    const quoted = `'${TOKEN.replace(/'/g, `'\\''`)}'`
    expect(quoted).toContain(`'\\''`)
    expect(secrets.redact(`echo ${quoted}`)).toBe(`echo '***'`)
    const inWord = `'Bearer ${TOKEN.replace(/'/g, `'\\''`)}'`
    expect(secrets.redact(`curl -H ${inWord}`)).toBe(`curl -H 'Bearer ***'`)
  })

  it('masks the .env-escaped, shell double-quoted, JSON-escaped and URL-encoded forms', () => {
    const secrets = new SecretRegistry()
    secrets.add(TOKEN)
    const env = TOKEN.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$')
    const dq = env.replace(/`/g, '\\`')
    const json = JSON.stringify({ token: TOKEN })
    const url = `https://user:${encodeURIComponent(TOKEN)}@example.com/?t=${encodeURIComponent(TOKEN)}`
    const form = `t=${encodeURIComponent(TOKEN).replace(/%20/g, '+')}`
    const text = [`APP_KEY="${env}"`, `X="${dq}"`, json, url, form, TOKEN].join('\n')
    const masked = secrets.redact(text)
    expect(masked).toBe(['APP_KEY="***"', 'X="***"', '{"token":"***"}', 'https://user:***@example.com/?t=***', 't=***', '***'].join('\n'))
  })

  it('masks a multi-line secret written with \\n escapes (JSON, .env)', () => {
    const secrets = new SecretRegistry()
    const key = '-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----'
    secrets.add(key)
    expect(secrets.redact(JSON.stringify({ key }))).toBe('{"key":"***"}')
    expect(secrets.redact('AAAAB3NzaC1yc2EAAAADAQABAAABAQ')).toBe('***')
  })

  it('masks all-digit secrets of 4+ characters, not of 3', () => {
    const secrets = new SecretRegistry()
    secrets.add('4821', '123')
    expect(secrets.redact('pin=4821 code=123 HTTP 200')).toBe('pin=*** code=123 HTTP 200')
  })

  it('covers overlapping occurrences whole', () => {
    const secrets = new SecretRegistry()
    secrets.add('abcab')
    expect(secrets.redact('x abcabcab y')).toBe('x *** y')
    const two = new SecretRegistry()
    two.add('hello-wor', 'world-secret')
    expect(two.redact('hello-world-secret!')).toBe('***!')
  })

  it('safeCut never cuts through a secret', () => {
    const secrets = new SecretRegistry()
    secrets.add('SECRET-VALUE')
    const text = `${'x'.repeat(100)}SECRET-VALUE${'y'.repeat(100)}`
    for (let at = 0; at <= text.length; at++) {
      const cut = secrets.safeCut(text, at)
      expect(cut).toBeGreaterThanOrEqual(at)
      const pieces = secrets.redact(text.slice(0, cut)) + secrets.redact(text.slice(cut))
      expect(pieces, `cut at ${at}`).not.toMatch(/SECRET|VALUE/)
      expect(pieces.includes('***')).toBe(true)
    }
  })
})
