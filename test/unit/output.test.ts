/** LineSplitter and OutputBuffer: output streamed in linear time and bounded memory (issue 11, item 5). */
import { describe, expect, it } from 'vitest'
import { LineSplitter, MAX_OUTPUT_PIECE } from '../../src/executor/output.js'
import { SecretRegistry } from '../../src/shell/redact.js'
import { OutputBuffer } from '../../src/transport/output-buffer.js'

function collect(secrets?: SecretRegistry, maxPiece?: number) {
  const events: Array<{ text: string; partial: boolean }> = []
  const splitter = new LineSplitter((text, partial) => events.push({ text, partial }), secrets, maxPiece)
  return { events, splitter }
}

describe('LineSplitter', () => {
  it('splits lines across chunks, keeps the last line without newline, and multi-byte characters whole', () => {
    const { events, splitter } = collect()
    const bytes = Buffer.from('a1\nb€2\nc3')
    // Cut inside the 3-byte €.
    splitter.push(bytes.subarray(0, 5))
    splitter.push(bytes.subarray(5))
    splitter.flush()
    expect(events).toEqual([
      { text: 'a1', partial: false },
      { text: 'b€2', partial: false },
      { text: 'c3', partial: false },
    ])
  })

  it('passes a 20 MB line on in bounded pieces, as it comes, without rescanning (linear)', () => {
    const { events, splitter } = collect()
    const chunk = Buffer.alloc(64 * 1024, 'x')
    let pendingMax = 0
    const chunks = Math.ceil((20 * 1024 * 1024) / chunk.length)
    for (let i = 0; i < chunks; i++) {
      splitter.push(chunk)
      // What it holds stays under two pieces (the unfinished line's tail).
      pendingMax = Math.max(pendingMax, (splitter as unknown as { pendingLength: number }).pendingLength)
    }
    splitter.flush()
    expect(pendingMax).toBeLessThan(2 * MAX_OUTPUT_PIECE)
    expect(events.reduce((sum, e) => sum + e.text.length, 0)).toBe(chunks * chunk.length)
    expect(events.every((e) => e.text.length <= MAX_OUTPUT_PIECE)).toBe(true)
    expect(events.slice(0, -1).every((e) => e.partial)).toBe(true)
    expect(events.at(-1)!.partial).toBe(false)
    expect(events.length).toBe(Math.ceil((chunks * chunk.length) / MAX_OUTPUT_PIECE))
  }, 120_000)

  it('never cuts a long line inside a secret (or one of its forms), whatever the chunking', () => {
    const secrets = new SecretRegistry()
    secrets.add("Se'cret-Value-1234")
    const forms = ["Se'cret-Value-1234", "Se'\\''cret-Value-1234"]
    for (let offset = 0; offset < 40; offset++) {
      const { events, splitter } = collect(secrets, 100)
      const text = `${'x'.repeat(offset + 70)}${forms[offset % 2]}${'y'.repeat(30)}${forms[0]}${'z'.repeat(150)}\n`
      for (let i = 0; i < text.length; i += 7) splitter.push(Buffer.from(text.slice(i, i + 7)))
      splitter.flush()
      const masked = events.map((e) => secrets.redact(e.text))
      expect(masked.join(''), `offset ${offset}`).not.toMatch(/cret|Valu|1234/)
      expect(masked.join('').match(/\*\*\*/g)?.length).toBe(2)
      expect(events.map((e) => e.text).join('')).toBe(text.slice(0, -1))
    }
  })
})

describe('OutputBuffer', () => {
  it('keeps everything by default', () => {
    const buffer = new OutputBuffer()
    buffer.push(Buffer.from('one\n'))
    buffer.push(Buffer.from('two\n'))
    expect(buffer.text()).toBe('one\ntwo\n')
    expect(buffer.dropped).toBe(0)
  })

  it('keeps only the last bytes, on a character boundary, and counts what it dropped', () => {
    const buffer = new OutputBuffer(10)
    for (let i = 0; i < 1000; i++) buffer.push(Buffer.from(`line ${i} €\n`))
    const text = buffer.text()
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(10)
    expect(text.endsWith('999 €\n')).toBe(true)
    expect(text).not.toContain('\uFFFD')
    const total = Array.from({ length: 1000 }, (_, i) => Buffer.byteLength(`line ${i} €\n`)).reduce((a, b) => a + b, 0)
    expect(buffer.dropped + Buffer.byteLength(text)).toBe(total)
    // Memory: whole chunks out of the window are let go as they come.
    expect((buffer as unknown as { chunks: Buffer[] }).chunks.length).toBeLessThanOrEqual(2)
  })

  it('keeps nothing with limit 0', () => {
    const buffer = new OutputBuffer(0)
    buffer.push(Buffer.from('abc'))
    expect(buffer.text()).toBe('')
    expect(buffer.dropped).toBe(3)
  })
})
