"""Connecting as the admin: parameters, one-sentence errors, safe names (autograder/db/admin.py).

Creating and dropping databases against a real server is in test_lesson_database.py.
"""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from autograder.db import admin
from autograder.db import url as urls
from autograder.errors import SetupError


def test_asyncpg_params_from_a_tcp_url():
    params = admin.asyncpg_params("postgresql+asyncpg://u:pw@db.example:5433/course")
    assert params == {
        "host": "db.example",
        "port": 5433,
        "user": "u",
        "password": "pw",
        "database": "course",
        "timeout": admin.CONNECT_TIMEOUT_S,
    }


def test_asyncpg_params_from_a_unix_socket_url():
    params = admin.asyncpg_params(make_url("postgresql+asyncpg:///lesson?host=/tmp/sock&port=5999&user=me"))
    assert params["host"] == "/tmp/sock" and params["port"] == 5999 and params["user"] == "me"
    assert params["database"] == "lesson"
    assert "password" not in params  # None values are left out for asyncpg's defaults


def test_asyncpg_params_defaults_to_the_postgres_database():
    assert admin.asyncpg_params("postgresql+asyncpg://u@h")["database"] == "postgres"


@pytest.mark.parametrize("name", ["lesson_01", "_x", "a" * 63])
def test_check_identifier_accepts_safe_names(name):
    assert admin.check_identifier(name) == name


@pytest.mark.parametrize("name", ["", "Lesson", "1abc", 'x"; DROP DATABASE y; --', "a" * 64, "a-b"])
def test_check_identifier_refuses_anything_else(name):
    with pytest.raises(ValueError, match="not a safe database name"):
        admin.check_identifier(name)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (asyncpg.InvalidPasswordError("x"), "the password was rejected"),
        (asyncpg.InvalidCatalogNameError("no db"), "the database does not exist"),
        (socket.gaierror(), "its host name does not resolve"),
        (ConnectionRefusedError(), "nothing is listening there"),
        (TimeoutError(), f"did not answer within {admin.CONNECT_TIMEOUT_S} s"),
        (RuntimeError("odd"), "RuntimeError: odd"),
    ],
)
def test_explain_connect_error_names_the_reason_and_hides_the_password(exc, reason, monkeypatch):
    monkeypatch.setenv(urls.ENV_URL, "postgresql://u:s3cret@db.example/x")
    url = urls.configured_url()
    assert url is not None
    message = admin.explain_connect_error(url, exc)
    assert reason in message
    assert "s3cret" not in message
    assert message.startswith("Cannot connect to DATABASE_URL at ") and "unset DATABASE_URL" in message


def test_explain_connect_error_for_the_bundled_server_says_how_to_start_it(monkeypatch):
    monkeypatch.delenv(urls.ENV_URL, raising=False)
    message = admin.explain_connect_error(make_url("postgresql+asyncpg://u@localhost/x"), ConnectionRefusedError())
    assert message.startswith("Cannot connect to the bundled PostgreSQL") and "make lab" in message


def test_connect_failure_is_one_sentence(monkeypatch):
    monkeypatch.delenv(urls.ENV_URL, raising=False)
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        url = make_url(f"postgresql+asyncpg://u:pw@127.0.0.1:{port}/x")
        with pytest.raises(SetupError, match="nothing is listening there"):
            admin.ping(url)


def test_run_sync_works_inside_a_running_loop():
    async def inner() -> int:
        return 42

    async def outer() -> int:
        return admin.run_sync(inner)  # a notebook cell: a loop is already running

    assert asyncio.run(outer()) == 42
