"""A hand-written Fabric 2 deploy: the peer deployfile is measured against (bench/fabric.ts).

The same remote work as the benchmark's plain deploy and bench/floor.ts's script (lock, numbered
release dir, the app's tar extracted into it, shared links, writable dir, atomic switch, keep 3
releases, unlock), written the way a Fabric user writes a Capistrano-like deploy by hand: one
``c.run()`` per step, the archive made once locally and sent with ``c.put`` (SFTP), one thread per
host (each host has its own deploy path here, so one ``ThreadingGroup.run`` cannot do it).

Usage: python3 bench/fabfile.py <config.json>, where the JSON is
  {"app": "<app dir>", "hosts": [{"hostname", "port", "user", "identityFile", "knownHostsFile",
   "deployPath"}, ...]}
Exit status 0 when every host deployed, 1 otherwise (one line per failed host on stderr).
"""

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from shlex import quote

import paramiko
from fabric import Config, Connection

KEEP_RELEASES = 3
LOCK = ".dep/fab-lock"


def connect(host):
    """A Connection with strict host key checking against the bench's known_hosts and its key only."""
    # No ~/.ssh/config, no agent, no other keys: the same identity as dep and the floor.
    config = Config(overrides={"load_ssh_configs": False})
    c = Connection(
        host["hostname"],
        user=host["user"],
        port=host["port"],
        config=config,
        connect_kwargs={
            "key_filename": host["identityFile"],
            "look_for_keys": False,
            "allow_agent": False,
        },
    )
    # Fabric 2 accepts unknown host keys (AutoAddPolicy) by default: refuse them instead.
    c.client.load_host_keys(host["knownHostsFile"])
    c.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return c


def run(c, command):
    # hide: the output is not shown; in_stream=False: a script, nothing to forward from local stdin.
    return c.run(command, hide=True, in_stream=False)


def deploy(host, archive):
    d = host["deployPath"]
    q = quote(d)
    c = connect(host)
    try:
        # deploy:setup + deploy:lock (mkdir is atomic: a second deploy fails here).
        run(c, f"mkdir -p {q}/releases {q}/shared/logs {q}/shared/config {q}/.dep && mkdir {q}/{LOCK}")
        try:
            # deploy:release: the next number after the highest release, created in the same command.
            release = run(
                c,
                f"last=$(ls {q}/releases | sort -n | tail -n 1)"
                f" && n=$((${{last:-0}} + 1)) && mkdir {q}/releases/$n && echo $n",
            ).stdout.strip()
            if not release.isdigit():
                raise RuntimeError(f"unexpected release number {release!r}")
            r = f"{q}/releases/{release}"
            # deploy:update_code: upload the archive, extract it into the release.
            remote_archive = f"{d}/.dep/release.tar"
            c.put(archive, remote=remote_archive)
            run(c, f"tar -x -f {quote(remote_archive)} -C {r} && rm -f {quote(remote_archive)}")
            # deploy:shared
            run(
                c,
                f"rm -rf {r}/logs && ln -s {q}/shared/logs {r}/logs"
                f" && mkdir -p {r}/config"
                f" && {{ [ -f {q}/shared/config/app.env ] || : > {q}/shared/config/app.env; }}"
                f" && ln -sfn {q}/shared/config/app.env {r}/config/app.env",
            )
            # deploy:writable
            run(c, f"mkdir -p {r}/cache && chmod -R a+w {r}/cache")
            # deploy:symlink: atomic switch (rename over `current`).
            run(c, f"ln -sfn releases/{release} {q}/release && mv -T {q}/release {q}/current")
            # deploy:cleanup: keep the newest releases.
            run(
                c,
                f"ls {q}/releases | sort -n | head -n -{KEEP_RELEASES}"
                f" | while read -r old; do rm -rf {q}/releases/\"$old\"; done",
            )
        finally:
            # deploy:unlock, also when a step failed.
            run(c, f"rmdir {q}/{LOCK}")
    finally:
        c.close()


def main():
    with open(sys.argv[1]) as f:
        conf = json.load(f)
    hosts = conf["hosts"]
    with tempfile.TemporaryDirectory(prefix="fabfile-") as tmp:
        archive = os.path.join(tmp, "release.tar")
        subprocess.run(["tar", "-c", "-f", archive, "-C", conf["app"], "."], check=True)
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            futures = [(h, pool.submit(deploy, h, archive)) for h in hosts]
            failed = 0
            for h, future in futures:
                try:
                    future.result()
                except Exception as e:  # noqa: BLE001 - one line per failed host
                    failed += 1
                    print(f"{h['hostname']}:{h['port']} {h['deployPath']}: {type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
