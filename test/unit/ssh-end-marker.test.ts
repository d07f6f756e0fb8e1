/**
 * EndScanner: the command channel's end marker found in a stream cut anywhere, and output that
 * only looks like it passed on whole.
 */
import { describe, expect, it } from 'vitest'
import { EndScanner } from '../../src/transport/ssh/end-marker.js'

const PREFIX = '@@deployfile-done-0f1e2d3c4b5a69788796a5b4:'

/** Feeds `chunks` to a scanner: what it passed on, and the status it ended with. */
function scan(chunks: string[]): { output: string; status: number | undefined; ends: number } {
  let output = ''
  let status: number | undefined
  let ends = 0
  const scanner = new EndScanner(
    PREFIX,
    (chunk) => {
      output += chunk.toString('latin1')
    },
    (code) => {
      status = code
      ends++
    },
  )
  for (const chunk of chunks) scanner.push(Buffer.from(chunk, 'latin1'))
  return { output, status, ends }
}

/** Every way to cut `text` in two, and byte by byte. */
function cuts(text: string): string[][] {
  const ways = [[text], text.split('')]
  for (let i = 1; i < text.length; i++) ways.push([text.slice(0, i), text.slice(i)])
  return ways
}

describe('EndScanner', () => {
  it('passes the output before the marker on and reads the status, however the stream is cut', () => {
    const output = 'line\n@@deployfile-done-\n@@deployfile-done-0f1e:0@@\nno newline'
    for (const chunks of cuts(`${output}${PREFIX}137@@\n`)) {
      expect(scan(chunks)).toEqual({ output, status: 137, ends: 1 })
    }
  })

  it('holds back nothing that cannot be the marker, and a partial prefix only until it is told apart', () => {
    let output = ''
    const scanner = new EndScanner(
      PREFIX,
      (chunk) => {
        output += chunk.toString()
      },
      () => undefined,
    )
    scanner.push(Buffer.from('abc@@deploy'))
    expect(output).toBe('abc')
    scanner.push(Buffer.from('file rocks\n'))
    expect(output).toBe('abc@@deployfile rocks\n')
  })

  it('ignores what comes after the marker until reset, then scans for the next one', () => {
    const seen: string[] = []
    const statuses: number[] = []
    const scanner = new EndScanner(
      PREFIX,
      (chunk) => seen.push(chunk.toString()),
      (code) => statuses.push(code),
    )
    scanner.push(Buffer.from(`a${PREFIX}0@@\nstray background output`))
    expect(scanner.done).toBe(true)
    scanner.push(Buffer.from('more stray'))
    expect(seen.join('')).toBe('a')
    scanner.reset(
      (chunk) => seen.push(`2:${chunk.toString()}`),
      (code) => statuses.push(code),
    )
    scanner.push(Buffer.from(`b${PREFIX}3@@\n`))
    expect(seen).toEqual(['a', '2:b'])
    expect(statuses).toEqual([0, 3])
  })

  it('gives up on a prefix whose status line runs on (not a marker): the text is output', () => {
    const text = `${PREFIX}${'9'.repeat(40)}`
    expect(scan([text])).toEqual({ output: text, status: undefined, ends: 0 })
  })
})
