"""The `autograder` CLI: help, db commands, and one-sentence errors (exit 2, no traceback)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys

import pytest

from autograder import cli, lesson
from autograder.errors import SetupError
from tests.cli_support import (  # noqa: F401 - pytest fixtures, used as test parameters
    assert_one_sentence_error,
    cli_env,
    course_state,
    free_port,
    pg_template,
    run_cli,
)


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("db", "lab", "workspace", "instructor", "grade", "grade-one", "release"):
        assert command in out


@pytest.mark.parametrize(
    "command",
    [
        ["db", "--help"],
        ["lab", "--help"],
        ["workspace", "--help"],
        ["workspace", "reset", "--help"],
        ["instructor", "--help"],
        ["release", "--help"],
        ["-v", "grade", "--help"],
    ],
)
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(command)
    assert exit_info.value.code == 0
    assert "usage: autograder" in capsys.readouterr().out


def test_setup_error_is_one_line_and_exit_2(monkeypatch, capsys):
    def boom(args):
        raise SetupError("The thing is broken; fix it.")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    args = parser.parse_args(["db", "status"])
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    args.func = boom
    assert cli.main([]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: The thing is broken; fix it.\n"
    assert captured.out == ""


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://course:secret@127.0.0.1:1/course", "nothing is listening there"),
        ("postgresql://course@/course?host=/nonexistent/socket/dir", "nothing is listening there"),
        ("mysql://u:p@localhost/x", "needs PostgreSQL"),
        ("not a url at all", "is not a database URL"),
    ],
)
def test_db_url_with_a_database_url_that_points_nowhere(url, reason, tmp_path):
    result = run_cli("db", "url", env=cli_env(tmp_path, DATABASE_URL=url))
    line = assert_one_sentence_error(result, reason)
    assert "secret" not in line


def test_lesson_setup_with_a_database_url_that_points_nowhere(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://course:secret@127.0.0.1:1/course")
    with pytest.raises(SetupError) as error:
        lesson.setup("probe")
    message = str(error.value)
    assert message.startswith("Cannot connect to DATABASE_URL at ") and "\n" not in message
    assert "nothing is listening there" in message and "secret" not in message
    assert error.value._render_traceback_() == [f"SetupError: {message}"]


def test_db_start_status_url_stop(course_state):
    env = cli_env(course_state)
    data_dir = course_state / "pgdata"

    started = run_cli("db", "start", env=env)
    assert started.returncode == 0, started.stderr
    assert "is running: pid" in started.stdout and str(data_dir) in started.stdout

    status = run_cli("db", "status", env=env)
    assert status.returncode == 0
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    assert f"pid {pid}, socket dir " in status.stdout

    url = run_cli("db", "url", env=env)
    assert url.returncode == 0
    assert url.stdout.strip().startswith("postgresql+asyncpg://postgres@/postgres?host=")

    again = run_cli("db", "start", env=env)  # idempotent: same server
    assert f"pid {pid}," in again.stdout

    stopped = run_cli("db", "stop", env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not (data_dir / "postmaster.pid").exists()
    assert "database system is shut down" in (data_dir / "log").read_text()

    after = run_cli("db", "status", env=env)
    assert after.returncode == 3 and "not running" in after.stdout


def test_lab_refuses_a_port_in_use_in_one_sentence(tmp_path):
    port = free_port()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        env = cli_env(tmp_path / "state", COURSE_WORKSPACE=str(tmp_path / "ws"))
        result = run_cli("lab", "--no-browser", "--port", str(port), env=env, timeout=30)
    line = assert_one_sentence_error(result, f"Port {port} is already in use", "make lab PORT=8899")
    assert f"by pid {os.getpid()} (" in line  # it says who holds the port
    # The port is checked before anything is started or copied.
    assert not (tmp_path / "state" / "pgdata").exists()
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    ("flags", "level"),
    [
        ([], logging.WARNING),
        (["-v"], logging.INFO),
        (["-vv"], logging.DEBUG),
        (["-v", "--verbose", "-v"], logging.DEBUG),
    ],
)
def test_verbose_flags_before_the_command_set_the_autograders_log_level(flags, level, monkeypatch, capsys):
    from autograder import release

    logger = logging.getLogger("autograder")
    monkeypatch.setattr(logger, "level", logger.level)  # put back after the test
    monkeypatch.setattr(release, "check", list)
    assert cli.main([*flags, "release", "--check"]) == 0
    assert logger.level == level
    assert cli.command_argv([*flags, "grade", "-v"]) == ["grade", "-v"]  # a command's own flags stay


def test_release_check_names_what_drifted_and_exits_1(monkeypatch, capsys):
    from autograder import release

    monkeypatch.setattr(release, "check", lambda: ["00_foundations/00_foundations.ipynb (differs)"])
    assert cli.main(["release", "--check"]) == 1
    err = capsys.readouterr().err
    assert "notebooks/ is out of date with solutions/; run `make release`:" in err
    assert "  00_foundations/00_foundations.ipynb (differs)" in err


def test_the_old_release_module_spelling_runs_the_command():
    out = subprocess.run(
        [sys.executable, "-m", "autograder.release", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and out.stdout.startswith("usage: autograder release [-h] [--check]")
