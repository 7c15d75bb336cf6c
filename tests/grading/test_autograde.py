"""nbgrader's own steps around our executor: what they still check while made faster."""

from __future__ import annotations

import json

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.grading import autograde
from autograder.grading.autograde import sanitized_code_cells
from autograder.grading.demonstrations import demonstration_cells
from autograder.grading.run import GradeOptions, GradeRun
from autograder.paths import project_root

LESSON = "01_session_dependency"


class MakesTheNotebookInvalid(NbGraderPreprocessor):
    """A preprocessor that leaves a notebook nbformat must refuse."""

    def preprocess(self, nb, resources):
        nb.cells[0]["cell_type"] = "not-a-cell-type"
        return nb, resources


def test_a_notebook_made_invalid_by_a_preprocessor_is_still_refused(tmp_path, monkeypatch):
    # nbconvert now validates once after all preprocessors instead of after each:
    # an invalid result must still stop grading, with a sentence, and no points.
    stock_init = autograde.SplitAutograde.__init__

    def with_bad_step(self, *args, **kwargs):
        stock_init(self, *args, **kwargs)
        self.sanitize_preprocessors = [*self.sanitize_preprocessors, MakesTheNotebookInvalid]

    monkeypatch.setattr(autograde.SplitAutograde, "__init__", with_bad_step)
    folder = tmp_path / "submitted" / "ada" / LESSON
    folder.mkdir(parents=True)
    nbformat.write(
        nbformat.read(project_root() / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4),
        folder / f"{LESSON}.ipynb",
    )
    [result] = GradeRun(tmp_path, GradeOptions(workers=1)).run().results
    assert result.status == "error" and result.score == 0
    assert "nbgrader could not check the notebook's cells (NotebookValidationError" in result.verdict


def _notebook(path, cells):
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _code(cell_id, source, **metadata):
    return {"cell_type": "code", "id": cell_id, "source": source, "metadata": metadata, "outputs": []}


def test_demonstration_cells_come_from_the_source_and_never_include_nbgrader_cells(tmp_path):
    source = _notebook(
        tmp_path / "source.ipynb",
        [
            _code("bench", "measure()", autograder={"demo": True}),
            _code("answer", "def f(): ...", autograder={"demo": True}, nbgrader={"solution": True}),
            _code("plain", "x = 1"),
            _code("not-quite", "y = 2", autograder={"demo": "yes"}),
        ],
    )
    assert demonstration_cells(source) == frozenset({"bench"})
    assert demonstration_cells(tmp_path / "missing.ipynb") == frozenset()


def test_a_graded_run_leaves_out_demonstrations_nothing_later_needs_and_never_nbgrader_cells(tmp_path):
    sanitized = _notebook(
        tmp_path / "sanitized.ipynb",
        [
            _code("bench", "timings = measure()"),
            _code("helper-demo", "def csv_line(row):\n    return str(row)"),
            # a learner gave their answer cell a demonstration's id: it runs anyway
            _code("bench", "def f(): return csv_line(1)", nbgrader={"solution": True, "grade_id": "ex"}),
            _code("test", "assert f()", nbgrader={"grade": True, "grade_id": "t", "points": 1}),
        ],
    )
    everything, graded = sanitized_code_cells(sanitized)
    assert [i for i, _ in everything] == [0, 1, 2, 3] and graded == frozenset({3})
    kept, graded = sanitized_code_cells(sanitized, frozenset({"bench", "helper-demo", "test"}))
    # the answer reuses csv_line: its demonstration runs; the benchmark nobody reads does not
    assert [i for i, _ in kept] == [1, 2, 3] and graded == frozenset({3})
