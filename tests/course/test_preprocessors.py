"""The course's own nbgrader preprocessors added for issue 11 (F: HTML, G: pasted answer cells).

End to end (a class run, chromium): tests/grading/corpus_rendering.py and
tests/browser/test_feedback_sanitised.py.
"""

from __future__ import annotations

import copy
import glob

import nbformat
import pytest
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.preprocessors import DeduplicateIds

from autograder.course.api import load_config
from autograder.course.preprocessors import (
    KeepOnePastedAnswer,
    SanitizeOutputs,
    with_outputs_sanitised,
    with_pasted_answers_kept,
)
from autograder.paths import project_root
from tests.grading.corpus_rendering import active_markup


def _display(data: dict) -> nbformat.NotebookNode:
    return new_output("display_data", data={"text/plain": "<object>", **data})


def _sanitised(*outputs) -> list:
    cell = nbformat.from_dict(
        {"cell_type": "code", "source": "x", "metadata": {}, "execution_count": None, "outputs": list(outputs)}
    )  # not validated: odd outputs too
    cell, _ = SanitizeOutputs().preprocess_cell(cell, {}, 0)
    return cell.outputs


def _live(text: str) -> list[str]:
    """Active markup in `text` read as HTML, or as markdown rendered to HTML."""
    return active_markup(text) + active_markup(markdown2html_mistune(text))


@pytest.mark.parametrize(
    "html",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<a href=' jAvA&#09;script:alert(1)'>x</a>",
        "<iframe srcdoc='<script>alert(1)</script>'></iframe>",
        (
            "<svg><a xlink:href='javascript:alert(1)'><text>t</text></a>"
            "<animate attributeName=href to='javascript:alert(1)'/></svg>"
        ),
        "<details open ontoggle=alert(1)>x</details>",
    ],
)
def test_html_outputs_lose_scripts_handlers_and_javascript_urls(html):
    assert _live(html)  # the check sees the payload
    [output] = _sanitised(_display({"text/html": html}))
    assert _live(output.data["text/html"]) == [], output.data["text/html"]


def test_ordinary_tables_text_and_images_are_kept():
    table = (
        '<table border="1" class="dataframe"><thead><tr><th>a</th></tr></thead>'
        '<tbody><tr><td style="color: red;">1</td></tr></tbody></table>'
    )
    [output] = _sanitised(_display({"text/html": table, "image/png": "iVBORw0KGgo="}))
    assert output.data["text/html"] == table
    assert output.data["image/png"] == "iVBORw0KGgo="


def test_svg_keeps_its_shapes_and_loses_its_handlers():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="alert(1)">'
        '<script>alert(2)</script><rect width="5" height="5" fill="teal"/></svg>'
    )
    [output] = _sanitised(_display({"image/svg+xml": svg}))
    cleaned = output.data["image/svg+xml"]
    assert _live(cleaned) == []
    assert '<rect width="5" height="5" fill="teal">' in cleaned and 'viewBox="0 0 10 10"' in cleaned


def test_script_only_mimetypes_are_removed():
    [output] = _sanitised(
        _display({"application/javascript": "alert(1)", "application/vnd.jupyter.widget-view+json": {"model_id": "x"}})
    )
    assert set(output.data) == {"text/plain"}


def test_markdown_with_active_content_is_replaced_by_its_cleaned_html():
    cell = new_markdown_cell("notes <img src=x onerror=alert(1)>\n\n[x](<javascript:alert(1)>)\n\n    code\n\n    more")
    cell, _ = SanitizeOutputs().preprocess_cell(cell, {}, 0)
    assert _live(cell.source) == []
    assert cell.source.startswith("<div>") and "\n\n" not in cell.source  # one HTML block
    [output] = _sanitised(_display({"text/markdown": "<script>alert(1)</script>"}))
    assert _live(output.data["text/markdown"]) == []


def test_lesson_prose_is_left_exactly_as_written():
    """Markdown is rewritten only when bleach removes something: no lesson cell is (400 of them)."""
    sanitiser, cells = SanitizeOutputs(), 0
    for path in sorted(glob.glob(str(project_root() / "solutions" / "*" / "*.ipynb"))):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                cells += 1
                assert sanitiser.inert_markdown(cell.source) == cell.source, (path, cell.source[:120])
    assert cells > 100


def test_sanitising_is_idempotent_and_the_notebook_stays_valid():
    nb = new_notebook(
        cells=[
            new_markdown_cell("<b onclick=alert(1)>hi</b>"),
            new_code_cell(
                "x",
                outputs=[
                    _display(
                        {
                            "text/html": "<script>x</script><table><tr><td>1</td></tr></table>",
                            "application/javascript": "x",
                        }
                    )
                ],
            ),
        ]
    )
    once, _ = SanitizeOutputs().preprocess(copy.deepcopy(nb), {})
    twice, _ = SanitizeOutputs().preprocess(copy.deepcopy(once), {})
    assert once == twice
    nbformat.validate(once)


