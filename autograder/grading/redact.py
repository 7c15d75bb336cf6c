"""The last filter: no line of a lesson's hidden tests in any text a learner is shown.

The runner keeps hidden test source out of the learner's reach while a test runs
(kernel.py); this filter is the backstop for whatever still gets out (a traceback
line, a value a learner's function read somewhere and printed or returned into an
assert message). It removes every *hidden line* from outputs, test messages and
exports, also when it appears escaped inside a repr or a JSON string.

Hidden lines are the lines between `### BEGIN HIDDEN TESTS` and `### END HIDDEN
TESTS` that do not also appear outside those markers (for a lesson: in its release
notebook). Short lines (`try:`, `pass`) are ignored: they say nothing and would
blank ordinary output.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BEGIN, END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
MIN_LINE = 12  # characters (stripped): shorter lines are too common to mean anything
MARK = "[hidden test line removed]"


def hidden_regions(sources: Iterable[str]) -> tuple[list[str], set[str]]:
    """(lines inside hidden-test markers, lines outside them), stripped, over `sources`."""
    inside_lines: list[str] = []
    outside: set[str] = set()
    for source in sources:
        inside = False
        for line in source.splitlines():
            stripped = line.strip()
            if BEGIN in line:
                inside = True
            elif END in line:
                inside = False
            elif inside:
                inside_lines.append(stripped)
            else:
                outside.add(stripped)
    return inside_lines, outside


def _sources(nb: Any) -> list[str]:
    return [
        "".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
        for c in nb.get("cells", [])
        if isinstance(c, dict)
    ]


def _escaped(line: str) -> set[str]:
    """`line` and the ways an escaping quoter writes it: repr() in either quote, JSON."""
    return {
        line,
        repr(line)[1:-1],
        repr(line + "'\"")[1:-4],
        json.dumps(line)[1:-1],
        json.dumps(line, ensure_ascii=False)[1:-1],
    }


class Redactor:
    """Removes the given lines from texts; `Redactor(())` changes nothing."""

    def __init__(self, lines: Iterable[str]):
        needles: set[str] = set()
        for line in lines:
            if len(line) < MIN_LINE:
                continue
            # As printed, and as it reads escaped once or twice inside a repr() or a JSON
            # string (a source read as JSON bytes, then quoted in a list's repr).
            once = _escaped(line)
            needles.update(once)
            for variant in once:
                needles.update(_escaped(variant))
        # Longest first: a line that contains another is removed whole.
        self.needles = sorted(needles, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def text(self, value: str) -> str:
        if not self.needles or not isinstance(value, str):
            return value
        for needle in self.needles:
            if needle in value:
                value = value.replace(needle, MARK)
        return value

    def value(self, value: Any) -> Any:
        """Every string inside a JSON-like value (a mimebundle, a traceback list)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value

    def output(self, output: dict[str, Any]) -> None:
        """Redact one nbformat output in place (every field a renderer shows)."""
        for key in ("text", "ename", "evalue", "traceback", "data"):
            if key in output:
                output[key] = self.value(output[key])

    def notebook(self, nb: Any) -> Any:
        """Redact every code cell's outputs in place; the sources are left alone (nbgrader
        checksums them). Returns `nb`."""
        if self:
            for cell in nb.get("cells", []):
                for output in cell.get("outputs", []) or []:
                    if isinstance(output, dict):
                        self.output(output)
        return nb

    def notebook_file(self, path: Path) -> None:
        """Redact a notebook on disk (written back only if something changed)."""
        import nbformat

        if not self:
            return
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        after = nbformat.writes(self.notebook(nb))
        if after != before:
            Path(path).write_text(after)


def from_notebook(nb: Any) -> Redactor:
    """Hidden lines as the notebook itself holds them: nbgrader restores test cells from the
    gradebook with their hidden part and markers, so a graded notebook knows its own."""
    inside, outside = hidden_regions(_sources(nb))
    return Redactor(line for line in inside if line not in outside)


@functools.lru_cache(maxsize=64)
def _for_lesson(solution: Path, release: Path, stamp: tuple[object, ...]) -> Redactor:
    import nbformat

    inside, _ = hidden_regions(_sources(nbformat.read(solution, as_version=4)))
    public = "\n".join(_sources(nbformat.read(release, as_version=4))) if release.exists() else ""
    return Redactor(line for line in inside if line not in public)


def for_lesson(lesson: str, root: Path | None = None) -> Redactor:
    """The lesson's hidden lines: inside the markers in solutions/<lesson>/<lesson>.ipynb and
    nowhere in the release notebooks/<lesson>/<lesson>.ipynb. No solution: a no-op redactor."""
    from autograder.paths import project_root

    base = Path(root) if root is not None else project_root()
    solution = base / "solutions" / lesson / f"{lesson}.ipynb"
    release = base / "notebooks" / lesson / f"{lesson}.ipynb"
    try:
        stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None for p in (solution, release))
        if stamp[0] is None:
            return Redactor(())
        return _for_lesson(solution, release, stamp)
    except (OSError, ValueError) as exc:  # an unreadable solution must not stop the run
        log.warning("cannot read the hidden tests of %s to filter them out: %s", lesson, exc)
        return Redactor(())
