"""What a lesson notebook calls first: its own, freshly reset database.

    from autograder import lesson
    db = lesson.setup("01_session_dependency")
    engine = create_async_engine(db.url)

Every lesson gets its own database so lessons never see each other's tables, and
running a notebook from the top resets it, so the same notebook gives the same
output every time. The grader gives each graded submission a database of its
own (COURSE_DB_URL, prepared in advance; see autograder/grading/databases.py);
the lesson code does not change.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.server import server_url

ENV_DB_NAME = "COURSE_DB_NAME"
# Set by the grader: a database prepared for this one submission (fresh, owned by a
# role that may not create or drop databases). The lesson uses it as it is.
ENV_PREPARED_URL = "COURSE_DB_URL"


def database_name(lesson_id: str) -> str:
    override = os.environ.get(ENV_DB_NAME, "").strip()
    if override:
        return admin.check_identifier(override)
    slug = re.sub(r"[^a-z0-9_]+", "_", lesson_id.lower()).strip("_")
    # Parallel test workers (pytest-xdist) run the same lesson at once: kernels inherit
    # the worker's name, and each worker gets databases of its own.
    worker = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "").lower())
    suffix = f"_{worker}" if worker else ""
    return admin.check_identifier(f"lesson_{slug}"[: 63 - len(suffix)] + suffix)


@dataclass(frozen=True)
class LessonDatabase:
    lesson_id: str
    name: str
    url: str
    """asyncpg URL of this lesson's database, password included: pass it to create_async_engine."""
    admin_url: str

    def __repr__(self) -> str:  # notebooks print this; never show a password
        return f"LessonDatabase(lesson={self.lesson_id!r}, database={self.name!r})"


def setup(lesson_id: str) -> LessonDatabase:
    """Create (or reset) the lesson's database and return how to reach it."""
    prepared = os.environ.get(ENV_PREPARED_URL, "").strip()
    if prepared:
        url = urls.normalize(prepared)
        return LessonDatabase(lesson_id=lesson_id, name=url.database or "", url=urls.render(url), admin_url="")
    # A kernel that uses the bundled server holds it: a pytest run or JupyterLab
    # finishing elsewhere will not stop the server while this kernel is alive.
    admin_url = server_url(hold=True)
    name = database_name(lesson_id)
    lesson_url = admin.recreate_database(admin_url, name)
    return LessonDatabase(lesson_id=lesson_id, name=name, url=urls.render(lesson_url), admin_url=urls.render(admin_url))
