"""deploy/'s files parse, and what each says agrees with the others and with the Python the hub runs.

No Docker, Helm or cluster: the Dockerfiles are read with tests/test_compose.py's parser, the YAML with
pyyaml; where two files must name the same thing (an image, a path, a port, a Secret), it is asserted.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import PurePosixPath

import pytest

from autograder.hub import kubernetes
from autograder.labcheck.remote import ENV_CHECK_URL
from autograder.release import LEARNER_FILES
from tests.cli_support import REPO
from tests.deploy.support import DEPLOY, image, literal_env, load_manifests, secret_refs, values
from tests.support.dockerfile import dockerfile_stages


def copied_sources(stage: list[tuple[str, str]]) -> list[str]:
    return [source for keyword, rest in stage if keyword in ("COPY", "ADD") for source in rest.split()[:-1]]


def build_args(stage: list[tuple[str, str]]) -> dict[str, str]:
    return dict(rest.split("=", 1) for keyword, rest in stage if keyword == "ARG" and "=" in rest)


def test_the_singleuser_image_holds_the_release_only():
    stages = dockerfile_stages(DEPLOY / "Dockerfile.singleuser")
    assert list(stages) == ["singleuser"]
    stage = stages["singleuser"]
    assert stage[0] == ("FROM", "python:3.11-slim AS singleuser")
    copied = copied_sources(stage)
    assert not any(source.startswith("--") for source in copied)  # nothing from another image or stage
    assert sorted(copied) == sorted(LEARNER_FILES)  # what `autograder release --learner-copy` hands out
    instructions = dict(stage)
    assert instructions["CMD"] == '["' + '", "'.join(kubernetes.SINGLEUSER_CMD) + '"]'
    assert "COURSE_WORKSPACE=" + str(kubernetes.WORKSPACE) in instructions["ENV"]
    assert instructions["WORKDIR"] == str(kubernetes.HOME)
    assert instructions["USER"] == f"1000:{kubernetes.FS_GID}"  # never root; the hub sets each learner's uid
    assert '"jupyterhub==${JUPYTERHUB_VERSION}"' in instructions["RUN"]
    assert PurePosixPath("/course") == kubernetes.COURSE_ROOT and ("WORKDIR", "/course") in stage


def test_the_hub_image_has_our_package_but_no_course_content():
    stages = dockerfile_stages(DEPLOY / "Dockerfile.hub")
    stage = stages["hub"]
    assert sorted(copied_sources(stage)) == ["README.md", "autograder", "pyproject.toml"]  # no solutions/, notebooks/
    run = " ".join(rest for keyword, rest in stage if keyword == "RUN")
    for requirement in ("jupyterhub==${JUPYTERHUB_VERSION}", "jupyterhub-kubespawner==${KUBESPAWNER_VERSION}"):
        assert requirement in run
    # What the chart's jupyterhub_config.py imports or runs in the hub pod.
    for needed in ("pycurl", "pyyaml", "jupyterhub-idle-culler", "jupyterhub-firstuseauthenticator"):
        assert needed in run
    assert dict(stage)["USER"] == "1000" and dict(stage)["WORKDIR"] == "/srv/jupyterhub"


def test_hub_and_learner_images_run_the_jupyterhub_these_tests_ran():
    pytest.importorskip(
        "kubespawner", reason="jupyterhub-kubespawner is not installed: pip install jupyterhub-kubespawner==7.1.0"
    )
    hub = build_args(dockerfile_stages(DEPLOY / "Dockerfile.hub")["hub"])
    learner = build_args(dockerfile_stages(DEPLOY / "Dockerfile.singleuser")["singleuser"])
    assert hub["JUPYTERHUB_VERSION"] == learner["JUPYTERHUB_VERSION"] == metadata.version("jupyterhub")
    assert hub["KUBESPAWNER_VERSION"] == metadata.version("jupyterhub-kubespawner")
    hub_pin = re.search(r'"jupyterhub>=([\d.]+),<(\d+)"', (REPO / "pyproject.toml").read_text())
    assert hub_pin, "pyproject.toml's hub extra pins jupyterhub"
    assert hub["JUPYTERHUB_VERSION"].split(".")[0] == hub_pin.group(1).split(".")[0]


def test_values_point_the_chart_at_our_images_hook_and_secret():
    vals = values()
    hub = vals["hub"]
    assert "autograder.hub.kubernetes" in hub["extraConfig"]["course"]
    refs = secret_refs(hub["extraEnv"])
    assert refs == {
        kubernetes.ENV_ADMIN_URL: (kubernetes.SECRET_NAME, "admin-database-url"),
        kubernetes.ENV_DATABASE_SECRET: (kubernetes.SECRET_NAME, "database-secret"),
    }
    readme = (DEPLOY / "README.md").read_text()
    # The operator's commands build and push the images values.yaml names, and create that Secret.
    for section in (hub, vals["singleuser"]):
        assert f"-t {image(section)}" in readme, image(section)
    assert f"kubectl create secret generic {kubernetes.SECRET_NAME}" in readme
    assert all(f"--from-literal={key}=" in readme for _, key in refs.values())
    assert vals["singleuser"]["cmd"] == kubernetes.SINGLEUSER_CMD
    assert vals["singleuser"]["storage"]["homeMountPath"] == str(kubernetes.HOME)
    assert vals["singleuser"]["fsGid"] == kubernetes.FS_GID
    assert vals["cull"]["enabled"] is True and vals["cull"]["timeout"] > 0 and vals["cull"]["users"] is False
    auth = hub["config"]
    assert auth["JupyterHub"]["authenticator_class"] == "firstuseauthenticator.FirstUseAuthenticator"
    assert auth["FirstUseAuthenticator"]["create_users"] is False
    assert auth["FirstUseAuthenticator"]["dbm_path"].startswith("/srv/jupyterhub/")  # the hub's own volume
    for limits in (vals["singleuser"]["cpu"], vals["singleuser"]["memory"]):
        assert limits["guarantee"] and limits["limit"]


def test_the_exchange_is_one_readwritemany_volume_where_nbgrader_looks():
    vals = values()
    storage = vals["singleuser"]["storage"]
    (volume,) = storage["extraVolumes"]
    (mount,) = storage["extraVolumeMounts"]
    assert mount["name"] == volume["name"]
    exchange = literal_env(vals["hub"]["extraEnv"])["COURSE_EXCHANGE"]
    assert mount["mountPath"] == exchange == str(kubernetes.DEFAULT_EXCHANGE)
    # The learners' nbgrader config reads COURSE_EXCHANGE, and falls back to the same root.
    assert learners_exchange({}) == exchange and learners_exchange({"COURSE_EXCHANGE": "/x"}) == "/x"
    manifests = load_manifests("exchange.yaml")
    claim = manifests["PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    job = manifests["Job", "course-exchange-init"]["spec"]["template"]["spec"]
    assert job["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "chmod 0777" in " ".join(job["containers"][0]["command"])


def test_the_check_server_is_a_hub_service_learners_reach_through_the_proxy():
    vals = values()
    service_url = vals["hub"]["services"][kubernetes.CHECK_SERVICE]["url"]
    manifests = load_manifests("checker.yaml")
    service = manifests["Service", kubernetes.CHECK_SERVICE]
    port = service["spec"]["ports"][0]["port"]
    assert service_url == f"http://{kubernetes.CHECK_SERVICE}:{port}"
    pod = manifests["Deployment", kubernetes.CHECK_SERVICE]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["command"][:2] == ["autograder", "check-server"]
    assert container["command"][container["command"].index("--port") + 1] == str(port)
    env = {e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    # The chart keeps every hub service's API token in its Secret `hub` under this key.
    assert env["JUPYTERHUB_API_TOKEN"] == {"name": "hub", "key": f"hub.services.{kubernetes.CHECK_SERVICE}.apiToken"}
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == f"/services/{kubernetes.CHECK_SERVICE}/"
    assert env["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
    assert pod["metadata"]["labels"]["hub.jupyter.org/network-access-hub"] == "true"
    # Learners are sent to the proxy's route for that service (the proxy forwards the whole path).
    check_url = literal_env(vals["hub"]["extraEnv"])[ENV_CHECK_URL]
    assert check_url == kubernetes.DEFAULT_CHECK_URL
    assert check_url.startswith("http://proxy-public/") and check_url.endswith(env["JUPYTERHUB_SERVICE_PREFIX"])
    policy = manifests["NetworkPolicy", kubernetes.CHECK_SERVICE]["spec"]
    assert policy["ingress"] == [
        {"from": [{"podSelector": {"matchLabels": {"component": "proxy"}}}], "ports": [{"port": port}]}
    ]


def learners_exchange(environ: dict[str, str]) -> str:
    """The exchange root jupyter/hub-learner/nbgrader_config.py sets, run with `environ` as the environment."""
    import os
    from unittest import mock

    from traitlets.config import Config

    config = Config()
    source = (REPO / "jupyter" / "hub-learner" / "nbgrader_config.py").read_text()
    with mock.patch.dict(os.environ, environ, clear=True):
        exec(compile(source, "nbgrader_config.py", "exec"), {"get_config": lambda: config})
    return str(config.Exchange.root)
