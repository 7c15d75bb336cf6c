"""A real `autograder lab` / `autograder instructor` run: views, kernel env, clean shutdown.

Each run uses its own COURSE_DATA_DIR (a copied cluster) and a free port, and is
torn down in `finally` whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from pathlib import Path

import pytest
from jupyter_client import BlockingKernelClient

from tests.cli_support import (
    REPO,
    JupyterServer,
    children,
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
    lab = JupyterServer("lab", course_state, free_port(), tmp_path)
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
        assert Path(config["serverRoot"]) == REPO / "notebooks"

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
    lab = JupyterServer("instructor", course_state, free_port(), tmp_path)
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

        # JupyterLab exits by itself: the supervisor releases (stops) the database too.
        os.kill(jupyter, signal.SIGTERM)
        lab.proc.wait(timeout=40)
        assert "JupyterLab exited by itself" in lab.output()
        assert not postgres_pids_for(data_dir)
        assert not (data_dir / "postmaster.pid").exists()
    finally:
        lab.close()
        _kill_tree([jupyter] if jupyter else [])
