"""The hub's config from deploy/values.yaml loads, and KubeSpawner itself accepts and applies our traits.

No cluster: KubeSpawner is constructed against a kubeconfig whose API server nobody serves (it only
reads the file), and `get_pod_manifest()` builds the pod it would create, with our traits applied.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from autograder.hub import kubernetes
from tests.deploy.support import chart_config, hub_environment, image, values

kubespawner = pytest.importorskip(
    "kubespawner", reason="jupyterhub-kubespawner is not installed: pip install jupyterhub-kubespawner==7.1.0"
)

SECRET = "s" * 40


def learner(name: str = "ada", uid: int = 7, admin: bool = False) -> SimpleNamespace:
    return SimpleNamespace(name=name, id=uid, admin=admin, url=f"/user/{name}/", escaped_name=name)


@pytest.fixture
def hub_config(monkeypatch):
    hub_environment(
        monkeypatch,
        COURSE_ADMIN_DATABASE_URL="postgresql://admin:pw@db.internal:5432/postgres",
        COURSE_DATABASE_SECRET=SECRET,
    )
    return chart_config(values())


def test_the_config_names_kubespawner_and_our_hook(hub_config):
    assert hub_config.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    hook = hub_config.KubeSpawner.pre_spawn_hook
    assert isinstance(hook, kubernetes.PreSpawnHook)
    settings = hook.settings
    assert settings.admin_url == "postgresql://admin:pw@db.internal:5432/postgres" and settings.secret == SECRET
    assert settings.check_url == kubernetes.DEFAULT_CHECK_URL
    assert settings.missing() is None
    assert hub_config.JupyterHub.authenticator_class == "firstuseauthenticator.FirstUseAuthenticator"
    assert hub_config.FirstUseAuthenticator.create_users is False  # no open sign-up
    admins = set(hub_config.Authenticator.admin_users)
    assert admins and hub_config.Authenticator.allowed_users  # a participant list, instructors as admins


async def test_kubespawner_validates_our_traits_and_builds_the_pod(hub_config, offline_kubeconfig):
    vals = values()
    spawner = kubespawner.KubeSpawner(config=hub_config, user=learner(), _mock=True)
    # Traits as KubeSpawner holds them (its validators ran: byte specifications, callables, lists).
    assert spawner.image == image(vals["singleuser"])
    assert spawner.cmd == kubernetes.SINGLEUSER_CMD
    # JupyterHub's byte specifications are binary: 1536M is 1536 MiB.
    assert spawner.mem_limit == 1536 * 2**20 and spawner.mem_guarantee == 512 * 2**20
    assert spawner.cpu_limit == 1 and spawner.cpu_guarantee == 0.25
    assert spawner.uid is kubernetes.learner_uid and spawner.fs_gid == kubernetes.FS_GID
    assert spawner.notebook_dir == str(kubernetes.WORKSPACE)
    assert isinstance(spawner.pre_spawn_hook, kubernetes.PreSpawnHook)
    assert spawner.pvc_name == "claim-ada" and spawner.storage_capacity == "2Gi"

    spawner.environment = {**spawner.environment, "DATABASE_URL": "postgresql+asyncpg://l_ada:pw@db/postgres"}
    pod = await spawner.get_pod_manifest()
    container = pod.spec.containers[0]
    assert container.image == image(vals["singleuser"])
    assert container.args == kubernetes.SINGLEUSER_CMD
    security = container.security_context
    assert security["runAsUser"] == kubernetes.UID_BASE + 7  # the learner's own uid
    assert security["runAsGroup"] == kubernetes.FS_GID and security["allowPrivilegeEscalation"] is False
    assert pod.spec.security_context["fsGroup"] == kubernetes.FS_GID
    assert container.resources.limits == {"cpu": 1, "memory": 1536 * 2**20}
    assert container.resources.requests == {"cpu": 0.25, "memory": 512 * 2**20}
    mounts = {m.mount_path: m.name for m in container.volume_mounts}
    claims = {v.name: v.persistent_volume_claim["claimName"] for v in pod.spec.volumes if v.persistent_volume_claim}
    assert claims[mounts[str(kubernetes.HOME)]] == "claim-ada"  # their own volume as their home
    assert claims[mounts[kubernetes.DEFAULT_EXCHANGE.as_posix()]] == "course-exchange"  # the shared exchange
    env = {e.name: e.value for e in container.env}
    assert env["DATABASE_URL"] == "postgresql+asyncpg://l_ada:pw@db/postgres"
    assert env["JUPYTERHUB_ROOT_DIR"] == str(kubernetes.WORKSPACE)
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/lab/tree/START_HERE.ipynb"
    # Nothing of the hub pod's own environment (the admin URL, the secret) reaches a learner's pod.
    assert not {kubernetes.ENV_ADMIN_URL, kubernetes.ENV_DATABASE_SECRET} & set(env)
    assert SECRET not in str(pod.to_dict())


async def test_two_learners_never_share_a_uid(hub_config, offline_kubeconfig):
    pods = []
    for name, uid in (("ada", 7), ("grace", 8)):
        spawner = kubespawner.KubeSpawner(config=hub_config, user=learner(name, uid), _mock=True)
        pods.append(await spawner.get_pod_manifest())
    uids = [pod.spec.containers[0].security_context["runAsUser"] for pod in pods]
    assert uids == [kubernetes.UID_BASE + 7, kubernetes.UID_BASE + 8]
    assert min(uids) > 60000  # above any account a base image defines (jovyan is 1000)
