/*
 * Which stack frame is the user's code: the DSL notes where each setting was given, the loader and
 * the error reports point at that line rather than into this package.
 */

/** Where this package lives (the folder holding dist/ or src/): its frames are not the user's code. */
const packageRoot = (() => {
  const here = decodeURIComponent(new URL(import.meta.url).pathname)
  const marker = Math.max(here.lastIndexOf('/dist/'), here.lastIndexOf('/src/'))
  return marker > 0 ? here.slice(0, marker + 1) : undefined
})()

function isOwnCode(file: string): boolean {
  if (file.includes('/node_modules/')) return true
  return packageRoot !== undefined && ['dist/', 'src/', 'recipes/'].some((dir) => file.startsWith(packageRoot + dir))
}

/** `file:line:column` of the first stack frame in the user's code (a deployfile, a recipe of theirs), if any. */
export function userLocation(error: Error): string | undefined {
  for (const line of (error.stack ?? '').split('\n').slice(1)) {
    const match = /^at (?:.+ \()?((?:file:\/\/)?\/.+?):(\d+):(\d+)\)?$/.exec(line.trim())
    if (!match) continue
    const file = match[1].startsWith('file://') ? decodeURIComponent(match[1].slice('file://'.length)) : match[1]
    if (isOwnCode(file)) continue
    return `${file}:${match[2]}:${match[3]}`
  }
  return undefined
}
