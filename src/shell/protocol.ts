import { Command, raw, renderCommand, sh, type ShellValue } from './command.js'

/*
 * The protocol between deployfile and the shells it runs commands in: how a command is framed and
 * sent (bootstraps, payloads; its own settings are rendered by `renderCommand`), killed, batched
 * with queued commands, and how scripts answer (markers, exit codes). Every piece is built with
 * `sh` and pinned as an exact string by test/unit/shell-protocol.test.ts.
 */

export { renderCommand }

/**
 * Exit codes that mean something to deployfile, of its own scripts and of the recipes' scripts.
 * A script exits with one of these (`exit ${ScriptExit.NotFound}` in an `sh` template) so that
 * the code that reads the result names what it checks instead of a bare number. Any other
 * non-zero code is a plain failure of the command.
 */
export const ScriptExit = {
  /** Done. */
  Ok: 0,
  /** The command failed; also what a command exits with when its working directory is missing (it did not run). */
  Failed: 1,
  /** The host is in a state the step refuses to change, e.g. `current` is a real directory, not a link. */
  RefusedState: 3,
  /** What the step was asked for does not exist, e.g. a git revision. */
  NotFound: 4,
  /** A tool or setting the step needs is missing on the host, e.g. `setfacl`, `composer`, `http_user`. */
  MissingPrerequisite: 5,
  /** A release the step needs is missing. */
  MissingRelease: 6,
  /** The script arrived cut short (the connection or this process died while sending it): it did not run. */
  IncompleteScript: 86,
} as const

/** One of the {@link ScriptExit} codes. */
export type ScriptExitCode = (typeof ScriptExit)[keyof typeof ScriptExit]

/*
 * Markers: lines a script prints to tell the code that ran it something, apart from its ordinary
 * output. Scripts the recipes write print `@name value` on stdout (`marker()` builds the line,
 * `parseMarkers()` reads them back). The engine's own markers go to stderr with a `@@deployfile-`
 * prefix no ordinary output has, and are taken out again before anyone sees them.
 */

/** `@name` alone or `@name value` (a space or a tab after the name): one marker line. */
const MARKER_LINE = /^@([A-Za-z_][A-Za-z0-9_]*)(?:[ \t](.*))?$/

/** The marker lines of a script's output, by name. */
export class Markers {
  private readonly lines: string[]
  private readonly found: Array<{ name: string; value: string; line: number }> = []

  constructor(output: string) {
    this.lines = output.split('\n')
    this.lines.forEach((text, line) => {
      const match = MARKER_LINE.exec(text)
      if (match) this.found.push({ name: match[1], value: match[2] ?? '', line })
    })
  }

  /** True when the output has a marker `name`. */
  has(name: string): boolean {
    return this.found.some((marker) => marker.name === name)
  }

  /** The value of the first marker `name` ('' for a bare `@name`), or undefined when there is none. */
  get(name: string): string | undefined {
    return this.found.find((marker) => marker.name === name)?.value
  }

  /** The values of every marker `name`, in order. */
  all(name: string): string[] {
    return this.found.filter((marker) => marker.name === name).map((marker) => marker.value)
  }

  /** The output lines between the markers `@<name>_begin` and `@<name>_end` ('' when either is missing). */
  block(name: string): string {
    const begin = this.found.find((marker) => marker.name === `${name}_begin`)
    const end = begin && this.found.find((marker) => marker.name === `${name}_end` && marker.line > begin.line)
    return begin && end ? this.lines.slice(begin.line + 1, end.line).join('\n') : ''
  }
}

/**
 * Reads the `@name value` lines out of a script's output.
 *
 * @example parseMarkers(await run(gitExportScript(…))).get('revision')
 */
export function parseMarkers(output: string): Markers {
  return new Markers(output)
}

/**
 * A command that prints the marker `@name value` (or `@name` alone) on stdout. `value` is quoted
 * like any `sh` value; pass `raw('"$var"')` for the value of a shell variable.
 */
export function marker(name: string, value?: ShellValue): Command {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`Invalid marker name: ${name}`)
  return value === undefined ? sh`echo ${`@${name}`}` : sh`printf ${`@${name} %s\\n`} ${value}`
}

