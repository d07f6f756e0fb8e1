import { ExitCode } from '../../model/errors.js'
import type { CliOptions } from '../options.js'

/** `dep init`: writes a deployfile.ts. */
export async function runInit(_args: string[], _options: CliOptions): Promise<number> {
  process.stderr.write('dep init is not available yet.\n')
  return ExitCode.ConfigError
}
