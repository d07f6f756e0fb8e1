import type { Client, ClientChannel } from 'ssh2'
import { SSH_BOOTSTRAP } from '../../shell/protocol.js'
import { channelUsable } from './open-channel.js'
import type { ChannelLimiter } from './limiter.js'

/**
 * Idle spare channels kept per connection when nothing waits for a channel. Two, not one: a spare
 * takes two turns to start (channel open, then the exec request), so with one spare a command that
 * follows another at once would find the next spare still starting and wait for it; with two, the
 * spare opened when command k started is ready when command k + 2 comes.
 */
const SPARES = 2

/** A pre-opened session channel running SSH_BOOTSTRAP, waiting for its script on stdin. */
export interface Spare {
  /** The channel once the bootstrap runs; undefined if it could not open or died before. */
  readonly ready: Promise<ClientChannel | undefined>
}

interface SpareState extends Spare {
  channel: ClientChannel | undefined
  /** Handed to a command: the command owns its limiter slot now. */
  taken: boolean
  /** Its limiter slot was given back (it died or the pool closed while idle). */
  released: boolean
  dead: boolean
}

/**
 * The spare channels of one connection. Each spare holds a slot of the connection's ChannelLimiter
 * (so spares + running commands ≤ maxChannels, and SFTP + the killer keep within sshd's
 * MaxSessions); a spare is opened only on a free slot that no command waits for, and its slot
 * passes to the command that takes it. Opening spares happens in the background: nobody waits on
 * it, so it is not counted as a round trip.
 */
export class SparePool {
  private readonly idle: SpareState[] = []
  private closed = false
  private disabled = false

  constructor(
    private readonly client: Client,
    private readonly limiter: ChannelLimiter,
    private readonly alive: () => boolean,
  ) {}

  /** Idle spares now (ready or starting). */
  get size(): number {
    return this.idle.length
  }

  /**
   * A spare for a command, if there is one: a ready one, else one still starting (a channel of the
   * command's own costs open + exec + script, three turns from now; a starting spare has at most
   * its open and exec replies to come). The caller owns the spare's limiter slot from now on.
   */
  take(): Spare | undefined {
    this.prune()
    const pick = this.idle.find((spare) => spare.channel !== undefined) ?? this.idle.find((spare) => !spare.dead)
    if (!pick) return undefined
    this.idle.splice(this.idle.indexOf(pick), 1)
    pick.taken = true
    return pick
  }

  /** Opens spares up to SPARES on free slots nobody waits for. */
  fill(): void {
    if (this.closed || this.disabled || !this.alive()) return
    this.prune()
    while (this.idle.length < SPARES && this.limiter.tryAcquire()) {
      // A connection already gone fails the open at once and frees the slot: without this stop the
      // loop would take the slot and fail again forever (seen: a dep spinning at full CPU for
      // 15 minutes after its hosts' daemons were stopped).
      if (!this.open()) return
    }
  }

  /** The bootstrap does not work on this host: no more spares (commands open their own channels). */
  disable(): void {
    this.disabled = true
    this.close()
  }

  /** Ends the idle spares (EOF: the bootstrap exits 0) and gives their slots back. */
  close(): void {
    this.closed = true
    for (const spare of this.idle.splice(0)) {
      spare.channel?.end()
      this.release(spare)
    }
  }

  /** Starts opening a spare; false when it failed at once (the connection is gone). */
  private open(): boolean {
    let resolve!: (channel: ClientChannel | undefined) => void
    const spare: SpareState = {
      channel: undefined,
      taken: false,
      released: false,
      dead: false,
      ready: new Promise<ClientChannel | undefined>((r) => (resolve = r)),
    }
    this.idle.push(spare)
    const fail = () => {
      spare.dead = true
      spare.channel = undefined
      this.drop(spare)
      resolve(undefined)
    }
    try {
      this.client.exec(SSH_BOOTSTRAP.text, (error, channel) => {
        // Refused (MaxSessions reached for a moment, say): no spare; commands open their own.
        if (error) return fail()
        if (this.closed && !spare.taken) {
          channel.end()
          return fail()
        }
        // An idle spare that dies (killed on the host, sshd gave up on it) leaves the pool.
        channel.once('exit', () => {
          if (!spare.taken) fail()
        })
        channel.on('error', () => undefined)
        spare.channel = channel
        resolve(channel)
      })
    } catch {
      // ssh2 throws synchronously when the connection is already gone.
      fail()
    }
    return !spare.dead
  }

  /** Forgets spares that died unnoticed. */
  private prune(): void {
    for (const spare of [...this.idle]) {
      if (spare.dead || (spare.channel && !channelUsable(spare.channel))) {
        spare.dead = true
        this.drop(spare)
      }
    }
  }

  /** Takes an untaken spare out of the pool and gives its slot back. */
  private drop(spare: SpareState): void {
    const index = this.idle.indexOf(spare)
    if (index >= 0) this.idle.splice(index, 1)
    this.release(spare)
  }

  private release(spare: SpareState): void {
    if (spare.taken || spare.released) return
    spare.released = true
    this.limiter.release()
  }
}
