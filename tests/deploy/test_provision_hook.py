"""The hub's pre-spawn hook on Kubernetes, against a real PostgreSQL (the bundled one, as the managed server).

The hook makes the learner's role (autograder.hub.provision, the same code as the one-machine hub) and
puts what their pod needs into KubeSpawner's environment; without the Secret it refuses every spawn
with one sentence.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from autograder.db import admin
from autograder.db import url as urls
from autograder.errors import SetupError
from autograder.hub import kubernetes
from autograder.hub.settings import ENV_EXCHANGE
from autograder.labcheck.remote import ENV_CHECK_URL
from autograder.lesson import ENV_DB_PREFIX
from tests.deploy.support import chart_config, hub_environment, literal_env, values
from tests.hub.support import needs_root, unique_name

kubespawner = pytest.importorskip(
    "kubespawner", reason="jupyterhub-kubespawner is not installed: pip install jupyterhub-kubespawner==7.1.0"
)

SECRET = "a-long-random-workshop-secret-0123456789"


def spawner_for(config, name: str, uid: int = 11):
    user = SimpleNamespace(name=name, id=uid, admin=False, url=f"/user/{name}/", escaped_name=name)
    return kubespawner.KubeSpawner(config=config, user=user, _mock=True)


@needs_root
async def test_the_hook_provisions_the_learner_and_fills_their_pods_environment(
    hub_admin_url, monkeypatch, offline_kubeconfig
):
    hub_environment(
        monkeypatch,
        COURSE_ADMIN_DATABASE_URL=urls.render(hub_admin_url),
        COURSE_DATABASE_SECRET=SECRET,
        COURSE_INSTRUCTOR_IMAGE="registry.example.org/course/course-checker:test",
    )
    config = chart_config(values())
    name, instructor = unique_name("k"), unique_name("t")
    spawner = spawner_for(config, name)
    hook = spawner.pre_spawn_hook
    try:
        await hook(spawner)
        assert spawner.image == config.KubeSpawner.image  # a learner keeps the learner image
        env = spawner.get_env()
        role = f"l_{name}"
        extra_env = literal_env(values()["hub"]["extraEnv"])
        assert env[ENV_DB_PREFIX] == role
        assert env[ENV_CHECK_URL] == extra_env[ENV_CHECK_URL] == kubernetes.DEFAULT_CHECK_URL
        assert env[ENV_EXCHANGE] == extra_env[ENV_EXCHANGE] == str(kubernetes.DEFAULT_EXCHANGE)
        assert env["HOME"] == str(kubernetes.HOME)
        assert env["JUPYTER_CONFIG_PATH"] == "/course/jupyter/hub-learner:/course/jupyter/learner"
        assert SECRET not in str(env) and kubernetes.ENV_ADMIN_URL not in env

        # DATABASE_URL is the learner's own role on that server: it signs in, and it is no admin.
        learner_url = make_url(env[urls.ENV_URL])
        assert learner_url.username == role and learner_url.password
        conn = await asyncpg.connect(**admin.asyncpg_params(learner_url))
        try:
            assert await conn.fetchval("SELECT current_user") == role
            powers = await conn.fetchrow(
                "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1", role
            )
            assert tuple(powers) == (False, False, True)
            assert await conn.fetchval("SELECT rolconnlimit FROM pg_roles WHERE rolname = $1", role) == 30
        finally:
            await conn.close()

        # The pod KubeSpawner would create carries it; a second spawn gives the same password.
        pod = await spawner.get_pod_manifest()
        pod_env = {e.name: e.value for e in pod.spec.containers[0].env}
        assert pod_env[urls.ENV_URL] == env[urls.ENV_URL]
        again = spawner_for(config, name)
        await hook(again)
        assert again.get_env()[urls.ENV_URL] == env[urls.ENV_URL]

        teacher = kubespawner.KubeSpawner(
            config=config,
            user=SimpleNamespace(name=instructor, id=12, admin=True, url="/", escaped_name=instructor),
            _mock=True,
        )
        await teacher.pre_spawn_hook(teacher)
        assert teacher.image == "registry.example.org/course/course-checker:test"  # admins: COURSE_INSTRUCTOR_IMAGE
    finally:
        provisioner = await hook.provisioning.provisioner()
        for who in (name, instructor):
            await provisioner.remove(who)


@pytest.mark.parametrize(
    ("secrets", "named"),
    [
        ({}, "COURSE_ADMIN_DATABASE_URL and no COURSE_DATABASE_SECRET"),
        ({"COURSE_ADMIN_DATABASE_URL": "postgresql://admin:pw@db:5432/postgres"}, "COURSE_DATABASE_SECRET"),
        (
            {"COURSE_ADMIN_DATABASE_URL": "postgresql://admin:pw@db:5432/postgres", "COURSE_DATABASE_SECRET": "short"},
            "shorter than 32",
        ),
    ],
)
async def test_without_the_secret_every_spawn_is_refused_in_one_sentence(
    secrets, named, monkeypatch, offline_kubeconfig, caplog
):
    hub_environment(monkeypatch, **secrets)
    with caplog.at_level(logging.ERROR, logger=kubernetes.__name__):
        config = chart_config(values())  # the hub still starts, and says why learners cannot spawn
    assert any(named in record.getMessage() for record in caplog.records)
    spawner = spawner_for(config, "ada")
    before = dict(spawner.environment)
    with pytest.raises(SetupError) as refused:
        await spawner.pre_spawn_hook(spawner)
    message = refused.value.message
    assert named in message and kubernetes.SECRET_NAME in message
    assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message  # one sentence
    assert spawner.environment == before
