"""The JupyterHub configuration of a workshop: `configure(c, settings)` fills JupyterHub's config.

`jupyter/hub/jupyterhub_config.py` calls it with the settings `autograder hub` chose. In short:

* sign-in: FirstUseAuthenticator (each participant sets their password on first sign-in), only the
  participants listed (`create_users=False`: nobody else is even recorded), instructors are admins;
* one OS account per participant, made on first spawn (`autograder.hub.users`), LocalProcessSpawner
  running `python -m autograder.hub.singleuser` as that account: it syncs `~/workspace` with the
  release (never overwriting the learner's edits) and becomes `jupyterhub-singleuser` with the learner
  lab's config (`jupyter/learner/`) plus the hub's (`jupyter/hub-learner/`: nbgrader's assignment list
  and the exchange);
* the learner's PostgreSQL role, provisioned in `pre_spawn_hook` (`autograder.hub.provision`), reaches
  their server as DATABASE_URL / COURSE_DB_PREFIX; nothing of the hub's own environment is passed on;
* every secret of the hub (its sqlite, cookie secret, password hashes, the database secret) lives in
  `<hub dir>/secrets`, mode 0700;
* instructors (`instructor` in the list) get the instructor view instead (`autograder.hub.instructors`):
  formgrader and Create Assignment on the instructors' course folder with the hub's exchange, as their
  own account, which the group `course-instructors` gives that folder and read on `solutions/` (not the
  hub's secrets nor any database);
* idle servers are culled by jupyterhub-idle-culler, a hub-managed service with only the scopes it needs;
* "Check my work" is graded by the course's check server (`autograder check-server`), a hub-managed
  service running as the hub's operator where the course's source is: learners' servers hold the release
  only and send it the saved notebook with their own API token, which it asks the hub to identify.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from autograder.course.layout import ENV_EXCHANGE
from autograder.db import url as urls
from autograder.errors import SetupError
from autograder.hub import instructors, provision, users
from autograder.hub import participants as participants_mod
from autograder.hub.settings import HubSettings
from autograder.labcheck.remote import ENV_CHECK_URL
from autograder.paths import project_root
from autograder.workspace import START_PAGE

log = logging.getLogger(__name__)

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
CHECK_SERVICE = "course-check"
WORKSPACE = "workspace"  # in the learner's home


def learner_config_path() -> str:
    """JUPYTER_CONFIG_PATH of a learner's server: the hub's additions first (they win), then the learner lab's."""
    jupyter = project_root() / "jupyter"
    return f"{jupyter / 'hub-learner'}:{jupyter / 'learner'}"


def admin_url(settings: HubSettings) -> URL:
    """The workshop server's admin URL: DATABASE_URL if the hub was started with it, else the hub cluster."""
    configured = urls.configured_url()
    if configured is not None:
        return configured
    info = provision.hub_cluster(settings.hub_dir).status()
    if info is None:
        raise SetupError(f"The hub's PostgreSQL in {settings.hub_dir / 'pgdata'} is not running; restart `make hub`.")
    return make_url(info.url("postgres"))


def learner_python(settings: HubSettings) -> Path:
    return settings.learner_python or settings.venv_bin / "python"


def learner_env(settings: HubSettings, database: provision.LearnerDatabase, home: Path) -> dict[str, str]:
    return {
        **database.env(),
        "JUPYTER_CONFIG_PATH": learner_config_path(),
        ENV_EXCHANGE: str(settings.exchange),
        # The learners' Python first (`python`, `jupyter` in a terminal).
        "PATH": f"{learner_python(settings).parent}:/usr/local/bin:/usr/bin:/bin",
        # The learner's own state (nothing of theirs is written into the course checkout).
        urls.ENV_DATA_DIR: str(home / ".course"),
        "COURSE_WORKSPACE": str(home / WORKSPACE),
        ENV_CHECK_URL: check_url(settings),
    }


def check_url(settings: HubSettings) -> str:
    """Where learners' servers send "Check my work" (straight to the service, on this machine)."""
    return f"http://127.0.0.1:{settings.check_port}/services/{CHECK_SERVICE}/"


def check_service(settings: HubSettings) -> dict[str, Any]:
    autograder = str(settings.venv_bin / "autograder")
    return {
        "name": CHECK_SERVICE,
        "url": f"http://127.0.0.1:{settings.check_port}",
        "command": [autograder, "check-server", "--port", str(settings.check_port)]
        + ["--workers", str(settings.check_workers)],
        # The course's own state (its grading cluster, prepared lessons), as the operator's `autograder grade`.
        "environment": {urls.ENV_DATA_DIR: str(urls.state_dir()), "PATH": f"{settings.venv_bin}:/usr/bin:/bin"},
    }


