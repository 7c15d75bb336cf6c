"""The workshop hub on Kubernetes (Zero to JupyterHub): what the chart's hub runs of ours.

`deploy/values.yaml` hands the `jupyterhub` Helm chart everything the chart has a setting for
(images, storage, the exchange volume, resources, the culler, sign-in); its `hub.extraConfig` then
calls `configure(c)`, which adds what only code can say:

* `pre_spawn_hook`: each learner's PostgreSQL role on the managed server is made (or refreshed) when
  their pod is about to start (`autograder.hub.provision.Provisioner`, the same one `make hub` uses),
  and their pod gets DATABASE_URL of that role, COURSE_DB_PREFIX, COURSE_CHECK_URL, the exchange and
  the learner lab's Jupyter config. The server's admin URL and the secret learners' passwords are
  derived from reach the hub pod only, from a Kubernetes Secret (`hub.extraEnv` ... `secretKeyRef`);
  without them every spawn is refused with one sentence.
* `uid`: every learner's pod runs as a uid of its own (UID_BASE + the hub's user id, stable for the
  life of the hub's database). nbgrader's filesystem exchange relies on file ownership (submissions
  land in a shared inbound folder); with the chart's default (every pod uid 1000) any learner could
  read or delete anyone's submission.

Nothing here talks to Kubernetes: KubeSpawner does, with the traits set here and by the chart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from autograder.db import url as urls
from autograder.errors import SetupError
from autograder.hub import provision
from autograder.hub.settings import DEFAULT_EXCHANGE, ENV_EXCHANGE
from autograder.labcheck.remote import ENV_CHECK_URL
from autograder.workspace import ENV_WORKSPACE, START_PAGE

log = logging.getLogger(__name__)

# The hub pod's environment (deploy/values.yaml: hub.extraEnv, from the Secret SECRET_NAME).
ENV_ADMIN_URL = "COURSE_ADMIN_DATABASE_URL"  # an admin role of the managed PostgreSQL (CREATEROLE, CREATEDB)
ENV_DATABASE_SECRET = "COURSE_DATABASE_SECRET"  # learners' passwords are HMACs of their role with this
ENV_CONNECTION_LIMIT = "COURSE_CONNECTION_LIMIT"
ENV_INSTRUCTOR_IMAGE = "COURSE_INSTRUCTOR_IMAGE"
SECRET_NAME = "course-hub-secrets"  # the Kubernetes Secret deploy/README.md has the operator create
MIN_SECRET_CHARS = 32

# The learner image (deploy/Dockerfile.singleuser) and the pod it runs in.
COURSE_ROOT = PurePosixPath("/course")  # the release, the package and the lab's config (editable install)
HOME = PurePosixPath("/home/jovyan")  # the learner's own volume (singleuser.storage.homeMountPath)
WORKSPACE = HOME / "workspace"
SINGLEUSER_CMD = ["python", "-m", "autograder.hub.singleuser"]  # syncs the workspace, then jupyterhub-singleuser
FS_GID = 100  # the pods' fsGroup (the chart's singleuser.fsGid): group-writable home volumes
UID_BASE = 100_000  # learners' uids: UID_BASE + hub user id (never a uid the image has, never root)

# The check server: its own Deployment (deploy/checker.yaml), registered as the hub service CHECK_SERVICE
# (deploy/values.yaml: hub.services), reached by learners' pods through the chart's proxy.
CHECK_SERVICE = "course-checker"
DEFAULT_CHECK_URL = f"http://proxy-public/services/{CHECK_SERVICE}/"


def learner_config_path(course_root: PurePosixPath = COURSE_ROOT) -> str:
    """JUPYTER_CONFIG_PATH of a learner's pod: the hub's additions first (they win), then the learner lab's."""
    return f"{course_root / 'jupyter' / 'hub-learner'}:{course_root / 'jupyter' / 'learner'}"


