"""Starting and stopping the bundled PostgreSQL: as soon as it is ready or gone, and safely back to back."""

from __future__ import annotations

from autograder.db.embedded import EmbeddedPostgres, _read_pidfile
from tests.cli_support import postgres_pids_for


def test_a_stop_followed_at_once_by_a_start_works_every_time(course_state):
    server = EmbeddedPostgres(course_state / "pgdata")
    data_dir = course_state / "pgdata"
    pids = set()
    for _ in range(5):
        info = server.start()
        assert server.status() == info and info.pid not in pids  # ready, and a new server each time
        pids.add(info.pid)
        assert server.stop() is True
        # Stopped means gone: no pid file, no process — so the next start finds nothing of it.
        assert _read_pidfile(data_dir) is None and not postgres_pids_for(data_dir)
    assert server.stop() is False  # and stopping a stopped server says so
