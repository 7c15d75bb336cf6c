"""Imported once by the grading fork server, so every forked submission starts warm.

Importing FastAPI, SQLAlchemy, asyncpg, httpx and IPython costs ~0.7 s; doing it
once and forking is what makes grading a class fast (a fresh Jupyter kernel per
submission costs ~2.5 s). Only imports with no side effects belong here: no
engine, no event loop, no threads (a fork copies none of them safely).
"""

import asyncio  # noqa: F401
import decimal  # noqa: F401

import asyncpg  # noqa: F401
import fastapi  # noqa: F401
import httpx  # noqa: F401
import IPython.core.interactiveshell  # noqa: F401
import matplotlib

matplotlib.use("Agg")  # no display in a grading process
import matplotlib.pyplot  # noqa: F401,E402
import pydantic  # noqa: F401,E402
import sqlalchemy  # noqa: F401,E402
import sqlalchemy.ext.asyncio  # noqa: F401,E402
import sqlalchemy.orm  # noqa: F401,E402

import autograder.checks  # noqa: F401,E402
import autograder.grading.executor  # noqa: F401,E402 - the child's entry point lives here
import autograder.grading.kernel  # noqa: F401,E402
import autograder.lesson  # noqa: F401,E402
import autograder.observe  # noqa: F401,E402
import autograder.teaching  # noqa: F401,E402

# Last: the identities every graded cell is checked against (see integrity.py).
import autograder.grading.integrity  # noqa: E402

autograder.grading.integrity.take_baseline()
