"""The speed-ups that patch other libraries (autograder/grading/speedups.py).

For each one: a guard that fails, naming the speed-up to revisit, when the patched
library's version or internals are not the ones it was checked on; a behavioural test
that the outcome with it equals the outcome without it; and a test that the switch
(`AUTOGRADER_SPEEDUPS`) really turns it off.
"""

import gc
import inspect
import multiprocessing.spawn
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import jsonschema
import nbformat
import nbgrader.api
import nbgrader.nbgraderformat.common as common
import pytest
from nbgrader.api import Gradebook
from nbgrader.nbgraderformat import MetadataValidator

from autograder.db.url import project_root
from autograder.grading import speedups
from autograder.grading.speedups import (
    SPEEDUPS,
    faster_nbgrader,
    make_tables_once,
    reuse_gradebook_engines,
    validate_schema_once,
)

NOTEBOOK = project_root() / "solutions" / "00_foundations" / "00_foundations.ipynb"
STOCK_CREATE_ENGINE = nbgrader.api.create_engine
STOCK_ALEMBIC_VERSION = nbgrader.api.get_alembic_version
STOCK_PREPARATION_DATA = multiprocessing.spawn.get_preparation_data


def revisit(name: str, what: str) -> str:
    return (
        f"speed-up {name!r} ({SPEEDUPS[name].patches}) was checked on {SPEEDUPS[name].checked_on}: "
        f"{what}; check that the patch still holds, then update the guard in tests/grading/test_speedups.py"
    )


def major_minor(package: str) -> tuple[int, int]:
    major, minor = version(package).split(".")[:2]
    return int(major), int(minor)


@pytest.fixture
def switch(monkeypatch):
    """Set AUTOGRADER_SPEEDUPS for one test."""

    def set_to(value):
        monkeypatch.setenv(speedups.ENV, value)

    monkeypatch.delenv(speedups.ENV, raising=False)
    return set_to


# --- the switch --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "on"),
    [
        (None, set(SPEEDUPS)),
        ("", set(SPEEDUPS)),
        ("on", set(SPEEDUPS)),
        ("off", set()),
        ("-gc_freeze,-schema_checked_once", set(SPEEDUPS) - {"gc_freeze", "schema_checked_once"}),
        ("off,+gradebook_engines", {"gradebook_engines"}),
        ("off, gradebook_engines", {"gradebook_engines"}),
        ("-gc_freeze,on", set(SPEEDUPS)),
    ],
)
def test_the_switch_reads_on_off_and_names_left_to_right(value, on):
    assert speedups._parse(value) == on


def test_a_misspelt_name_is_an_error_that_lists_the_known_ones(switch):
    switch("-gc_freez")
    with pytest.raises(ValueError, match=r"no speed-up is called 'gc_freez'.*gc_freeze"):
        speedups.enabled("gc_freeze")


def test_every_speedup_is_documented_with_what_it_patches_where_it_was_checked_and_its_gain():
    for speedup in SPEEDUPS.values():
        assert speedup.patches and speedup.checked_on and speedup.gain, speedup
        assert f"**{speedup.name}**" in speedups.__doc__ + "".join(
            (f.__doc__ or "") for f in vars(speedups).values() if callable(f)
        ), speedup.name


def test_the_switch_reaches_the_fork_server_only_when_set(switch):
    assert speedups.fork_server_environment() == {}
    switch("-fork_server_gc_freeze")
    assert speedups.fork_server_environment() == {speedups.ENV: "-fork_server_gc_freeze"}
    from autograder.grading import executor

    assert "speedups.fork_server_environment()" in inspect.getsource(executor._start_fork_server)


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
    assert nbgrader.api.get_alembic_version is STOCK_ALEMBIC_VERSION


# --- one engine per URL ------------------------------------------------------------------------


def test_guard_gradebook_engines_nbgrader_still_makes_one_engine_per_gradebook_and_disposes_it_on_close():
    name = "gradebook_engines"
    assert major_minor("nbgrader") == (0, 9), revisit(name, f"nbgrader is {version('nbgrader')}")
    assert major_minor("sqlalchemy") == (2, 1), revisit(name, f"SQLAlchemy is {version('sqlalchemy')}")
    import sqlalchemy

    assert STOCK_CREATE_ENGINE is sqlalchemy.create_engine, revisit(
        name, "nbgrader.api.create_engine is not SQLAlchemy's create_engine"
    )
    init, close = inspect.getsource(Gradebook.__init__), inspect.getsource(Gradebook.close)
    assert "create_engine(db_url, echo=False, future=True)" in init, revisit(
        name, "Gradebook.__init__ no longer calls create_engine(db_url, echo=False, future=True) (keyword arguments)"
    )
    assert "self.engine.dispose()" in close, revisit(name, "Gradebook.close no longer calls engine.dispose()")
    assert list(inspect.signature(sqlalchemy.Engine.dispose).parameters) == ["self", "close"], revisit(
        name, "Engine.dispose's signature changed (the stand-in _keep_pool mirrors it)"
    )


