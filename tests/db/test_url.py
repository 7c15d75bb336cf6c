"""Which PostgreSQL: DATABASE_URL and its spellings, and the state folder (autograder/db/url.py)."""

from __future__ import annotations

import pytest

from autograder.db import url as urls
from autograder.errors import SetupError
from autograder.paths import project_root


@pytest.mark.parametrize(
    "raw",
    [
        "postgres://u:p@db.example:5433/course",
        "postgresql://u:p@db.example:5433/course",
        "postgresql+psycopg://u:p@db.example:5433/course",
        "  postgresql+asyncpg://u:p@db.example:5433/course\n",
    ],
)
def test_every_spelling_of_a_postgresql_url_becomes_asyncpg(raw):
    url = urls.normalize(raw)
    assert url.drivername == "postgresql+asyncpg"
    assert (url.username, url.password, url.host, url.port, url.database) == ("u", "p", "db.example", 5433, "course")


def test_a_url_that_is_not_postgresql_is_refused_in_one_sentence():
    with pytest.raises(SetupError, match="needs PostgreSQL") as info:
        urls.normalize("mysql://u:p@localhost/x")
    assert "\n" not in str(info.value)
    with pytest.raises(SetupError, match="is not a database URL"):
        urls.normalize("not a url at all")


def test_configured_url_reads_database_url_only_when_set(monkeypatch):
    monkeypatch.delenv(urls.ENV_URL, raising=False)
    assert urls.configured_url() is None
    monkeypatch.setenv(urls.ENV_URL, "   ")
    assert urls.configured_url() is None
    monkeypatch.setenv(urls.ENV_URL, "postgres://u:p@h/d")
    configured = urls.configured_url()
    assert configured is not None and configured.drivername == "postgresql+asyncpg"


def test_render_keeps_the_password_and_redacted_never_shows_it():
    url = urls.normalize("postgresql://learner:s3cret-pw@localhost:5432/lesson_01")
    assert "s3cret-pw" in urls.render(url)
    assert "s3cret-pw" not in urls.redacted(url) and "***" in urls.redacted(url)
    assert urls.with_database(url, "other").database == "other"
    assert url.database == "lesson_01"  # URLs are immutable: the original is unchanged


def test_state_dir_is_the_checkout_s_course_folder_unless_configured(monkeypatch, tmp_path):
    monkeypatch.delenv(urls.ENV_DATA_DIR, raising=False)
    assert urls.state_dir() == project_root() / ".course"
    monkeypatch.setenv(urls.ENV_DATA_DIR, str(tmp_path / "state"))
    assert urls.state_dir() == tmp_path / "state"
    assert urls.data_dir() == tmp_path / "state" / "pgdata"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(urls.ENV_DATA_DIR, "relative")
    assert urls.state_dir() == tmp_path / "relative"  # made absolute at once
