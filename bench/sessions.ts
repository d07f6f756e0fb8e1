/**
 * Sessions per host, counted from the sshd side: the bench's daemons log at VERBOSE (through a
 * `Match all` block: the harness's global `LogLevel ERROR` comes first and sshd keeps the first
 * value of a keyword), where sshd writes one "Starting session" line per session it forks a
 * command, shell or subsystem for. A channel opened and never used (no exec) writes none.
 */
import type { SshServer } from '../test/support/sshd.js'

/** sshd_config lines that make each daemon log its sessions. */
export const SESSION_LOG_CONFIG = ['Match all', 'LogLevel VERBOSE']

const STARTING_SESSION = /^Starting session: /gm

/** "Starting session" lines in a daemon's log so far. */
function sessionsLogged(server: SshServer): number {
  return server.log.match(STARTING_SESSION)?.length ?? 0
}

/** Counts the sessions each daemon starts between `mark()` and `perHost()`. */
export class SessionCounter {
  private readonly start: number[]

  constructor(private readonly servers: SshServer[]) {
    this.start = servers.map(sessionsLogged)
  }

  /** Sessions per daemon since the counter was made, in daemon order. */
  perHost(): number[] {
    return this.servers.map((server, i) => sessionsLogged(server) - this.start[i])
  }
}
