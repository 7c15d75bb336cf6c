"""`autograder hub`: start a workshop's JupyterHub on this machine and supervise it.

`run_hub(settings)`:

1. refuses, with one sentence, what cannot work: not root (accounts are made per participant and
   servers run as them), the port taken, the participant list missing or wrong;
2. prepares the hub folder (`<state dir>/hub`: `secrets/` 0700) and the nbgrader exchange
   (world-writable with the sticky bit, as nbgrader expects);
3. starts (holds) the hub's PostgreSQL, or checks the server in DATABASE_URL;
4. locks the course's sensitive paths away from learners (`autograder.hub.lockdown`), printing
   what it changed;
5. runs JupyterHub (`jupyter/hub/jupyterhub_config.py`) in its own session, prints the address once
   it answers, and on Ctrl-C / SIGTERM stops it (JupyterHub stops the learners' servers and the
   proxy) and then the hub's PostgreSQL. Learners' work (their homes) and databases are kept.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from autograder.commands import _jupyter
from autograder.db import admin
from autograder.db import url as urls
from autograder.db.embedded import EmbeddedPostgres
from autograder.errors import SetupError
from autograder.hub import interpreter, lockdown, participants, provision, watchdog
from autograder.hub.config import admin_url
from autograder.hub.settings import ENV_SETTINGS, HubSettings
from autograder.paths import project_root

STOP_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 120.0


def config_file() -> Path:
    return project_root() / "jupyter" / "hub" / "jupyterhub_config.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check(settings: HubSettings) -> list[participants.Participant]:
    """Everything that would stop the hub, as one SetupError sentence each; the participants when fine."""
    if os.geteuid() != 0:
        raise SetupError(
            "`make hub` must run as root: it makes an account on this machine for each participant and runs "
            "each learner's server as that account; run it with sudo (or as root in the workshop's machine)."
        )
    _jupyter.check_port(settings.ip, settings.port, "hub")
    return participants.load(settings.participants_file)


def prepare_folders(settings: HubSettings) -> None:
    settings.hub_dir.mkdir(parents=True, exist_ok=True)
    settings.secrets_dir.mkdir(mode=0o700, exist_ok=True)
    os.chmod(settings.secrets_dir, 0o700)
    exchange = settings.exchange
    exchange.mkdir(parents=True, exist_ok=True)
    os.chmod(exchange, 0o1777)  # everyone writes, nobody removes another's files (nbgrader's layout)
    blocked = interpreter.blocked_by(exchange)
    if blocked is not None:
        raise SetupError(
            f"The nbgrader exchange {exchange} cannot be reached by the learners' accounts ({blocked} is "
            "private); choose another folder with --exchange."
        )


def start_database(settings: HubSettings, participants: int) -> tuple[EmbeddedPostgres | None, list[str]]:
    """The workshop's PostgreSQL, held for the hub's lifetime (None: the server in DATABASE_URL),
    and notes on protections that are off on it."""
    cluster = None
    if urls.configured_url() is None:
        connections = settings.db_max_connections or provision.max_connections_for(
            participants, settings.connection_limit
        )
        cluster = provision.hub_cluster(settings.hub_dir, connections)
        reload_hba = cluster.write_hba()  # a cluster already running gets the rules too
        cluster.acquire()
        if reload_hba:
            admin.run_sync(lambda: provision.reload_config(admin_url(settings)))
    secret = provision.load_secret(settings.secrets_dir / "database.secret")
    provisioner = provision.Provisioner(admin_url(settings), secret)
    notes = admin.run_sync(provisioner.prepare_server)
    return cluster, notes


def start_quota(settings: HubSettings) -> watchdog.QuotaWatchdog | None:
    """The learners' database quota (autograder.hub.watchdog), checked on a thread of this supervisor."""
    if settings.db_quota_mb <= 0:
        return None
    quota = watchdog.QuotaWatchdog(
        admin_url(settings),
        settings.db_quota_mb * watchdog.MiB,
        poll_seconds=settings.db_quota_poll_seconds,
        say=_jupyter.note,
    )
    quota.start()
    _jupyter.note(
        f"learners' database quota: {settings.db_quota_mb} MiB each, checked every "
        f"{settings.db_quota_poll_seconds:g} s (--db-quota-mb 0: none)."
    )
    return quota


def hub_env(settings: HubSettings) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_SETTINGS] = settings.to_json()
    env["PATH"] = f"{settings.venv_bin}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def hub_answers(settings: HubSettings) -> bool:
    """Whether the proxy listens and the hub answers (its API's root, on its own port: asking through
    the proxy before the hub has added its route would log an error)."""
    if not _jupyter.listening(settings.ip, settings.port):
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.hub_port}/hub/api/", timeout=2) as reply:
            return bool(reply.status == 200)
    except (OSError, ValueError):
        return False


def hub_url(settings: HubSettings) -> str:
    return f"http://{_jupyter.shown_host(settings.ip)}:{settings.port}/"


def start_hub(settings: HubSettings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(settings.venv_bin / "jupyterhub"), "-f", str(config_file())],
        env=hub_env(settings),
        cwd=settings.secrets_dir,
        start_new_session=True,  # the terminal's Ctrl-C reaches only this supervisor
    )


def stop_hub(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)  # JupyterHub stops the learners' servers and the proxy
            proc.wait(timeout=STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            _jupyter.note(f"JupyterHub did not stop within {STOP_TIMEOUT_S:.0f} s; killing it.")
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of its session (the proxy, a service)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run_hub(settings: HubSettings) -> int:
    listed = check(settings)
    settings = replace(
        settings,
        hub_port=free_port(),
        proxy_api_port=free_port(),
        check_port=free_port(),
        learner_python=interpreter.learner_python(settings.venv_bin),
    )
    prepare_folders(settings)
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)

    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in watched}
    cluster = None
    proc = None
    quota = None
    try:
        cluster, notes = start_database(settings, len(listed))
        quota = start_quota(settings)
        for line in lockdown.lock_down(urls.state_dir(), settings.hub_dir):
            _jupyter.note(f"course access: {line}")
        for line in notes:
            _jupyter.note(f"note: {line}")
        if received:
            return 0
        proc = start_hub(settings)
        instructors = [p.name for p in listed if p.instructor]
        _jupyter.note(
            f"starting JupyterHub (pid {proc.pid}) for {len(listed)} participants "
            f"({len(instructors)} instructor(s): {', '.join(instructors) or 'none'}); "
            f"database: {'DATABASE_URL' if cluster is None else 'the hub PostgreSQL in ' + str(cluster.data_dir)}; "
            f"exchange: {settings.exchange}."
        )
        started, announced = time.monotonic(), False
        while not received:
            try:
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if not announced and (hub_answers(settings) or time.monotonic() - started > READY_TIMEOUT_S):
                    announced = True
                    _jupyter.note(
                        f"workshop hub is ready; open {hub_url(settings)} (participants choose their password at "
                        "their first sign-in; Ctrl-C stops the hub, every learner's server and the database)."
                    )
                continue
            _jupyter.note(f"JupyterHub exited by itself (exit code {code}).")
            return code or 1
        _jupyter.note(f"{signal.Signals(received[0]).name} received: stopping JupyterHub.")
        return 0
    finally:
        if proc is not None:
            stop_hub(proc)
        if quota is not None:
            quota.stop()
        if cluster is not None and cluster.release():
            _jupyter.note("hub PostgreSQL stopped (clean shutdown); learners' databases are kept.")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stderr.flush()
