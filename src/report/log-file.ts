import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { ConfigError } from '../model/errors.js'
import type { ErrorInfo, RunEvent } from '../model/events.js'
import { batchLine, formatBytes, formatError, plural } from './format.js'

/** Characters of log lines gathered before one write. */
const BATCH = 64 * 1024

/** Options of the log file. */
export interface LogFileOptions {
  /** A first line for this run, e.g. the command line. */
  header?: string
  /** Called once if writing fails (disk full, permissions): the run goes on without the log. */
  onError?: (error: Error) => void
}

/**
 * A full transcript whatever the verbosity: every step, every command, every
 * output line, transfers, locks and the failure in full, each line with a
 * timestamp. Appends (one file can hold many runs) and is created with mode
 * 0600. Events arrive already masked, so secrets never reach it.
 */
export function createLogFileReporter(path: string, options: LogFileOptions = {}): { sink: (event: RunEvent) => void; close: () => Promise<void> } {
  try {
    mkdirSync(dirname(path), { recursive: true })
  } catch (error) {
    throw new ConfigError(`Cannot create the directory of the log file ${path}: ${(error as Error).message}`, 'Pick another --log path (or log_file setting).')
  }
  // Written synchronously in batches of at most BATCH characters: a write stream queues in memory
  // whatever the disk has not taken yet (100 MB of output made 100 MB of queue), a blocking write
  // makes the run wait for the disk instead. A batch goes out when full or on the next turn of the
  // event loop, so the log is current while the run goes on.
  let fd: number | undefined
  let failed = false
  const fail = (error: unknown) => {
    if (failed) return
    failed = true
    options.onError?.(error as Error)
  }
  try {
    fd = openSync(path, 'a', 0o600)
  } catch (error) {
    fail(error)
  }
  let parts: string[] = []
  let size = 0
  let scheduled = false
  const flush = () => {
    scheduled = false
    if (size === 0 || failed || fd === undefined) return
    const text = parts.join('')
    parts = []
    size = 0
    try {
      const data = Buffer.from(text)
      for (let at = 0; at < data.length; ) at += writeSync(fd, data, at)
    } catch (error) {
      fail(error)
    }
  }
  const write = (time: number, text: string) => {
    if (failed) return
    const line = `${new Date(time).toISOString()} ${text}\n`
    parts.push(line)
    size += line.length
    if (size >= BATCH) flush()
    else if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
  const writeError = (time: number, host: string, error: ErrorInfo) => {
    for (const line of formatError(error, false)) write(time, `${host}${line}`)
  }
  if (options.header) write(Date.now(), options.header)
  const transfers = new Set<string>()

  const sink = (event: RunEvent) => {
    const host = 'host' in event && event.host ? `[${event.host}] ` : ''
    switch (event.type) {
      case 'run:start':
        write(event.time, `run ${event.runId} start: ${event.task} on ${event.hosts.join(', ')}${event.dryRun ? ' (dry run)' : ''}`)
        for (const [i, step] of event.steps.entries()) {
          write(event.time, `  plan ${i + 1}. ${step.task} ${step.phase ? `(${step.phase}) ` : ''}on ${step.hosts.join(', ') || 'no host'}${step.hidden ? ' [hidden]' : ''}`)
        }
        for (const step of event.recoverySteps ?? []) write(event.time, `  on failure: ${step.task} on ${step.hosts.join(', ')}`)
        break
      case 'run:end':
        if (event.error) writeError(event.time, '', event.error)
        for (const error of event.recoveryErrors ?? []) {
          write(event.time, 'recovery error:')
          writeError(event.time, '', error)
        }
        for (const warning of event.warnings ?? []) {
          write(event.time, 'warning (finish step):')
          writeError(event.time, '', warning)
        }
        for (const left of event.summary.leftOut ?? []) write(event.time, `left out (--max-fail): ${left.host}: ${left.task} failed (${left.message})`)
        write(event.time, `run ${event.runId} end: ${event.status}, exit ${event.exitCode}, ${event.durationMs} ms, round trips ${JSON.stringify(event.roundTrips)}`)
        break
      case 'step:start':
        write(event.time, `${host}step ${event.task} start${event.phase ? ` (${event.phase})` : ''}${event.batch === undefined ? '' : ` [batch ${event.batch + 1}]`}${event.recovery ? ' [recovery]' : ''}${event.hidden ? ' [hidden]' : ''}`)
        break
      case 'step:end':
        write(event.time, `${host}step ${event.task} ${event.status} in ${event.durationMs} ms, ${plural(event.roundTrips, 'round trip')}${event.sentBy ? `, ${plural(event.queued ?? 0, 'queued command')} sent by ${event.sentBy}` : ''}`)
        if (event.error) writeError(event.time, host, event.error)
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
      case 'transfer': {
        // The first progress event and the last one: a transcript, not a progress bar.
        const key = `${event.host} ${event.direction} ${event.path}`
        if (!event.done && transfers.has(key)) break
        transfers.add(key)
        const total = event.totalBytes !== undefined ? ` of ${formatBytes(event.totalBytes)}` : ''
        write(event.time, `${host}${event.direction} ${event.path}: ${formatBytes(event.bytes)}${total}${event.done ? ', done' : ''}`)
        if (event.done) transfers.delete(key)
        break
      }
      case 'recovery:start':
        write(event.time, `recovery start: ${event.failedTask} failed on ${event.failedHost}${event.phase ? ` (${event.phase} phase)` : ''}${event.host ? ` [${event.host} alone, left out]` : ''}`)
        break
      case 'recovery:end':
        write(event.time, `recovery end: ${event.ok ? 'ok' : 'FAILED'}${event.host ? ` [${event.host} alone]` : ''}`)
        break
      case 'batch:start':
      case 'batch:end':
        write(event.time, batchLine(event))
        break
      case 'lock:taken':
      case 'lock:released':
      case 'lock:held':
        write(event.time, `${host}${event.type.replace(':', ' ')}${event.owner ? ` (${event.owner})` : ''}`)
        break
      default:
        write((event as RunEvent).time, `${host}${(event as RunEvent).type} ${JSON.stringify(event)}`)
    }
  }
  const close = async () => {
    flush()
    if (fd === undefined) return
    const open = fd
    fd = undefined
    failed = true
    try {
      closeSync(open)
    } catch {
      // nothing left to lose
    }
  }
  return { sink, close }
}
