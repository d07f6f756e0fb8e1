/**
 * 100 sequential commands (`true`) on one host, through the SSH transport in this process, against a
 * daemon configured like a real server: the login user's shell is bash (the harness's user) and
 * sshd logs at INFO, not at the VERBOSE of the deploy rows. Measured with the command channel (one
 * long-lived session runs the commands one after another) and without it (a session per command),
 * quiet and, with BENCH_LOAD=1, under the busy loops: the median of `runs` rounds, and the CPU the
 * daemon side spent on one round (sshd and everything its sessions ran).
 */
import { Host } from '../src/model/host.js'
import { createSshTransport } from '../src/transport/ssh/index.js'
import { startSshServers } from '../test/support/sshd.js'
import { createCpuGroup, median } from './lib.js'
import { startBusyLoops } from './load.js'

/** sshd_config of the daemon of this row: a server's usual log level (the harness writes ERROR first). */
const REAL_SERVER_CONFIG = ['Match all', 'LogLevel INFO']
const COMMANDS = 100

export interface SequentialCase {
  commandChannel: boolean
  loops: number
  /** Wall time of 100 sequential commands, median of the rounds, and every round. */
  medianMs: number
  roundsMs: number[]
  /** CPU of the daemon side for one round (median), ms; undefined without a cgroup. */
  sshdCpuMs: number | undefined
}

async function measure(host: Host, commandChannel: boolean, homeDir: string, runs: number, sshdCpu: (() => Promise<number>) | undefined) {
  const transport = createSshTransport(new Host(host.alias, { ...host.options, commandChannel }), { homeDir, env: {} })
  try {
    for (let i = 0; i < 5; i++) await transport.exec('true') // connected, channels open
    const rounds: number[] = []
    const cpu: number[] = []
    for (let run = 0; run < runs; run++) {
      const cpuBefore = await sshdCpu?.()
      const started = performance.now()
      for (let i = 0; i < COMMANDS; i++) {
        const result = await transport.exec('true')
        if (result.code !== 0) throw new Error(`true exited ${result.code}: ${result.stderr}`)
      }
      rounds.push(Math.round(performance.now() - started))
      if (cpuBefore !== undefined && sshdCpu) cpu.push((await sshdCpu()) - cpuBefore)
    }
    return { medianMs: median(rounds), roundsMs: rounds, sshdCpuMs: cpu.length === runs ? Math.round(median(cpu)) : undefined }
  } finally {
    await transport.close()
  }
}

/** The four cases (command channel on/off, quiet/under `loops` busy loops; loops 0 skips the loaded ones). */
export async function sequentialRows(runs: number, loops: number, log: (message: string) => void): Promise<SequentialCase[]> {
  const servers = await startSshServers(1, { extraConfig: REAL_SERVER_CONFIG, aliasPrefix: 'dfseq' })
  const group = await createCpuGroup('deployfile-bench-seq')
  const rows: SequentialCase[] = []
  try {
    let sshdCpu: (() => Promise<number>) | undefined
    if (group) {
      await group.add(servers.servers[0].pid!)
      sshdCpu = () => group.usageMs()
    }
    const host = new Host('seq', servers.hostOptions(0))
    for (const load of loops > 0 ? [0, loops] : [0]) {
      for (const commandChannel of [true, false]) {
        // Fresh busy loops for each case: they stop by themselves after 60 s.
        const hog = load > 0 ? startBusyLoops(load) : undefined
        try {
          const row = await measure(host, commandChannel, servers.homeDir, runs, sshdCpu)
          rows.push({ commandChannel, loops: load, ...row })
          log(
            `  ${COMMANDS} sequential commands, command channel ${commandChannel ? 'on' : 'off'}${load ? `, ${load} busy loops` : ''}: ${row.medianMs} ms (${row.roundsMs.join(', ')}), sshd CPU ${row.sshdCpuMs ?? '?'} ms`,
          )
        } finally {
          await hog?.stop()
        }
      }
    }
  } finally {
    await servers.stopAll()
    await group?.remove()
  }
  return rows
}
