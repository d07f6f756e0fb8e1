import { ConfigError } from '../model/errors.js'
import type { Host } from '../model/host.js'
import { didYouMean } from '../model/suggest.js'

type Condition = (labels: Record<string, string>) => boolean

/**
 * Compiles a selector: `all`, an alias, `stage=prod`, `stage!=prod`,
 * `role=web|worker`; `,` is OR and `&` is AND (AND binds tighter).
 */
export function compileSelector(selector: string): Condition {
  const alternatives = selector
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((alternative) => {
      const terms = alternative
        .split('&')
        .map((term) => term.trim())
        .filter(Boolean)
        .map(compileTerm)
      return (labels: Record<string, string>) => terms.every((term) => term(labels))
    })
  if (alternatives.length === 0) throw new ConfigError(`Empty host selector "${selector}".`)
  return (labels) => alternatives.some((alternative) => alternative(labels))
}

function compileTerm(term: string): Condition {
  if (term === 'all') return () => true
  const match = /^([^!=]+?)\s*(!=|=)\s*(.*)$/.exec(term)
  if (!match) return (labels) => labels.alias === term
  const [, key, operator, valueText] = match
  const values = valueText.split('|').map((v) => v.trim())
  return operator === '='
    ? (labels) => labels[key] !== undefined && values.includes(labels[key])
    : (labels) => labels[key] === undefined || !values.includes(labels[key])
}

/** True when `text` is a selector term rather than a bare alias. */
function isLabelSelector(text: string): boolean {
  return text === 'all' || /[=,&]/.test(text)
}

/**
 * The hosts matching any of `selectors` (OR), in declaration order. No
 * selector selects every host. A selector matching nothing is an error that
 * names the nearest aliases and labels.
 */
export function selectHosts(hosts: readonly Host[], selectors: readonly string[]): Host[] {
  if (hosts.length === 0) {
    throw new ConfigError('The deployfile declares no host.', "Add one with host('example.com', { … }) or localhost().")
  }
  if (selectors.length === 0) return [...hosts]
  const selected = new Set<Host>()
  for (const selector of selectors) {
    const matches = hosts.filter((host) => compileSelector(selector)(host.labels))
    if (matches.length === 0) {
      const known = hosts.flatMap((h) => [h.alias, ...Object.entries(h.options.labels ?? {}).map(([k, v]) => `${k}=${v}`)])
      throw new ConfigError(
        isLabelSelector(selector) ? `No host matches the selector "${selector}".` : `Unknown host "${selector}".`,
        didYouMean(selector, known) ||
          `Hosts: ${hosts
            .map((h) => {
              const labels = Object.entries(h.options.labels ?? {}).map(([k, v]) => `${k}=${v}`)
              return labels.length ? `${h.alias} (${labels.join(', ')})` : h.alias
            })
            .join(', ')}. Select by alias, key=value, key!=value, a|b; "," is OR, "&" is AND.`,
      )
    }
    for (const host of matches) selected.add(host)
  }
  return hosts.filter((host) => selected.has(host))
}
