import { createWriteStream, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import type { RunEvent } from '../model/events.js'
import { formatError } from './format.js'

/**
 * A full transcript whatever the verbosity: every command, every output line,
 * with timestamps. Events arrive already masked, so secrets never reach it.
 */
export function createLogFileReporter(path: string): { sink: (event: RunEvent) => void; close: () => Promise<void> } {
  mkdirSync(dirname(path), { recursive: true })
  const stream = createWriteStream(path, { flags: 'a', mode: 0o600 })
  const write = (time: number, text: string) => stream.write(`${new Date(time).toISOString()} ${text}\n`)
  const sink = (event: RunEvent) => {
    const host = 'host' in event && event.host ? `[${event.host}] ` : ''
    switch (event.type) {
      case 'run:start':
        write(event.time, `run ${event.runId} start: ${event.task} on ${event.hosts.join(', ')}${event.dryRun ? ' (dry run)' : ''}`)
        break
      case 'run:end':
        write(event.time, `run ${event.runId} end: ${event.status}, exit ${event.exitCode}, ${event.durationMs} ms, round trips ${JSON.stringify(event.roundTrips)}`)
        break
      case 'step:start':
        write(event.time, `${host}step ${event.task} start${event.phase ? ` (${event.phase})` : ''}${event.recovery ? ' [recovery]' : ''}`)
        break
      case 'step:end':
        write(event.time, `${host}step ${event.task} ${event.status} in ${event.durationMs} ms, ${event.roundTrips} round trips`)
        if (event.error) for (const line of formatError(event.error, false)) write(event.time, `${host}${line}`)
        break
      case 'command:start':
        write(event.time, `${host}${event.local ? 'local$' : '$'} ${event.command}`)
        break
      case 'command:output':
        write(event.time, `${host}${event.stream === 'stderr' ? '2> ' : '> '}${event.text}`)
        break
      case 'command:end':
        write(event.time, `${host}exit ${event.exitCode} (${event.durationMs} ms)`)
        break
      case 'log':
        write(event.time, `${host}${event.level}: ${event.message}`)
        break
      default:
        write(event.time, `${host}${event.type} ${JSON.stringify(event)}`)
    }
  }
  const close = () => new Promise<void>((resolve) => stream.end(resolve))
  return { sink, close }
}
