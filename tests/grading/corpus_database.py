"""Corpus cases (see corpus.py for the shape of a case): database.

The hostile code attacks the grading server from the submission's own role (its URL is
in DATABASE_URL; the other submissions of the run are `grade_<grader pid>_<n>`, lesson
templates `course_tpl_<lesson>`). Two kinds of case:

* `db_*` on the unsolved release: the attack runs and holds on (every point would be
  unearned); the good submissions graded in the same run must keep their exact scores.
* `db_*_checked` on the solution: the attack runs, then the cell ends the process
  (`os._exit`, so every test is lost) if the attack got anything. Their full score is
  the proof, inside a class run, that the defence held.

Every attack is bounded (rows, seconds) so that a broken defence cannot take the
machine down: the memory hog would stop at ~1.4 GiB, the temporary-file flood at
~1.3 GB.
"""

from __future__ import annotations

from autograder.course.layout import lessons
from autograder.paths import project_root
from tests.grading.corpus import FULL, Case, release_with, solution_with

CONNECT = """\
import asyncio, os, re, time
import asyncpg
from autograder.db.admin import asyncpg_params
_params = asyncpg_params(os.environ['DATABASE_URL'])
"""

# Every database but its own this submission could name: its neighbours (made before and
# after it), every lesson's template, the server's own.
NEIGHBOURS = (
    CONNECT
    + f"""\
_pid, _n = re.match(r'grade_(\\d+)_(\\d+)$', _params['database']).groups()
_targets = [f'grade_{{_pid}}_{{k}}' for k in range(max(1, int(_n) - 8), int(_n) + 12) if k != int(_n)]
_targets += [f'course_tpl_{{lesson}}' for lesson in {lessons(project_root())!r}]
_targets += ['postgres', 'template1', 'template0']
_inside = []
_end = time.monotonic() + SECONDS
while time.monotonic() < _end:
    for _db in _targets:
        try:
            _inside.append(await asyncpg.connect(**{{**_params, 'database': _db, 'timeout': 1}}))
        except Exception:
            pass
    await asyncio.sleep(0.02)
print('got into', sorted({{c._params.database for c in _inside}}))
"""
)

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
# nothing stops it; the watchdog ends the backend at its memory cap.
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


def _checked(attack: str, got_something: str) -> str:
    """The attack, then the process ends (every test lost) if `got_something` is true."""
    return attack + f"if {got_something}:\n    print('THE ATTACK GOT THROUGH', flush=True)\n    os._exit(7)\n"


CASES: list[Case] = [
    # A. other submissions' databases and the lesson templates: nothing gets in, nothing is held
    Case(
        "db_neighbours_and_templates",
        release_with(NEIGHBOURS.replace("SECONDS", "4.5") + "await asyncio.sleep(0.5)\n"),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case(
        "db_neighbours_and_templates_checked",
        solution_with(_checked(NEIGHBOURS.replace("SECONDS", "2.5"), "_inside"), "ex_product_model"),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
    # E. limits the submission cannot lift
    Case("db_temp_file_flood", release_with(TEMP_FLOOD), 0.0, ("0 of 3 tests passed",)),
    Case(
        "db_temp_file_flood_checked",
        solution_with(
            _checked(TEMP_FLOOD, "_limits != {'64MB'} or any(isinstance(r, int) for r in _spilled)"), "ex_product_model"
        ),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
    Case(
        "db_work_mem_hog",
        release_with(MEMORY_HOG.replace("ROWS", "2400000")),
        0.0,
        ("0 of 3 tests passed", "MiB of server memory"),
    ),
    Case(
        "db_work_mem_hog_checked",
        solution_with(_checked(MEMORY_HOG.replace("ROWS", "1200000"), "isinstance(_sorted, int)"), "ex_product_model"),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
    Case("db_statement_timeout_lifted", release_with(STATEMENT_TIMEOUT_LIFTED), 0.0, ("cell-timeout",)),
    Case("db_busy_backends", release_with(BUSY_BACKENDS), 0.0, ("0 of 3 tests passed",)),
    Case(
        "db_connections_held",
        release_with(CONNECTIONS_HELD + "await asyncio.sleep(4)\n"),
        0.0,
        ("0 of 3 tests passed",),
    ),
    Case(
        "db_connections_held_checked",
        solution_with(
            _checked(CONNECTIONS_HELD, "len(_held) > 16") + "for _h in _held:\n    await _h.close()\n",
            "ex_product_model",
        ),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
]
