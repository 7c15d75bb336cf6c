"""Every lesson, graded for real: full marks, zero, and a wrong answer that loses exactly its test.

Two graders are exercised:

* stock `nbgrader autograde` (Jupyter kernels), on the foundation lessons 00-01 —
  proof that the course works with nbgrader exactly as instructors run it;
* the course's class grader (`autograder grade`: nbgrader's own sanitize and
  scoring around a sandboxed, forked executor), on every lesson in one parallel
  run — it is what makes grading all twelve lessons affordable in `make test`.

For each: the solution as a learner hands it in gets full marks; the untouched
release gets zero and the grader survives; a plausible wrong answer loses exactly
the listed test cells, and the feedback names the reason without ever showing
hidden test code (nbgrader #917).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nbformat
import pytest

from autograder.course.layout import lessons
from autograder.course.preprocessors import redact_test_cell
from autograder.grading.run import GradeOptions, GradeRun
from benchmarks.submissions import answered
from tests.course.wrong_answers import WRONG_ANSWERS
from tests.support.submissions import submit
from tests.support.workspace import Workspace

LESSONS = lessons()
STOCK_LESSONS = [lesson for lesson in LESSONS if lesson.startswith(("00_", "01_"))]
VARIANTS = ("solution", "untouched", "wrong")


def grade_cell(nb, grade_id):
    matches = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert matches, f"no cell with grade_id {grade_id!r}"
    return matches[0]


def variants(ws: Workspace, lesson: str) -> dict[str, nbformat.NotebookNode]:
    release, solution = ws.release(lesson), ws.solution(lesson)
    case = WRONG_ANSWERS[lesson]
    return {
        "solution": answered(release, solution),
        "untouched": release,
        "wrong": answered(release, solution, {case.solution_id: case.source}),
    }


def test_every_lesson_has_a_wrong_answer_case():
    assert sorted(WRONG_ANSWERS) == LESSONS


# ------------------------------------------------------------------ stock nbgrader
@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("stock-course"))
    for lesson in STOCK_LESSONS:
        for student, nb in variants(ws, lesson).items():
            ws.submit(student, lesson, nb)
            result = ws.autograde(lesson, student)
            assert result["success"], result.get("log")
    return ws


@pytest.mark.parametrize("lesson", STOCK_LESSONS)
def test_stock_nbgrader_grades_the_foundation_lessons(stock, lesson):
    grades = stock.grades(lesson, "solution")
    assert grades and all(g.score == g.max_score for g in grades.values()), grades
    score, max_score = stock.total(lesson, "untouched")
    assert max_score > 0 and score == 0
    lost = {g.grade_id for g in stock.grades(lesson, "wrong").values() if g.score < g.max_score}
    assert lost == set(WRONG_ANSWERS[lesson].loses)
    for student in ("wrong", "solution"):
        text = visible_text(stock.feedback_html(lesson, student))
        assert not leaked(stock, lesson, text), f"hidden test code in {student}'s feedback"
    text = visible_text(stock.feedback_html(lesson, "wrong"))
    for fragment in WRONG_ANSWERS[lesson].feedback_says:
        assert fragment in text


# ------------------------------------------------------------------ the class grader, every lesson
@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class-course")
    ws = Workspace(tmp_path_factory.mktemp("sources"))
    for lesson in LESSONS:
        for student, nb in variants(ws, lesson).items():
            submit(root, student, lesson, nb)
    report = GradeRun(root, GradeOptions(workers=2, feedback=True)).run()
    results = {(r.lesson, r.student): r for r in report.results}
    return root, ws, results


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_gets_full_marks(graded, lesson):
    _, _, results = graded
    result = results[(lesson, "solution")]
    assert result.max_score > 0 and result.score == result.max_score, (
        result.verdict,
        [(t.name, t.message[:300]) for t in result.tests if t.status != "pass"],
    )


@pytest.mark.parametrize("lesson", LESSONS)
def test_untouched_release_gets_zero_and_the_grader_survives(graded, lesson):
    _, _, results = graded
    result = results[(lesson, "untouched")]
    assert result.status == "graded" and result.max_score > 0 and result.score == 0, result.verdict


@pytest.mark.parametrize("lesson", LESSONS)
def test_wrong_answer_loses_the_matching_test_and_feedback_says_why(graded, lesson):
    root, ws, results = graded
    case = WRONG_ANSWERS[lesson]
    result = results[(lesson, "wrong")]
    lost = {t.name for t in result.tests if t.score < t.max_score}
    assert lost == set(case.loses), f"expected exactly {sorted(case.loses)} to lose points, lost: {sorted(lost)}"
    # The reason is in the failing test cells' own verdicts, not just somewhere on the page.
    autograded = nbformat.read(root / "autograded" / "wrong" / lesson / f"{lesson}.ipynb", as_version=4)
    verdicts = "".join(
        o.get("text", "") for grade_id in case.loses for o in redact_test_cell(grade_cell(autograded, grade_id)).outputs
    )
    for fragment in case.feedback_says:
        assert fragment in verdicts, f"the failing test's verdict should say {fragment!r}: {verdicts[:800]}"
    page = visible_text((root / "feedback" / "wrong" / lesson / f"{lesson}.html").read_text())
    assert "FAILED" in page


@pytest.mark.parametrize("lesson", LESSONS)
def test_feedback_never_shows_hidden_test_code(graded, lesson):
    root, ws, _ = graded
    for student in VARIANTS:
        page = visible_text((root / "feedback" / student / lesson / f"{lesson}.html").read_text())
        found = leaked(ws, lesson, page)
        assert not found, f"hidden test code leaked into {student}'s feedback: {found[:3]}"


# ------------------------------------------------------------------ helpers
def hidden_lines(nb) -> list[str]:
    lines: list[str] = []
    for cell in nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= 12:
                lines.append(line.strip())
    return lines


def leaked(ws: Workspace, lesson: str, text: str) -> list[str]:
    # Lines the learner sees anyway (e.g. `return {"ok": True}` in a demo) prove nothing.
    public = "\n".join(c.source for c in ws.release(lesson).cells)
    hidden = [line for line in hidden_lines(ws.solution(lesson)) if line not in public]
    assert hidden, "the lesson should have hidden tests"
    return [line for line in hidden if line in text]


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    """What a person reads in the feedback page (syntax-highlight spans joined)."""
    parser = _Text()
    parser.feed(page)
    return re.sub(r"[ \t]+", " ", html.unescape("".join(parser.parts)))
