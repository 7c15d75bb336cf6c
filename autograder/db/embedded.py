"""The bundled PostgreSQL: binaries from the `pgserver` wheel, lifetime owned here.

pgserver ships the server binaries and a convenience handle, but its handle stops
the server when the owning Python process exits (kernels started later then find
no socket) and does not recover a stale `postmaster.pid`. So we use its binaries
and its root-user helpers, and drive `initdb`/`pg_ctl` ourselves:

* the server listens on a unix socket only (no TCP port, so no port clashes);
* several processes may use it at once (JupyterLab, pytest, a CLI): each one that
  needs the server registers as a *holder*; the last holder to leave stops it;
* a `postmaster.pid` whose process is gone (a killed run) is removed, and the
  server started cleanly;
* failures are turned into one sentence (`SetupError`), with the log kept.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import pwd
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from autograder.errors import SetupError

# The server runs as this OS user when we are root (postgres refuses to run as root).
SERVER_OS_USER = "pgserver"
SUPERUSER = "postgres"


def _bin_dir() -> Path:
    try:
        import warnings

        with warnings.catch_warnings():
            # pgserver computes an XDG runtime dir at import time and warns when the
            # variable is unset (CI, root shells); we never use that directory.
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise SetupError(
            "The bundled PostgreSQL (the 'pgserver' package) is not installed; run `make lab` or "
            "`pip install -e .`, or set DATABASE_URL to a server of your own."
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _pgserver_utils():
    """pgserver.utils, imported without pgserver's XDG_RUNTIME_DIR warning (see _bin_dir)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import utils
    return utils


def _running_as_root() -> bool:
    return platform.system() != "Windows" and os.geteuid() == 0


