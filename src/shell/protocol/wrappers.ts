import { Command, raw, sh } from '../command.js'

/**
 * `dep run '<command line>'`: the user's command line, as written, in the current release when
 * there is one, else in `deployPath` (when that exists), else in the login directory: the choice
 * travels with the command (one round trip).
 */
export function adHocScript(commandLine: string, deployPath?: string): Command {
  if (!deployPath) return new Command(commandLine)
  const current = `${deployPath}/current`
  return sh`if [ -d ${current} ]; then cd ${current}; elif [ -d ${deployPath} ]; then cd ${deployPath}; fi
${raw(commandLine)}`
}

/**
 * `dep ssh`: the user's login shell, started in the first of `dirs` that exists (none: the home
 * directory, with a warning on stderr).
 */
export function interactiveShellScript(dirs: readonly string[]): Command {
  const login = raw('exec "${SHELL:-/bin/sh}" -l')
  if (dirs.length === 0) return sh`${login}`
  const tries = dirs.map((dir) => sh`cd ${dir} 2>/dev/null`.text).join(' || ')
  return sh`${raw(tries)} || echo ${`deployfile: ${dirs.join(' nor ')} exists; staying in the home directory.`} >&2; ${login}`
}
