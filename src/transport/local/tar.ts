import { spawn } from 'node:child_process'

/**
 * Writes a tar archive of a local directory's contents to `file`, with the
 * system's tar. Sending a tree as one stream into `tar -x` on the host costs
 * one round trip, where SFTP would wait on several requests per file; the
 * archive is made once per run and streamed to every host.
 */
export function createTarArchive(directory: string, file: string, options: { exclude?: string[] } = {}): Promise<void> {
  const args = ['-c', '-f', file, ...(options.exclude ?? []).map((pattern) => `--exclude=${pattern}`), '-C', directory, '.']
  const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return new Promise<void>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar of ${directory} failed (exit ${code}): ${stderr.trim()}`))))
  })
}
