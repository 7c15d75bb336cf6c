"""nbgrader speedups: one engine per gradebook URL, the metadata schema checked once, both undone on exit."""

import os
import shutil
import sys
from pathlib import Path

import jsonschema
import nbformat
import nbgrader.api
import nbgrader.nbgraderformat.common as common
import pytest
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import MetadataValidator

from autograder.db.url import project_root
from autograder.grading.nbgrader_speedups import (
    faster_nbgrader,
    make_tables_once,
    reuse_gradebook_engines,
    validate_schema_once,
)

NOTEBOOK = project_root() / "solutions" / "00_foundations" / "00_foundations.ipynb"
STOCK_CREATE_ENGINE = nbgrader.api.create_engine


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory):
    """One new gradebook file, copied per test: a new file asks the `alembic` command for its
    version (~2 s, found by name on PATH, as course_api arranges)."""
    path = tmp_path_factory.mktemp("gradebook") / "empty.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        Gradebook(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def url(tmp_path, empty_gradebook):
    def url(name="gb.db"):
        if not (tmp_path / name).exists():
            shutil.copy(empty_gradebook, tmp_path / name)
        return f"sqlite:///{tmp_path / name}"
    return url


def notebook():
    return nbformat.read(NOTEBOOK, as_version=4)


def assert_stock_nbgrader():
    assert nbgrader.api.create_engine is STOCK_CREATE_ENGINE
    assert common.jsonschema is jsonschema
    assert "create_all" not in vars(nbgrader.api.Base.metadata)


# --- one engine per URL ------------------------------------------------------------------------

def test_gradebooks_for_one_url_share_an_engine_and_other_urls_get_their_own(url):
    with reuse_gradebook_engines():
        first, second, other = Gradebook(url()), Gradebook(url()), Gradebook(url("b.db"))
        assert first.engine is second.engine
        assert other.engine is not first.engine
        for gb in (first, second, other):
            gb.close()


def test_after_the_context_create_engine_is_stock_and_each_gradebook_gets_a_fresh_engine(url):
    with reuse_gradebook_engines():
        assert nbgrader.api.create_engine is not STOCK_CREATE_ENGINE
        inside = Gradebook(url())
        inside.close()
    assert nbgrader.api.create_engine is STOCK_CREATE_ENGINE
    first, second = Gradebook(url()), Gradebook(url())
    assert len({id(inside.engine), id(first.engine), id(second.engine)}) == 3
    first.close()
    second.close()


def test_a_shared_engine_disposed_by_close_still_serves_later_gradebooks(url):
    with reuse_gradebook_engines():
        writer = Gradebook(url())
        writer.add_student("alice", first_name="Alice")
        writer.close()  # disposes the shared engine's pool
        reader = Gradebook(url())
        assert reader.engine is writer.engine
        assert reader.find_student("alice").first_name == "Alice"
        reader.add_student("bob")
        reader.close()
        with Gradebook(url()) as later:
            assert sorted(s.id for s in later.students) == ["alice", "bob"]
    with Gradebook(url()) as stock:  # and the file is an ordinary gradebook afterwards
        assert sorted(s.id for s in stock.students) == ["alice", "bob"]


def test_the_pool_outlives_close_until_the_run_ends_and_holds_no_lock_meanwhile(url):
    import sqlite3

    with reuse_gradebook_engines():
        gb = Gradebook(url())
        gb.add_student("alice")
        gb.close()
        pool = gb.engine.pool
        assert pool.checkedin() == 1  # kept for the next Gradebook, not closed
        # Another process (formgrader) can write the file meanwhile: no lock is held.
        other = sqlite3.connect(url().removeprefix("sqlite:///"), timeout=0)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE student SET first_name = 'Al' WHERE id = 'alice'")
        other.commit()
        other.close()
        with Gradebook(url()) as again:
            assert again.engine.pool is pool
            assert again.find_student("alice").first_name == "Al"  # and we see its write
    assert pool.checkedin() == 0  # the run's end closes them
    assert "dispose" not in vars(gb.engine)


# --- the tables made once per URL ------------------------------------------------------------

def _statements(engine, into):
    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", lambda *args: into.append(args[2]))


