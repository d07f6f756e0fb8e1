/**
 * The Laravel floor: one POSIX script per host doing the remote work of the Laravel recipe's deploy
 * (examples/laravel-app, upload strategy, the bench's dotenv, chmod writable mode, keep 3) over ONE
 * ssh session, the app as a tar on stdin, every host at once (bench/floor.ts runs it) — what a
 * hand-written `deploy.sh` would do. Measured INTERLEAVED with deployfile's Laravel deploy (dep,
 * floor, dep, floor…) so a change of load on the shared machine hits both sides alike.
 *
 * The script does what `dep deploy` runs on a host, in its order (see the `--json` commands of a run):
 * lock; next release dir and the `release` link; tar extract; REVISION; the release's own 0600 .env
 * (the dotenv setting's values); the SQLite file in shared/; storage skeleton in shared/; storage/
 * linked to shared/ (.env is the release's own, not shared); the writable dirs chmod 0775 one by one;
 * vendor/ copied from the live release when the new one has none; `composer install` with the
 * recipe's default options; `php artisan --version` (the recipe reads the Laravel version in the same
 * round trip); `artisan storage:link`, `config:cache`, `route:cache`, `view:cache`, `event:cache`
 * (one php process each, as the recipe runs them); `artisan migrate --force` on the first host only
 * (the recipe's artisan:migrate is `once`: one host, the database being shared); the atomic switch;
 * cleanup keeping 3 releases; unlock. No PHP-FPM reload: the recipe does none unless configured.
 * Left out, as in bench/floor.ts: the ledger lines, the lock's owner file, the safety checks.
 */
import { renderDotenv } from '../recipes/laravel/dotenv.js'
import type { SshServer } from '../test/support/sshd.js'
import { floorOnce, shQuote } from './floor.js'
import { assertOk, formatTrips, laravelDotenv, median, runDep, tripsRange, type DepRun, type HostSpec } from './lib.js'
import { SessionCounter } from './sessions.js'
import { formatTimeline, timelineOf, type Timeline } from './timeline.js'

/** Options of the recipe's `composer install` (its `composer_options` default). */
const COMPOSER_OPTIONS = '--prefer-dist --no-progress --no-interaction --no-dev --optimize-autoloader'

/** The recipe's writable_dirs (chmod 0775 each, not recursive). */
const WRITABLE_DIRS = [
  'bootstrap/cache', 'storage', 'storage/app', 'storage/app/public', 'storage/framework', 'storage/framework/cache',
  'storage/framework/cache/data', 'storage/framework/sessions', 'storage/framework/views', 'storage/logs',
]

/** Laravel's storage skeleton, created in shared/ (the recipe's STORAGE_DIRS). */
const STORAGE_DIRS = ['app/public', 'framework/cache/data', 'framework/sessions', 'framework/views', 'logs']

/** The artisan commands laravel:caches runs, in the recipe's order. */
const CACHE_COMMANDS = ['storage:link', 'config:cache', 'route:cache', 'view:cache', 'event:cache']

/**
 * The remote script of one host. With `marks`, it prints `@t <step> <epoch ms>` after each step (one
 * `date` each: only for the one timed run that shows where the floor's time goes, never in the rounds).
 * `migrate`: run the migrations (the first host only, as the recipe does).
 */
export function laravelFloorScript(deployPath: string, options: { marks?: boolean; migrate: boolean }): string {
  const env = renderDotenv(laravelDotenv(deployPath))
  const db = laravelDotenv(deployPath).DB_DATABASE
  if (env.includes('\nENV\n')) throw new Error('the .env would end the here-document early')
  return `set -e
${options.marks ? `m() { printf '@t %s %s\\n' "$1" "$(date +%s%3N)"; }` : 'm() { :; }'}
m start
d=${shQuote(deployPath)}
mkdir -p "$d/.dep" "$d/releases" "$d/shared"
mkdir "$d/.dep/floor-lock"
trap 'rmdir "$d/.dep/floor-lock"' EXIT
m lock
last=$(ls "$d/releases" | sort -n | tail -n 1)
n=$(( \${last:-0} + 1 ))
r="$d/releases/$n"
mkdir "$r"
ln -sfn "releases/$n" "$d/release"
tar -x -f - -C "$r" --no-same-owner
printf '%s\\n' "upload $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$r/REVISION"
m extract
(umask 077 && cat > "$r/.env" <<'ENV'
${env}ENV
)
db=${shQuote(db)}
[ -f "$db" ] || { mkdir -p "$(dirname "$db")" && touch "$db"; }
mkdir -p ${STORAGE_DIRS.map((dir) => `"$d/shared/storage/${dir}"`).join(' ')}
rm -rf "$r/storage" && ln -s ../../shared/storage "$r/storage"
cd "$r"
mkdir -p ${WRITABLE_DIRS.join(' ')}
chmod 0775 ${WRITABLE_DIRS.join(' ')}
m shared+writable
if [ -d "$d/current/vendor" ] && [ ! -d vendor ]; then cp -a "$d/current/vendor" vendor; fi
m copy-vendor
composer install ${COMPOSER_OPTIONS}
m composer
php artisan --version >/dev/null
m version
${CACHE_COMMANDS.map((command) => `php artisan ${command}\nm ${command}`).join('\n')}
${options.migrate ? 'php artisan migrate --force\nm migrate' : ''}
ln -sfn "releases/$n" "$d/current.tmp" && mv -fT "$d/current.tmp" "$d/current"
rm -f "$d/release"
m switch
cd "$d"
ls releases | sort -n | head -n -3 | while read -r old; do rm -rf "releases/$old"; done
m cleanup`
}

