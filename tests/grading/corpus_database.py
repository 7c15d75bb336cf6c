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
from benchmarks.submissions import (
    BUSY_BACKENDS,
    CONNECT,
    CONNECTIONS_HELD,
    MEMORY_HOG,
    STATEMENT_TIMEOUT_LIFTED,
    TEMP_FLOOD,
)
from tests.grading.corpus import FULL, Case, release_with, solution_with

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
