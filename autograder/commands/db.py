"""`autograder db start|stop|status|url` — the course PostgreSQL."""

from __future__ import annotations

import argparse

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.server import embedded

EXIT_NOT_RUNNING = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "db",
        help="start, stop or inspect the course PostgreSQL",
        description=(
            "The course PostgreSQL is the server in DATABASE_URL when that is set, otherwise a "
            "bundled server kept under COURSE_DATA_DIR (default: <repo>/.course) that listens on a "
            "unix socket only."
        ),
    )
    actions = parser.add_subparsers(dest="db_command", metavar="<action>", required=True)
    start = actions.add_parser("start", help="start the bundled server (no-op if running)")
    start.set_defaults(func=cmd_start)
    stop = actions.add_parser(
        "stop",
        help="stop the bundled server now (clean, checkpointed shutdown)",
        description="Stop the bundled server with `pg_ctl -m fast`, even if a JupyterLab still uses it.",
    )
    stop.set_defaults(func=cmd_stop)
    status = actions.add_parser(
        "status",
        help="say whether the server runs, where and with which pid",
        description=f"Exit code 0 when the server is running or reachable, {EXIT_NOT_RUNNING} when it is not.",
    )
    status.set_defaults(func=cmd_status)
    url = actions.add_parser(
        "url",
        help="print the admin URL (asyncpg form), starting the bundled server if needed",
        description="Print the admin URL (database `postgres`) after checking that it answers.",
    )
    url.set_defaults(func=cmd_url)


def _describe(info, server) -> str:
    return f"bundled PostgreSQL is running: pid {info.pid}, socket dir {info.socket_dir}, data dir {server.data_dir}"


def cmd_start(args: argparse.Namespace) -> int:
    configured = urls.configured_url()
    if configured is not None:
        admin.ping(configured)
        print(f"DATABASE_URL is set ({urls.redacted(configured)}) and answers; nothing to start.")
        return 0
    server = embedded()
    info = server.start()
    print(_describe(info, server))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    configured = urls.configured_url()
    if configured is not None:
        print(f"DATABASE_URL is set ({urls.redacted(configured)}); that server is not managed here, nothing to stop.")
        return 0
    server = embedded()
    holders = list(server.live_holders())
    stopped = server.stop()
    if stopped:
        print(f"bundled PostgreSQL stopped (data dir {server.data_dir}).")
        if holders:
            print(f"note: processes {holders} were still using it; restart them to get a server again.")
    else:
        print(f"bundled PostgreSQL was not running (data dir {server.data_dir}).")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    configured = urls.configured_url()
    if configured is not None:
        admin.ping(configured)
        print(f"using DATABASE_URL {urls.redacted(configured)}: it answers.")
        return 0
    server = embedded()
    info = server.status()
    if info is None:
        print(f"bundled PostgreSQL is not running (data dir {server.data_dir}).")
        return EXIT_NOT_RUNNING
    holders = server.live_holders()
    print(_describe(info, server) + (f"; held by pids {holders}" if holders else ""))
    return 0


def cmd_url(args: argparse.Namespace) -> int:
    configured = urls.configured_url()
    if configured is not None:
        admin.ping(configured)
        print(urls.render(configured))
        return 0
    info = embedded().start()
    url = urls.normalize(info.url("postgres"))
    admin.ping(url)
    print(urls.render(url))
    return 0
