"""Run JupyterLab under a supervisor that owns the course database.

Shared by `autograder lab` (learner view) and `autograder instructor`. The
supervisor:

1. checks the port first and says in one sentence who holds it;
2. resolves the database (DATABASE_URL, or the bundled server, held for as long
   as JupyterLab runs) and exports DATABASE_URL (asyncpg form) to every kernel;
3. starts JupyterLab in its own session, so the terminal's Ctrl-C reaches only
   the supervisor, with the view's config dir first on JUPYTER_CONFIG_PATH and a
   token it chose ($JUPYTER_TOKEN if set, else a fresh random one), handed over in
   the environment (not on the command line, which every local user can read);
4. once JupyterLab listens, prints one line with the URL to open, token included
   (the view's start page, e.g. the learner's START_HERE.ipynb), as the last line;
5. on SIGINT/SIGTERM/SIGHUP — or when JupyterLab exits by itself — stops
   JupyterLab (SIGTERM, wait, then SIGKILL for whatever is left of its process
   group) and releases the database, which stops the bundled server with a
   clean `pg_ctl -m fast` shutdown unless another holder (e.g. pytest) remains.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.embedded import EmbeddedPostgres
from autograder.db.server import embedded
from autograder.errors import SetupError
from autograder.paths import project_root

DEFAULT_PORT = 8888
DEFAULT_IP = "127.0.0.1"
STOP_TIMEOUT_S = 15.0
ENV_CONFIG_PATH = "JUPYTER_CONFIG_PATH"
ENV_TOKEN = "JUPYTER_TOKEN"  # read by jupyter_server's IdentityProvider (token) as its default
ENV_TOKEN_FILE = "JUPYTER_TOKEN_FILE"
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class View:
    name: str  # "learner" or "instructor": the config dir under <repo>/jupyter/
    root_dir: Path  # the folder JupyterLab opens on
    make_target: str  # for messages: `make <target> PORT=...`
    env: dict[str, str] = field(default_factory=dict)  # extra environment for JupyterLab and its kernels
    start_file: str | None = None  # opened first (browser and printed URL), relative to root_dir


def access_token() -> str:
    """The token JupyterLab will require: $JUPYTER_TOKEN / $JUPYTER_TOKEN_FILE if set, else a new random one."""
    if os.environ.get(ENV_TOKEN):
        return os.environ[ENV_TOKEN]
    token_file = os.environ.get(ENV_TOKEN_FILE)
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise SetupError(
                f"Cannot read the token file {token_file} ({exc.strerror}); fix or unset {ENV_TOKEN_FILE}."
            ) from None
        if token:
            return token
    return secrets.token_hex(24)


def shown_host(ip: str) -> str:
    """The host to put in a URL a person opens: localhost for loopback and all-interfaces addresses."""
    if ip in ("127.0.0.1", "localhost", "", "0.0.0.0", "::", "::1"):
        return "localhost"
    return f"[{ip}]" if ":" in ip else ip


def lab_url(view: View, *, ip: str, port: int, token: str) -> str:
    """The URL that opens the view (its start page, if any) with the token, for the terminal."""
    from urllib.parse import quote

    path = f"/lab/tree/{quote(view.start_file)}" if view.start_file else "/lab"
    return f"http://{shown_host(ip)}:{port}{path}?token={quote(token)}"


def listening(ip: str, port: int) -> bool:
    """Whether something accepts connections on ip:port (all-interfaces addresses probed on loopback)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}.get(ip, ip)
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def config_dir(view: str) -> Path:
    return project_root() / "jupyter" / view