/** One side (dep or the floor) of an interleaved row. */
export interface LaravelSide {
  firstMs: number
  /** Median wall of the steady runs, ms. */
  medianMs: number
  runsMs: number[]
  /** Server-side CPU per host, median of the steady runs, ms (undefined without a cgroup). */
  sshdCpuPerHostMs: number | undefined
  /** sshd sessions per host per steady run (the daemons' "Starting session" lines). */
  sessionsPerHost: { min: number; max: number } | undefined
}

/** A step of the floor script on one host: the time since the previous mark, ms. */
export interface FloorStep {
  step: string
  ms: number
}

export interface LaravelFloorRow {
  hosts: number
  /** Round-trip time added by the delay proxy, ms (0: loopback). */
  rttMs: number
  dep: LaravelSide
  floor: LaravelSide
  /** dep median / floor median. */
  ratio: number
  depTrips: { min: number; max: number } | undefined
  /** Per-host timeline of the last steady dep run. */
  depTimeline: Timeline | undefined
  /** Where one extra (unmeasured) floor run spent its time, per host (from the script's start). */
  floorSteps: Record<string, FloorStep[]>
  /** Wall of that marked run, ms: the steps plus ssh's connection and the session's start. */
  floorMarkedWallMs: number
}

export interface LaravelFloorOptions {
  cli: string
  /** Directory holding the deployfile of `depHosts`. */
  depDir: string
  appDir: string
  /** The floor's hosts: the same daemons (and proxies) as dep's, another deploy path. */
  floorHosts: HostSpec[]
  /** The daemons behind the hosts, for the session counts. */
  daemons: SshServer[]
  rounds: number
  rttMs: number
  /** Server-side CPU so far (ms, after letting the last sessions end); NaN without a cgroup. */
  serverCpuMs: () => Promise<number>
  /** Called after every run (e.g. to let a delay proxy go idle). */
  afterRun?: () => Promise<void>
}

function rangeOf(values: number[]): { min: number; max: number } | undefined {
  return values.length === 0 ? undefined : { min: Math.min(...values), max: Math.max(...values) }
}

/** The `@t` marks of a marked floor run as step durations. */
function stepsOf(stdout: string): FloorStep[] {
  const marks = [...stdout.matchAll(/^@t (\S+) (\d+)$/gm)].map((m) => ({ step: m[1], at: Number(m[2]) }))
  return marks.slice(1).map((mark, i) => ({ step: mark.step, ms: mark.at - marks[i].at }))
}

/** One run of one side, measured. */
interface Measured<T> {
  result: T
  wallMs: number
  cpuPerHost: number
  sessions: { min: number; max: number } | undefined
}

/** Runs one side once, measured: wall, server CPU per host, sessions per host. */
async function measured<T>(hosts: number, options: LaravelFloorOptions, run: () => Promise<T>): Promise<Measured<T>> {
  const before = await options.serverCpuMs()
  const sessions = new SessionCounter(options.daemons)
  const started = performance.now()
  const result = await run()
  const wallMs = performance.now() - started
  const cpuPerHost = ((await options.serverCpuMs()) - before) / hosts
  await options.afterRun?.()
  return { result, wallMs, cpuPerHost, sessions: rangeOf(sessions.perHost()) }
}

function sideOf(first: number, runs: Array<Measured<unknown>>): LaravelSide {
  const known = runs.map((r) => r.sessions).filter((s): s is { min: number; max: number } => s !== undefined)
  return {
    firstMs: Math.round(first),
    medianMs: Math.round(median(runs.map((r) => r.wallMs))),
    runsMs: runs.map((r) => Math.round(r.wallMs)),
    sshdCpuPerHostMs: runs.every((r) => Number.isFinite(r.cpuPerHost)) ? Math.round(median(runs.map((r) => r.cpuPerHost))) : undefined,
    sessionsPerHost: known.length === 0 ? undefined : { min: Math.min(...known.map((s) => s.min)), max: Math.max(...known.map((s) => s.max)) },
  }
}

/**
 * dep's Laravel deploy and the floor, interleaved: one first deploy each, then `rounds` rounds of
 * (dep, floor); then one more floor run with step marks (not counted) to show where its time goes.
 */
