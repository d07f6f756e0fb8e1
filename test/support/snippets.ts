/**
 * The TypeScript snippets of the README and docs/*.md: every ```ts block, so a test can compile them
 * as a user would paste them. A block that is a fragment on purpose (it shows one call among `…`)
 * says so on the line before its fence: `<!-- fragment: why -->`; it is skipped.
 */
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'

export interface Snippet {
  /** Relative to the repository: `README.md`, `docs/laravel.md`. */
  file: string
  /** Line of the first code line in the markdown file (1-based). */
  line: number
  code: string
  /**
   * The module's own path when its first line names one in a directory (`// deploy/node-service.ts`),
   * so another snippet can import it as the docs show (`./deploy/node-service.js`).
   */
  path?: string
}

export interface Snippets {
  compiled: Snippet[]
  fragments: Snippet[]
}

export function markdownSnippets(root: string): Snippets {
  const files = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
  const result: Snippets = { compiled: [], fragments: [] }
  for (const file of files) {
    const lines = readFileSync(path.join(root, file), 'utf8').split('\n')
    for (let i = 0; i < lines.length; i++) {
      if (!/^```(ts|typescript)\s*$/.test(lines[i])) continue
      const end = lines.findIndex((l, j) => j > i && /^```\s*$/.test(l))
      const code = lines.slice(i + 1, end).join('\n')
      const before = lines.slice(0, i).reverse().find((l) => l.trim() !== '') ?? ''
      const named = /^\/\/ ([\w.-]+\/[\w./-]+\.ts)\s*$/.exec(lines[i + 1] ?? '')?.[1]
      const snippet: Snippet = { file, line: i + 2, code, ...(named ? { path: named } : {}) }
      if (/^<!--\s*fragment\b/.test(before.trim())) result.fragments.push(snippet)
      else result.compiled.push(snippet)
      i = end
    }
  }
  return result
}
