import type { Host } from '../model/host.js'
import { MemoryTransport } from '../transport/memory/memory-transport.js'
import type { Transport, TransportFactory } from '../transport/types.js'

/**
 * Picks each host's transport: a recorder for dry runs, zx for localhost, ssh2
 * otherwise. The SSH module is loaded only when a remote host is selected, so
 * `dep list` and localhost deploys start fast.
 */
export async function transportFactory(hosts: Host[], dryRun: boolean): Promise<TransportFactory> {
  if (dryRun) return (host) => new MemoryTransport(host)
  const ssh = hosts.some((h) => !h.local) ? await import('../transport/ssh/index.js') : undefined
  const { createLocalTransport } = await localTransportModule()
  return (host: Host): Transport => {
    if (host.local) return createLocalTransport(host)
    return ssh!.createSshTransport(host)
  }
}

/** The zx-based local transport, loaded only by runs (not by `dep list`). */
export function localTransportModule() {
  return import('../transport/local/local-transport.js')
}
