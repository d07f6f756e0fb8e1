import { spawn } from 'node:child_process'
import { PassThrough, type Readable } from 'node:stream'

/**
 * A tar stream of a local directory's contents, made by the system's tar.
 * Sending a tree as one stream into `tar -x` on the host costs one round trip,
 * where SFTP would wait on several requests per file.
 */
export function localTarStream(directory: string, options: { exclude?: string[] } = {}): { stream: Readable; done: Promise<void> } {
  const args = ['-c', '-f', '-', ...(options.exclude ?? []).map((pattern) => `--exclude=${pattern}`), '-C', directory, '.']
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar of ${directory} failed (exit ${code}): ${stderr.trim()}`))))
  })
  // Read the pipe from the start: a child's stdout handed on later (after the
  // connection is up) was seen to lose its data once the child had exited.
  const stream = child.stdout.pipe(new PassThrough())
  return { stream, done }
}