/** The engine's marker of the shell's process group, first thing on stderr: `@@deployfile-pgid:<n>@@`. */
export const PGID_MARKER = /@@deployfile-pgid:(\d+)@@\n/

/** Where the process-group marker is in `text` (stderr so far), and the group it names. */
export function findPgidMarker(text: string): { index: number; length: number; pgid: number } | undefined {
  const match = PGID_MARKER.exec(text)
  return match ? { index: match.index, length: match[0].length, pgid: Number(match[1]) } : undefined
}

/** The engine's marker naming the queued command that failed: `@@deployfile-queued-failed <index>`. */
export const QUEUED_FAILED = '@@deployfile-queued-failed'

/** The index of the queued command whose failure the marker in `stderr` reports, or -1. */
export function failedQueuedIndex(stderr: string): number {
  const match = new RegExp(`${QUEUED_FAILED} (\\d+)`).exec(stderr)
  return match ? Number(match[1]) : -1
}

/** `stderr` without the queued-failed marker line (what the user's command printed). */
export function withoutQueuedMarker(stderr: string): string {
  return stderr.replace(new RegExp(`\\n?${QUEUED_FAILED} \\d+\\n?`, 'g'), '')
}

/*
 * What goes over the wire to run a command: the fixed bootstrap a session runs, the payload it
 * reads (header, process-group preamble, the rendered command, trailer), and the kill script.
 * The script always travels on a pipe, never in an argv: `/proc/<pid>/cmdline` and `ps` show argv
 * to every user of the host, and a script may hold secrets.
 */

/**
 * Before the script, the remote shell reports its process group on stderr (the transport takes the
 * line out of stderr again: see `findPgidMarker`). sshd starts every session in a new session
 * (setsid), so the group holds the script and everything it starts, background jobs included:
 * killing `-PGID` leaves nothing behind. The group is read from /proc where there is one (in case a
 * login shell forked), else `$$`.
 */
export const PGID_PREAMBLE: Command = sh`__df_pg=$$
if [ -r /proc/$$/stat ]; then read -r __df_st < /proc/$$/stat && __df_st=\${__df_st##*) } && set -- $__df_st && __df_pg=\${3:-$$}; set --; fi
printf '@@deployfile-pgid:%s@@\\n' "$__df_pg" >&2
unset __df_pg __df_st __df_s`

/**
 * Ends every script sent: a script cut short (the connection or the client died while sending
 * it) does not end with it, and is refused instead of running its first half.
 */
export const SCRIPT_TRAILER = '#@@deployfile-end@@'

/** The bootstraps' check that the script arrived whole; `$__df_s` holds it. */
const REFUSE_INCOMPLETE = sh`case $__df_s in *${SCRIPT_TRAILER}) ;; *) echo ${'deployfile: the script arrived incomplete; it did not run.'} >&2; exit ${ScriptExit.IncompleteScript};; esac`

/**
 * The command of every SSH session channel that runs a script, pre-opened ("spare") or not: the
 * exec request carries only this fixed text, the script follows on stdin. It waits on stdin for one
 * line `<bytes> <mode>`, then reads the script:
 * - mode 0: the script is all that follows (read to EOF with `cat`: fast, for any size);
 * - mode 1: the command's own stdin follows the script, so exactly `<bytes>` are read with
 *   `dd bs=1` (one read(2) per byte never takes more from the pipe than asked; slow for huge
 *   scripts, ~0.5 s for 300 KiB, fine for the usual few KiB).
 * `$(…; echo .)` then `${s%.}` keeps trailing newlines. The script runs with `eval` in this same
 * shell (not `sh -c "$s"`, which would bring back the 128 KiB argument limit): its process group
 * is the session's, so the preamble at its head and the kill work on the whole session. A channel
 * that gets EOF before any line (a spare closed unused) exits 0.
 */
const SSH_BOOTSTRAP_BODY = sh`IFS=" " read -r __df_n __df_m || exit 0
if [ "$__df_m" = 1 ]; then __df_s=$(dd bs=1 count="$__df_n" 2>/dev/null; echo .); else __df_s=$(cat; echo .); fi
__df_s=\${__df_s%.}
${REFUSE_INCOMPLETE}
unset __df_n __df_m
eval "$__df_s"`

