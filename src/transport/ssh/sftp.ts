import { chmod, lstat, mkdir, open, readdir, readlink, stat, symlink, unlink, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import pLimit from 'p-limit'
import type { GetOptions, PutOptions } from '../types.js'
import type { Callback, SftpSession } from './sftp-session.js'

// transport.ts opens sessions through this module's exports.
export { SftpSession } from './sftp-session.js'

/** Bytes per SFTP read/write request (OpenSSH takes up to ~255 KiB; every server takes 32 KiB). */
const CHUNK = 64 * 1024
/** Files transferred at once in a tree. */
const FILE_CONCURRENCY = 4

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000

type Source = { kind: 'file'; path: string; size: number } | { kind: 'buffer'; data: Buffer }

/** Writes one remote file: open with the final mode (never wider), then fsetstat, writes and close pipelined. */
async function uploadFile(
  session: SftpSession,
  source: Source,
  remotePath: string,
  mode: number,
  progress: (bytes: number) => void,
): Promise<void> {
  const size = source.kind === 'buffer' ? source.data.length : source.size
  // Created with `mode` (the umask can only narrow it); fsetstat then sets it exactly, also on an
  // existing file, before any byte is written (O_TRUNC emptied it first).
  const handle = await session.open(remotePath, 'w', mode)
  let local: FileHandle | undefined
  let closed = false
  try {
    const pipe = session.pipeline()
    await pipe.add((done) => session.sftp.fsetstat(handle, { mode }, done))
    if (source.kind === 'file') local = await open(source.path, 'r')
    for (let offset = 0; offset < size; offset += CHUNK) {
      const length = Math.min(CHUNK, size - offset)
      let chunk: Buffer
      if (source.kind === 'buffer') {
        chunk = source.data
      } else {
        chunk = Buffer.allocUnsafe(length)
        const { bytesRead } = await local!.read(chunk, 0, length, offset)
        if (bytesRead < length) throw new Error(`${source.path} shrank while it was uploaded`)
      }
      const start = source.kind === 'buffer' ? offset : 0
      const position = offset
      await pipe.add((done) =>
        session.sftp.write(handle, chunk, start, length, position, (error) => {
          if (!error) progress(length)
          done(error)
        }),
      )
    }
    // The close travels in the same window as the writes: one wait for all of them.
    await pipe.add((done) => session.sftp.close(handle, done))
    closed = true
    await pipe.drain()
  } catch (error) {
    if (!closed) await session.close(handle).catch(() => undefined)
    throw withPath(error, 'upload to', remotePath)
  } finally {
    await local?.close()
  }
}

/** Reads one remote file into `localPath` with pipelined reads, then sets the remote mode. */
async function downloadFile(
  session: SftpSession,
  remotePath: string,
  size: number,
  mode: number,
  localPath: string,
  progress: (bytes: number) => void,
): Promise<void> {
  const handle = await session.open(remotePath, 'r')
  const local = await open(localPath, 'w', 0o600)
  try {
    const pipe = session.pipeline()
    let eof = false
    const readAt = (position: number, length: number, done: Callback) => {
      const buffer = Buffer.allocUnsafe(length)
      session.sftp.read(handle, buffer, 0, length, position, (error, bytesRead) => {
        if (error) return done(error)
        if (bytesRead === 0) {
          eof = true // the file shrank since stat
          return done()
        }
        local.write(buffer, 0, bytesRead, position).then(() => {
          progress(bytesRead)
          // A short read before the end: ask for the rest (rare; servers may cap a read).
          if (bytesRead < length) readAt(position + bytesRead, length - bytesRead, done)
          else done()
        }, done)
      })
    }
    for (let offset = 0; offset < size && !eof; offset += CHUNK) {
      const length = Math.min(CHUNK, size - offset)
      const position = offset
      await pipe.add((done) => readAt(position, length, done))
    }
    await pipe.drain()
  } catch (error) {
    await session.close(handle).catch(() => undefined)
    await local.close()
    throw withPath(error, 'download', remotePath)
  }
  await local.close()
  await session.close(handle)
  await chmod(localPath, mode & 0o7777)
}

function withPath(error: unknown, action: string, file: string): Error {
  const message = error instanceof Error ? error.message : String(error)
  const wrapped = new Error(`SFTP: cannot ${action} ${file}: ${message}`, { cause: error })
  return wrapped
}

/**
 * Runs `run` on every item, FILE_CONCURRENCY at a time (p-limit). After a failure no further item
 * starts; the ones in flight finish, then the first failure is thrown.
 */
async function forEachFile<T>(items: T[], run: (item: T) => Promise<void>): Promise<void> {
  const limit = pLimit(FILE_CONCURRENCY)
  let failed = false
  const results = await Promise.allSettled(
    items.map((item) =>
      limit(async () => {
        if (failed) return
        try {
          await run(item)
        } catch (error) {
          failed = true
          throw error
        }
      }),
    ),
  )
  const failure = results.find((result) => result.status === 'rejected')
  if (failure) throw failure.reason
}

interface LocalTree {
  dirs: Array<{ rel: string; mode: number }>
  files: Array<{ rel: string; size: number; mode: number }>
  links: Array<{ rel: string; target: string }>
}

async function walkLocal(root: string): Promise<LocalTree> {
  const tree: LocalTree = { dirs: [], files: [], links: [] }
  const visit = async (rel: string) => {
    const full = rel ? path.join(root, rel) : root
    const info = await lstat(full)
    if (info.isDirectory()) {
      tree.dirs.push({ rel, mode: info.mode & 0o7777 })
      const names = (await readdir(full)).sort()
      for (const name of names) await visit(rel ? `${rel}/${name}` : name)
    } else if (info.isFile()) {
      tree.files.push({ rel, size: info.size, mode: info.mode & 0o7777 })
    } else if (info.isSymbolicLink()) {
      tree.links.push({ rel, target: await readlink(full) })
    }
    // Sockets, FIFOs and devices are not copied.
  }
  await visit('')
  return tree
}

function remoteJoin(base: string, rel: string): string {
  return rel ? path.posix.join(base, rel) : base
}

/** put(): a Buffer, a file, or a directory tree (its own dirs are created; the target's parents are not). */
export async function put(session: SftpSession, source: string | Buffer, remotePath: string, options: PutOptions = {}): Promise<void> {
  let sent = 0
  if (Buffer.isBuffer(source)) {
    const total = source.length
    options.onProgress?.(0, total)
    await uploadFile(session, { kind: 'buffer', data: source }, remotePath, options.mode ?? 0o600, (bytes) => {
      sent += bytes
      options.onProgress?.(sent, total)
    })
    return
  }
  const info = await stat(source)
  if (info.isFile()) {
    const total = info.size
    options.onProgress?.(0, total)
    await uploadFile(session, { kind: 'file', path: source, size: info.size }, remotePath, options.mode ?? info.mode & 0o7777, (bytes) => {
      sent += bytes
      options.onProgress?.(sent, total)
    })
    return
  }
  if (!info.isDirectory()) throw new Error(`put: ${source} is neither a file nor a directory`)

  const tree = await walkLocal(source)
  const total = tree.files.reduce((sum, file) => sum + file.size, 0)
  options.onProgress?.(0, total)

  // 1. Every directory, parents first, private while filling (0700), in one pipelined batch.
  const mkdirFailed: string[] = []
  const dirs = session.pipeline()
  for (const dir of tree.dirs) {
    const target = remoteJoin(remotePath, dir.rel)
    await dirs.add((done) =>
      session.sftp.mkdir(target, { mode: 0o700 }, (error) => {
        if (error) mkdirFailed.push(target) // exists already? checked below
        done()
      }),
    )
  }
  await dirs.drain()
  for (const target of mkdirFailed) {
    const existing = await session.stat(target).catch(() => undefined)
    if (!existing?.isDirectory()) throw new Error(`SFTP: cannot create directory ${target} (does its parent exist? creating it is the caller's job)`)
  }

  // 2. Files, a few at a time.
  await forEachFile(tree.files, (file) =>
    uploadFile(session, { kind: 'file', path: path.join(source, file.rel), size: file.size }, remoteJoin(remotePath, file.rel), options.mode ?? file.mode, (bytes) => {
      sent += bytes
      options.onProgress?.(sent, total)
    }),
  )

  // 3. Symlinks as they are (an existing entry is replaced).
  if (tree.links.length > 0) {
    const failed: Array<{ rel: string; target: string }> = []
    const links = session.pipeline()
    for (const link of tree.links) {
      await links.add((done) =>
        session.sftp.symlink(link.target, remoteJoin(remotePath, link.rel), (error) => {
          if (error) failed.push(link)
          done()
        }),
      )
    }
    await links.drain()
    for (const link of failed) {
      const at = remoteJoin(remotePath, link.rel)
      await session.unlink(at).catch(() => undefined)
      await session.symlink(link.target, at).catch((error: unknown) => {
        throw withPath(error, 'create symlink', at)
      })
    }
  }

  // 4. Directory modes last (a read-only dir would refuse its files), deepest first.
  const modes = session.pipeline()
  for (const dir of [...tree.dirs].reverse()) {
    const target = remoteJoin(remotePath, dir.rel)
    await modes.add((done) => session.sftp.setstat(target, { mode: dir.mode }, done))
  }
  await modes.drain()
}

/** get(): a remote file or directory tree to `localPath`, modes kept. */
export async function get(session: SftpSession, remotePath: string, localPath: string, options: GetOptions = {}): Promise<void> {
  const info = await session.stat(remotePath)
  let received = 0
  if (!info.isDirectory()) {
    if (!info.isFile()) throw new Error(`get: ${remotePath} is neither a file nor a directory`)
    options.onProgress?.(0, info.size)
    await downloadFile(session, remotePath, info.size, info.mode, localPath, (bytes) => {
      received += bytes
      options.onProgress?.(received, info.size)
    })
    return
  }

  const dirs: Array<{ local: string; mode: number }> = []
  const files: Array<{ remote: string; local: string; size: number; mode: number }> = []
  const visit = async (remote: string, local: string, mode: number) => {
    await mkdir(local, { recursive: true, mode: 0o700 })
    dirs.push({ local, mode })
    for (const entry of await session.list(remote)) {
      const childRemote = path.posix.join(remote, entry.filename)
      const childLocal = path.join(local, entry.filename)
      const type = entry.attrs.mode & S_IFMT
      if (type === S_IFDIR) await visit(childRemote, childLocal, entry.attrs.mode & 0o7777)
      else if (type === S_IFREG) files.push({ remote: childRemote, local: childLocal, size: entry.attrs.size, mode: entry.attrs.mode })
      else if (type === S_IFLNK) {
        const target = await session.readlink(childRemote)
        await symlink(target, childLocal).catch(async (error: NodeJS.ErrnoException) => {
          if (error.code !== 'EEXIST') throw error
          await unlink(childLocal)
          await symlink(target, childLocal)
        })
      }
    }
  }
  await visit(remotePath, localPath, info.mode & 0o7777)
  const total = files.reduce((sum, file) => sum + file.size, 0)
  options.onProgress?.(0, total)
  await forEachFile(files, (file) =>
    downloadFile(session, file.remote, file.size, file.mode, file.local, (bytes) => {
      received += bytes
      options.onProgress?.(received, total)
    }),
  )
  for (const dir of dirs.reverse()) await chmod(dir.local, dir.mode)
}
