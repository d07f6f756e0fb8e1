import { readFile } from 'node:fs/promises'

/**
 * Keys whose values are plain settings, not secrets; every other value of a
 * .env is masked in output. Masking is by value, everywhere: a host name, a
 * database name or a URL masked as a "secret" would turn every mention of it
 * (in paths, repository URLs, messages) into `***`, so those stay readable.
 */
const PUBLIC_KEYS = new Set([
  'APP_NAME',
  'APP_ENV',
  'APP_DEBUG',
  'APP_URL',
  'APP_TIMEZONE',
  'APP_LOCALE',
  'APP_FALLBACK_LOCALE',
  'ASSET_URL',
  'LOG_CHANNEL',
  'LOG_STACK',
  'LOG_LEVEL',
  'LOG_DEPRECATIONS_CHANNEL',
  'DB_CONNECTION',
  'DB_HOST',
  'DB_PORT',
  'DB_DATABASE',
  'CACHE_DRIVER',
  'CACHE_STORE',
  'SESSION_DRIVER',
  'SESSION_LIFETIME',
  'SESSION_DOMAIN',
  'QUEUE_CONNECTION',
  'BROADCAST_DRIVER',
  'BROADCAST_CONNECTION',
  'FILESYSTEM_DRIVER',
  'FILESYSTEM_DISK',
  'REDIS_CLIENT',
  'REDIS_HOST',
  'REDIS_PORT',
  'MAIL_MAILER',
  'MAIL_HOST',
  'MAIL_PORT',
  'MAIL_ENCRYPTION',
  'MAIL_FROM_ADDRESS',
  'MAIL_FROM_NAME',
  'AWS_DEFAULT_REGION',
  'AWS_BUCKET',
])

/** Quotes a value for a .env file when it needs it. */
function envValue(value: string): string {
  if (/^[A-Za-z0-9_./:@+,=-]*$/.test(value)) return value
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\$/g, '\\$')}"`
}

/** Renders `{ KEY: 'value' }` as .env lines. */
export function renderDotenv(values: Record<string, string | number | boolean>): string {
  return `${Object.entries(values)
    .map(([key, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`"${key}" is not a valid .env key`)
      return `${key}=${envValue(String(value))}`
    })
    .join('\n')}\n`
}

/**
 * The values of a .env text that must never be shown: every value but those of PUBLIC_KEYS and
 * true/false/null, numbers of 4+ digits included, each both as written in the file (quoted values
 * without their quotes, `dbPASS\"3\$x`) and as the application reads it (`dbPASS"3$x`), so
 * `cat .env` and a command using the value are both masked.
 */
export function secretValuesOf(content: string): string[] {
  const values = new Set<string>()
  for (const line of content.split('\n')) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (!match || PUBLIC_KEYS.has(match[1])) continue
    const written = match[2].trim()
    const quoted = /^(["'])(.*)\1$/.exec(written)
    const literal = quoted ? quoted[2] : written.replace(/\s+#.*$/, '')
    // Double quotes take escapes (what renderDotenv writes, what phpdotenv reads); single quotes do not.
    const value =
      quoted?.[1] === '"' ? literal.replace(/\\(["\\$n])/g, (_, c: string) => (c === 'n' ? '\n' : c)) : literal
    for (const form of [value, literal]) {
      if (form.length >= 4 && !/^(true|false|null)$/i.test(form)) values.add(form)
    }
  }
  return [...values]
}

/**
 * The .env content the `dotenv` setting stands for: a path to a local file,
 * an object of values (e.g. built in CI from secrets), or the text itself
 * (anything with a newline or an `=`).
 */
export async function dotenvContent(setting: unknown): Promise<string> {
  if (setting && typeof setting === 'object') return renderDotenv(setting as Record<string, string>)
  const text = String(setting)
  if (text.includes('\n') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(text)) return text.endsWith('\n') ? text : `${text}\n`
  return readFile(text, 'utf8')
}
