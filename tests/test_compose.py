"""docker-compose.yml: validated by docker-compose itself (`config`), then its meaning asserted.

No Docker engine is needed: `docker-compose config` only parses and resolves the file.
`make test` installs Debian's docker-compose when it is missing (as root with apt).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from autograder.release import LEARNER_FILES
from tests.cli_support import REPO
from tests.support.dockerfile import dockerfile_stages as stages_of

yaml = pytest.importorskip("yaml", reason="pyyaml is in the `dev` extra: pip install -e '.[dev]'")


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return ["docker", "compose"]
    pytest.skip(
        "docker-compose is not installed and could not be installed here (needs root and apt-get: "
        "`apt-get install docker-compose`, which `make test` tries)"
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    result = subprocess.run(
        [*compose_command(), "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_db_service_is_postgres_16_with_a_healthcheck_and_a_named_volume(compose):
    db = compose["services"]["db"]
    assert db["image"] == "postgres:16"
    assert db["environment"] == {"POSTGRES_USER": "course", "POSTGRES_PASSWORD": "course", "POSTGRES_DB": "course"}
    test = db["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test if isinstance(test, list) else [test])
    volume = db["volumes"][0]
    source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
    assert source == "pgdata" and "pgdata" in compose["volumes"]


def test_lab_service_runs_the_learner_lab_against_db(compose):
    lab = compose["services"]["lab"]
    assert lab["build"]["dockerfile"] == "Dockerfile"
    assert lab["environment"]["DATABASE_URL"] == "postgresql+asyncpg://course:course@db:5432/course"
    assert lab["depends_on"]["db"]["condition"] == "service_healthy"
    command = lab["command"]
    assert command[:2] == ["autograder", "lab"] and "--no-browser" in command
    assert command[command.index("--ip") + 1] == "0.0.0.0" and command[command.index("--port") + 1] == "8888"
    published = {
        (int(p["published"]), int(p["target"])) if isinstance(p, dict) else tuple(map(int, p.split(":")))
        for p in lab["ports"]
    }
    assert (8888, 8888) in published


def test_lab_keeps_the_learners_workspace_on_a_named_volume(compose):
    """`docker compose down` / a rebuild keep learner work: the workspace is a named volume, not the image."""
    lab = compose["services"]["lab"]
    target = lab["environment"]["COURSE_WORKSPACE"]
    mounts = {}
    for volume in lab["volumes"]:
        if isinstance(volume, dict):
            mounts[volume["target"]] = (volume["type"], volume["source"])
        else:
            source, mount_target = volume.split(":")[:2]
            mounts[mount_target] = ("volume", source)
    assert mounts[target] == ("volume", "workspace"), mounts
    assert "workspace" in compose["volumes"]
    assert not target.startswith("/course/")  # outside the image's checkout (and its release notebooks/)


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    return stages_of(REPO / "Dockerfile")


def test_dockerfile_learner_image_holds_the_release_only_and_runs_the_lab():
    stages = dockerfile_stages()
    assert stages["base"][0] == ("FROM", "python:3.11-slim AS base")
    learner = stages["learner"]
    assert learner[0] == ("FROM", "base AS learner")  # not built on the checker: no layer of it is inherited
    copied = [source for keyword, rest in learner if keyword in ("COPY", "ADD") for source in rest.split()[:-1]]
    assert copied and not any(source.startswith("--from") for source in copied)
    # Every source is named: no `.`, no glob, nothing that could carry solutions/ or tests/ into a layer.
    assert sorted(copied) == sorted(LEARNER_FILES)  # what `autograder release --learner-copy` hands out
    assert all((REPO / source).exists() for source in copied), copied
    assert not list((REPO / "autograder").rglob("*.ipynb")), "the package must not carry lesson notebooks"
    instructions = dict(learner)
    assert instructions["RUN"] == 'pip install -e ".[dev]"'
    assert instructions["CMD"] == '["autograder", "lab", "--no-browser", "--ip", "0.0.0.0", "--port", "8888"]'
    assert instructions["ENV"] == "COURSE_WORKSPACE=/workspace"  # `docker run` alone uses the same workspace
    # A learner's local workspace never ends up in an image.
    assert "workspace" in (REPO / ".dockerignore").read_text().split()


def test_the_released_notebooks_hold_no_hidden_tests():
    for notebook in (REPO / "notebooks").rglob("*.ipynb"):
        assert "BEGIN HIDDEN TESTS" not in notebook.read_text(), notebook


def test_check_my_work_in_the_compose_lab_goes_to_the_checker_which_holds_the_course(compose):
    stages = dockerfile_stages()
    assert ("COPY", ". /course") in stages["checker"]
    assert stages["checker"][-1] == ("CMD", '["autograder", "check-server", "--ip", "0.0.0.0", "--port", "8890"]')
    lab, checker = compose["services"]["lab"], compose["services"]["checker"]
    assert lab["build"]["target"] == "learner" and checker["build"]["target"] == "checker"
    assert lab["environment"]["COURSE_CHECK_URL"] == "http://checker:8890/"
    token = lab["environment"]["COURSE_CHECK_TOKEN"]
    assert token == checker["environment"]["COURSE_CHECK_TOKEN"] and len(token) >= 16
    assert "ports" not in checker  # only the lab, on compose's network, reaches it
    assert checker["command"][:2] == ["autograder", "check-server"] and "8890" in checker["command"]
    assert "checker" in lab["depends_on"]