def test_switched_off_gradebook_engines_leaves_create_engine_stock(url, switch):
    switch("-gradebook_engines")
    with faster_nbgrader():
        assert nbgrader.api.create_engine is STOCK_CREATE_ENGINE
        first, second = Gradebook(url()), Gradebook(url())
        assert first.engine is not second.engine
        first.close()
        second.close()
        assert common.jsonschema is not jsonschema  # the others stay on
    assert_stock_nbgrader()


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


def test_guard_gradebook_tables_once_nbgrader_still_calls_create_all_with_only_a_bind():
    name = "gradebook_tables_once"
    assert major_minor("nbgrader") == (0, 9), revisit(name, f"nbgrader is {version('nbgrader')}")
    assert major_minor("sqlalchemy") == (2, 1), revisit(name, f"SQLAlchemy is {version('sqlalchemy')}")
    assert "Base.metadata.create_all(bind=self.engine)" in inspect.getsource(Gradebook.__init__), revisit(
        name, "Gradebook.__init__ no longer calls Base.metadata.create_all(bind=self.engine)"
    )
    params = inspect.signature(type(nbgrader.api.Base.metadata).create_all).parameters
    assert list(params) == ["self", "bind", "tables", "checkfirst"], revisit(
        name, f"MetaData.create_all's parameters are now {list(params)}"
    )
    from sqlalchemy.sql.ddl import CheckFirst

    assert params["tables"].default is None and params["checkfirst"].default is CheckFirst.ALL, revisit(
        name, "MetaData.create_all's defaults changed (the shim passes a call with the default checkfirst on)"
    )
    assert CheckFirst(True) is CheckFirst.ALL, revisit(name, "checkfirst=True no longer means CheckFirst.ALL")
    assert "create_all" not in vars(nbgrader.api.Base.metadata), revisit(name, "something else shadows create_all")


def test_switched_off_gradebook_tables_once_leaves_create_all_stock(url, switch):
    switch("-gradebook_tables_once")
    with faster_nbgrader():
        assert "create_all" not in vars(nbgrader.api.Base.metadata)
        assert nbgrader.api.create_engine is not STOCK_CREATE_ENGINE  # the others stay on
    assert_stock_nbgrader()


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


def test_guard_schema_checked_once_nbgrader_still_validates_each_cell_through_the_jsonschema_module():
    name = "schema_checked_once"
    assert major_minor("nbgrader") == (0, 9), revisit(name, f"nbgrader is {version('nbgrader')}")
    assert major_minor("jsonschema")[0] == 4, revisit(name, f"jsonschema is {version('jsonschema')}")
    assert common.jsonschema is jsonschema, revisit(name, "nbgrader.nbgraderformat.common.jsonschema is not the module")
    assert "jsonschema.validate(cell.metadata['nbgrader'], self.schema)" in inspect.getsource(common), revisit(
        name, "nbgrader's validator no longer calls jsonschema.validate(metadata, schema) per cell"
    )
    assert list(inspect.signature(jsonschema.validate).parameters) == ["instance", "schema", "cls", "args", "kwargs"], (
        revisit(name, "jsonschema.validate's signature changed")
    )
    source = inspect.getsource(jsonschema.validate)
    assert "check_schema(schema)" in source and "best_match" in source, revisit(
        name, "jsonschema.validate no longer checks the schema and raises best_match (what the stand-in copies)"
    )


def test_switched_off_schema_checked_once_leaves_nbgraders_jsonschema_stock(switch):
    switch("-schema_checked_once")
    with faster_nbgrader():
        assert common.jsonschema is jsonschema
        assert nbgrader.api.create_engine is not STOCK_CREATE_ENGINE  # the others stay on
    assert_stock_nbgrader()


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


@pytest.mark.parametrize(
    "spoil",
    [_points_not_a_number, _required_key_missing, _two_errors_at_once],
    ids=["points not a number", "required key missing", "two errors at once"],
)
def test_invalid_cell_metadata_is_rejected_with_stock_nbgraders_exception_and_message(spoil):
    nb = notebook()
    grade_cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))
    spoil(grade_cell.metadata["nbgrader"])

    def rejection():
        with pytest.raises(Exception) as raised:  # noqa: PT011 - any refusal: its type and text are compared
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


