import { distance } from 'fastest-levenshtein'

/** How many edits make a name "close", given the longer name's length. */
const defaultTolerance = (length: number): number => Math.max(2, Math.ceil(length / 3))

/**
 * Names from `candidates` close to `wanted`, nearest first, for "did you mean"
 * hints. `tolerance` gives the edits allowed for a length (settings use a
 * tighter one than tasks and hosts).
 */
export function closest(wanted: string, candidates: Iterable<string>, max = 3, tolerance = defaultTolerance): string[] {
  const scored = [...new Set(candidates)]
    .map((name) => ({ name, score: name.includes(wanted) || wanted.includes(name) ? 0.5 : distance(wanted, name) }))
    .filter(({ name, score }) => score <= tolerance(Math.max(wanted.length, name.length)))
    .sort((a, b) => a.score - b.score || a.name.localeCompare(b.name))
  return scored.slice(0, max).map((s) => s.name)
}

/** " Did you mean x, y?" or "" */
export function didYouMean(wanted: string, candidates: Iterable<string>): string {
  const names = closest(wanted, candidates)
  return names.length ? `Did you mean ${names.map((n) => `"${n}"`).join(', ')}?` : ''
}
