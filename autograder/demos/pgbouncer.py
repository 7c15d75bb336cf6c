"""A throwaway PgBouncer in front of the course database, for lesson 07.

    with pgbouncer_in_front(db.url, pool_mode="transaction") as bouncer:
        if bouncer.url is None:
            print("skipped:", bouncer.reason)
        else:
            engine = create_async_engine(bouncer.url)

PgBouncer is optional: learners rarely have it. When the `pgbouncer` binary is
missing (or cannot start) the context manager yields a `Bouncer` whose `url` is
None and whose `reason` says why, so a demonstration can skip with one printed
line. Nothing graded depends on it.

It listens on 127.0.0.1 at a free port, logs into the real server as the lesson
URL's user (`auth_type = any`), and is stopped (its own process, by pid) when
the block ends. As root it runs as the bundled server's unprivileged user,
since PgBouncer refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from autograder.db.admin import asyncpg_params

__all__ = ["Bouncer", "pgbouncer_in_front"]


@dataclass
class Bouncer:
    url: str | None  # asyncpg URL through PgBouncer, or None when it could not run
    reason: str = ""
    version: str = ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("pgserver", "postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


@contextmanager
def pgbouncer_in_front(
    db_url: str, *, pool_mode: str = "transaction", pool_size: int = 2, start_timeout: float = 5.0
) -> Iterator[Bouncer]:
    binary = shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer") if os.path.exists(p)), None
    )
    if binary is None:
        yield Bouncer(None, "pgbouncer is not installed here (e.g. `apt-get install pgbouncer`)")
        return
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    real = make_url(db_url)
    params = asyncpg_params(real)
    target = " ".join(f"{k}={params[k]}" for k in ("host", "port", "user", "password") if k in params)
    port = _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    config = workdir / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = {target}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = any\n"
        f"pool_mode = {pool_mode}\n"
        f"default_pool_size = {pool_size}\n"
        "max_client_conn = 100\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    user = _run_as()
    os.chmod(workdir, 0o755)
    os.chmod(config, 0o644)
    command = [binary] + (["-u", user] if user else []) + [str(config)]
    log = open(workdir / "stderr.log", "w")  # noqa: SIM115 - pgbouncer writes to it until the teardown below
    try:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    except OSError as exc:
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
        yield Bouncer(None, f"pgbouncer could not start ({exc})", version)
        return
    try:
        deadline = time.monotonic() + start_timeout
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                ready = True
                break
            except OSError:
                time.sleep(0.05)
        if not ready:
            text = (workdir / "stderr.log").read_text().strip().splitlines()
            yield Bouncer(None, f"pgbouncer did not start: {text[-1] if text else 'no output'}", version)
            return
        url = URL.create(
            real.drivername,
            username=params.get("user"),
            password=params.get("password"),
            host="127.0.0.1",
            port=port,
            database=real.database,
        )
        yield Bouncer(url.render_as_string(hide_password=False), "", version)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