export async function laravelFloorRow(options: LaravelFloorOptions): Promise<LaravelFloorRow> {
  const hosts = options.floorHosts.length
  const dep = async () => {
    const run = await runDep(options.cli, ['deploy', '--json'], options.depDir)
    assertOk(run, `Laravel deploy, ${hosts} host(s), +${options.rttMs} ms RTT`)
    return run
  }
  const floor = () => floorOnce(options.appDir, options.floorHosts, (host, i) => laravelFloorScript(host.deployPath, { migrate: i === 0 }))
  const depFirst = await measured(hosts, options, dep)
  const floorFirst = await measured(hosts, options, floor)
  const depRuns: Array<Measured<DepRun>> = []
  const floorRuns: Array<Measured<unknown>> = []
  for (let i = 0; i < options.rounds; i++) {
    depRuns.push(await measured(hosts, options, dep))
    floorRuns.push(await measured(hosts, options, floor))
  }
  const markedStart = performance.now()
  const marked = await floorOnce(options.appDir, options.floorHosts, (host, i) => laravelFloorScript(host.deployPath, { marks: true, migrate: i === 0 }))
  const markedWallMs = Math.round(performance.now() - markedStart)
  await options.afterRun?.()
  const depSide = sideOf(depFirst.wallMs, depRuns)
  const floorSide = sideOf(floorFirst.wallMs, floorRuns)
  const trips = depRuns.map((r) => tripsRange(r.result.runEnd?.roundTrips)).filter((t): t is { min: number; max: number } => t !== undefined)
  const last = depRuns.at(-1)?.result
  return {
    hosts,
    rttMs: options.rttMs,
    dep: depSide,
    floor: floorSide,
    ratio: Math.round((depSide.medianMs / floorSide.medianMs) * 100) / 100,
    depTrips: trips.length === 0 ? undefined : { min: Math.min(...trips.map((t) => t.min)), max: Math.max(...trips.map((t) => t.max)) },
    depTimeline: last ? timelineOf(last.stdout) : undefined,
    floorSteps: Object.fromEntries(options.floorHosts.map((host, i) => [host.alias, stepsOf(marked[i].stdout)])),
    floorMarkedWallMs: markedWallMs,
  }
}

/** The goal of issue 14: deployfile's Laravel deploy within this factor of the one-script floor. */
export const LARAVEL_FLOOR_GOAL = 1.15

/** The table, the verdict, then each row's dep timeline and floor steps. */
export function formatLaravelFloorRows(rows: LaravelFloorRow[], rounds: number): string[] {
  const s = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(2))
  const range = (runs: number[]) => `${s(Math.min(...runs))}–${s(Math.max(...runs))}`
  const lines: string[] = []
  lines.push(`Laravel (examples/laravel-app) against the one-script floor (one ssh session per host, the same remote work), interleaved, median of ${rounds} rounds:`)
  lines.push('hosts  RTT added  dep s (range)          floor s (range)        dep/floor  dep sshd CPU/host ms  floor sshd CPU/host ms  dep sessions/host  floor sessions/host  dep trips/host')
  for (const row of rows) {
    lines.push(
      `${String(row.hosts).padStart(5)}  ${(row.rttMs ? `+${row.rttMs} ms` : '-').padStart(9)}  ${`${s(row.dep.medianMs)} (${range(row.dep.runsMs)})`.padEnd(21)}  ${`${s(row.floor.medianMs)} (${range(row.floor.runsMs)})`.padEnd(21)}  ${`${row.ratio.toFixed(2)}x`.padStart(9)}  ${String(row.dep.sshdCpuPerHostMs ?? '-').padStart(20)}  ${String(row.floor.sshdCpuPerHostMs ?? '-').padStart(22)}  ${formatTrips(row.dep.sessionsPerHost).padStart(17)}  ${formatTrips(row.floor.sessionsPerHost).padStart(19)}  ${formatTrips(row.depTrips).padStart(14)}`,
    )
  }
  const worst = rows.length === 0 ? undefined : Math.max(...rows.map((r) => r.ratio))
  const verdict = worst === undefined ? 'n/a ' : worst <= LARAVEL_FLOOR_GOAL ? 'met ' : 'MISSED'
  lines.push(`  ${verdict}  Laravel within ${LARAVEL_FLOOR_GOAL}x of the one-script floor: worst ${worst?.toFixed(2) ?? '-'}x`)
  for (const row of rows) {
    lines.push('')
    lines.push(`Laravel, ${row.hosts} host(s)${row.rttMs ? `, +${row.rttMs} ms RTT` : ''}: timeline of the last steady dep run (ms since run:start):`)
    if (row.depTimeline) lines.push(...formatTimeline(row.depTimeline))
    lines.push(`  the floor, one marked run (ms per step, from the script's start; wall ${row.floorMarkedWallMs} ms with ssh's connect):`)
    for (const [host, steps] of Object.entries(row.floorSteps)) {
      lines.push(`    ${host}: ${steps.map((step) => `${step.step} ${step.ms}`).join(', ')}; total ${steps.reduce((sum, step) => sum + step.ms, 0)}`)
    }
  }
  return lines
}