# --- the alembic head read in-process ----------------------------------------------------------


def test_guard_alembic_head_in_process_gives_the_alembic_commands_answer(monkeypatch):
    name = "alembic_head_in_process"
    assert major_minor("nbgrader") == (0, 9), revisit(name, f"nbgrader is {version('nbgrader')}")
    assert major_minor("alembic")[0] == 1, revisit(name, f"alembic is {version('alembic')}")
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    stock = STOCK_ALEMBIC_VERSION()  # runs the `alembic heads` command
    assert stock and speedups.alembic_head() == stock, revisit(name, f"the command says {stock!r}")


def test_a_new_gradebook_is_stamped_with_the_same_version_with_the_speedup(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no `alembic` command: only the in-process head can answer
    with speedups.alembic_head_in_process(), Gradebook(f"sqlite:///{tmp_path / 'gb.db'}") as gb:
        stamped = gb.db.execute(nbgrader.api.text("SELECT version_num FROM alembic_version")).scalar()
    assert stamped == speedups.alembic_head()
    assert nbgrader.api.get_alembic_version is STOCK_ALEMBIC_VERSION


def test_switched_off_alembic_head_in_process_leaves_the_command(switch):
    switch("-alembic_head_in_process")
    with faster_nbgrader():
        assert nbgrader.api.get_alembic_version is STOCK_ALEMBIC_VERSION


# --- all together -----------------------------------------------------------------------------


def test_all_switched_off_faster_nbgrader_is_stock_nbgrader(url, switch):
    switch("off")
    with faster_nbgrader():
        assert_stock_nbgrader()
        with Gradebook(url()) as gb:
            gb.add_student("erin")
    assert_stock_nbgrader()


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
    with pytest.raises(RuntimeError, match="grading failed"), faster_nbgrader():  # noqa: PT012 - patches checked inside
        assert nbgrader.api.create_engine is not STOCK_CREATE_ENGINE
        assert common.jsonschema is not jsonschema
        raise RuntimeError("grading failed")
    assert_stock_nbgrader()


# --- jsonschema without its IRI grammar --------------------------------------------------------


def test_guard_no_iri_grammar_jsonschema_still_imports_rfc3987_syntax_only_for_format_checks():
    name = "no_iri_grammar"
    assert major_minor("jsonschema")[0] == 4, revisit(name, f"jsonschema is {version('jsonschema')}")
    import jsonschema._format as formats

    source = inspect.getsource(formats)
    assert "with suppress(ImportError):\n        from rfc3987_syntax import" in source, revisit(
        name,
        "jsonschema._format no longer imports rfc3987_syntax optionally (an ImportError is no longer 'not installed')",
    )
    # Formats are checked only with a FormatChecker, which neither nbformat nor nbgrader passes.
    for module in (common, nbformat.validator, nbformat.json_compat):
        assert "FormatChecker" not in inspect.getsource(module), revisit(name, f"{module.__name__} checks formats")


def _validate_in_a_fresh_process(switch_value: str) -> subprocess.CompletedProcess:
    """A grading command's start-up (startup.begin's speed-up), then nbformat and nbgrader's validation."""
    code = f"""
import sys
from autograder.grading import speedups
applied = speedups.apply("no_iri_grammar")
import nbformat
from nbgrader.nbgraderformat import MetadataValidator
nb = nbformat.read({str(NOTEBOOK)!r}, as_version=4)
nbformat.validate(nb)
MetadataValidator().validate_nb(nb)
bad = nbformat.from_dict(dict(nb))
bad.cells[0]["cell_type"] = "nonsense"
try:
    nbformat.validate(bad)
except nbformat.ValidationError as exc:
    rejected = str(exc).splitlines()[0]
print(applied, "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None, rejected)
"""
    env = {**os.environ, speedups.ENV: switch_value}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    )


def test_no_iri_grammar_gives_the_same_validation_and_the_switch_turns_it_off():
    on = _validate_in_a_fresh_process("on").stdout.split(" ", 2)
    off = _validate_in_a_fresh_process("-no_iri_grammar").stdout.split(" ", 2)
    assert on[:2] == ["True", "True"]  # applied: the module is planted as "not installed"
    assert off[:2] == ["False", "False"]  # switched off: jsonschema imported the real one
    assert on[2] == off[2]  # the same rejection, the same message


