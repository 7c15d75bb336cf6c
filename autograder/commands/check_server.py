"""`autograder check-server` — "Check my work" for labs that hold the learner release only."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal

from autograder.errors import SetupError

DEFAULT_PORT = 8890


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-server",
        help="serve the hidden checks to labs that hold the release only (compose's checker, a hub service)",
        description=(
            "Grade notebooks sent by learner labs (COURSE_CHECK_URL) where the course's source lives, and answer "
            "with verdicts only. Callers prove who they are with COURSE_CHECK_TOKEN, or, when JupyterHub starts "
            "this as a service, with their own hub API token."
        ),
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--workers", type=int, default=1, help="notebooks graded at once (default: 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autograder.labcheck.server import serve

    # A server says what it serves: each check (whose, which notebook) is logged, whatever -v says.
    server_log = logging.getLogger("autograder.labcheck.server")
    server_log.setLevel(min(server_log.getEffectiveLevel(), logging.INFO))
    if args.workers < 1:
        raise SetupError("--workers must be at least 1.")

    async def main() -> None:
        task = asyncio.ensure_future(serve(args.port, args.ip, args.workers))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SetupError(f"Port {args.port} is in use; pass another with --port.") from None
        raise
    return 0
