"""A lesson's database name and how a notebook reaches it (autograder/lesson.py).

Creating and resetting the database on a real server: tests/db/test_lesson_database.py.
"""

from __future__ import annotations

import os

import pytest

from autograder import lesson


@pytest.fixture
def no_worker(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv(lesson.ENV_DB_NAME, raising=False)
    monkeypatch.delenv(lesson.ENV_PREPARED_URL, raising=False)


def test_database_name_is_a_safe_slug_of_the_lesson(no_worker):
    assert lesson.database_name("01_session_dependency") == "lesson_01_session_dependency"
    assert lesson.database_name("My Lesson-2!") == "lesson_my_lesson_2"


def test_database_name_is_at_most_63_characters(no_worker, monkeypatch):
    assert len(lesson.database_name("x" * 200)) == 63
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw12")
    name = lesson.database_name("x" * 200)
    assert len(name) == 63 and name.endswith("_gw12")  # the suffix survives the cut


def test_each_test_worker_gets_its_own_database(no_worker, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    assert lesson.database_name("02_repositories") == "lesson_02_repositories_gw3"


def test_an_override_must_be_a_safe_name(no_worker, monkeypatch):
    monkeypatch.setenv(lesson.ENV_DB_NAME, "my_db")
    assert lesson.database_name("anything") == "my_db"
    monkeypatch.setenv(lesson.ENV_DB_NAME, 'x"; drop database y')
    with pytest.raises(ValueError, match="not a safe database name"):
        lesson.database_name("anything")


def test_a_prepared_database_is_used_as_it_is(no_worker, monkeypatch):
    # Set by the grader: no server is asked for anything (no admin URL, nothing created).
    monkeypatch.setenv(lesson.ENV_PREPARED_URL, "postgres://sub_1:pw@127.0.0.1:5999/grade_1_abc")
    db = lesson.setup("03_lifespan")
    assert db.name == "grade_1_abc" and db.admin_url == ""
    assert db.url == "postgresql+asyncpg://sub_1:pw@127.0.0.1:5999/grade_1_abc"
    assert "pw" not in repr(db) and repr(db) == "LessonDatabase(lesson='03_lifespan', database='grade_1_abc')"


def test_a_validation_never_uses_the_learners_database_even_an_overridden_one(no_worker, monkeypatch):
    monkeypatch.setenv(lesson.ENV_NBGRADER_EXECUTION, "validate")
    mine = lesson.database_name("01_session_dependency")
    assert mine != "lesson_01_session_dependency" and lesson.VALIDATION_SUFFIX.search(mine)
    monkeypatch.setenv(lesson.ENV_DB_NAME, "my_db")
    assert lesson.database_name("01_session_dependency") == f"my_db_v{os.getpid()}"