/** The exec request of every SSH channel that runs a script (see SSH_BOOTSTRAP_BODY). */
export const SSH_BOOTSTRAP: Command = sh`exec /bin/sh -c ${SSH_BOOTSTRAP_BODY.text}`

/**
 * What an SSH_BOOTSTRAP channel reads before the command's own stdin: the header line, then the
 * process-group preamble, the rendered command and the trailer.
 */
export function sshPayload(command: Command): Buffer {
  const script = Buffer.from(`${PGID_PREAMBLE.text}\n${renderCommand(command)}\n${SCRIPT_TRAILER}`, 'utf8')
  return Buffer.concat([Buffer.from(`${script.length} ${command.stdin === undefined ? 0 : 1}\n`), script])
}

/**
 * Copies exactly `$__df_i` bytes of stdin to stdout, never reading a byte past them: what follows on
 * the channel is the next command's header. A few bytes (a .env) go with `dd bs=1`, one read(2) per
 * byte and no more than asked; more with `dd iflag=fullblock` (GNU coreutils), whose read(2)s ask for
 * at most what is left of a block: 64 KiB blocks, then the remainder, two processes for a 10 MB
 * archive instead of ten million system calls. A `dd` without `iflag=fullblock` refuses it before it
 * reads anything, and `dd bs=1` does the copy instead.
 */
const EXACT_STDIN = sh`if [ "$__df_i" -lt 1024 ]; then dd bs=1 count="$__df_i"
elif [ "$__df_i" -lt 65536 ]; then dd bs="$__df_i" count=1 iflag=fullblock || dd bs=1 count="$__df_i"
elif dd bs=65536 count=$((__df_i / 65536)) iflag=fullblock; then [ $((__df_i % 65536)) -eq 0 ] || dd bs=$((__df_i % 65536)) count=1 iflag=fullblock
else dd bs=1 count="$__df_i"; fi`

/**
 * One command of a command channel (see COMMAND_LOOP), run by the loop in a subshell or as
 * `sh -c <this> sh <lines> <stdin-bytes>`, with `$1 $2` set to those numbers: it reads exactly `<lines>` lines of script from the
 * channel's stdin with the `read` builtin (which never reads past a newline on a pipe, and costs
 * no process), refuses an incomplete one, and runs it with its stdin cut off from the channel:
 * /dev/null, or exactly `<stdin-bytes>` more bytes through a pipe (see EXACT_STDIN: never a byte more).
 * What the command leaves of that stdin unread is drained, so the loop reads its next header where
 * it starts. Its argv, if any, holds only this fixed text and two numbers. Its stderr comes as fd 4: the
 * loop runs it with its own stderr on /dev/null, so that dash's "Terminated" about a killed command
 * (written by the waiting loop) is not taken for the command's output.
 */
const LOOP_COMMAND_BODY = sh`exec 2>&4 4>&-
__df_n=$1 __df_i=$2
set --
__df_s=
while [ "$__df_n" -gt 0 ] && IFS= read -r __df_l; do __df_s="$__df_s$__df_l
"; __df_n=$((__df_n - 1)); done
case $__df_s in *${SCRIPT_TRAILER}"
") ;; *) echo ${'deployfile: the script arrived incomplete; it did not run.'} >&2; exit ${ScriptExit.IncompleteScript};; esac
unset __df_n __df_l
if [ "$__df_i" -gt 0 ] 2>/dev/null; then
  { ${EXACT_STDIN}; } 2>/dev/null | { (unset __df_i; eval "$__df_s"); __df_i=$?; cat >/dev/null; exit $__df_i; }
else
  unset __df_i
  exec </dev/null
  eval "$__df_s"
fi`

