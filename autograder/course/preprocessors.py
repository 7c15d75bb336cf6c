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

* `SanitizeOutputs` (autograde, feedback, formgrader): a submission's outputs and
  markdown are rendered as HTML in the learner's feedback and in formgrader, where
  the instructor is logged in. nbconvert's `SanitizeHTML` (bleach) is configured so
  HTML, SVG and markdown keep tables, text and plots but lose scripts, event
  handlers, `javascript:` URLs and frames; script-only mimetypes are dropped.

* `KeepOnePastedAnswer` (autograde, before nbgrader's `DeduplicateIds`): an answer
  cell copy-pasted in JupyterLab keeps its nbgrader metadata. `DeduplicateIds`
  then leaves the copy with `nbgrader: {}` and `OverwriteCells.add_missing_task_cells`
  reads `["grade_id"]` from every nbgrader dict (KeyError): the whole submission was
  "not graded". The copy becomes a plain code cell instead (it still runs).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

import bleach
from bleach.css_sanitizer import ALLOWED_CSS_PROPERTIES, ALLOWED_SVG_PROPERTIES
from bleach.html5lib_shim import HTMLParser, getTreeWalker
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat.notebooknode import NotebookNode, from_dict
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, DeduplicateIds, NbGraderPreprocessor
from traitlets import Any as AnyTrait
from traitlets import List, Set, Unicode

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


# --- outputs rendered as HTML -------------------------------------------------------------

_HTML_TAGS = {
    *bleach.ALLOWED_TAGS,
    "p",
    "div",
    "span",
    "br",
    "hr",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "caption",
    "colgroup",
    "col",
    "img",
    "sub",
    "sup",
    "dl",
    "dt",
    "dd",
    "del",
    "ins",
    "s",
    "u",
    "small",
    "kbd",
    "samp",
    "var",
    "q",
    "cite",
    "details",
    "summary",
    "figure",
    "figcaption",
    "mark",
}
# Shapes and text only: no <script>, <foreignObject>, <animate>/<set> (they can write an
# href), <image> or <style>. html5lib gives SVG names their camelCase spelling.
_SVG_TAGS = {
    "svg",
    "g",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "defs",
    "clipPath",
    "use",
    "symbol",
    "linearGradient",
    "radialGradient",
    "stop",
    "title",
    "desc",
    "marker",
    "pattern",
    "mask",
}
_GLOBAL_ATTRIBUTES = {"class", "id", "title", "style", "lang", "dir", "align", "valign", "width", "height"}
_TAG_ATTRIBUTES = {
    "a": {"href", "name", "target", "rel"},
    "img": {"src", "alt"},
    "ol": {"start", "type"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "table": {"border", "cellpadding", "cellspacing"},
    "details": {"open"},
}
# bleach passes attribute names without their namespace prefix: `href` covers xlink:href.
_SVG_ATTRIBUTES = {
    "xmlns",
    "version",
    "viewBox",
    "preserveAspectRatio",
    "x",
    "y",
    "x1",
    "x2",
    "y1",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "dx",
    "dy",
    "d",
    "points",
    "transform",
    "fill",
    "fill-opacity",
    "fill-rule",
    "stroke",
    "stroke-width",
    "stroke-opacity",
    "stroke-linecap",
    "stroke-linejoin",
    "stroke-dasharray",
    "stroke-dashoffset",
    "stroke-miterlimit",
    "opacity",
    "clip-path",
    "clip-rule",
    "clipPathUnits",
    "font-family",
    "font-size",
    "font-weight",
    "font-style",
    "text-anchor",
    "dominant-baseline",
    "href",
    "offset",
    "stop-color",
    "stop-opacity",
    "gradientUnits",
    "gradientTransform",
    "patternUnits",
    "markerWidth",
    "markerHeight",
    "refX",
    "refY",
    "orient",
    "mask",
    "visibility",
    "display",
    "color",
}


def allowed_attribute(tag: str, name: str, value: str) -> bool:
    """bleach's attribute policy: an allow-list per tag; event handlers (on*) never.

    bleach still checks every URL-valued attribute (href, src, xlink:href, ...) against
    its protocols (http, https, mailto), which removes `javascript:` and `data:` URLs."""
    if name.lower().startswith("on"):
        return False
    if name in _GLOBAL_ATTRIBUTES or name in _TAG_ATTRIBUTES.get(tag, ()):
        return True
    return tag in _SVG_TAGS and name in _SVG_ATTRIBUTES


def _tags(html: str) -> Counter:
    """Every element with its attributes, as the HTML5 parser (browsers' algorithm) sees them."""
    dom = HTMLParser(namespaceHTMLElements=False).parseFragment(html)
    found: Counter = Counter()
    for token in getTreeWalker("etree")(dom):
        if token["type"] in ("StartTag", "EmptyTag"):
            found[(token["name"], frozenset(token["data"].items()))] += 1
    return found


# Bounded (a submission's own markdown may be large and unique): at most ~2 x 256 x 16 KB.
_MARKDOWN_CACHE: dict[tuple, str] = {}
_MARKDOWN_LOCK = threading.Lock()
_MARKDOWN_CACHE_SIZE = 256
_CACHED_MARKDOWN_CHARS = 16_000


class SanitizeOutputs(NbGraderPreprocessor, SanitizeHTML):
    """nbconvert's `SanitizeHTML`, configured for what a lesson's outputs legitimately hold.

    Unsafe markup is escaped (`strip=False`), so the instructor sees what was attempted.
    Markdown is handled apart: bleach escapes markdown syntax (`>` quotes, `<` in code),
    so a markdown text is rendered first and replaced only when bleach had to remove
    something from its HTML -- by the cleaned HTML, which renders the same everywhere."""

    tags = List(Unicode(), default_value=sorted(_HTML_TAGS | _SVG_TAGS)).tag(config=True)
    attributes = AnyTrait(default_value=allowed_attribute).tag(config=True)
    styles = List(Unicode(), default_value=sorted(ALLOWED_CSS_PROPERTIES | ALLOWED_SVG_PROPERTIES)).tag(config=True)
    safe_output_keys = Set(
        default_value={
            "metadata",
            "text/plain",
            "text/latex",
            "application/json",
            "image/png",
            "image/jpeg",
            "text/markdown",  # made inert by `inert_markdown` before the rest are sanitised
        }
    ).tag(config=True)
    # Everything else (application/javascript, widget views, unknown types) is removed.
    sanitized_output_types = Set(default_value={"text/html", "image/svg+xml"}).tag(config=True)

    def inert_markdown(self, text: str) -> str:
        if len(text) > _CACHED_MARKDOWN_CHARS:
            return self._inert_markdown(text)
        # Every submission of a lesson repeats its prose: parsing it (html5lib, pure Python)
        # once per run instead of once per submission keeps grading as fast as before.
        policy = (tuple(self.tags), self.attributes, tuple(self.styles), self.strip, self.strip_comments)
        key = (text, policy)
        with _MARKDOWN_LOCK:
            cached = _MARKDOWN_CACHE.get(key)
        if cached is None:
            cached = self._inert_markdown(text)
            with _MARKDOWN_LOCK:
                if len(_MARKDOWN_CACHE) >= _MARKDOWN_CACHE_SIZE:
                    _MARKDOWN_CACHE.pop(next(iter(_MARKDOWN_CACHE)))  # the oldest
                _MARKDOWN_CACHE[key] = cached
        return cached

    def _inert_markdown(self, text: str) -> str:
        rendered = markdown2html_mistune(text)
        cleaned = self.sanitize_html_tags(rendered)
        if not (_tags(rendered) - _tags(cleaned)):
            return text  # bleach kept every element and attribute: nothing active
        # One HTML block: markdown ends a block at a blank line and would read the rest as
        # markdown again (where `[x](javascript:...)` is a link).
        lines = [line for line in cleaned.splitlines() if line.strip()]
        return "<div>\n" + "\n".join(lines) + "\n</div>"

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if cell.cell_type == "markdown":
            cell.source = self.inert_markdown(cell.source)
            return cell, resources
        return super().preprocess_cell(cell, resources, index)

    def sanitize_code_outputs(self, outputs: list[NotebookNode]) -> list[NotebookNode]:
        # Streams and errors are always escaped by the templates; an output without a data
        # dict has nothing to render (and would stop SanitizeHTML, which assumes one).
        rich = [
            o for o in outputs if o.get("output_type") not in ("stream", "error") and isinstance(o.get("data"), dict)
        ]
        for output in rich:
            data = output["data"]
            for key, value in list(data.items()):
                if isinstance(value, list):  # nbformat's multi-line form
                    value = data[key] = "".join(str(v) for v in value)
                if key == "text/markdown" and isinstance(value, str):
                    data[key] = self.inert_markdown(value)
                elif key in self.sanitized_output_types | {"text/markdown"} and not isinstance(value, str):
                    del data[key]  # bleach takes text only; nothing to render anyway
        super().sanitize_code_outputs(rich)  # in place
        return outputs


# --- copy-pasted answer cells -------------------------------------------------------------


def _answer_id(cell: NotebookNode) -> str | None:
    """The grade_id of an answer (solution, not graded) cell, else None."""
    meta = cell.get("metadata", {}).get("nbgrader")
    if not isinstance(meta, dict) or not meta.get("solution") or meta.get("grade"):
        return None
    grade_id = meta.get("grade_id")
    return grade_id if isinstance(grade_id, str) else None


class KeepOnePastedAnswer(NbGraderPreprocessor):
    """Of answer cells sharing one grade_id, the last keeps it; the others become plain cells.

    Only when every cell with that id is an answer cell: an id also claimed by a test or a
    locked cell is left to nbgrader, which refuses the notebook (a test cell must not be
    impersonated). The last copy keeps the id, as nbgrader's `DeduplicateIds` would choose."""

    def preprocess(self, nb: NotebookNode, resources: Any):
        claims = Counter(
            c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            for c in nb.cells
            if isinstance(c.get("metadata", {}).get("nbgrader"), dict)
        )
        answers = Counter(_answer_id(c) for c in nb.cells)
        seen: set[str] = set()
        for cell in reversed(nb.cells):
            grade_id = _answer_id(cell)
            if grade_id is None or answers[grade_id] < 2 or claims[grade_id] != answers[grade_id]:
                continue
            if grade_id in seen:
                self.log.warning("Answer cell %r appears more than once; an earlier copy runs as plain code", grade_id)
                del cell.metadata["nbgrader"]
            seen.add(grade_id)
        return nb, resources


def with_pasted_answers_kept(steps: Iterable[type]) -> list[type]:
    """nbgrader's sanitize steps with `KeepOnePastedAnswer` right before `DeduplicateIds`."""
    steps = list(steps)
    if KeepOnePastedAnswer in steps:
        return steps
    at = steps.index(DeduplicateIds) if DeduplicateIds in steps else 0
    return [*steps[:at], KeepOnePastedAnswer, *steps[at:]]


def with_outputs_sanitised(steps: Iterable[type]) -> list[type]:
    """nbgrader's autograde steps, ending with `SanitizeOutputs` (the stored notebook is inert)."""
    steps = list(steps)
    return steps if SanitizeOutputs in steps else [*steps, SanitizeOutputs]
