import { distance } from 'fastest-levenshtein'

/** Names from `candidates` close to `wanted`, nearest first, for "did you mean" hints. */
export function closest(wanted: string, candidates: Iterable<string>, max = 3): string[] {
  const scored = [...new Set(candidates)]
    // A name containing the other ranks as an edit of 1.5: after a one-letter typo ("deploy:symlink"
    // for "deploy:symlnk"), before a far one. A quarter of the length in edits is still a typo; a third
    // made "upload_path" a suggestion for "deploy_path" (4 edits: a different word, not a typo).
    .map((name) => ({ name, score: Math.min(distance(wanted, name), name.includes(wanted) || wanted.includes(name) ? 1.5 : Infinity) }))
    .filter(({ name, score }) => score <= Math.max(2, Math.ceil(Math.max(wanted.length, name.length) / 4)))
    .sort((a, b) => a.score - b.score || a.name.localeCompare(b.name))
  return scored.slice(0, max).map((s) => s.name)
}

/** " Did you mean x, y?" or "" */
export function didYouMean(wanted: string, candidates: Iterable<string>): string {
  const names = closest(wanted, candidates)
  return names.length ? `Did you mean ${names.map((n) => `"${n}"`).join(', ')}?` : ''
}
