"""The submissions the benchmarks grade, built here: the benchmarks import nothing from tests/.

* `answered(release, solution, overrides)`: the release as a learner hands it in, its exercise
  cells filled in (the same as the test suite's helper in tests/support/).
* `WRONG_ANSWERS`: one plausible wrong answer for each lesson the grading benchmark uses (the
  test suite keeps its own, for every lesson, in tests/course/wrong_answers.py).
* `FLOODS`: the resource floods of floods.py — each the unsolved lesson-00 release with hostile
  code in its first exercise cell. The hostile code itself (TEMP_FLOOD, MEMORY_HOG, ...) is
  defined here once: the test corpus (tests/grading/corpus_*.py) builds its cases of the same
  names from it, since the benchmarks may import nothing from tests/.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

REPO = Path(__file__).resolve().parents[1]


def answered(
    release: nbformat.NotebookNode, solution: nbformat.NotebookNode, overrides: dict[str, str] | None = None
) -> nbformat.NotebookNode:
    """The release with its exercise cells answered from the solution (or `overrides` by
    grade_id); every other cell exactly as released, so nbgrader has nothing to restore."""
    answers = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in solution.cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }
    answers.update(overrides or {})
    nb = nbformat.from_dict(json.loads(nbformat.writes(release)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


@dataclass(frozen=True)
class WrongAnswer:
    solution_id: str  # the exercise cell it replaces
    source: str
    loses: tuple[str, ...]  # the test cells that lose their points (and only those)


WRONG_ANSWERS: dict[str, WrongAnswer] = {
    # Commits after every add: a failing item leaves the earlier ones behind.
    "00_foundations": WrongAnswer(
        solution_id="ex_add_products",
        source=(
            'async def add_products(Session, items: list[dict]) -> "list[Product]":\n'
            "    products = []\n"
            "    async with Session() as session:\n"
            "        for item in items:\n"
            "            product = Product(**item)\n"
            "            session.add(product)\n"
            "            await session.commit()\n"
            "            products.append(product)\n"
            "    return products\n"
        ),
        loses=("test_add_products",),
    ),
    # Commits in `finally`: a request that fails still commits its half-write.
    "01_session_dependency": WrongAnswer(
        solution_id="ex_get_db",
        source=(
            "async def get_db():\n"
            "    session = SessionLocal()\n"
            "    try:\n"
            "        yield session\n"
            "    finally:\n"
            "        await session.commit()\n"
            "        await session.close()\n"
        ),
        loses=("test_get_db", "test_tags_app"),
    ),
}


# ----------------------------------------------------------------------------- floods (lesson 00)
FLOOD_LESSON = "00_foundations"


def lesson_notebooks(lesson: str) -> dict[str, nbformat.NotebookNode]:
    """{"release", "solution"} of a lesson, from this repository (release: notebooks/)."""
    release = nbformat.read(REPO / "notebooks" / lesson / f"{lesson}.ipynb", as_version=4)
    solution = nbformat.read(REPO / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    return {"release": release, "solution": answered(release, solution)}


def cell(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def release_with(code: str, where: str = "ex_product_model") -> Callable[[dict], nbformat.NotebookNode]:
    """A builder: the unsolved release with `code` in one exercise cell."""

    def build(base: dict) -> nbformat.NotebookNode:
        nb = copy.deepcopy(base["release"])
        cell(nb, where).source = code
        return nb

    return build


def write_submission(root: Path, student: str, built, lesson: str = FLOOD_LESSON) -> None:
    """Put a built submission (a notebook, or raw bytes or text) where nbgrader looks for it."""
    path = root / "submitted" / student / lesson / f"{lesson}.ipynb"
    path.parent.mkdir(parents=True)
    if isinstance(built, bytes):
        path.write_bytes(built)
    elif isinstance(built, str):
        path.write_text(built)
    else:
        nbformat.write(built, path)


# --- hostile code, shared with the test corpus (tests/grading/corpus_*.py builds its cases from it)

CONNECT = """\
import asyncio, os, re, time
import asyncpg
from autograder.db.admin import asyncpg_params
_params = asyncpg_params(os.environ['DATABASE_URL'])
"""

# A sort that spills to temporary files (work_mem 64 kB), in 4 connections: ~1.3 GB of
# temporary files if nothing stops it. temp_file_limit (pinned to the role) cannot be lifted.
TEMP_FLOOD = (
    CONNECT
    + """\
_c = await asyncpg.connect(**_params)
for _sql in ('SET temp_file_limit = -1', 'ALTER ROLE CURRENT_USER SET temp_file_limit = -1',
             'ALTER ROLE CURRENT_USER RESET ALL'):  # (RESET ALL resets what the role may set, only)
    try:
        await _c.execute(_sql)
        print('DID', _sql)
    except Exception as exc:
        print('refused', _sql, type(exc).__name__)
_conns = [_c] + [await asyncpg.connect(**_params) for _ in range(3)]
_limits = {await c.fetchval('SHOW temp_file_limit') for c in _conns}
print('temp_file_limit', _limits)

async def _spill(c):
    await c.execute("SET work_mem = '64kB'")
    return await c.fetchval("SELECT count(*) FROM (SELECT g, repeat(md5(g::text), 16) AS pad "
                            "FROM generate_series(1, 600000) g ORDER BY pad) s")

