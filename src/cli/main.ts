#!/usr/bin/env node
/*
 * The `dep` entry point. It stays tiny: `dep --version` answers before any
 * dependency loads, and everything else is imported on demand.
 */
import { version } from './version.js'

const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${version()}\n`)
} else {
  const { cli } = await import('./run-cli.js')
  await cli()
  // Everything is closed by now; should a socket still hold the event loop, a
  // finished dep must not hang a CI job. (An unref'd timer fires only then.)
  setTimeout(() => process.exit(), 3000).unref()
}
