/**
 * A small tmpfs for full-disk tests: mounted at `dir` (created), handed to `use`, then unmounted
 * whatever `use` did (lazily, so a process still inside it cannot keep it mounted). The tests run
 * as root; anything else is a clear error, not a skipped test.
 */
import { spawnSync } from 'node:child_process'
import { mkdir } from 'node:fs/promises'

export async function withTmpfs<T>(dir: string, size: string, use: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true })
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0777`, 'tmpfs', dir]).status !== 0) {
    throw new Error('cannot mount a tmpfs (the tests run as root)')
  }
  try {
    return await use(dir)
  } finally {
    spawnSync('umount', ['-l', dir])
  }
}