def test_tables_are_checked_once_per_url_and_a_new_file_still_gets_them(url, tmp_path):
    with reuse_gradebook_engines(), make_tables_once() as made:
        first = Gradebook(url())
        assert made == {url()}
        seen: list[str] = []
        _statements(first.engine, seen)
        first.close()
        with Gradebook(url()) as second:
            second.add_student("bob")
        assert not [s for s in seen if "PRAGMA" in s and "table_info" in s]  # stock: 13 per Gradebook
        # A URL not seen yet in this run gets the stock create_all: its tables are made.
        fresh = f"sqlite:///{tmp_path / 'made-now.db'}"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
            with Gradebook(fresh) as new:
                new.add_student("carol")
        assert made == {url(), fresh}
    with Gradebook(fresh) as stock:
        assert [s.id for s in stock.students] == ["carol"]
    assert "create_all" not in vars(nbgrader.api.Base.metadata)


def test_create_all_with_other_arguments_is_stock(url):
    from sqlalchemy import create_engine, inspect

    calls = []
    with make_tables_once():
        engine = create_engine(url("other.db"))
        nbgrader.api.Base.metadata.create_all(bind=engine)
        calls.append(sorted(inspect(engine).get_table_names()))
        nbgrader.api.Base.metadata.drop_all(bind=engine, tables=[nbgrader.api.Comment.__table__])
        # Tables named explicitly: not skipped, even for a URL already done.
        nbgrader.api.Base.metadata.create_all(bind=engine, tables=[nbgrader.api.Comment.__table__])
        assert "comment" in inspect(engine).get_table_names()
        engine.dispose()
    assert "comment" in calls[0]


# --- the metadata schema checked once ----------------------------------------------------------

def test_a_valid_nbgrader_notebook_is_accepted():
    with validate_schema_once():
        MetadataValidator().validate_nb(notebook())


def _points_not_a_number(meta):
    meta["points"] = "three"


def _required_key_missing(meta):
    del meta["locked"]


def _two_errors_at_once(meta):  # which one is reported is jsonschema's best_match choice
    meta["points"] = "three"
    meta["grade_id"] = "not an id!"


@pytest.mark.parametrize("spoil", [_points_not_a_number, _required_key_missing, _two_errors_at_once],
                         ids=["points not a number", "required key missing", "two errors at once"])
def test_invalid_cell_metadata_is_rejected_with_stock_nbgraders_exception_and_message(spoil):
    nb = notebook()
    grade_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    spoil(grade_cell.metadata["nbgrader"])

    def rejection():
        with pytest.raises(Exception) as raised:
            MetadataValidator().validate_nb(nb)
        return type(raised.value), str(raised.value)

    stock = rejection()
    assert issubclass(stock[0], jsonschema.ValidationError)  # rejected by the schema, the path under test
    with validate_schema_once():
        assert rejection() == stock


def test_the_schema_itself_is_checked_once_for_many_cells_not_once_per_cell(monkeypatch):
    validator = MetadataValidator()
    validator_class = jsonschema.validators.validator_for(validator.schema)
    check_schema = validator_class.check_schema
    checks = []

    def counted(schema):
        checks.append(schema)
        return check_schema(schema)

    monkeypatch.setattr(validator_class, "check_schema", staticmethod(counted))
    nb = notebook()
    nbgrader_cells = sum("nbgrader" in cell.metadata for cell in nb.cells)
    assert nbgrader_cells > 1

    validator.validate_nb(nb)
    assert len(checks) == nbgrader_cells  # stock: once per cell

    checks.clear()
    with validate_schema_once():
        validator.validate_nb(nb)
        validator.validate_nb(nb)
    assert len(checks) == 1
    assert common.jsonschema is jsonschema


# --- both together -----------------------------------------------------------------------------

def test_faster_nbgrader_applies_both_speedups_and_undoes_both(url):
    with faster_nbgrader():
        assert common.jsonschema is not jsonschema
        first, second = Gradebook(url()), Gradebook(url())
        assert first.engine is second.engine
        first.close()
        second.close()
    assert_stock_nbgrader()


def test_runs_that_overlap_in_one_process_each_undo_only_their_own(url):
    outer = faster_nbgrader()
    outer.__enter__()
    inner = faster_nbgrader()
    inner.__enter__()
    outer.__exit__(None, None, None)  # the first to start ends first
    with Gradebook(url()) as gb:  # the other run still works
        gb.add_student("dora")
    inner.__exit__(None, None, None)
    assert_stock_nbgrader()


def test_faster_nbgrader_undoes_both_when_the_body_raises():
    with pytest.raises(RuntimeError, match="grading failed"):
        with faster_nbgrader():
            assert nbgrader.api.create_engine is not STOCK_CREATE_ENGINE
            assert common.jsonschema is not jsonschema
            raise RuntimeError("grading failed")
    assert_stock_nbgrader()