_spilled = await asyncio.gather(*(_spill(c) for c in _conns), return_exceptions=True)
print([type(r).__name__ for r in _spilled])
"""
)

# One sort kept in memory (work_mem 4 GB): ~1.4 GiB of backend memory at 2.4 M rows if
# nothing stops it; the watchdog ends the backend at its memory cap. ROWS: put the count in.
MEMORY_HOG = (
    CONNECT
    + """\
_c = await asyncpg.connect(**_params)
await _c.execute("SET work_mem = '4GB'")
try:
    _sorted = await _c.fetchval("SELECT count(*) FROM (SELECT g, repeat(md5(g::text), 16) AS pad "
                                "FROM generate_series(1, ROWS) g ORDER BY pad) s")
except Exception as exc:
    _sorted = exc
print('sorted', _sorted)
"""
)

STATEMENT_TIMEOUT_LIFTED = (
    CONNECT
    + """\
_c = await asyncpg.connect(**_params)
await _c.execute('SET statement_timeout = 0')
await _c.execute("SET idle_in_transaction_session_timeout = 0")
await _c.fetchval('SELECT pg_sleep(3600)')
"""
)

CONNECTIONS_HELD = (
    CONNECT
    + """\
_held = []
for _ in range(20):
    try:
        _held.append(await asyncpg.connect(**_params))
    except Exception as exc:
        print('refused', type(exc).__name__)
print('holding', len(_held))
"""
)

# Every connection it may open kept busy on the CPU (lesson 04's storm keeps 15 active, so
# the connection limit cannot be lower): they share one CPU group, so the submissions beside
# it keep their speed.
BUSY_BACKENDS = (
    CONNECT
    + """\
_busy = []
for _ in range(16):
    try:
        _busy.append(await asyncpg.connect(**_params))
    except Exception:
        break
# (a set-returning function in the select list streams: no temporary file stops it early)
_work = [asyncio.ensure_future(c.fetchval('SELECT count(*) FROM (SELECT generate_series(1, 10000000000)) s'))
         for c in _busy]
await asyncio.sleep(5)
"""
)

# Files of 60 MiB (each under the file size limit) until the disk is full: in its own RAM
# folder, with a size limit, never the course's disk.
FILL_THE_FOLDER = """\
written = 0
try:
    for i in range(20):
        with open(f'/tmp/fill{i}', 'wb') as f:
            f.write(b'0' * (60 * 1024**2))
        written += 60
except OSError as exc:
    print('stopped after', written, 'MiB:', type(exc).__name__)
"""

RAISE_HUGE = "raise ValueError('x' * 8_000_000)"
SHOW_MANY = (
    "_ip = get_ipython()\n"
    "for _ in range(150):\n"
    "    try:\n"
    "        raise ValueError('x' * 8_000_000)\n"
    "    except ValueError:\n"
    "        _ip.showtraceback()\n"
)
FLOOD_ANSWERS = {
    "ex_product_model": SHOW_MANY + "class ShopBase(DeclarativeBase):\n    pass\n"
    "class _Huge:\n    def __getattr__(self, name):\n        " + RAISE_HUGE + "\n"
    "Product = _Huge()",
    "ex_session_factory": "def make_session_factory(engine):\n    " + RAISE_HUGE,
    "ex_add_products": "async def add_products(Session, items):\n    " + RAISE_HUGE,
}


def error_flood(base: dict) -> nbformat.NotebookNode:
    """Every exercise and every test raises an 8 MB exception; 40 more cells do too, and one
    cell shows 150 of them."""
    nb = copy.deepcopy(base["release"])
    for grade_id, source in FLOOD_ANSWERS.items():
        cell(nb, grade_id).source = source
    at = nb.cells.index(cell(nb, "ex_product_model")) + 1
    nb.cells[at:at] = [new_code_cell(RAISE_HUGE) for _ in range(40)]
    return nb


FLOODS: dict[str, Callable[[dict], nbformat.NotebookNode]] = {
    "huge_output": release_with("print('x' * 50_000_000)"),
    "error_output_flood": error_flood,
    "memory_hog": release_with("hog = bytearray(20 * 1024**3)"),
    "disk_fill": release_with("with open('big', 'wb') as f:\n    f.write(b'0' * (512 * 1024**2))"),
    "fill_the_folder": release_with(FILL_THE_FOLDER),
    "connection_flood": release_with(
        "import asyncpg, os\nfrom autograder.db.admin import asyncpg_params\nconns = []\n"
        "for _ in range(100):\n    conns.append(await asyncpg.connect(**asyncpg_params(os.environ['DATABASE_URL'])))"
    ),
    "db_temp_file_flood": release_with(TEMP_FLOOD),
    "db_work_mem_hog": release_with(MEMORY_HOG.replace("ROWS", "2400000")),
    "db_busy_backends": release_with(BUSY_BACKENDS),
    "db_connections_held": release_with(CONNECTIONS_HELD + "await asyncio.sleep(4)\n"),
    "db_statement_timeout_lifted": release_with(STATEMENT_TIMEOUT_LIFTED),
}