/**
 * The exec request of a connection's command channel: one session that runs many commands, one
 * after another, so a command costs the host no new session (sshd fork, login shell) and the client
 * learns that it ended from its output, not from sshd's exit-status, EOF and close packets.
 *
 * It reads a first line, the end-marker nonce, then per command a header
 * `<lines> <stdin-bytes> <own-session>` followed by the script (the same one SSH_BOOTSTRAP reads:
 * process-group preamble, command, trailer, newline) and the command's stdin. The loop forks the
 * subshell for the next command as soon as the last one ended, before its header comes, and the
 * subshell reads the header: the fork, the dearest thing the loop does (about 1 ms of CPU for dash
 * on the VMs measured), is then done while the client reads the last result instead of after the
 * next command arrived (100 sequential commands under 2 busy loops: 880 → 630 ms). EOF instead of a
 * header ends the loop: the subshell tells it with USR1, the loop's only trap. The loop's own
 * stderr is /dev/null and the channel's is its fd 4, so that what the loop shell says about a
 * killed command (dash's "Terminated") is never taken for output. A command runs
 * (LOOP_COMMAND_BODY) in one of two ways:
 * - `<own-session>` 0: in that subshell, which costs the host one fork and nothing else.
 *   The loop reports the process group for it (its own, found once at start as PGID_PREAMBLE
 *   does), so its script comes without the preamble.
 *   It shares the loop's process group, so killing it (abort, close) ends the loop and the channel
 *   too, as well as whatever earlier commands left running in the background of that group; the
 *   transport opens another channel for the next command;
 * - `<own-session>` 1 (a command with a timeout, the usual one to be killed while the run goes on):
 *   in a `/bin/sh` in a session of its own (`setsid`, util-linux or busybox), which the subshell
 *   exec()s, whose process group is killed without the loop: the channel serves on. It costs two
 *   more exec()s. dash has
 *   no cheaper way to give a command its own group (`set -m` without a terminal is refused:
 *   "can't access tty; job control turned off"). Without `setsid` it shares the loop's group too.
 * After the command,
 * the loop prints `@@deployfile-done-<nonce>:<status>@@` on stdout and on stderr (sshd drains the
 * two pipes separately: the client waits for both).
 */
const COMMAND_LOOP_BODY = sh`IFS= read -r __df_k || exit 0
if command -v setsid >/dev/null 2>&1; then __df_x=setsid; else __df_x=; fi
__df_pg=$$
if [ -r /proc/$$/stat ]; then read -r __df_st < /proc/$$/stat && __df_st=\${__df_st##*) } && set -- $__df_st && __df_pg=\${3:-$$}; set --; fi
unset __df_st
trap 'exit 0' USR1
exec 4>&2 2>/dev/null
while :; do
  (IFS=" " read -r __df_n __df_i __df_g || { kill -s USR1 $$; exit 0; }
    if [ "$__df_g" = 1 ]; then
      exec $__df_x /bin/sh -c ${LOOP_COMMAND_BODY.text} sh "$__df_n" "$__df_i"
    fi
    printf '@@deployfile-pgid:%s@@\\n' "$__df_pg" >&4
    set -- "$__df_n" "$__df_i"; unset __df_k __df_x __df_g __df_r __df_pg
${LOOP_COMMAND_BODY})
  __df_r=$?
  printf '@@deployfile-done-%s:%s@@\\n' "$__df_k" "$__df_r"
  printf '@@deployfile-done-%s:%s@@\\n' "$__df_k" "$__df_r" >&4
done`

/** The exec request of a command channel (see COMMAND_LOOP_BODY). */
export const COMMAND_LOOP: Command = sh`exec /bin/sh -c ${COMMAND_LOOP_BODY.text}`

/** Can a command channel carry this script? (Shell `read` drops NUL bytes.) */
export function loopCanCarry(command: Command): boolean {
  return !command.text.includes('\0')
}

/** The end marker of a command on a command channel, up to its status: `@@deployfile-done-<nonce>:`. */
export function loopEndMarker(nonce: string): string {
  return `@@deployfile-done-${nonce}:`
}

/**
 * What a command channel reads for one command: the header `<lines> <stdin-bytes> <own-session>`,
 * the script (as in sshPayload, ending with a newline; without the preamble in a subshell), the stdin bytes. A script with a NUL byte
 * cannot be read by lines: it goes on a channel of its own (see {@link loopCanCarry}).
 * `ownSession`: run it in a session of its own, so that killing it spares the loop (see COMMAND_LOOP_BODY).
 */
