/**
 * The client's floor per host: what a bare ssh2 client costs to connect to a host, check its key,
 * authenticate, run one command and disconnect (bench/ssh2-client.mjs, a process of its own, every
 * host at once), measured like dep: CPU (user + system) and peak RSS by GNU time. Per extra host =
 * (value at N − value at 1) / (N − 1), the median of `runs` runs at each count. No deploy client built
 * on ssh2 can cost less per host than this; dep's own figure is read against it.
 */
import path from 'node:path'
import type { HostSpec } from './lib.js'
import { median, REPO_ROOT, runDep } from './lib.js'

export interface ClientFloorRow {
  hosts: number
  cpuMs: number | undefined
  peakRssMb: number | undefined
}

const CLIENT = path.join(REPO_ROOT, 'bench/ssh2-client.mjs')

async function measure(hosts: HostSpec[], runs: number): Promise<ClientFloorRow> {
  const specs = hosts.map(({ options: o }) => ({
    host: o.hostname,
    port: o.port,
    username: o.remoteUser,
    privateKey: o.identityFile,
    knownHosts: o.knownHostsFile,
  }))
  const cpu: number[] = []
  const rss: number[] = []
  for (let i = 0; i < runs; i++) {
    const run = await runDep(CLIENT, [JSON.stringify(specs)], REPO_ROOT)
    if (run.code !== 0) throw new Error(`the bare ssh2 client failed on ${hosts.length} hosts: ${run.stderr.trim()}`)
    if (run.cpuMs !== undefined) cpu.push(run.cpuMs)
    if (run.peakRssKb !== undefined) rss.push(run.peakRssKb)
  }
  return {
    hosts: hosts.length,
    cpuMs: cpu.length === runs ? median(cpu) : undefined,
    peakRssMb: rss.length === runs ? Math.round(median(rss) / 102.4) / 10 : undefined,
  }
}

/** The bare client at 1 host and at each count of `counts` (over 1). */
export async function clientFloorRows(hostsOf: (count: number) => HostSpec[], counts: number[], runs: number): Promise<ClientFloorRow[]> {
  const rows: ClientFloorRow[] = []
  for (const count of [1, ...counts.filter((count) => count > 1)]) rows.push(await measure(hostsOf(count), runs))
  return rows
}

/** Per extra host against the 1-host row: CPU ms and RSS MB. */
export function perExtraHost(rows: ClientFloorRow[], count: number): { cpuMs: number | undefined; rssMb: number | undefined } {
  const one = rows.find((row) => row.hosts === 1)
  const many = rows.find((row) => row.hosts === count)
  if (!one || !many || count <= 1) return { cpuMs: undefined, rssMb: undefined }
  const per = (a: number | undefined, b: number | undefined, digits: number) =>
    a === undefined || b === undefined ? undefined : Math.round(((b - a) / (count - 1)) * 10 ** digits) / 10 ** digits
  return { cpuMs: per(one.cpuMs, many.cpuMs, 1), rssMb: per(one.peakRssMb, many.peakRssMb, 2) }
}
