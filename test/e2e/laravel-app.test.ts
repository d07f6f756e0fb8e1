/**
 * Proves examples/laravel-app and the web harness work on their own, with no
 * deploy tool: releases are built and switched by hand the way a
 * Deployer-style deploy does it, and nginx + php-fpm serve `current/public`.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  artisan,
  copyLaravelApp,
  parseRelease,
  prepareLaravelRelease,
  probeSite,
  startWebServer,
  writeLaravelEnv,
  type WebServer,
} from '../support/web.js';

const execFileAsync = promisify(execFile);

let deployPath: string;
let dbPath: string;
let server: WebServer;

/** Builds releases/<name> the way a deploy would, up to (not including) the symlink switch. */
async function buildRelease(name: string): Promise<string> {
  const dir = path.join(deployPath, 'releases', name);
  await copyLaravelApp(dir);
  await prepareLaravelRelease(dir);
  await writeLaravelEnv(dir, { DB_DATABASE: dbPath });
  await artisan(dir, ['migrate', '--force']);
  for (const cache of ['config:cache', 'route:cache', 'view:cache']) await artisan(dir, [cache]);
  return dir;
}

/**
 * The switch a deploy makes: `mv -T` is rename(2) over the old link, so at
 * every instant `current` names some release. The link target is relative.
 */
async function switchCurrent(release: string): Promise<void> {
  await execFileAsync('sh', ['-c', `ln -sfn releases/${release} current.tmp && mv -T current.tmp current`], {
    cwd: deployPath,
  });
}

async function get(urlPath: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${server.url}${urlPath}`);
  return { status: response.status, body: await response.text() };
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  deployPath = await mkdtemp(path.join(tmpdir(), 'deployfile-laravel-'));
  await mkdir(path.join(deployPath, 'shared'), { recursive: true });
  // Laravel refuses to create the SQLite file itself.
  dbPath = path.join(deployPath, 'shared', 'database.sqlite');
  await writeFile(dbPath, '');

  await buildRelease('1');
  await switchCurrent('1');
  server = await startWebServer({ root: path.join(deployPath, 'current', 'public') });
}, 60_000);

afterAll(async () => {
  const pids = server ? [server.pids.nginx, server.pids.fpm] : [];
  await server?.stop();
  if (deployPath) await rm(deployPath, { recursive: true, force: true });
  // Leftover daemons would outlive the test run; fail loudly instead.
  expect(pids.filter(isRunning)).toEqual([]);
});

describe('examples/laravel-app behind nginx + php-fpm', () => {
  it('serves release 1 and a healthy /up', async () => {
    const home = await get('/');
    expect(home.status, await server.logs()).toBe(200);
    expect(parseRelease(home.body)).toBe('1');
    expect(home.body).toMatch(/^release: 1$/m);

    const up = await get('/up');
    expect(up).toEqual({ status: 200, body: 'ok\n' });
  });

  it('serves static files straight from public/', async () => {
    const robots = await get('/robots.txt');
    expect(robots.status).toBe(200);
    expect(robots.body).toContain('User-agent');
  });

  it('artisan reports the framework version and the release', async () => {
    const { stdout } = await artisan(path.join(deployPath, 'current'), ['--version']);
    expect(stdout).toMatch(/^Laravel Framework 8\.\d+\.\d+/);
    const release = await artisan(path.join(deployPath, 'current'), ['app:release']);
    expect(release.stdout.trim()).toBe('release: 1');
  });

  it('switches to release 2 atomically with no failed request', async () => {
    await buildRelease('2');

    const probe = probeSite({ url: server.url, durationMs: 10_000, maxRequests: 2_000, intervalMs: 2 });
    await probe.waitForRelease('1');
    await switchCurrent('2');
    await probe.waitForRelease('2');
    // Keep probing a little: an old-release answer after the switch would show here.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const result = await probe.stop();

    expect(result.failures).toEqual([]);
    expect(result.releasesSeen.map((seen) => seen.release)).toEqual(['1', '2']);
    // Answers of both releases, none failed: how many fit around the switch depends on the machine's load.
    expect(result.releaseCounts['1']).toBeGreaterThan(0);
    expect(result.releaseCounts['2']).toBeGreaterThan(0);
    expect(parseRelease((await get('/')).body)).toBe('2');
    expect(await readlink(path.join(deployPath, 'current'))).toBe('releases/2');
  }, 30_000);

  it('keeps answering through a graceful php-fpm reload', async () => {
    // A graceful reload makes requests wait, not fail: on a loaded machine the wait passed 5 s (CI at load 7).
    const probe = probeSite({ url: `${server.url}/`, durationMs: 10_000, maxRequests: 2_000, intervalMs: 2, requestTimeoutMs: 15_000 });
    await probe.waitForRelease('2');
    await server.fpmReload();
    const result = await probe.stop();

    expect(result.failures, await server.logs()).toEqual([]);
    expect(await get('/up')).toEqual({ status: 200, body: 'ok\n' });
  }, 30_000);

  it('bounds the probe by request count and by time', async () => {
    const byCount = await probeSite({ url: `${server.url}/up`, durationMs: 10_000, maxRequests: 5, intervalMs: 0 }).result;
    expect(byCount.total).toBe(5);

    const byTime = await probeSite({ url: `${server.url}/up`, durationMs: 150, maxRequests: 100_000, intervalMs: 20 }).result;
    expect(byTime.total).toBeLessThanOrEqual(20);
    expect(() => probeSite({ url: 'http://example.com/', durationMs: 1, maxRequests: 1 })).toThrow(/loopback/);
  });

  it('ships a v2 migration and one that fails on purpose for deploy tests', async () => {
    // Own dir and database: the served releases must not see these migrations.
    const dir = path.join(deployPath, 'overlays');
    const db = path.join(dir, 'overlays.sqlite');
    await copyLaravelApp(dir, { overlays: ['v2'] });
    await prepareLaravelRelease(dir);
    await writeLaravelEnv(dir, { DB_DATABASE: db });
    await writeFile(db, '');
    await artisan(dir, ['migrate', '--force']);
    expect((await artisan(dir, ['migrate:status'])).stdout).toMatch(/Yes\s+\|\s+2024_01_02_000000_add_note_to_deploys_table/);

    await copyLaravelApp(dir, { overlays: ['broken'] });
    await expect(artisan(dir, ['migrate', '--force'])).rejects.toThrow(/fails on purpose/);
  }, 30_000);
});
