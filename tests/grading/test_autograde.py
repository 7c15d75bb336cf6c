"""nbgrader's own steps around our executor: what they still check while made faster."""

from __future__ import annotations

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.grading import autograde
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
