import type { Host, HostOptions } from '../model/host.js'
import { callSite, noteSite } from './call-site.js'
import { currentRegistry } from './registry-scope.js'

/**
 * Declares hosts. Ranges expand: `web[1:3].acme.test` is three hosts,
 * `web[01:10]` keeps the padding, `db[a:c]` uses letters. Settings of these
 * hosts only go in `options.config` (they beat global `set()` values).
 *
 * @example host('web[1:3].acme.test', { remoteUser: 'deploy', deployPath: '/var/www/site', config: { branch: 'main' } })
 */
export function host(pattern: string, options: HostOptions = {}): void {
  noteHostSites(currentRegistry().addHost(pattern, options), 'host')
}

/** Declares this machine as a host: commands run locally, without SSH. */
export function localhost(alias = 'localhost', options: Pick<HostOptions, 'deployPath' | 'labels' | 'config'> = {}): void {
  noteHostSites(currentRegistry().addHost(alias, options, true), 'localhost')
}

/** Remembers where each host's settings (`config`, `deployPath`) were given. */
function noteHostSites(hosts: Host[], call: string): void {
  const registry = currentRegistry()
  const site = callSite()
  for (const host of hosts) {
    for (const key of host.config.keys()) noteSite(registry, `host:${host.alias}`, key, `${call}('${host.alias}', …)`, site)
  }
}
