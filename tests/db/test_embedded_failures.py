"""Bundled PostgreSQL failure cases, each on a data dir of its own (never the session's).

Each case must end in a working server or in one sentence (exit 2, no traceback).
"""

from __future__ import annotations

import os
import signal
import stat

from tests.cli_support import (
    assert_one_sentence_error,
    cli_env,
    pid_alive,
    postgres_pids_for,
    run_cli,
    wait_for,
)


def test_stale_postmaster_pid_from_a_killed_run_is_recovered(course_state):
    env = cli_env(course_state)
    data_dir = course_state / "pgdata"
    first = run_cli("db", "start", env=env)
    assert first.returncode == 0, first.stderr
    old_pid = int((data_dir / "postmaster.pid").read_text().split()[0])

    os.kill(old_pid, signal.SIGKILL)  # a killed run: postmaster.pid stays behind
    wait_for(lambda: not postgres_pids_for(data_dir), 15, what="the killed server's processes to exit")
    assert (data_dir / "postmaster.pid").exists()

    second = run_cli("db", "start", env=env)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert f"Removed a stale postmaster.pid left by a server that is no longer running (pid {old_pid})" in second.stderr
    new_pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    assert new_pid != old_pid and pid_alive(new_pid)
    assert run_cli("db", "url", env=env).returncode == 0  # and it answers


def test_read_only_data_dir_is_one_sentence(course_state):
    env = cli_env(course_state)
    data_dir = course_state / "pgdata"
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    # We are root, but the server runs as the unprivileged `pgserver` user: 0555 stops it.
    data_dir.chmod(0o555)
    try:
        result = run_cli("db", "start", env=env)
    finally:
        data_dir.chmod(mode)
    assert_one_sentence_error(
        result, f"The database folder {data_dir} is not writable by the server", "COURSE_DATA_DIR"
    )
    assert not postgres_pids_for(data_dir)
