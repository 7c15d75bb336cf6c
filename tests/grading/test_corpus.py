"""The adversarial corpus, graded in one class run with legitimate submissions.

For every case: the grader survives, the case has a complete result whose
verdict names what happened, and it gets no point it did not earn; the
legitimate submissions graded alongside get exactly their scores.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import nbformat
import pytest

from autograder.course.workspace import answered
from autograder.db.url import project_root
from autograder.grading.databases import GradingDatabases
from autograder.grading.executor import Deadlines
from autograder.grading.run import EXPORTS_DIR, GradeOptions, GradeRun
from tests.course.wrong_answers import WRONG_ANSWERS
from tests.grading.corpus import CASES, LESSON

ROOT_ONLY = {"fork_bomb"}  # without a uid of its own the process limit cannot apply
ESCAPES = [Path("/work/escape.txt"), Path("/etc/escape.txt"), Path("/root/escape.txt")]


def _bases():
    solution = nbformat.read(project_root() / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    release = nbformat.read(project_root() / "notebooks" / LESSON / f"{LESSON}.ipynb", as_version=4)
    wrong_case = WRONG_ANSWERS[LESSON]
    return {"solution": answered(release, solution), "release": release,
            "wrong": answered(release, solution, {wrong_case.solution_id: wrong_case.source}),
            "source": solution}


def _cases():
    return [c for c in CASES if os.geteuid() == 0 or c.name not in ROOT_ONLY]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus-course")
    bases = _bases()
    for case in _cases():
        folder = root / "submitted" / case.name / LESSON
        folder.mkdir(parents=True)
        built = case.build(bases)
        path = folder / f"{LESSON}.ipynb"
        if isinstance(built, bytes):
            path.write_bytes(built)
        elif isinstance(built, str):
            path.write_text(built)
        else:
            nbformat.write(built, path)
    options = GradeOptions(workers=2, deadlines=Deadlines(cell=6.0, notebook=90.0, grace=2.0))
    report = GradeRun(root, options).run()
    return root, report, {r.student: r for r in report.results}


def test_there_are_at_least_thirty_hostile_or_broken_cases():
    assert len([c for c in CASES if not c.name.startswith("good_")]) >= 30


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c.name)
def test_each_case_gets_a_complete_result_naming_what_happened_and_no_unearned_points(graded, case):
    root, report, results = graded
    result = results.get(case.name)
    assert result is not None, f"{case.name} has no result: the run lost it"
    on_disk = json.loads((root / EXPORTS_DIR / LESSON / case.name / "result.json").read_text())
    assert on_disk["score"] == result.score
    assert case.min_score <= result.score <= case.max_score, (
        f"{case.name} scored {result.score} (allowed {case.min_score}..{case.max_score}): {result.verdict} "
        f"{[(t.name, t.status, t.message[:120]) for t in result.tests]}")
    text = result.verdict + " " + " ".join(t.message for t in result.tests)
    for fragment in case.says:
        assert fragment in text, f"{case.name}: the verdict should say {fragment!r}; it says: {text[:600]}"
    assert result.max_score == 8.0


def test_the_gradebook_agrees_with_every_result(graded):
    from nbgrader.api import Gradebook

    root, report, results = graded
    with Gradebook(f"sqlite:///{root / '.course' / 'gradebook.db'}") as gb:
        for student, result in results.items():
            assert gb.find_submission(LESSON, student).score == pytest.approx(result.score), student


def test_nothing_escaped_and_no_database_was_left_behind(graded):
    for path in ESCAPES:
        assert not path.exists(), f"a submission wrote {path}"

    async def names():
        dbs, cluster = GradingDatabases.open_for_run()
        await dbs.connect()
        try:
            return await dbs.names()
        finally:
            await dbs.close()
            if cluster is not None:
                cluster.release()

    # Other graders may be running on this machine: only this run's databases must be gone.
    mine = [n for n in asyncio.run(names()) if n.startswith(f"grade_{os.getpid()}_")]
    assert mine == []


def test_hidden_tests_cannot_be_read_back(graded):
    root, report, results = graded
    solution = _bases()["source"]
    hidden = []
    for cell in solution.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= 16:
                hidden.append(line.strip())
    public = "\n".join(c.source for c in _bases()["release"].cells)
    hidden = [h for h in hidden if h not in public]
    assert hidden
    autograded = nbformat.read(root / "autograded" / "read_hidden_tests" / LESSON / f"{LESSON}.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in autograded.cells if c.cell_type == "code"
                      and not c.metadata.get("nbgrader", {}).get("grade") for o in c.get("outputs", []))
    assert len(printed) > 0, "the reading cell ran and printed what it found"
    leaked = [h for h in hidden if h in printed]
    assert not leaked, f"hidden test lines were read back: {leaked[:3]}"
    exported = (root / EXPORTS_DIR / LESSON / "read_hidden_tests" / "results.gradescope.json").read_text()
    assert not [h for h in hidden if h in exported]