@dataclass(frozen=True)
class KubeSettings:
    """What the hub pod is told (its environment), read once when the hub loads its config."""

    admin_url: str = ""  # empty: not given (every spawn is refused, saying so)
    secret: str = ""
    check_url: str = DEFAULT_CHECK_URL
    exchange: str = str(DEFAULT_EXCHANGE)
    connection_limit: int = provision.CONNECTION_LIMIT
    instructor_image: str = ""  # empty: instructors get the learner image too

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KubeSettings:
        env = os.environ if environ is None else environ
        limit = env.get(ENV_CONNECTION_LIMIT, "").strip()
        return cls(
            admin_url=env.get(ENV_ADMIN_URL, "").strip(),
            secret=env.get(ENV_DATABASE_SECRET, "").strip(),
            check_url=env.get(ENV_CHECK_URL, "").strip() or DEFAULT_CHECK_URL,
            exchange=env.get(ENV_EXCHANGE, "").strip() or str(DEFAULT_EXCHANGE),
            connection_limit=int(limit) if limit else provision.CONNECTION_LIMIT,
            instructor_image=env.get(ENV_INSTRUCTOR_IMAGE, "").strip(),
        )

    def missing(self) -> str | None:
        """One sentence saying what the hub lacks to provision learners, or None."""
        absent = [
            name for name, value in ((ENV_ADMIN_URL, self.admin_url), (ENV_DATABASE_SECRET, self.secret)) if not value
        ]
        if absent:
            return (
                f"The hub has no {' and no '.join(absent)}: create the Kubernetes Secret {SECRET_NAME} "
                "(deploy/README.md) and restart the hub; no learner's database can be made without it."
            )
        if len(self.secret) < MIN_SECRET_CHARS:
            return (
                f"{ENV_DATABASE_SECRET} is shorter than {MIN_SECRET_CHARS} characters; put a long random one "
                f"(`openssl rand -hex 32` makes one) in the Secret {SECRET_NAME} and restart the hub."
            )
        return None


def learner_environment(settings: KubeSettings, database: provision.LearnerDatabase) -> dict[str, str]:
    """A learner pod's course environment (JupyterHub adds its own JUPYTERHUB_* variables)."""
    return {
        **database.env(),  # DATABASE_URL of their own role, COURSE_DB_PREFIX
        ENV_CHECK_URL: settings.check_url,
        ENV_EXCHANGE: settings.exchange,
        "JUPYTER_CONFIG_PATH": learner_config_path(),
        # A uid the image has no passwd entry for: the kubelet would set HOME=/.
        "HOME": str(HOME),
        ENV_WORKSPACE: str(WORKSPACE),
        urls.ENV_DATA_DIR: str(HOME / ".course"),
    }


def learner_uid(spawner: Any) -> int:
    """The uid a user's pod runs as: their own, stable while the hub's database lives."""
    return UID_BASE + int(spawner.user.id)


class Provisioning:
    """The managed server's learner roles: the server is prepared once per hub start, at the first spawn."""

    def __init__(self, settings: KubeSettings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        self._provisioner: provision.Provisioner | None = None

    async def provisioner(self) -> provision.Provisioner:
        problem = self.settings.missing()
        if problem:
            raise SetupError(problem)
        async with self._lock:
            if self._provisioner is None:
                limits = provision.Limits(connections=self.settings.connection_limit)
                candidate = provision.Provisioner(
                    urls.normalize(self.settings.admin_url), self.settings.secret.encode(), limits
                )
                for note in await candidate.prepare_server():
                    log.warning("workshop database: %s", note)
                self._provisioner = candidate
            return self._provisioner

    async def learner(self, username: str) -> provision.LearnerDatabase:
        return await (await self.provisioner()).provision(username)


class PreSpawnHook:
    """KubeSpawner's pre_spawn_hook: the learner's role, then their pod's environment."""

    def __init__(self, settings: KubeSettings) -> None:
        self.settings = settings
        self.provisioning = Provisioning(settings)

    async def __call__(self, spawner: Any) -> None:
        user = spawner.user
        database = await self.provisioning.learner(user.name)
        spawner.environment = {**spawner.environment, **learner_environment(self.settings, database)}
        if self.settings.instructor_image and getattr(user, "admin", False):
            spawner.image = self.settings.instructor_image
        spawner.log.info("provisioned %s: database role %s", user.name, database.role)


def configure(c: Any, settings: KubeSettings | None = None) -> KubeSettings:
    """Add the course's spawner settings to the chart's config `c` (deploy/values.yaml: hub.extraConfig)."""
    settings = settings or KubeSettings.from_env()
    problem = settings.missing()
    if problem:  # the hub still starts (instructors can sign in and read the log); spawns say the same
        log.error("%s", problem)
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    c.KubeSpawner.pre_spawn_hook = PreSpawnHook(settings)
    c.KubeSpawner.uid = learner_uid
    c.KubeSpawner.gid = FS_GID
    c.KubeSpawner.fs_gid = FS_GID
    # Made by the learner's own process (autograder.hub.singleuser syncs the release into it) before
    # jupyterhub-singleuser starts there: a working_dir would be made by the runtime, as root.
    c.KubeSpawner.notebook_dir = str(WORKSPACE)
    c.KubeSpawner.default_url = f"/lab/tree/{START_PAGE}"
    return settings


def main_config(c: Any) -> None:
    """What deploy/values.yaml's hub.extraConfig runs."""
    configure(c)