def make_pre_spawn_hook(settings: HubSettings) -> Any:
    secret = provision.load_secret(settings.secrets_dir / "database.secret")
    limits = provision.Limits(connections=settings.connection_limit)
    instructor_names = {p.name for p in participants_mod.load(settings.participants_file) if p.instructor}
    state_dir = urls.state_dir()

    def prepare_account(name: str) -> Any:
        entry = users.ensure_user(participants_mod.check_name(name), home_base=settings.home_base)
        # In or out of the instructors' group before the server starts (its groups are read at the start).
        instructors.set_member(name, name in instructor_names)
        if name in instructor_names:
            instructors.prepare_exchange(settings.exchange, instructors.ensure_group(), settings.course_id)
        return entry

    async def pre_spawn_hook(spawner: Any) -> None:
        name = spawner.user.name
        loop = asyncio.get_running_loop()
        entry = await loop.run_in_executor(None, prepare_account, name)
        provisioner = provision.Provisioner(admin_url(settings), secret, limits)
        database = await provisioner.provision(name)
        home = Path(entry.pw_dir)
        if name in instructor_names:
            # The instructor view on the instructors' course folder (autograder.hub.instructors), as their account.
            python = learner_python(settings)
            env = {**database.env(), **instructors.server_env(python, settings.exchange, state_dir)}
            spawner.environment = {**spawner.environment, **env}
            spawner.cmd = [str(python), "-m", "autograder.hub.instructors"]
            spawner.notebook_dir = str(instructors.course_folder(state_dir))
            spawner.default_url = instructors.DEFAULT_URL
            kind = "instructor server on the instructors' course folder"
        else:
            spawner.environment = {**spawner.environment, **learner_env(settings, database, home)}
            spawner.notebook_dir = str(home / WORKSPACE)
            kind = "learner server"
        spawner.log.info(
            "provisioned %s (%s): OS user %s (uid %d), database role %s",
            name,
            kind,
            name,
            entry.pw_uid,
            database.role,
        )

    return pre_spawn_hook


def configure(c: Any, settings: HubSettings) -> None:
    """Fill JupyterHub's config object `c` for the workshop described by `settings`."""
    listed = participants_mod.load(settings.participants_file)
    secrets_dir = settings.secrets_dir
    python = str(settings.venv_bin / "python")

    c.JupyterHub.ip = settings.ip
    c.JupyterHub.port = settings.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port}"
    # The pure-Python proxy (package configurable-http-proxy): no Node needed.
    c.ConfigurableHTTPProxy.command = [str(settings.venv_bin / "configurable-http-proxy")]
    c.ConfigurableHTTPProxy.pid_file = str(secrets_dir / "proxy.pid")
    c.JupyterHub.pid_file = str(secrets_dir / "jupyterhub.pid")
    c.JupyterHub.db_url = f"sqlite:///{secrets_dir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(secrets_dir / "jupyterhub_cookie_secret")

    c.JupyterHub.authenticator_class = "firstuseauthenticator.FirstUseAuthenticator"
    c.FirstUseAuthenticator.dbm_path = str(secrets_dir / "passwords.dbm")
    c.FirstUseAuthenticator.create_users = False  # only the listed users exist in the hub
    c.FirstUseAuthenticator.min_password_length = 8
    c.Authenticator.allowed_users = {p.name for p in listed}
    c.Authenticator.admin_users = {p.name for p in listed if p.instructor}

    c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
    c.Spawner.cmd = [str(learner_python(settings)), "-m", "autograder.hub.singleuser"]
    c.Spawner.default_url = f"/lab/tree/{START_PAGE}"
    c.Spawner.pre_spawn_hook = make_pre_spawn_hook(settings)
    c.Spawner.start_timeout = 120
    # How soon the hub notices a server that died (killed, out of memory): the learner's "Start My Server"
    # does nothing until then (JupyterHub's default is 30 s).
    c.Spawner.poll_interval = 5
    c.Spawner.http_timeout = 90
    # Nothing of the hub's environment but the locale reaches a learner (env_keep's default also passes
    # PATH, PYTHONPATH, conda and venv variables; PATH is set in the hook).
    c.Spawner.env_keep = ["LANG", "LC_ALL"]

    services: list[dict[str, Any]] = [check_service(settings)]
    roles: list[dict[str, Any]] = []
    if settings.cull_seconds > 0:
        services.append(
            {
                "name": "idle-culler",
                "command": [python, "-m", "jupyterhub_idle_culler", f"--timeout={settings.cull_seconds}"],
            }
        )
        roles.append({"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def main_config(c: Any) -> None:
    """What jupyter/hub/jupyterhub_config.py runs."""
    settings = HubSettings.from_env()
    try:
        configure(c, settings)
    except SetupError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
