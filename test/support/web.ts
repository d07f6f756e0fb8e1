/**
 * Test harness: serve a PHP app with real nginx + php-fpm on loopback, probe it
 * while deploys happen, and build releases of examples/laravel-app.
 *
 * No systemd on the test machines, so both daemons run in the foreground as
 * children of the test process, with every file they write (config, pid,
 * logs, socket, temp dirs) in a fresh temp dir. Nothing is fixed (ports,
 * paths), so several servers can run at once from parallel test files.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const LARAVEL_APP_DIR = path.join(REPO_ROOT, 'examples/laravel-app');
/** Overlays copied over the app to build later releases; see its README. */
export const LARAVEL_EXTRA_DIR = path.join(REPO_ROOT, 'examples/laravel-app-extra');

const DEFAULT_FPM_BINS = ['/usr/sbin/php-fpm8.2', '/usr/sbin/php-fpm'];
const DEFAULT_NGINX_BINS = ['/usr/sbin/nginx'];
const STARTUP_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const FPM_READY_LINE = 'ready to handle connections';

// ---------------------------------------------------------------------------
// Web server
// ---------------------------------------------------------------------------

export interface StartWebServerOptions {
  /** Document root, e.g. `<deploy_path>/current/public`; may go through symlinks. */
  root: string;
  /**
   * The path nginx hands PHP: `$realpath_root` (default: the link resolved per request, no reload
   * needed after a switch) or `$document_root` (through the link: PHP's caches keep the old
   * release until php-fpm reloads; what the PHP-FPM plugin is for).
   */
  fastcgiRoot?: '$realpath_root' | '$document_root';
  phpFpmBin?: string;
  nginxBin?: string;
}

export interface WebServer {
  /** Base URL without trailing slash, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  /** Temp dir holding configs, logs, pid files and the fpm socket. */
  dir: string;
  pids: { nginx: number; fpm: number };
  stop(): Promise<void>;
  /** Graceful fpm reload (SIGUSR2, what `systemctl reload php-fpm` does); resolves once the new master is ready. */
  fpmReload(): Promise<void>;
  /** Both daemons' error logs, to attach to a failing assertion. */
  logs(): Promise<string>;
}

/** Children still running, terminated if the test process exits without stop(). */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // SIGTERM rather than SIGKILL: the masters then reap their own workers,
  // which would otherwise be orphaned and keep running.
  process.on('exit', () => {
    for (const child of liveChildren) child.kill('SIGTERM');
  });
}

export async function startWebServer(options: StartWebServerOptions): Promise<WebServer> {
  const fpmBin = options.phpFpmBin ?? (await firstExecutable(DEFAULT_FPM_BINS, 'php-fpm (apt-get install php8.2-fpm)'));
  const nginxBin = options.nginxBin ?? (await firstExecutable(DEFAULT_NGINX_BINS, 'nginx (apt-get install nginx)'));
  const dir = await mkdtemp(path.join(tmpdir(), 'deployfile-web-'));
  installExitHook();

  const fpm = await startFpm(fpmBin, dir);
  try {
    const { nginx, port } = await startNginx(nginxBin, dir, options.root, fpm.socket, options.fastcgiRoot ?? '$realpath_root');
    return makeHandle(dir, port, nginx, fpm);
  } catch (error) {
    await stopChild(fpm.child);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function makeHandle(dir: string, port: number, nginx: ChildProcess, fpm: FpmProcess): WebServer {
  let stopped = false;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    dir,
    pids: { nginx: nginx.pid ?? -1, fpm: fpm.child.pid ?? -1 },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all([stopChild(nginx), stopChild(fpm.child)]);
      await rm(dir, { recursive: true, force: true });
    },
    fpmReload: () => reloadFpm(fpm),
    logs: () => readLogs(dir),
  };
}

async function readLogs(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of ['php-fpm.log', 'nginx-error.log']) {
    const text = await readFile(path.join(dir, name), 'utf8').catch(() => '(missing)');
    parts.push(`--- ${name}\n${text}`);
  }
  return parts.join('\n');
}

