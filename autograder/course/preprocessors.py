"""nbgrader preprocessors this course adds to the stock pipeline.

* `MarkExpectedFailures` (release): in the learner's copy an exercise is
  `raise NotImplementedError()` and its tests cannot pass yet. nbval runs the
  release notebooks too, so those cells carry nbval's `raises-exception` tag:
  every demonstration cell must run, unsolved exercises are expected to fail.
  Tags are not part of nbgrader's cell checksum, so grading is unaffected.

* `RedactHiddenTests` (feedback): stock nbgrader copies the executed test cells,
  hidden tests and their tracebacks included, into the learner's feedback
  (nbgrader issue #917). Here a test cell keeps only what the learner already
  saw (its visible part) and its verdict: passed, or the failure's message.
  Tracebacks are dropped because their context lines quote the hidden code.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor

EXPECTED_FAILURE_TAG = "raises-exception"
HIDDEN_NOTE = "# Hidden tests ran here; their code is not part of your feedback."


# NbGraderPreprocessor, not nbconvert's Preprocessor: nbgrader registers its
# preprocessors without enabling them, and only nbgrader's base is enabled by default.
class MarkExpectedFailures(NbGraderPreprocessor):
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and (utils.is_solution(cell) or utils.is_grade(cell)):
            tags = list(cell.metadata.get("tags", []))
            if EXPECTED_FAILURE_TAG not in tags:
                cell.metadata["tags"] = [*tags, EXPECTED_FAILURE_TAG]
        return cell, resources


def _verdict_output(text: str) -> NotebookNode:
    return from_dict({"output_type": "stream", "name": "stdout", "text": text})


def redact_test_cell(cell: NotebookNode) -> NotebookNode:
    """Return the test cell as the learner may see it: visible code + verdict."""
    stripper = ClearHiddenTests(enforce_metadata=False)
    had_hidden = stripper._remove_hidden_test_region(cell)
    if had_hidden:
        cell.source = cell.source.rstrip("\n") + ("\n" if cell.source.strip() else "") + HIDDEN_NOTE

    kept: list[NotebookNode] = []
    failure: str | None = None
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            # ename/evalue carry the check's message; the traceback quotes hidden code.
            failure = f"{output.ename}: {output.evalue}".rstrip(": ")
        elif output.output_type == "stream" and output.name == "stderr":
            continue  # warnings and logs raised inside hidden tests quote their source
        else:
            kept.append(output)
    if failure is not None:
        kept.append(_verdict_output(f"FAILED — {failure}\n"))
    else:
        kept.append(_verdict_output("PASSED\n"))
    cell.outputs = kept
    return cell


class RedactHiddenTests(NbGraderPreprocessor):
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            cell = redact_test_cell(cell)
        return cell, resources
