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

from autograder.grading.databases import GradingDatabases
from autograder.grading.executor import Deadlines
from autograder.grading.run import EXPORTS_DIR, GradeOptions, GradeRun
from autograder.paths import project_root
from benchmarks.submissions import answered
from tests.course.wrong_answers import WRONG_ANSWERS
from tests.grading import corpus_database, corpus_outputs, corpus_rendering, corpus_sandbox
from tests.grading.corpus import CASES as FIRST_ROUND
from tests.grading.corpus import LESSON
from tests.support.submissions import submit

# Round two (issue 11): one module per class of hole, each holding its own cases.
CASES = [*FIRST_ROUND, *corpus_sandbox.CASES, *corpus_database.CASES, *corpus_outputs.CASES, *corpus_rendering.CASES]

ROOT_ONLY = {"fork_bomb"}  # without a uid of its own the process limit cannot apply
ESCAPES = [Path("/work/escape.txt"), Path("/etc/escape.txt"), Path("/root/escape.txt")]


def _bases():
    solution = nbformat.read(project_root() / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    release = nbformat.read(project_root() / "notebooks" / LESSON / f"{LESSON}.ipynb", as_version=4)
    wrong_case = WRONG_ANSWERS[LESSON]
    return {
        "solution": answered(release, solution),
        "release": release,
        "wrong": answered(release, solution, {wrong_case.solution_id: wrong_case.source}),
        "source": solution,
    }


def _cases():
    return [c for c in CASES if os.geteuid() == 0 or c.name not in ROOT_ONLY]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus-course")
    bases = _bases()
    for case in _cases():
        submit(root, case.name, LESSON, case.build(bases))
    options = GradeOptions(workers=2, deadlines=Deadlines(cell=6.0, notebook=90.0, grace=2.0))
    # What class B's cases look for: a secret in the grader's environment, another checkout.
    other = Path(corpus_sandbox.OTHER_CHECKOUT)
    other.mkdir(parents=True, exist_ok=True)
    (other / "answers.txt").write_text("another course's answers\n")
    os.environ[corpus_sandbox.GRADER_SECRET_NAME] = corpus_sandbox.GRADER_SECRET
    try:
        report = GradeRun(root, options).run()
    finally:
        os.environ.pop(corpus_sandbox.GRADER_SECRET_NAME, None)
        (other / "answers.txt").unlink()
        other.rmdir()
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
        f"{[(t.name, t.status, t.message[:120]) for t in result.tests]}"
    )
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
    printed = "".join(
        o.get("text", "")
        for c in autograded.cells
        if c.cell_type == "code" and not c.metadata.get("nbgrader", {}).get("grade")
        for o in c.get("outputs", [])
    )
    assert len(printed) > 0, "the reading cell ran and printed what it found"
    leaked = [h for h in hidden if h in printed]
    assert not leaked, f"hidden test lines were read back: {leaked[:3]}"
    exported = (root / EXPORTS_DIR / LESSON / "read_hidden_tests" / "results.gradescope.json").read_text()
    assert not [h for h in hidden if h in exported]


def test_rendered_cases_are_stored_with_no_active_content(graded):
    # Issue 11 (class F, HTML): formgrader renders the stored autograded notebook for the instructor.
    root, report, results = graded
    for case in corpus_rendering.CASES:
        stored = root / "autograded" / case.name / LESSON / f"{LESSON}.ipynb"
        assert corpus_rendering.active_content(stored) == [], case.name


def test_the_running_test_cannot_be_read_back(graded):
    # Issue 11 (class D): read from linecache and the frames while the test runs, printed and
    # quoted by a failing hidden check. A line escaped (once or more, in a repr or JSON)
    # counts as leaked too: backslashes are left out of the comparison.
    root, report, results = graded
    from autograder.grading import redact

    solution, release = _bases()["source"], _bases()["release"]
    inside, _ = redact.hidden_regions(c.source for c in solution.cells)
    public = "\n".join(c.source for c in release.cells)
    hidden = [h for h in inside if len(h) >= 16 and h not in public]
    name = "read_the_running_test"
    autograded = nbformat.read(root / "autograded" / name / LESSON / f"{LESSON}.ipynb", as_version=4)
    shown = json.dumps([c.get("outputs", []) for c in autograded.cells if c.cell_type == "code"])
    assert "_peek" in shown or len(shown) > 1000, "the reading function ran and printed what it found"
    out = root / EXPORTS_DIR / LESSON / name
    for text in (
        shown,
        *(p.read_text() for p in (out / "result.json", out / "results.gradescope.json", out / "results.exercism.json")),
    ):
        plain = text.replace("\\", "")
        leaked = [h for h in hidden if h.replace("\\", "") in plain]
        assert not leaked, f"hidden test lines were read back: {leaked[:3]}"


def _everything_written(root: Path) -> str:
    """Every output and export of the run, as text."""
    texts = []
    for path in sorted((root / "autograded").rglob("*.ipynb")) + sorted((root / EXPORTS_DIR).rglob("*.json")):
        texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def test_no_case_reached_anything_outside_its_sandbox(graded):
    root, report, results = graded
    written = _everything_written(root)
    reached = sorted(
        {
            line.strip()
            for line in written.replace("\\n", "\n").splitlines()
            if corpus_sandbox.MARKER in line and "print(" not in line
        }
    )
    if os.geteuid() == 0:
        assert not reached, f"a submission reached what the sandbox should keep from it: {reached}"
    assert corpus_sandbox.GRADER_SECRET not in written