export function loopPayload(command: Command, stdin: Buffer | undefined, ownSession = false): Buffer {
  const head = loopHead(command, stdin?.length ?? 0, ownSession)
  return stdin && stdin.length > 0 ? Buffer.concat([head, stdin]) : head
}

/** loopPayload without the stdin bytes, which the transport sends after it (a large stdin is never copied). */
export function loopHead(command: Command, stdinBytes: number, ownSession = false): Buffer {
  // In a subshell, the loop reports the group (its own): no preamble to read and run, only the
  // script's own copy to drop (as the preamble does).
  const preamble = ownSession ? `${PGID_PREAMBLE.text}\n` : 'unset __df_s\n'
  const script = Buffer.from(`${preamble}${renderCommand(command)}\n${SCRIPT_TRAILER}\n`, 'utf8')
  let lines = 0
  for (let at = script.indexOf(10); at >= 0; at = script.indexOf(10, at + 1)) lines++
  return Buffer.concat([Buffer.from(`${lines} ${stdinBytes} ${ownSession ? 1 : 0}\n`), script])
}

/**
 * What the local `/bin/sh -c` runs: it reads the script from fd 3 (to EOF), closes fd 3 so the
 * script's commands do not inherit it, and evals it in this shell; fd 0 stays the command's stdin.
 */
export const LOCAL_BOOTSTRAP: Command = sh`__df_s=$(cat <&3; echo .)
exec 3<&-
__df_s=\${__df_s%.}
${REFUSE_INCOMPLETE}
eval "$__df_s"`

/** What LOCAL_BOOTSTRAP reads on fd 3: the rendered command and the trailer. */
export function localPayload(command: Command): string {
  return `${renderCommand(command)}\n${SCRIPT_TRAILER}`
}

/**
 * Kills process groups: TERM, up to 2 s for them to go, then KILL. `kill -TERM -PGID` is the form
 * every sh takes: dash rejects both `kill -- -PGID` and `kill -s TERM -PGID`. A group is alive
 * while a member is not a zombie (an orphaned zombie waits for init to reap it, and `kill -0`
 * still finds it); without ps, `kill -0` it is.
 */
export function killScript(pgids: readonly number[]): Command {
  const list = pgids.map((pgid) => Math.trunc(pgid))
  return sh`alive() { a=$(ps -A -o pgid= -o stat= 2>/dev/null) || { kill -0 -$1 2>/dev/null; return; }; printf '%s\\n' "$a" | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit f ? 0 : 1 }'; }
for p in ${list}; do kill -TERM -$p 2>/dev/null; done
i=0
while [ $i -lt 20 ]; do
  left=; for p in ${list}; do alive $p && left=1; done
  [ -z "$left" ] && exit 0
  sleep 0.1 2>/dev/null || sleep 1
  i=$((i+1))
done
for p in ${list}; do kill -KILL -$p 2>/dev/null; done
exit 0`
}

/**
 * The script of one round trip that carries queued commands: each queued command in its own
 * subshell (its cwd and env stay its own, stdin is not shared), in order; the first failure prints
 * the queued-failed marker naming it on stderr and stops the script with its exit code. Then the
 * command that was run, with its settings rendered like any command's; the result carries its stdin
 * and every secret of them all.
 */
export function queuedBatch(queued: readonly Command[], own: Command): Command {
  // Not `( … ) || …`: the shell ignores `set -e` inside the left side of `||`.
  const steps = queued.map(
    (command, index) =>
      sh`(
${raw(renderCommand(command))}
) </dev/null
rc=$?; if [ $rc -ne 0 ]; then printf '\\n%s %s\\n' ${QUEUED_FAILED} ${index} >&2; exit $rc; fi`,
  )
  const text = [...steps.map((step) => step.text), renderCommand(own)].join('\n')
  const secrets = [...queued.flatMap((command) => command.secrets), ...own.secrets]
  return new Command(text, secrets, own.stdin === undefined ? {} : { stdin: own.stdin })
}

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
