"""Corpus cases (see corpus.py for the shape of a case): rendering.

Class F (HTML): outputs and markdown that would run script where the notebook is
rendered as HTML (the learner's feedback, formgrader for the logged-in instructor).
Each payload, if it ran, sets `window.__pwned` and the page title; the browser test
(tests/browser/test_feedback_sanitised.py) opens what the grader wrote in chromium.
Grading is unaffected: the solution with the payloads keeps its full marks.

Class G (copy-pasted answer cells): JupyterLab's copy/paste keeps a cell's nbgrader
metadata, so a pasted answer cell shares its grade_id with the original. Correct work
with a pasted cell gets its full marks (it used to be "not graded", 0/8).
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell

from tests.grading.corpus import EXERCISES, FULL, Case, _cell, solution_with

# `void 0`: a javascript: URL whose value is a string would replace the page with that string.
PWN = "window.__pwned = '{0}'; document.title = 'pwned {0}'; void 0"
TABLE_ID = "plain-table"

# What a learner cell displays: every way an output reaches HTML. Published through the
# shell's display publisher (`IPython.display.display` prints reprs in the grader's kernel).
BUNDLES: list[dict[str, str]] = [
    {"text/html": f"<script>{PWN.format('script')}</script>"},
    {"text/html": f'<img src=x onerror="{PWN.format("img")}">'},
    {
        "image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="{PWN.format("svg")}">'
        '<rect width="20" height="20" fill="teal"/></svg>'
    },
    {"text/html": f"<a id='js-link' href=\"javascript:{PWN.format('link')}\">click me</a>"},
    {"application/javascript": PWN.format("javascript")},
    {"text/markdown": f'<img src=y onerror="{PWN.format("markdown")}">'},
    {"text/html": "<iframe srcdoc='<script>parent.__pwned = 1</script>'></iframe>"},
]
# ... and, as the cell's value (an execute_result), a plain table that must still show.
TABLE = {"text/html": f"<table id='{TABLE_ID}'><tr><th>product</th></tr><tr><td>teapot</td></tr></table>"}
ACTIVE_OUTPUTS = (
    "".join(f"get_ipython().display_pub.publish({{'text/plain': 'payload', **{bundle!r}}})\n" for bundle in BUNDLES)
    + f"from IPython.display import HTML\nHTML({TABLE['text/html']!r})\n"
)

# A markdown cell the learner added (not an nbgrader cell: nothing restores it).
ACTIVE_MARKDOWN = (
    f"My notes <script>{PWN.format('md-cell')}</script>\n\n"
    f'<img src=z onerror="{PWN.format("md-cell-img")}">\n\n'
    f"[a link](<javascript:{PWN.format('md-link')}>)"
)


def solution_with_active_content(base):
    nb = solution_with(ACTIVE_OUTPUTS, "ex_add_products")(base)
    nb.cells.insert(1, new_markdown_cell(ACTIVE_MARKDOWN))
    return nb


def active_markup(html: str) -> list[str]:
    """Elements and attributes that can run script, as a browser's HTML parser reads `html`.

    (Escaped text such as `&lt;script&gt;` is inert and not reported.)"""
    from bleach.html5lib_shim import HTMLParser, getTreeWalker

    found = []
    for token in getTreeWalker("etree")(HTMLParser(namespaceHTMLElements=False).parseFragment(html)):
        if token["type"] not in ("StartTag", "EmptyTag"):
            continue
        if token["name"].lower() in ("script", "iframe", "frame", "object", "embed", "foreignobject", "animate", "set"):
            found.append(f"<{token['name']}>")
        for (_, name), value in token["data"].items():
            squeezed = "".join(value.split()).lower()
            if name.lower().startswith("on") or "javascript:" in squeezed or name.lower() == "srcdoc":
                found.append(f"<{token['name']} {name}={value!r}>")
    return found


def active_content(notebook: Path) -> list[str]:
    """What of the payloads survived in a stored notebook (empty: nothing can run)."""
    nb = nbformat.read(notebook, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        texts = [cell.source] if cell.cell_type == "markdown" else []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/javascript" in data:
                found.append(f"cell {i}: application/javascript output")
            texts += [v for k, v in data.items() if k != "text/plain" and isinstance(v, str)]
        found += [f"cell {i}: {what}" for text in texts for what in active_markup(text)]
    return found


def pasted(*grade_ids: str, where: str = "after"):
    """The solution with each answer cell pasted once more, metadata and all (JupyterLab's paste)."""

    def build(base):
        nb = copy.deepcopy(base["solution"])
        for grade_id in grade_ids:
            original = _cell(nb, grade_id)
            copy_ = copy.deepcopy(original)
            copy_["id"] = f"pasted-{grade_id}".replace("_", "-")
            at = nb.cells.index(original)
            nb.cells.insert(at + 1 if where == "after" else at, copy_)
        return nb

    return build


def _pasted_with_an_older_version_first(base):
    """The learner kept an unfinished copy above the final one (both are answer cells)."""
    nb = pasted("ex_add_products")(base)
    first = _cell(nb, "ex_add_products")  # the first of the two
    first.source = (
        "# first try, kept by mistake\nasync def add_products(Session, items):\n    raise NotImplementedError"
    )
    return nb


CASES: list[Case] = [
    Case(
        "render_active_outputs_and_markdown",
        solution_with_active_content,
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
    Case("pasted_answer_cell", pasted("ex_add_products"), FULL, ("3 of 3 tests passed",), min_score=FULL),
    Case(
        "pasted_every_answer_cell",
        pasted(*EXERCISES[1:], where="before"),
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
    Case(
        "pasted_answer_cell_older_version_first",
        _pasted_with_an_older_version_first,
        FULL,
        ("3 of 3 tests passed",),
        min_score=FULL,
    ),
]