def add_server_arguments(parser, *, default_port: int = DEFAULT_PORT) -> None:
    parser.add_argument(
        "--port",
        type=int,
        default=default_port,
        help=f"port for JupyterLab (default: {default_port}); a busy port is an error, never silently changed",
    )
    parser.add_argument(
        "--ip",
        default=DEFAULT_IP,
        help=f"address to listen on (default: {DEFAULT_IP}; use 0.0.0.0 in a container)",
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open a web browser")


# --------------------------------------------------------------------------- port
def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def port_holder(port: int) -> str | None:
    """'pid N (command)' of the process listening on `port`, if /proc tells us."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    args = (proc / "cmdline").read_bytes().split(b"\0")
                    command = " ".join(a.decode(errors="replace") for a in args if a)[:80]
                    return f"pid {proc.name} ({command})"
        except OSError:
            continue
    return None


def check_port(ip: str, port: int, make_target: str) -> None:
    """Raise SetupError with one sentence if JupyterLab could not listen on ip:port."""
    if not 0 < port < 65536:
        raise SetupError(
            f"Port {port} is not a valid TCP port; pick one between 1024 and 65535, "
            f"e.g. `make {make_target} PORT=8899`."
        )
    host = "127.0.0.1" if ip in ("localhost", "") else ip
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Tornado sets SO_REUSEADDR too: a port in TIME_WAIT after a restart is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                holder = port_holder(port)
                by = f" by {holder}" if holder else " by another program"
                raise SetupError(
                    f"Port {port} is already in use{by}; stop that program or start on another port: "
                    f"`make {make_target} PORT=8899` "
                    f"(or `autograder {'lab' if make_target == 'lab' else make_target} --port 8899`)."
                ) from None
            if exc.errno == errno.EACCES:
                raise SetupError(
                    f"Port {port} needs administrator rights; use a port above 1023: `make {make_target} PORT=8899`."
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise SetupError(
                    f"Address {ip} is not an address of this machine; use --ip 127.0.0.1 (or 0.0.0.0 in a container)."
                ) from None
            raise SetupError(
                f"Cannot listen on {ip}:{port} ({exc.strerror}); try another port: `make {make_target} PORT=8899`."
            ) from None


# --------------------------------------------------------------------------- database
class HeldDatabase:
    """The course database for the lifetime of a JupyterLab: acquire, then release once."""

    def __init__(self) -> None:
        self.url: URL | None = None
        self._server: EmbeddedPostgres | None = None
        self._holder_pid = os.getpid()

    def acquire(self) -> URL:
        configured = urls.configured_url()
        if configured is not None:
            admin.ping(configured)
            self.url = configured
            return configured
        server = embedded()
        info = server.acquire(pid=self._holder_pid)
        self._server = server
        self.url = make_url(info.url("postgres"))
        return self.url

    def describe(self) -> str:
        if self._server is None:
            return f"DATABASE_URL {urls.redacted(self.url)}" if self.url is not None else "no database"
        return f"bundled PostgreSQL (data dir {self._server.data_dir})"

    def release(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if server.release(pid=self._holder_pid):
            note("bundled PostgreSQL stopped (clean shutdown).")
        else:
            others = server.live_holders()
            note(f"bundled PostgreSQL left running for {len(others)} other holder(s): pids {others}.")


def note(message: str) -> None:
    print(f"[autograder] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- jupyter
def jupyter_command(view: View, *, port: int, ip: str, no_browser: bool) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={view.root_dir}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.ip={ip}",
    ]
    if no_browser:
        cmd.append("--ServerApp.open_browser=False")
    elif view.start_file:
        cmd.append(f"--ServerApp.file_to_run={view.root_dir / view.start_file}")  # the browser opens it
    if os.name == "posix" and os.geteuid() == 0:
        cmd.append("--ServerApp.allow_root=True")  # containers and CI run as root
    return cmd


def jupyter_env(view: View, database_url: URL, token: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(view.env)
    env[urls.ENV_URL] = urls.render(database_url)
    # nbgrader runs some tools by name (`alembic` when formgrader first creates the gradebook): the
    # course's own interpreter's scripts come first, whether or not the venv was activated.
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([scripts, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != scripts)])
    if token is not None:
        env[ENV_TOKEN] = token
        env.pop(ENV_TOKEN_FILE, None)
    existing = env.get(ENV_CONFIG_PATH, "")
    ours = str(config_dir(view.name))
    # First entry wins over the venv's sys-prefix config (which enables every
    # nbgrader extension); the user's own JUPYTER_CONFIG_PATH entries come after.
    env[ENV_CONFIG_PATH] = (
        os.pathsep.join(p for p in [ours, *existing.split(os.pathsep)] if p and p != ours) if existing else ours
    )
    return env


def _stop_jupyter(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)  # jupyter_server shuts its kernels down on SIGTERM
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            note(f"JupyterLab did not stop within {STOP_TIMEOUT_S:.0f} s; killing it.")
    # Whatever is left of its session (kernels, terminals) goes too.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def run(view: View, *, port: int, ip: str, no_browser: bool) -> int:
    check_port(ip, port, view.make_target)
    if not view.root_dir.is_dir():
        try:
            view.root_dir.mkdir(parents=True)
        except OSError as exc:
            raise SetupError(
                f"The folder {view.root_dir} does not exist and cannot be created ({exc.strerror})."
            ) from None

    received: list[int] = []

    def on_signal(signum, frame):  # only record it: the loop below does the work
        received.append(signum)

    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in watched}
    db = HeldDatabase()
    proc: subprocess.Popen | None = None
    try:
        token = access_token()
        url = db.acquire()
        if received:
            return 0
        proc = subprocess.Popen(
            jupyter_command(view, port=port, ip=ip, no_browser=no_browser),
            env=jupyter_env(view, url, token),
            cwd=view.root_dir,
            start_new_session=True,  # the terminal's Ctrl-C reaches only this supervisor
        )
        note(f"starting {view.name} JupyterLab (pid {proc.pid}) on folder {view.root_dir}, database: {db.describe()}.")
        started, announced = time.monotonic(), False
        while not received:
            try:
                code = proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                # Printed once JupyterLab listens, so it is the last line, not buried under Jupyter's log.
                if not announced and (listening(ip, port) or time.monotonic() - started > READY_TIMEOUT_S):
                    announced = True
                    note(
                        f"{view.name} JupyterLab is ready; open {lab_url(view, ip=ip, port=port, token=token)} "
                        "(Ctrl-C stops JupyterLab and the database)."
                    )
                continue
            note(f"JupyterLab exited by itself (exit code {code}).")
            return code
        note(f"{signal.Signals(received[0]).name} received: stopping JupyterLab.")
        return 0
    finally:
        if proc is not None:
            _stop_jupyter(proc)
        db.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
