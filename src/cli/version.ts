import { readFileSync } from 'node:fs'

let cached: string | undefined

/** The package version, read from package.json next to the build. */
export function version(): string {
  if (cached) return cached
  for (const candidate of ['../package.json', '../../package.json']) {
    try {
      cached = (JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { version: string }).version
      return cached
    } catch {
      // try the next location (source vs build layout)
    }
  }
  return '0.0.0'
}