def test_no_iri_grammar_does_nothing_once_jsonschema_is_imported_and_undoes_itself():
    assert "jsonschema" in sys.modules
    with speedups.skip_rfc3987_syntax() as planted:
        assert planted is False
    with pytest.MonkeyPatch.context() as patch:
        for name in ("jsonschema", "rfc3987_syntax"):
            patch.delitem(sys.modules, name, raising=False)
        with speedups.skip_rfc3987_syntax() as planted:
            assert planted is True and sys.modules["rfc3987_syntax"] is None
        assert "rfc3987_syntax" not in sys.modules


# --- multiprocessing: submissions do not re-import __main__ ------------------------------------


def test_guard_submissions_skip_main_multiprocessing_still_prepares_children_the_same_way():
    name = "submissions_skip_main"
    assert sys.version_info[:2] in {(3, 11), (3, 12)}, revisit(name, f"Python is {sys.version.split()[0]}")
    import multiprocessing.popen_forkserver as popen_forkserver

    assert list(inspect.signature(STOCK_PREPARATION_DATA).parameters) == ["name"], revisit(
        name, "spawn.get_preparation_data's signature changed"
    )
    assert "spawn.get_preparation_data(process_obj._name)" in inspect.getsource(popen_forkserver), revisit(
        name, "the forkserver no longer asks spawn.get_preparation_data for a child's data by its name"
    )
    prepare = inspect.getsource(multiprocessing.spawn.prepare)
    assert "'init_main_from_name' in data" in prepare and "'init_main_from_path' in data" in prepare, revisit(
        name, "spawn.prepare no longer re-imports __main__ from these two keys"
    )


def test_submissions_skip_main_drops_main_for_submissions_only_and_the_switch_turns_it_off(
    switch, monkeypatch, tmp_path
):
    import types

    from autograder.grading.executor import PROCESS_NAME

    # A caller with a main script (an xdist worker's __main__ has none): stock data re-imports it.
    script = tmp_path / "grade_my_class.py"
    script.write_text("")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    stock = STOCK_PREPARATION_DATA(f"{PROCESS_NAME}-1")
    assert "init_main_from_path" in stock or "init_main_from_name" in stock
    speedups.revert("submissions_skip_main")  # the executor's tests may have applied it
    try:
        assert multiprocessing.spawn.get_preparation_data is STOCK_PREPARATION_DATA
        switch("-submissions_skip_main")
        assert speedups.apply("submissions_skip_main") is False
        assert multiprocessing.spawn.get_preparation_data is STOCK_PREPARATION_DATA
        switch("on")
        assert speedups.apply("submissions_skip_main") is True
        patched = multiprocessing.spawn.get_preparation_data
        mine = patched(f"{PROCESS_NAME}-1")
        assert {k: v for k, v in stock.items() if not k.startswith("init_main_from")} == mine
        assert patched("some-other-process") == STOCK_PREPARATION_DATA("some-other-process")
    finally:
        speedups.revert("submissions_skip_main")
    assert multiprocessing.spawn.get_preparation_data is STOCK_PREPARATION_DATA


# --- gc.freeze ---------------------------------------------------------------------------------


def test_guard_gc_freeze_the_interpreter_still_has_it():
    for name in ("gc_freeze", "fork_server_gc_freeze"):
        assert sys.version_info[:2] in {(3, 11), (3, 12)}, revisit(name, f"Python is {sys.version.split()[0]}")
        assert all(callable(getattr(gc, f, None)) for f in ("freeze", "unfreeze", "get_freeze_count")), revisit(
            name, "gc.freeze/unfreeze/get_freeze_count changed"
        )


def test_freeze_gc_freezes_and_the_switch_turns_it_off(switch):
    before = gc.get_freeze_count()
    try:
        switch("-gc_freeze")
        assert speedups.freeze_gc() is False
        assert gc.get_freeze_count() == before
        switch("on")
        keep = [object() for _ in range(10)]
        assert speedups.freeze_gc() is True
        assert gc.get_freeze_count() >= before + len(keep)
    finally:
        gc.unfreeze()


def _fork_server_preload(switch_value: str) -> list[str]:
    """What the fork server does on start: import preload; then its frozen count and working folder."""
    code = "import gc, os; import autograder.grading.preload; print(gc.get_freeze_count(), os.getcwd())"
    env = {**os.environ, speedups.ENV: switch_value}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
        cwd=project_root(),
    ).stdout.split()


def test_the_fork_servers_gc_freeze_and_the_switch_turns_it_off():
    frozen, cwd = _fork_server_preload("on")
    assert int(frozen) > 100_000 and cwd == "/"
    frozen, cwd = _fork_server_preload("-fork_server_gc_freeze")
    assert int(frozen) == 0 and cwd == "/"
