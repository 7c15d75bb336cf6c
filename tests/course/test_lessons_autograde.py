"""The real nbgrader pipeline on the real lessons.

For every lesson: the solution submitted as-is gets full marks; the untouched
release gets zero for the exercises and the grader does not crash; a plausible
wrong answer loses exactly the matching test's points, and the feedback names
the reason without ever showing hidden test code (nbgrader #917).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from autograder.course.layout import lessons
from autograder.course.workspace import Workspace
from tests.course.wrong_answers import WRONG_ANSWERS

LESSONS = lessons()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return Workspace(tmp_path_factory.mktemp("course"))


def grade_cell(nb, grade_id):
    matches = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    assert matches, f"no cell with grade_id {grade_id!r}"
    return matches[0]


def test_every_lesson_has_a_wrong_answer_case():
    assert sorted(WRONG_ANSWERS) == LESSONS


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_gets_full_marks(ws, lesson):
    ws.submit("solution", lesson, ws.solution(lesson))
    result = ws.autograde(lesson, "solution")
    assert result["success"], result.get("log")
    grades = ws.grades(lesson, "solution")
    lost = {g.grade_id: (g.score, g.max_score) for g in grades.values() if g.score != g.max_score}
    assert not lost, f"the solution lost points in {lost}"
    assert grades, "the lesson has no graded cells"


@pytest.mark.parametrize("lesson", LESSONS)
def test_untouched_release_gets_zero_and_the_grader_survives(ws, lesson):
    ws.submit("untouched", lesson, ws.release(lesson))
    result = ws.autograde(lesson, "untouched")
    assert result["success"], result.get("log")
    score, max_score = ws.total(lesson, "untouched")
    assert max_score > 0 and score == 0


@pytest.mark.parametrize("lesson", LESSONS)
def test_wrong_answer_loses_the_matching_test_and_feedback_says_why(ws, lesson):
    case = WRONG_ANSWERS[lesson]
    nb = ws.solution(lesson)
    grade_cell(nb, case.solution_id).source = case.source
    ws.submit("wrong", lesson, nb)
    assert ws.autograde(lesson, "wrong")["success"]
    grades = ws.grades(lesson, "wrong")
    lost = {g.grade_id for g in grades.values() if g.score < g.max_score}
    assert lost == set(case.loses), f"expected exactly {sorted(case.loses)} to lose points, lost: {sorted(lost)}"
    text = visible_text(ws.feedback_html(lesson, "wrong"))
    for fragment in case.feedback_says:
        assert fragment in text, f"feedback should say {fragment!r}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_feedback_never_shows_hidden_test_code(ws, lesson):
    # Grade a failing and a passing submission, then look for every hidden line.
    # Lines the learner sees anyway (e.g. `return {"ok": True}` in a demo) prove nothing.
    public = "\n".join(c.source for c in ws.release(lesson).cells)
    hidden = [line for line in hidden_lines(ws.solution(lesson)) if line not in public]
    assert hidden, "the lesson should have hidden tests"
    for student in ("wrong", "solution"):
        text = visible_text(ws.feedback_html(lesson, student))
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"hidden test code leaked into {student}'s feedback: {leaked[:3]}"


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