# --- G: copy-pasted answer cells -----------------------------------------------------------


def _nbgrader_cell(grade_id: str, *, solution: bool, grade: bool, source: str = "pass"):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {
        "grade_id": grade_id,
        "solution": solution,
        "grade": grade,
        "locked": not solution,
        "schema_version": 3,
        "task": False,
        **({"points": 1} if grade else {}),
    }
    return cell


def _prepare(cells):
    nb = new_notebook(cells=cells)
    nb, _ = KeepOnePastedAnswer().preprocess(nb, {})
    return DeduplicateIds().preprocess(nb, {})[0]


def test_a_pasted_answer_cell_becomes_plain_code_and_the_last_copy_keeps_the_id():
    first = _nbgrader_cell("ex", solution=True, grade=False, source="def f(): return 1")
    pasted = _nbgrader_cell("ex", solution=True, grade=False, source="def f(): return 2")
    nb = _prepare([first, pasted, _nbgrader_cell("test_ex", solution=False, grade=True)])
    assert "nbgrader" not in nb.cells[0].metadata and nb.cells[0].source == "def f(): return 1"
    assert nb.cells[1].metadata.nbgrader["grade_id"] == "ex"
    # nbgrader's OverwriteCells reads grade_id from every nbgrader dict: none may be left empty.
    assert all("grade_id" in c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata)


@pytest.mark.parametrize(
    "claimants",
    [
        [("test_ex", False, True), ("test_ex", False, True)],  # a fake test cell claiming a test's id
        [("test_ex", True, False), ("test_ex", False, True)],  # an answer cell claiming a test's id
    ],
)
def test_ids_shared_with_test_cells_are_left_to_nbgrader(claimants):
    cells = [_nbgrader_cell(gid, solution=sol, grade=grade) for gid, sol, grade in claimants]
    nb = new_notebook(cells=copy.deepcopy(cells))
    nb, _ = KeepOnePastedAnswer().preprocess(nb, {})
    assert [c.metadata for c in nb.cells] == [c.metadata for c in cells]  # unchanged: refused as before


def test_the_steps_are_wired_into_every_autograde_and_the_feedback():
    from nbgrader.converters import Autograde

    from autograder.grading.autograde import SplitAutograde

    config = load_config()
    sanitize = config.Autograde.sanitize_preprocessors
    assert sanitize.index(KeepOnePastedAnswer) == sanitize.index(DeduplicateIds) - 1
    assert config.Autograde.autograde_preprocessors[-1] is SanitizeOutputs
    assert config.GenerateFeedback.preprocessors[-1] is SanitizeOutputs
    assert config.HTMLExporter.preprocessors == [SanitizeOutputs]
    # without the course config too (the class grader adds them itself), and only once
    grader = SplitAutograde()
    assert grader.sanitize_preprocessors.count(KeepOnePastedAnswer) == 1
    assert grader.autograde_preprocessors.count(SanitizeOutputs) == 1
    default = Autograde.class_traits()["sanitize_preprocessors"].default()
    assert with_pasted_answers_kept(with_pasted_answers_kept(default)) == with_pasted_answers_kept(default)
    assert with_outputs_sanitised(with_outputs_sanitised([])) == [SanitizeOutputs]


def test_odd_outputs_do_not_stop_the_sanitiser():
    odd = [
        nbformat.from_dict({"output_type": "display_data", "metadata": {}}),  # no data
        nbformat.from_dict(
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"text/html": {"not": "text"}, "text/markdown": 3, "text/plain": "ok"},
            }
        ),
        nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": "<script>x</script>"}),
    ]
    outputs = _sanitised(*odd)
    assert len(outputs) == 3 and outputs[1].data == {"text/plain": "ok"}


def test_markdown_verdicts_are_cached_per_run_and_the_cache_is_bounded():
    from autograder.course import preprocessors

    sanitiser = SanitizeOutputs()
    active = "<img src=x onerror=alert(1)>"
    assert sanitiser.inert_markdown(active) == sanitiser.inert_markdown(active) != active
    for i in range(preprocessors._MARKDOWN_CACHE_SIZE + 10):
        sanitiser.inert_markdown(f"note {i}")
    assert len(preprocessors._MARKDOWN_CACHE) <= preprocessors._MARKDOWN_CACHE_SIZE
    assert sanitiser.inert_markdown(active + " ") != active + " "  # still checked after eviction
