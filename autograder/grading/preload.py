"""Imported once by the grading fork server, so every forked submission starts warm.

Importing FastAPI, SQLAlchemy, asyncpg, httpx and IPython costs ~0.7 s; doing it
once and forking is what makes grading a class fast (a fresh Jupyter kernel per
submission costs ~2.5 s). Only work with no lasting side effects belongs here:
no engine, no event loop, no threads (a fork copies none of them safely).

Importing the packages is not enough: each of them imports more on first use
(SQLAlchemy its PostgreSQL dialect when the first engine is made, IPython its
completer and magics when a shell is made and its traceback formatter on the
first error, anyio its asyncio backend on the first app). Every submission would pay that again — 0.2–0.3 s each,
a third of a lesson's run — so `warm()` does it here, once.
"""

import asyncio  # noqa: F401
import decimal  # noqa: F401

import asyncpg  # noqa: F401
import fastapi  # noqa: F401
import httpx  # noqa: F401
import IPython.core.interactiveshell  # noqa: F401

# Not matplotlib (0.3 s): a graded run draws no chart (teaching.Chart), so no lesson
# imports it there; a submission that does pays for itself (MPLBACKEND=Agg, see run.py).
import pydantic  # noqa: F401
import sqlalchemy
import sqlalchemy.ext.asyncio
import sqlalchemy.orm  # noqa: F401

import autograder.checks
import autograder.grading.executor
import autograder.grading.kernel
import autograder.grading.speedups
import autograder.lesson
import autograder.observe
import autograder.teaching

# Imported lazily by the libraries, on first use (found by diffing sys.modules before
# and after grading lessons 00-01 in a forked child).
_FIRST_USE = [
    "sqlalchemy.dialects.postgresql.asyncpg",  # create_async_engine("postgresql+asyncpg://…"): ~110 ms
    "sqlalchemy.connectors.asyncio",
    "IPython.core.completer",  # InteractiveShell() ...
    "IPython.core.completerlib",
    "IPython.core.magics",
    "IPython.core.oinspect",
    "IPython.core.logger",
    "IPython.core.crashhandler",
    "IPython.core.ultratb",  # ... and its first traceback
    "stack_data",
    "pygments.formatters.terminal256",
    "pygments.styles",
    "sqlite3",  # IPython's history manager (disabled, but imported)
    "anyio._backends._asyncio",  # the first FastAPI app / httpx transport
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.tls",
    "asgi_lifespan",
    "asgi_lifespan._concurrency.asyncio",
    "fastapi.telemetry._runtime",
    "bdb",
    "IPython.core.application",
    "pydantic.v1",
]


def warm() -> None:
    import importlib

    for name in _FIRST_USE:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional extra that is not installed: it just stays cold
            pass
    # (No chart is drawn here: a graded run draws none, see teaching.Chart.)
    # The first traceback formats through stack_data/pygments: format one now.
    from IPython.core.ultratb import AutoFormattedTB

    try:
        raise ValueError("warm-up")
    except ValueError as exc:  # as the shell formats them (Context mode, no colours)
        AutoFormattedTB(mode="Context", theme_name="nocolor").structured_traceback(type(exc), exc, exc.__traceback__)


warm()

# The IPython shell every submission runs in, made once (see kernel.prepare_shell).
autograder.grading.kernel.prepare_shell()

# libc for the sandbox's unshare/mount calls (finding it runs a subprocess).
import autograder.grading.sandbox  # noqa: E402

autograder.grading.sandbox._libc()
autograder.grading.seccomp.library()  # libseccomp too: its filter is installed in every submission

# Last: the identities every graded cell is checked against (see integrity.py).
import autograder.grading.integrity  # noqa: E402

autograder.grading.integrity.take_baseline()


# Everything above lives as long as the server: move it out of the collector's sight
# (the speed-up `fork_server_gc_freeze`, see speedups.py). A forked submission's collections
# then walk only the objects it made itself, not the million the imports made — each walk
# would touch (and so copy) the server's pages.
# (No gc.collect() first: 50 ms of the start-up; what garbage there is stays, frozen.)
autograder.grading.speedups.freeze_fork_server_gc()

# The server's working folder: whatever the process that started it had at that moment. The
# grader starts it from a thread while `GradeRun` works inside the course folder, so that can
# be a temporary course a caller deletes afterwards — and then the shell's atexit hook
# (IPython's history reset calls Path.cwd()) fails with FileNotFoundError when the server
# ends. Its children chdir to their own folder (sandbox.apply), so "/" changes nothing else.
import os  # noqa: E402

os.chdir("/")
