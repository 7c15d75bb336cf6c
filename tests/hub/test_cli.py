"""`autograder hub` (what `make hub` runs) refuses what cannot work with one sentence and exit code 2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.hub import interpreter
from autograder.hub.run import free_port
from tests.hub.support import needs_root

AUTOGRADER = str(Path(sys.executable).with_name("autograder"))


def hub(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [AUTOGRADER, "hub", *args]
    if user is not None:
        python = str(interpreter.learner_python(Path(sys.executable).parent))
        command = ["runuser", "-u", user, "--", python, "-m", "autograder", "hub", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, cwd="/")


def one_sentence(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


@pytest.fixture
def participants(tmp_path):
    path = tmp_path / "participants.txt"
    path.write_text("alice instructor\nbob\n")
    return path


@needs_root
def test_missing_participant_list(tmp_path):
    line = one_sentence(hub("--participants", str(tmp_path / "nobody.txt"), "--port", str(free_port())))
    assert "does not exist; create it" in line


@needs_root
def test_bad_name_in_the_list(tmp_path):
    path = tmp_path / "participants.txt"
    path.write_text("alice instructor\nBob\n")
    assert "'Bob'" in one_sentence(hub("--participants", str(path), "--port", str(free_port())))


@needs_root
def test_port_in_use(participants):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_sentence(hub("--participants", str(participants), "--port", str(port)))
    assert f"Port {port} is already in use" in line and "make hub PORT=" in line


@needs_root  # (to run it as another user)
def test_not_root(participants):
    line = one_sentence(hub("--participants", str(participants), user="nobody"))
    assert "must run as root" in line
