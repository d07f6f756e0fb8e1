import { distance } from 'fastest-levenshtein'

/** Names from `candidates` close to `wanted`, nearest first, for "did you mean" hints. */
export function closest(wanted: string, candidates: Iterable<string>, max = 3): string[] {
  const scored = [...new Set(candidates)]
    .map((name) => ({ name, score: name.includes(wanted) || wanted.includes(name) ? 0.5 : distance(wanted, name) }))
    .filter(({ name, score }) => score <= Math.max(2, Math.ceil(Math.max(wanted.length, name.length) / 3)))
    .sort((a, b) => a.score - b.score || a.name.localeCompare(b.name))
  return scored.slice(0, max).map((s) => s.name)
}

/** " Did you mean x, y?" or "" */
export function didYouMean(wanted: string, candidates: Iterable<string>): string {
  const names = closest(wanted, candidates)
  return names.length ? `Did you mean ${names.map((n) => `"${n}"`).join(', ')}?` : ''
}
