"""Reading a cell for the names it sets and reads (autograder/grading/demonstrations.py)."""

from __future__ import annotations

import pytest

from autograder.grading.demonstrations import CodeCell, bound_at_top_level, parse, reads, skippable


def tree(source: str):
    parsed = parse(source)
    assert parsed is not None
    return parsed


def test_names_set_at_top_level_and_not_inside_functions():
    assert bound_at_top_level(tree("timings = measure()\nasync def helper():\n    local = 1\nimport a.b as c")) == {
        "timings",
        "helper",
        "c",
    }


@pytest.mark.parametrize(
    ("source", "read"),
    [
        ("def show(rows):\n    for row in rows:\n        print(row, timings)", {"print", "timings"}),
        ("[r for r in data if r > limit]", {"data", "limit"}),
        ("try:\n    pass\nexcept E as exc:\n    log(exc)", {"E", "log"}),
        ("async with Probe(app) as probe:\n    ex = await probe.request()", {"Probe", "app"}),
        ("%time x = slow()\n!ls", {"slow"}),
        ("for i in range(n):\n    total = i\nprint(total)", {"range", "n", "print", "total"}),  # may not run
        ("rows[i] = x", {"rows", "i", "x"}),
        ("def f(x=DEFAULT):\n    global counter\n    counter += x", {"DEFAULT", "counter"}),
    ],
)
def test_names_read_from_the_notebook_before_the_cell_sets_them(source, read):
    assert reads(tree(source)) == read


def cells(*sources: tuple[str, str]) -> list[CodeCell]:
    return [CodeCell(cell_id, source, nbgrader=cell_id.startswith("ex")) for cell_id, source in sources]


def test_a_demonstration_nobody_reads_is_skipped_and_one_a_later_cell_reads_is_kept():
    notebook = cells(
        ("bench", "timings = measure()"),
        ("helper", "def csv_line(row):\n    return str(row)"),
        ("plot", "chart(timings)"),  # a demonstration reading another: both skipped together
        ("ex", "def answer():\n    return csv_line(1)"),
    )
    assert skippable(notebook, frozenset({"bench", "helper", "plot"})) == {0, 2}


def test_a_name_set_again_before_it_is_read_frees_the_demonstration():
    notebook = cells(("demo", "engine = make(broken=True)"), ("setup", "engine = make()"), ("ex", "use(engine)"))
    assert skippable(notebook, frozenset({"demo"})) == {0}


def test_a_cell_that_cannot_be_read_keeps_every_demonstration():
    notebook = cells(("demo", "x = 1"), ("ex", "def broken(:\n"))
    assert skippable(notebook, frozenset({"demo"})) == frozenset()
