"""A real `autograder lab` / `autograder instructor` run: views, kernel env, workspace, token, clean shutdown.

Each run uses its own COURSE_DATA_DIR (a copied cluster), its own learner workspace
(COURSE_WORKSPACE) and a free port, and is torn down in `finally` whatever happens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from jupyter_client import BlockingKernelClient

from autograder import workspace
from tests.cli_support import (
    AUTOGRADER,
    REPO,
    JupyterServer,
    children,
    cli_env,
    environ_of,
    free_port,
    http,
    pid_alive,
    postgres_pids_for,
    wait_for,
)

LEARNER_DISABLED = {
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:assignment-list",
    "@jupyterlab/apputils-extension:announcements",
}


def page_config(port: int) -> dict:
    status, html = http(port, "/lab")
    assert status == 200
    match = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no jupyter-config-data in /lab"
    return json.loads(match.group(1))


def _kill_tree(pids) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(90)
def test_learner_lab_views_kernel_env_and_clean_shutdown(course_state, tmp_path):
    data_dir = course_state / "pgdata"
    ws = tmp_path / "ws"
    lab = JupyterServer("lab", course_state, free_port(), tmp_path, COURSE_WORKSPACE=str(ws))
    jupyter = kernel = None
    try:
        jupyter = lab.wait_ready()
        assert os.getsid(jupyter) == jupyter != os.getsid(lab.proc.pid)  # its own session

        config = page_config(lab.port)
        disabled = set(config["disabledExtensions"])
        assert disabled >= LEARNER_DISABLED
        assert "@jupyter/nbgrader:validate-assignment" not in disabled
        assert "@jupyter/nbgrader" in {ext["name"] for ext in config["federated_extensions"]}
        assert config["news"] == {"disabled": True}
        assert Path(config["serverRoot"]) == ws  # the learner's workspace, never the tracked release
        assert (ws / workspace.START_PAGE).is_file() and (ws / "00_foundations" / "00_foundations.ipynb").is_file()

        assert http(lab.port, "/formgrader")[0] == 404
        assert http(lab.port, "/formgrader/api/assignments")[0] == 404
        assert http(lab.port, "/assignments")[0] == 404  # assignment_list server extension off

        # A kernel started through the REST API inherits DATABASE_URL (asyncpg form).
        seen: list[dict] = []
        status, body = http(lab.port, "/api/kernels", method="POST")
        assert status == 201, body
        kernel_id = json.loads(body)["id"]
        # Ask the kernel itself (this also waits until it is ready: stopping a kernel
        # that is still importing makes it print a KeyboardInterrupt traceback).
        client = BlockingKernelClient(connection_file=str(lab.runtime_dir / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=30)
            reply = client.execute_interactive(
                "import os; print(os.environ['DATABASE_URL'])", timeout=30, output_hook=lambda msg: seen.append(msg)
            )
            assert reply["content"]["status"] == "ok"
        finally:
            client.stop_channels()
        printed = "".join(m["content"].get("text", "") for m in seen if m["msg_type"] == "stream")
        assert printed.strip().startswith("postgresql+asyncpg://postgres@/postgres?host=")
        kernel = wait_for(
            lambda: [p for p in children(jupyter) if b"ipykernel" in Path(f"/proc/{p}/cmdline").read_bytes()],
            30,
            what="the kernel process",
        )[0]
        kernel_env = environ_of(kernel)
        assert kernel_env["DATABASE_URL"].startswith("postgresql+asyncpg://postgres@/postgres?host=")
        assert str(data_dir).replace("/", "%2F") in kernel_env["DATABASE_URL"]
        assert kernel_env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(REPO / "jupyter" / "learner")
        assert postgres_pids_for(data_dir)

        # Ctrl-C in the terminal: SIGINT to the supervisor only.
        lab.proc.send_signal(signal.SIGINT)
        assert lab.proc.wait(timeout=40) == 0
        assert not pid_alive(jupyter) and not pid_alive(kernel)
        assert not postgres_pids_for(data_dir)
        assert not (data_dir / "postmaster.pid").exists()
        assert "database system is shut down" in (data_dir / "log").read_text()
        assert "Traceback" not in lab.output(), lab.output()
    finally:
        lab.close()
        _kill_tree([p for p in (kernel, jupyter) if p])


@pytest.mark.timeout(90)
def test_instructor_view_has_formgrader_and_jupyter_exit_releases_the_database(course_state, tmp_path):
    data_dir = course_state / "pgdata"
    # As on a fresh clone: the venv not activated (its scripts not on PATH), no gradebook yet.
    venv_scripts = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_scripts)
    lab = JupyterServer("instructor", course_state, free_port(), tmp_path, PATH=path)
    jupyter = None
    try:
        jupyter = lab.wait_ready()
        config = page_config(lab.port)
        disabled = set(config["disabledExtensions"])
        assert "@jupyterlab/apputils-extension:announcements" in disabled
        assert (
            not {
                "@jupyter/nbgrader:formgrader",
                "@jupyter/nbgrader:create-assignment",
                "@jupyter/nbgrader:validate-assignment",
            }
            & disabled
        )
        assert Path(config["serverRoot"]) == REPO
        assert http(lab.port, "/formgrader")[0] in (200, 302)
        # The first real page creates the gradebook (nbgrader runs `alembic` by name for its version).
        status, body = http(lab.port, "/formgrader/api/assignments")
        assert status == 200 and "00_foundations" in body, body[-2000:]
        assert (course_state / "gradebook.db").exists()
        # The exchange the course configures exists, so nothing is released into a missing folder.
        assert (course_state / "exchange").is_dir()
        assert "exchange directory" not in lab.output().lower(), lab.output()[-2000:]

        # JupyterLab exits by itself: the supervisor releases (stops) the database too.
        os.kill(jupyter, signal.SIGTERM)
        lab.proc.wait(timeout=40)
        assert "JupyterLab exited by itself" in lab.output()
        assert not postgres_pids_for(data_dir)
        assert not (data_dir / "postmaster.pid").exists()
    finally:
        lab.close()
        _kill_tree([jupyter] if jupyter else [])


def release_snapshot() -> dict[str, str]:
    """Lesson 00's release folder (the one the test saves) with hashes, and any checkpoint folder under
    notebooks/; other lessons are left out, so a `make release` running meanwhile cannot flake this."""
    root = REPO / "notebooks"
    files = {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (root / "00_foundations").rglob("*")
        if p.is_file()
    }
    files.update({str(p.relative_to(root)): "checkpoints" for p in root.rglob(".ipynb_checkpoints")})
    return files


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.timeout(90)
def test_lab_prints_a_url_with_a_token_that_authenticates_and_saves_only_to_the_workspace(course_state, tmp_path):
    """No JUPYTER_TOKEN given: the supervisor makes one, and its printed URL is the one that works."""
    ws = tmp_path / "ws"
    port = free_port()
    env = cli_env(course_state, COURSE_WORKSPACE=str(ws), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    env.pop("JUPYTER_TOKEN", None)
    env.pop("JUPYTER_TOKEN_FILE", None)
    before = release_snapshot()
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*AUTOGRADER, "lab", "--no-browser", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    jupyter = None
    try:
        pattern = re.compile(r"^\[autograder\] learner JupyterLab is ready; open (http://\S+) ", re.M)

        def printed_url():
            assert proc.poll() is None, log_path.read_text()
            match = pattern.search(log_path.read_text())
            return match.group(1) if match else None

        url = wait_for(printed_url, 60, what="the supervisor's ready line")
        jupyter = children(proc.pid)[0]
        assert url.startswith(f"http://localhost:{port}/lab/tree/{workspace.START_PAGE}?token=")
        token = url.rsplit("token=", 1)[1]
        assert len(token) >= 32
        assert token not in Path(f"/proc/{jupyter}/cmdline").read_text()  # not on the command line
        base = f"http://127.0.0.1:{port}"
        assert status_of(f"{base}/api/status?token={token}") == 200
        assert status_of(f"{base}/api/status") == 403
        assert status_of(f"{base}/api/status?token=not-{token}") == 403
        assert status_of(url.replace("localhost", "127.0.0.1")) == 200  # the start page itself opens

        # Save a notebook through the server (what autosave does): it lands in the workspace only.
        path = "00_foundations/00_foundations.ipynb"
        with urllib.request.urlopen(f"{base}/api/contents/{path}?token={token}", timeout=10) as response:
            model = json.load(response)
        model["content"]["cells"][0]["source"] = "# my own notes"
        body = json.dumps({"type": "notebook", "format": "json", "content": model["content"]}).encode()
        request = urllib.request.Request(
            f"{base}/api/contents/{path}?token={token}",
            data=body,
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert "# my own notes" in (ws / path).read_text()
        assert release_snapshot() == before  # notebooks/ (tracked, drift-tested) untouched

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0
        assert "Traceback" not in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        _kill_tree([jupyter] if jupyter else [])

    # The next start keeps the learner's edit and says nothing about it.
    report = workspace.sync_workspace(REPO / "notebooks", ws)
    assert "# my own notes" in (ws / path).read_text() and path not in report.updated and not report.offered