async function firstExecutable(candidates: string[], what: string): Promise<string> {
  for (const candidate of candidates) {
    try {
      await access(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error(`${what} not found; looked at ${candidates.join(', ')}`);
}

const isRoot = (): boolean => process.getuid?.() === 0;

// --- php-fpm ---------------------------------------------------------------

interface FpmProcess {
  child: ChildProcess;
  socket: string;
  log: string;
}

function fpmConfig(dir: string, socket: string): string {
  return `[global]
pid = ${dir}/php-fpm.pid
error_log = ${dir}/php-fpm.log
log_level = notice
daemonize = no
; On reload (SIGUSR2) let workers finish the request in flight; with the
; default 0 they are killed at once and nginx answers 502.
process_control_timeout = 10s

[app]
listen = ${socket}
; nginx workers may run as another user than this master
listen.mode = 0666
pm = static
pm.max_children = 4
; app errors (e.g. LOG_CHANNEL=stderr) end up in php-fpm.log
catch_workers_output = yes
decorate_workers_output = no
`;
}

async function startFpm(bin: string, dir: string): Promise<FpmProcess> {
  // Unix socket paths are capped near 108 bytes; mkdtemp under tmpdir() stays well below.
  const socket = path.join(dir, 'php-fpm.sock');
  const log = path.join(dir, 'php-fpm.log');
  const config = path.join(dir, 'php-fpm.conf');
  await writeFile(config, fpmConfig(dir, socket));

  const args = ['--nodaemonize', '--fpm-config', config, '--prefix', dir];
  // As root, fpm refuses to run pools without -R (we set no pool user).
  if (isRoot()) args.push('--allow-to-run-as-root');
  const child = spawnTracked(bin, args);

  await waitFor(() => canConnect(socket), child, 'php-fpm', () => readFile(log, 'utf8').catch(() => ''));
  return { child, socket, log };
}

async function reloadFpm(fpm: FpmProcess): Promise<void> {
  const before = countOccurrences(await readFile(fpm.log, 'utf8'), FPM_READY_LINE);
  // SIGUSR2 re-execs the master in place (same pid) and hands the listening
  // socket over, so requests queue in the backlog instead of failing.
  fpm.child.kill('SIGUSR2');
  await waitFor(
    async () => countOccurrences(await readFile(fpm.log, 'utf8'), FPM_READY_LINE) > before,
    fpm.child,
    'php-fpm reload',
    () => readFile(fpm.log, 'utf8'),
  );
}

function countOccurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

// --- nginx -----------------------------------------------------------------

function nginxConfig(dir: string, root: string, port: number, fpmSocket: string, fastcgiRoot: string): string {
  const q = (value: string): string => JSON.stringify(value); // nginx accepts C-style double quotes
  return `daemon off;
master_process on;
worker_processes 1;
pid ${q(`${dir}/nginx.pid`)};
error_log ${q(`${dir}/nginx-error.log`)} warn;
${isRoot() ? 'user root;' : ''}

events {
    worker_connections 256;
}

http {
    access_log off;
    default_type application/octet-stream;
    types {
        text/html html;
        text/plain txt;
        text/css css;
        application/javascript js;
    }
    # Debian's compiled-in temp paths live in /var/lib/nginx; keep ours private.
    client_body_temp_path ${q(`${dir}/client_body`)};
    fastcgi_temp_path ${q(`${dir}/fastcgi`)};
    proxy_temp_path ${q(`${dir}/proxy`)};
    uwsgi_temp_path ${q(`${dir}/uwsgi`)};
    scgi_temp_path ${q(`${dir}/scgi`)};

    server {
        listen 127.0.0.1:${port};
        server_name localhost;
        root ${q(root)};
        index index.php;

        location / {
            try_files $uri /index.php?$query_string;
        }

        location ~ \\.php$ {
            fastcgi_pass ${q(`unix:${fpmSocket}`)};
            # $realpath_root, not $document_root: PHP's realpath cache would
            # otherwise keep resolving current/ to the previous release after
            # the symlink switch.
            fastcgi_param SCRIPT_FILENAME ${fastcgiRoot}$fastcgi_script_name;
            fastcgi_param DOCUMENT_ROOT ${fastcgiRoot};
            fastcgi_param SCRIPT_NAME $fastcgi_script_name;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param DOCUMENT_URI $document_uri;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param REQUEST_SCHEME $scheme;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx/$nginx_version;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REMOTE_PORT $remote_port;
            fastcgi_param SERVER_ADDR $server_addr;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param REDIRECT_STATUS 200;
        }
    }
}
`;
}

async function startNginx(
  bin: string,
  dir: string,
  root: string,
  fpmSocket: string,
  fastcgiRoot: string,
): Promise<{ nginx: ChildProcess; port: number }> {
  const config = path.join(dir, 'nginx.conf');
  const errorLog = path.join(dir, 'nginx-error.log');
  // The OS hands out a free port, but another process may grab it before
  // nginx binds: retry a few times with a fresh port.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    await writeFile(config, nginxConfig(dir, root, port, fpmSocket, fastcgiRoot));
    // -e: without it nginx opens /var/log/nginx/error.log before reading our config.
    const nginx = spawnTracked(bin, ['-p', `${dir}/`, '-c', config, '-e', errorLog]);
    try {
      const ours = (): Promise<boolean> => ownsPidFile(path.join(dir, 'nginx.pid'), nginx);
      // Check the pid file first: if another server grabbed the port, it
      // would answer the HTTP check while our nginx is failing to bind.
      const ready = async (): Promise<boolean> => (await ours()) && (await httpAnswers(port));
      await waitFor(ready, nginx, 'nginx', () => readFile(errorLog, 'utf8').catch(() => ''));
      return { nginx, port };
    } catch (error) {
      lastError = error;
      await stopChild(nginx);
    }
  }
  throw lastError;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** nginx writes its pid file only after binding its listen sockets. */
async function ownsPidFile(pidFile: string, child: ChildProcess): Promise<boolean> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  return Number(text.trim()) === child.pid;
}

async function httpAnswers(port: number): Promise<boolean> {
  try {
    // Any status counts: a 500 from the app still means nginx and fpm are up.
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

// --- process plumbing --------------------------------------------------------

function spawnTracked(bin: string, args: string[]): ChildProcess {
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // Kept for error messages; both daemons are quiet on stderr once running.
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4_000);
  });
  (child as ChildProcessWithStderr).stderrTail = () => stderr;
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  child.once('error', () => liveChildren.delete(child));
  return child;
}

type ChildProcessWithStderr = ChildProcess & { stderrTail?: () => string };

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (hasExited(child) || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // SIGTERM is the fast shutdown for both masters; each waits for its workers.
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Polls `ready` until true; fails early, with the daemon's log, if it exits. */
async function waitFor(
  ready: () => Promise<boolean>,
  child: ChildProcess,
  what: string,
  log: () => Promise<string>,
): Promise<void> {
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let failure: Error | undefined;
  void spawnError.then((error) => (failure = error));
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (failure) throw new Error(`${what} failed to start: ${failure.message}`);
    if (hasExited(child)) {
      const stderr = (child as ChildProcessWithStderr).stderrTail?.() ?? '';
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) during startup:\n${stderr}\n${await log()}`);
    }
    if (await ready()) return;
    await sleep(20);
  }
  throw new Error(`${what} not ready after ${STARTUP_TIMEOUT_MS} ms:\n${await log()}`);
}

function canConnect(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Probe
// ---------------------------------------------------------------------------

export interface ProbeOptions {
  /** Loopback only, e.g. `server.url` or `${server.url}/up`. */
  url: string;
  /** Hard time limit; the probe ends after this even if never stopped. */
  durationMs: number;
  /** Hard request limit. */
  maxRequests: number;
  /** Pause between requests. */
  intervalMs?: number;
  /** Per-request timeout. */
  requestTimeoutMs?: number;
}

export interface ProbeFailure {
  /** ms since the probe started. */
  at: number;
  status?: number;
  error?: string;
}

export interface ReleaseSighting {
  /** ms since the probe started. */
  at: number;
  release: string;
}

export interface ProbeResult {
  total: number;
  failures: ProbeFailure[];
  /** One entry each time the `release: N` line differs from the previous response's. */
  releasesSeen: ReleaseSighting[];
  /** How many responses named each release. */
  releaseCounts: Record<string, number>;
  /** Epoch ms the probe started; `at` values are relative to it. */
  startedAt: number;
  elapsedMs: number;
}

export interface ProbeHandle {
  /** Resolves when the probe ends (limit reached or stop()). */
  result: Promise<ProbeResult>;
  /** Ends the probe after the request in flight; resolves with the result. */
  stop(): Promise<ProbeResult>;
  /** Resolves once a response has named `release` (or rejects when the probe ends first). */
  waitForRelease(release: string): Promise<void>;
}

const RELEASE_LINE = /^release: (\S+)$/m;

/** Parses the example app's `release: N` line. */
export function parseRelease(body: string): string | undefined {
  return RELEASE_LINE.exec(body)?.[1];
}

function assertLoopback(url: string): void {
  const { hostname } = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) {
    throw new Error(`probeSite only talks to loopback, got ${url}`);
  }
}

/** Sequential GETs in the background, bounded by both count and time. */
export function probeSite(options: ProbeOptions): ProbeHandle {
  assertLoopback(options.url);
  const state = new ProbeState();
  const result = runProbe(options, state);
  return {
    result,
    stop() {
      state.stop();
      return result;
    },
    waitForRelease: (release) => state.waitForRelease(release, result),
  };
}

class ProbeState {
  readonly startedAt = Date.now();
  readonly failures: ProbeFailure[] = [];
  readonly releasesSeen: ReleaseSighting[] = [];
  readonly releaseCounts: Record<string, number> = {};
  total = 0;
  stopped = false;
  private wake: (() => void) | undefined;
  private readonly watchers: Array<{ release: string; resolve: () => void }> = [];

  now(): number {
    return Date.now() - this.startedAt;
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** A sleep that stop() cuts short. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  sawRelease(release: string, at: number): void {
    this.releaseCounts[release] = (this.releaseCounts[release] ?? 0) + 1;
    if (this.releasesSeen.at(-1)?.release !== release) this.releasesSeen.push({ at, release });
    for (const watcher of this.watchers.filter((w) => w.release === release)) watcher.resolve();
  }

  waitForRelease(release: string, result: Promise<ProbeResult>): Promise<void> {
    if (this.releaseCounts[release]) return Promise.resolve();
    const seen = new Promise<void>((resolve) => this.watchers.push({ release, resolve }));
    const ended = result.then(() => {
      if (!this.releaseCounts[release]) throw new Error(`probe ended without seeing release ${release}`);
    });
    return Promise.race([seen, ended]);
  }

  snapshot(): ProbeResult {
    return {
      total: this.total,
      failures: this.failures,
      releasesSeen: this.releasesSeen,
      releaseCounts: this.releaseCounts,
      startedAt: this.startedAt,
      elapsedMs: this.now(),
    };
  }
}

async function runProbe(options: ProbeOptions, state: ProbeState): Promise<ProbeResult> {
  const intervalMs = options.intervalMs ?? 10;
  const timeoutMs = options.requestTimeoutMs ?? 5_000;
  while (!state.stopped && state.total < options.maxRequests && state.now() < options.durationMs) {
    await probeOnce(options.url, timeoutMs, state);
    if (intervalMs > 0) await state.pause(Math.min(intervalMs, Math.max(0, options.durationMs - state.now())));
  }
  return state.snapshot();
}

async function probeOnce(url: string, timeoutMs: number, state: ProbeState): Promise<void> {
  const at = state.now();
  state.total++;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
    const body = await response.text();
    if (response.status !== 200) {
      state.failures.push({ at, status: response.status, error: body.slice(0, 200) });
      return;
    }
    const release = parseRelease(body);
    if (release !== undefined) state.sawRelease(release, at);
  } catch (error) {
    state.failures.push({ at, error: describeError(error) });
  }
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // undici hides the socket error (ECONNREFUSED, ECONNRESET, ...) in `cause`.
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

// ---------------------------------------------------------------------------
// Laravel releases
// ---------------------------------------------------------------------------

export type LaravelOverlay = 'v2' | 'broken';

/** Paths that are build output or per-machine; never copied into a release. */
const NOT_COPIED = new Set(['vendor', '.env', 'public/storage']);
const GENERATED = /^(bootstrap\/cache|storage\/framework\/(views|sessions|cache\/data)|storage\/logs)\/(?!\.gitignore$)/;

/**
 * Copies examples/laravel-app to `dest` as a fresh checkout would look (no
 * vendor/, no .env, no caches), then any overlays from examples/laravel-app-extra.
 */
export async function copyLaravelApp(dest: string, options: { overlays?: LaravelOverlay[] } = {}): Promise<void> {
  await mkdir(dest, { recursive: true });
  await cp(LARAVEL_APP_DIR, dest, {
    recursive: true,
    verbatimSymlinks: true,
    filter: (source) => {
      const relative = path.relative(LARAVEL_APP_DIR, source).split(path.sep).join('/');
      return !NOT_COPIED.has(relative) && !GENERATED.test(relative);
    },
  });
  for (const overlay of options.overlays ?? []) {
    await cp(path.join(LARAVEL_EXTRA_DIR, overlay), dest, { recursive: true });
  }
}

/**
 * `composer install` for a release, offline: the app depends on nothing but
 * Debian's php-laravel-framework, so composer only writes vendor/autoload.php.
 */
export async function prepareLaravelRelease(dir: string): Promise<{ stdout: string; stderr: string }> {
  return withOutput(execFileAsync(
    'composer',
    ['install', '--no-dev', '--optimize-autoloader', '--no-interaction', '--no-progress', '--working-dir', dir],
    {
      env: {
        ...process.env,
        // Proves nothing is fetched; composer fails instead of downloading.
        COMPOSER_DISABLE_NETWORK: '1',
        // Test machines run as root; without this composer asks for confirmation.
        COMPOSER_ALLOW_SUPERUSER: '1',
        COMPOSER_NO_AUDIT: '1',
      },
      timeout: 60_000,
    },
  ));
}

/** Writes `<dir>/.env` from the app's .env.example with `overrides` applied. */
export async function writeLaravelEnv(dir: string, overrides: Record<string, string>): Promise<void> {
  const example = await readFile(path.join(LARAVEL_APP_DIR, '.env.example'), 'utf8');
  await writeFile(path.join(dir, '.env'), renderEnv(example, overrides));
}

/** Replaces `KEY=...` lines of an env file, appending keys it lacks. */
export function renderEnv(template: string, overrides: Record<string, string>): string {
  const pending = new Map(Object.entries(overrides));
  const lines = template.split('\n').map((line) => {
    const key = /^([A-Z0-9_]+)=/.exec(line)?.[1];
    if (key === undefined || !pending.has(key)) return line;
    const value = pending.get(key) ?? '';
    pending.delete(key);
    return `${key}=${quoteEnv(value)}`;
  });
  const extra = [...pending].map(([key, value]) => `${key}=${quoteEnv(value)}`);
  return `${[lines.join('\n').replace(/\n+$/, ''), ...extra].join('\n')}\n`;
}

function quoteEnv(value: string): string {
  return /^[\w./:+=-]*$/.test(value) ? value : JSON.stringify(value);
}

/** Runs `php artisan ...` in a release dir; rejects, with its output, on non-zero exit. */
export async function artisan(dir: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return withOutput(execFileAsync('php', ['artisan', ...args, '--no-interaction'], { cwd: dir, timeout: 60_000 }));
}

/**
 * Node's error message carries only stderr, but artisan and composer print
 * their exceptions on stdout: put both in the message.
 */
async function withOutput<T>(run: Promise<T>): Promise<T> {
  try {
    return await run;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    const command = error instanceof Error ? error.message.split('\n')[0] : 'command failed';
    throw new Error(`${command}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`, { cause: error });
  }
}
