import { renderCommand, sh, type Command } from '../command.js'
import { ScriptExit } from './exit-codes.js'

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