def _let_server_reach(path: Path) -> None:
    """Let the server's OS user pass through every folder above `path`, as pgserver's
    `ensure_prefix_permissions` does (g+rx,o+rx), but only where it cannot already (by owner or
    group): a folder closed to others but open to the server's group stays closed."""
    import stat

    entry = pwd.getpwnam(SERVER_OS_USER)
    for prefix in path.parents:
        st = prefix.stat()
        if st.st_uid == entry.pw_uid:
            reachable = st.st_mode & stat.S_IXUSR
        elif st.st_gid == entry.pw_gid:
            reachable = st.st_mode & stat.S_IXGRP
        else:
            reachable = st.st_mode & stat.S_IXOTH
        if not reachable:
            prefix.chmod(st.st_mode | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


@dataclass(frozen=True)
class ServerInfo:
    """Where a running embedded server can be reached."""

    pid: int
    socket_dir: Path
    port: int
    password: str | None = None

    def url(self, database: str = "postgres") -> str:
        # asyncpg reaches a unix socket through the `host` query parameter.
        secret = f":{quote(self.password, safe='')}" if self.password else ""
        return f"postgresql+asyncpg://{SUPERUSER}{secret}@/{database}?host={self.socket_dir}"


def _read_pidfile(data_dir: Path) -> list[str] | None:
    try:
        return (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None


def _pid_is_our_postmaster(pid: int, data_dir: Path) -> bool:
    """True when `pid` is alive and is a postgres serving `data_dir` (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return pid_alive(pid) if not Path("/proc").exists() else False
    args = [a.decode(errors="replace") for a in cmdline if a]
    if not args or not Path(args[0]).name.startswith("postgres"):
        return False
    resolved = str(data_dir.resolve())
    return any(a == resolved or a == str(data_dir) for a in args)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Known postgres/pg_ctl failures, mapped to what the person should do. Order matters.
_FAILURES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"Permission denied|Read-only file system|could not create lock file", re.I),
        (
            "The database folder {data_dir} is not writable by the server ({detail}); make it writable "
            "(e.g. `chmod -R u+w {data_dir}`) or point COURSE_DATA_DIR at a writable folder."
        ),
    ),
    (
        re.compile(r"No space left on device", re.I),
        "The disk holding {data_dir} is full ({detail}); free some space and run the command again.",
    ),
    (
        re.compile(r"database files are incompatible with server|was initialized by PostgreSQL version", re.I),
        (
            "The database folder {data_dir} was made by another PostgreSQL version ({detail}); move it "
            "aside (its lesson databases are rebuilt on first use) and run the command again."
        ),
    ),
    (
        re.compile(r"lock file .* already exists|Is another postmaster", re.I),
        "Another PostgreSQL is using {data_dir} ({detail}); stop it (`make stop`) and run the command again.",
    ),
]


def _explain_failure(data_dir: Path, text: str) -> str:
    for pattern, template in _FAILURES:
        match = pattern.search(text)
        if match:
            line = next((ln.strip() for ln in text.splitlines() if pattern.search(ln)), match.group(0))
            return template.format(data_dir=data_dir, detail=line)
    tail = " | ".join(ln.strip() for ln in text.strip().splitlines()[-3:]) or "no output"
    return (
        f"The bundled PostgreSQL in {data_dir} failed to start ({tail}); see {data_dir / 'log'} "
        "for the full server log."
    )


class EmbeddedPostgres:
    """One embedded server per data folder, shared by every process that needs it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        password_file: Path | None = None,
        socket_dir: Path | None = None,
        settings: dict[str, str] | None = None,
        hba: str | None = None,
        ident: str | None = None,
    ):
        """`password_file`: use password (SCRAM) authentication for every role, the
        superuser's password kept in that file (created on first start, mode 0600);
        without it, local connections are trusted (a learner's own machine).
        `socket_dir`: where the unix socket lives (default: the data folder).
        `hba`: the whole pg_hba.conf to use instead of initdb's (the grading cluster's
        rules of who may connect to which database); None keeps initdb's. `ident`: the whole
        pg_ident.conf beside it (user name maps for `peer` lines of `hba`)."""
        self.data_dir = Path(data_dir).absolute()
        self.state_dir = self.data_dir.parent
        # Each cluster has its own holders and lock, so two clusters can share a state folder.
        suffix = "" if self.data_dir.name == "pgdata" else f"-{self.data_dir.name}"
        self.holders_dir = self.state_dir / f"holders{suffix}"
        self.lock_file = self.state_dir / f"server{suffix}.lock"
        self.log_file = self.data_dir / "log"
        self.password_file = password_file
        self.fixed_socket_dir = socket_dir
        self.settings = dict(settings or {})  # extra `-c name=value` server settings
        self.hba = hba
        self.ident = ident

    def _password(self) -> str | None:
        if self.password_file is None:
            return None
        if not self.password_file.exists():
            import secrets

            self.password_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(24))
        return self.password_file.read_text().strip()

    # ----------------------------------------------------------------- helpers
    @contextlib.contextmanager
    def _locked(self):
        """Serialise start/stop between processes (lab, pytest, CLI)."""
        self._ensure_state_dir()
        lock_path = self.lock_file
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ensure_state_dir(self) -> None:
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SetupError(
                f"Cannot create the course state folder {self.state_dir} ({exc.strerror}); make its parent "
                "writable or point COURSE_DATA_DIR at a writable folder."
            ) from None
        if not os.access(self.state_dir, os.W_OK):
            raise SetupError(
                f"The course state folder {self.state_dir} is not writable; make it writable "
                f"(e.g. `chmod -R u+w {self.state_dir}`) or point COURSE_DATA_DIR at a writable folder."
            )

    def _run(self, exe: str, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        return self._run_until(exe, args, timeout=timeout)

    def _run_until(self, exe: str, args: list[str], done=None, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a server program; with `done`, return as soon as `done()` is true.

        `pg_ctl -w` looks at the server only every 100 ms, so waiting for it costs up to
        0.1 s per start and per stop; we look every 5 ms and leave pg_ctl to finish (and be
        reaped) on its own. Its exit status and output still decide whenever it ends first."""
        cmd = [str(_bin_dir() / exe), *args]
        kwargs: dict = {}
        if _running_as_root():
            # Its own group too, not root's: folders it may pass through by group (a workshop hub's
            # locked course folders, autograder/hub/lockdown.py) stay closed to everyone else.
            entry = pwd.getpwnam(SERVER_OS_USER)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/", **kwargs)
        deadline = time.monotonic() + timeout
        while done is not None and proc.poll() is None and time.monotonic() < deadline:
            if done():
                threading.Thread(target=proc.communicate, name=f"{exe}-reaper", daemon=True).start()
                return subprocess.CompletedProcess(cmd, 0, "", "")
            time.sleep(0.005)
        try:
            out, err = proc.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, out, err) from None
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)

    def _prepare_root(self) -> None:
        """As root, postgres runs as an unprivileged user who must own the data folder."""
        if not _running_as_root():
            return
        import stat

        utils = _pgserver_utils()
        ensure_folder_permissions = utils.ensure_folder_permissions
        ensure_prefix_permissions = utils.ensure_prefix_permissions
        ensure_user_exists = utils.ensure_user_exists

        ensure_user_exists(SERVER_OS_USER)
        bin_dir = _bin_dir()
        ensure_prefix_permissions(bin_dir)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", read)
        _let_server_reach(self.data_dir)
        entry = pwd.getpwnam(SERVER_OS_USER)
        st = self.data_dir.stat()
        if (st.st_uid, st.st_gid) != (entry.pw_uid, entry.pw_gid):
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)

    def _socket_dir(self) -> Path:
        if self.fixed_socket_dir is not None:
            self.fixed_socket_dir.mkdir(parents=True, exist_ok=True)
            self.fixed_socket_dir.chmod(0o755)  # others may connect; only the server writes here
            return self.fixed_socket_dir
        runtime = self.state_dir / "run"
        return Path(_pgserver_utils().find_suitable_socket_dir(self.data_dir, runtime))

    # ----------------------------------------------------------------- status
    def status(self) -> ServerInfo | None:
        """The running server, or None. Never starts anything."""
        lines = _read_pidfile(self.data_dir)
        if not lines or len(lines) < 8:
            return None
        try:
            pid = int(lines[0])
        except ValueError:
            return None
        if not _pid_is_our_postmaster(pid, self.data_dir):
            return None
        if lines[7].strip() != "ready":
            return None
        return ServerInfo(
            pid=pid, socket_dir=Path(lines[4].strip()), port=int(lines[3] or 5432), password=self._password()
        )

    # ----------------------------------------------------------------- start
    def start(self) -> ServerInfo:
        """Start the server if it is not running; return where it is. Idempotent."""
        with self._locked():
            info = self.status()
            if info is not None:
                return info
            self._init_if_needed()
            self.write_hba()
            self._remove_stale_pidfile()
            return self._pg_ctl_start()

    def write_hba(self) -> bool:
        """Put `hba` (and `ident`) in place as pg_hba.conf (and pg_ident.conf), readable by the server
        only. True when a file changed: a server already running then needs `SELECT pg_reload_conf()`."""
        if self.hba is None or not (self.data_dir / "PG_VERSION").exists():
            return False
        changed = False
        for name, text in (("pg_hba.conf", self.hba), ("pg_ident.conf", self.ident)):
            if text is not None:
                changed |= self._write_server_file(name, text)
        return changed

    def _write_server_file(self, name: str, text: str) -> bool:
        path = self.data_dir / name
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                return False
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        if _running_as_root():
            entry = pwd.getpwnam(SERVER_OS_USER)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
        os.replace(tmp, path)  # whole: a reload never reads half a file
        return True

    def _init_if_needed(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            self._prepare_root()
            return
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SetupError(
                f"Cannot create the database folder {self.data_dir} ({exc.strerror}); make its parent "
                "writable or point COURSE_DATA_DIR at a writable folder."
            ) from None
        self._prepare_root()
        if any(self.data_dir.iterdir()):
            raise SetupError(
                f"The database folder {self.data_dir} is not empty but holds no PostgreSQL cluster; "
                "move it aside and run the command again."
            )
        args = ["-D", str(self.data_dir), "--encoding=UTF8", "--locale=C", "-U", SUPERUSER]
        password = self._password()
        pwfile = None
        if password is None:
            args.append("--auth=trust")
        else:
            # initdb reads the superuser's password from a file the server user can read.
            pwfile = self.data_dir.parent / f".{self.data_dir.name}.initpw"
            pwfile.write_text(password + "\n")
            if _running_as_root():
                entry = pwd.getpwnam(SERVER_OS_USER)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            os.chmod(pwfile, 0o600)
            args += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        try:
            result = self._run("initdb", args, timeout=120)
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise SetupError(_explain_failure(self.data_dir, result.stderr + result.stdout))

    def _remove_stale_pidfile(self) -> None:
        lines = _read_pidfile(self.data_dir)
        if lines is None:
            return
        try:
            pid = int(lines[0])
        except (ValueError, IndexError):
            pid = None
        if pid is not None and _pid_is_our_postmaster(pid, self.data_dir):
            # Alive but not 'ready' (starting or stopping): let pg_ctl report it.
            return
        # The server that wrote this file is gone (killed run, reboot): postgres itself
        # would refuse to start if the pid has been reused by another process.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        # The socket lock (`.s.PGSQL.<port>.lock` in the socket dir) names the same
        # pid; postgres refuses to start while that pid exists, which it still does
        # as an unreaped zombie or when it was reused — so remove it as well.
        if pid is not None and len(lines) >= 5 and lines[4].strip():
            port = (lines[3].strip() if len(lines) >= 4 else "") or "5432"
            lock = Path(lines[4].strip()) / f".s.PGSQL.{port}.lock"
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(lock.read_text().splitlines()[0]) == pid:
                    lock.unlink()
        self.notice(f"Removed a stale postmaster.pid left by a server that is no longer running (pid {pid}).")

    def _pg_ctl_start(self) -> ServerInfo:
        socket_dir = self._socket_dir()
        if _running_as_root():
            entry = pwd.getpwnam(SERVER_OS_USER)
            if socket_dir != self.data_dir:
                os.chown(socket_dir, entry.pw_uid, entry.pw_gid)
                if self.fixed_socket_dir is not None:
                    _pgserver_utils().ensure_prefix_permissions(socket_dir)
        options = f"-h '' -k {socket_dir} -c max_connections=200"
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        # pg_ctl writes the server log into the data folder; if that folder cannot be
        # written, pg_ctl fails before the server logs anything, so read both.
        result = self._run_until(
            "pg_ctl",
            ["-D", str(self.data_dir), "-w", "-t", "60", "-o", options, "-l", str(self.log_file), "start"],
            done=lambda: self.status() is not None,
            timeout=90,
        )
        if result.returncode != 0:
            log_tail = ""
            with contextlib.suppress(OSError):
                log_tail = "\n".join(self.log_file.read_text(errors="replace").splitlines()[-20:])
            raise SetupError(_explain_failure(self.data_dir, result.stderr + result.stdout + "\n" + log_tail))
        for _ in range(100):
            info = self.status()
            if info is not None:
                return info
            time.sleep(0.1)
        raise SetupError(
            f"The bundled PostgreSQL in {self.data_dir} started but never reported ready; see {self.log_file}."
        )

    # ----------------------------------------------------------------- stop
    def stop(self) -> bool:
        """Stop the server with a clean (checkpointed) shutdown. True if it was running."""
        with self._locked():
            return self._stop_unlocked()

    def _stop_unlocked(self) -> bool:
        if _read_pidfile(self.data_dir) is None:
            return False
        info = self.status()
        # Stopped: the postmaster has removed its pid file (it does so last, after the shutdown
        # checkpoint) and is gone, so a start right after finds nothing of it (not its socket lock).
        pid = info.pid if info is not None else None
        result = self._run_until(
            "pg_ctl",
            ["-D", str(self.data_dir), "-w", "-t", "60", "-m", "fast", "stop"],
            done=lambda: (
                _read_pidfile(self.data_dir) is None and (pid is None or not _pid_is_our_postmaster(pid, self.data_dir))
            ),
        )
        if result.returncode != 0 and self.status() is not None:
            raise SetupError(
                f"Could not stop the bundled PostgreSQL in {self.data_dir} "
                f"({result.stderr.strip() or result.stdout.strip()})."
            )
        if self.fixed_socket_dir is not None:
            with contextlib.suppress(OSError):  # only when empty: the socket is gone with the server
                self.fixed_socket_dir.rmdir()
        return info is not None

    # ----------------------------------------------------------------- holders
    # A holder is a process that needs the server to stay up. The server is stopped
    # when the last live holder releases it, so pytest finishing does not pull the
    # database out from under an open JupyterLab.
    def acquire(self, pid: int | None = None) -> ServerInfo:
        info = self.start()
        self.holders_dir.mkdir(parents=True, exist_ok=True)
        (self.holders_dir / str(pid or os.getpid())).touch()
        return info

    def release(self, pid: int | None = None) -> bool:
        """Drop this holder; stop the server if no live holder remains. True if stopped."""
        with self._locked():
            (self.holders_dir / str(pid or os.getpid())).unlink(missing_ok=True)
            if self.live_holders():
                return False
            return self._stop_unlocked()

    def live_holders(self) -> list[int]:
        alive: list[int] = []
        if not self.holders_dir.exists():
            return alive
        for entry in self.holders_dir.iterdir():
            try:
                pid = int(entry.name)
            except ValueError:
                continue
            if pid_alive(pid):
                alive.append(pid)
            else:
                entry.unlink(missing_ok=True)  # a holder that died without releasing
        return alive

    @staticmethod
    def notice(message: str) -> None:
        import sys

        print(f"[course-db] {message}", file=sys.stderr)
