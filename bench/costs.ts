/**
 * What each host costs, from the rows of the host-count runs: sshd CPU per host, dep CPU and peak
 * RSS per extra host (against the 1-host row), and the wall time against the machine's CPU floor,
 * (dep CPU + sshd CPU) / cores: the wall time the deploy could not beat on this machine if every
 * core did nothing but its work.
 */

/** The figures of one host-count row these costs are derived from (medians of the steady runs). */
export interface CostInput {
  hosts: number
  steadyMs: number
  steadyCpuMs: number | undefined
  steadyServerCpuMs: number | undefined
  peakRssMb: number | undefined
}

export interface HostCosts {
  hosts: number
  /** sshd CPU (the daemons and everything their sessions ran) / hosts, ms. */
  sshdCpuPerHostMs: number | undefined
  /** (dep CPU at N - dep CPU at 1) / (N - 1), ms; undefined at 1 host or without a 1-host row. */
  depCpuPerExtraHostMs: number | undefined
  /** (peak RSS at N - peak RSS at 1) / (N - 1), MB. */
  rssPerExtraHostMb: number | undefined
  /** (dep CPU + sshd CPU) / cores, ms. */
  cpuFloorMs: number | undefined
  /** Steady wall time / CPU floor. */
  wallOverFloor: number | undefined
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits

export function hostCosts(rows: CostInput[], cores: number): HostCosts[] {
  const one = rows.find((r) => r.hosts === 1)
  return rows.map((row) => {
    const extra = row.hosts - 1
    const perExtra = (at: number | undefined, base: number | undefined, digits: number) =>
      extra > 0 && at !== undefined && base !== undefined ? round((at - base) / extra, digits) : undefined
    const floor =
      row.steadyCpuMs !== undefined && row.steadyServerCpuMs !== undefined ? (row.steadyCpuMs + row.steadyServerCpuMs) / cores : undefined
    return {
      hosts: row.hosts,
      sshdCpuPerHostMs: row.steadyServerCpuMs === undefined ? undefined : Math.round(row.steadyServerCpuMs / row.hosts),
      depCpuPerExtraHostMs: perExtra(row.steadyCpuMs, one?.steadyCpuMs, 0),
      rssPerExtraHostMb: perExtra(row.peakRssMb, one?.peakRssMb, 2),
      cpuFloorMs: floor === undefined ? undefined : Math.round(floor),
      wallOverFloor: floor ? round(row.steadyMs / floor, 2) : undefined,
    }
  })
}
