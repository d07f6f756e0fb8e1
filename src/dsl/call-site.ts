import { siteKey, type Registry } from '../model/registry.js'
import { userLocation } from '../model/user-location.js'

/**
 * `file:line` of the deployfile (or user recipe) line that called into the
 * DSL. Not the column: a TypeScript loader's column is one of the compiled
 * code, which would point past the end of the line.
 */
export function callSite(): string | undefined {
  return userLocation(new Error())?.replace(/:\d+$/, '')
}

/** Remembers where a value was given, for the check at the end of loading. */
export function noteSite(registry: Registry, scope: string, key: string, call: string, site = callSite()): void {
  registry.sites.set(siteKey(scope, key), site ? `${call} at ${site}` : call)
}
