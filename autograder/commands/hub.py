"""`autograder hub` — a workshop on this machine: JupyterHub, an account, a server and a database per learner."""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder.course.layout import ENV_EXCHANGE
from autograder.hub.settings import DEFAULT_CULL_SECONDS, DEFAULT_EXCHANGE, DEFAULT_PORT, HubSettings, default_exchange


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="start a workshop JupyterHub: participants sign in, each gets their own server, account and database",
        description=(
            "Start JupyterHub for the participants listed in the participant list (one name per line, "
            "`instructor` after an instructor's name; each sets their password at first sign-in). Each "
            "participant's server runs as their own account on this machine (made on first start, private "
            "home), on ~/workspace, a copy of the course release that later starts update without "
            "overwriting their edits, with a PostgreSQL role and private lesson databases of their own "
            "(on the hub's own PostgreSQL, or on the server in DATABASE_URL, whose role must be able to "
            "create roles and databases). Instructors are the hub's admins. Idle servers are stopped "
            "(their work and databases are kept). Needs root. Ctrl-C stops everything."
        ),
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"the hub's port (default: {DEFAULT_PORT})")
    parser.add_argument(
        "--ip", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for a room)"
    )
    parser.add_argument(
        "--participants",
        type=Path,
        default=None,
        metavar="FILE",
        help="the participant list (default: .course/hub/participants.txt; "
        "example: jupyter/hub/participants.example.txt)",
    )
    parser.add_argument(
        "--hub-dir", type=Path, default=None, metavar="DIR", help="the hub's state folder (default: .course/hub)"
    )
    parser.add_argument(
        "--exchange",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"nbgrader's exchange folder (default: ${ENV_EXCHANGE} if set, else nbgrader's own, {DEFAULT_EXCHANGE}); "
        f"instructors' nbgrader commands find it through ${ENV_EXCHANGE}",
    )
    parser.add_argument(
        "--cull-idle",
        type=int,
        default=DEFAULT_CULL_SECONDS,
        metavar="SECONDS",
        help=f"stop a server idle this long (default: {DEFAULT_CULL_SECONDS}; 0: never)",
    )
    parser.add_argument(
        "--db-quota-mb",
        type=int,
        default=HubSettings.db_quota_mb,
        metavar="MB",
        help=f"disk quota on each learner's databases, in MiB (default: {HubSettings.db_quota_mb}; 0: none): past it "
        "their databases turn read-only until they drop data",
    )
    parser.add_argument(
        "--db-quota-every",
        type=float,
        default=HubSettings.db_quota_poll_seconds,
        metavar="SECONDS",
        help=f"how often the quota is checked (default: {HubSettings.db_quota_poll_seconds:g})",
    )
    parser.add_argument(
        "--db-max-connections",
        type=int,
        default=0,
        metavar="N",
        help="max_connections of the hub's PostgreSQL (default: every participant at their limit of "
        f"{HubSettings.connection_limit} at once, plus 20, at least 100)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autograder.hub.run import run_hub

    settings = HubSettings(
        port=args.port,
        ip=args.ip,
        participants=args.participants.absolute() if args.participants else None,
        exchange=args.exchange.absolute() if args.exchange else default_exchange(),
        cull_seconds=args.cull_idle,
        db_quota_mb=args.db_quota_mb,
        db_quota_poll_seconds=args.db_quota_every,
        db_max_connections=args.db_max_connections,
    )
    if args.hub_dir is not None:
        from dataclasses import replace

        settings = replace(settings, hub_dir=args.hub_dir.absolute())
    return run_hub(settings)
