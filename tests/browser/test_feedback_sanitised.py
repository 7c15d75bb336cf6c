"""A submission's outputs cannot run script where the grader renders them as HTML (issue 11, F).

One class run (`autograder grade --feedback`, in-process) grades a correct solution
whose cells display a <script>, an <img onerror>, an SVG with onload, a javascript:
link, application/javascript, markdown with an onerror image, an iframe, and a plain
table, plus a markdown cell the learner added with the same kind of payloads (see
tests/grading/corpus_rendering.py). Each payload, if it ran, sets `window.__pwned`
or the page title. chromium then opens:

* the learner's feedback HTML, as written;
* the stored autograded notebook, rendered by nbconvert with formgrader's template
  and no sanitiser of its own (what formgrader shows the logged-in instructor);
* an autograded notebook that still holds the raw payloads (graded before outputs
  were sanitised), rendered the way formgrader renders it: with the course's config.

A control page (the raw payloads through nbconvert, no sanitiser) shows the payloads
do run in this browser, so "nothing ran" means something. Last, the real formgrader
(`autograder instructor --course DIR`) shows both kinds of autograded notebook.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from autograder.course.api import load_config
from autograder.grading.run import GradeOptions, GradeRun
from autograder.paths import project_root
from tests.grading.corpus_rendering import (
    ACTIVE_MARKDOWN,
    BUNDLES,
    TABLE,
    TABLE_ID,
    active_content,
    solution_with_active_content,
)

LESSON = "00_foundations"
STUDENT = "mallory"

# Records every value a payload writes to window.__pwned (an iframe writes its parent's).
RECORD_PAYLOADS = """
window.__hits = [];
Object.defineProperty(window, '__pwned', {set(v) { window.__hits.push(String(v)); }, get() { return window.__hits; }});
"""


def _bases() -> dict:
    from benchmarks.submissions import answered

    solution = nbformat.read(project_root() / "solutions" / LESSON / f"{LESSON}.ipynb", as_version=4)
    release = nbformat.read(project_root() / "notebooks" / LESSON / f"{LESSON}.ipynb", as_version=4)
    return {"solution": answered(release, solution), "release": release}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("feedback-sanitised")
    folder = root / "submitted" / STUDENT / LESSON
    folder.mkdir(parents=True)
    nbformat.write(solution_with_active_content(_bases()), folder / f"{LESSON}.ipynb")
    [result] = GradeRun(root, GradeOptions(workers=1, feedback=True)).run().results
    return root, result


def _raw_payload_notebook(autograded: Path):
    """The autograded notebook with the payloads' outputs as the kernel sent them (unsanitised)."""
    nb = copy.deepcopy(nbformat.read(autograded, as_version=4))
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex_add_products")
    answer.outputs = [
        nbformat.v4.new_output("display_data", data={"text/plain": "payload", **bundle}) for bundle in [*BUNDLES, TABLE]
    ]
    notes = next(c for c in nb.cells if c.cell_type == "markdown" and "My notes" in c.source)
    notes.source = ACTIVE_MARKDOWN
    return nb


def _formgrader_html(nb, config: Config) -> str:
    """nbconvert's HTML with formgrader's template and the resources its handler passes."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers

    config = copy.deepcopy(config)
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    resources = {
        "assignment_id": LESSON,
        "notebook_id": LESSON,
        "submission_id": "s1",
        "index": 0,
        "total": 1,
        "base_url": "",
        "student": STUDENT,
        "last_name": None,
        "first_name": None,
        "notebook_path": f"autograded/{STUDENT}/{LESSON}/{LESSON}.ipynb",
    }
    html, _ = HTMLExporter(config=config).from_notebook_node(nb, resources=resources)
    return html


def _local(url: str) -> bool:
    return url.startswith(("file:", "http://127.0.0.1:"))


def _open(page, where: Path | str) -> list[str]:
    """Load the page with no network, click its links, return what the payloads wrote (title included)."""
    page.add_init_script(RECORD_PAYLOADS)
    page.route("**/*", lambda route: route.continue_() if _local(route.request.url) else route.abort())
    page.goto(where.as_uri() if isinstance(where, Path) else where, wait_until="load")
    for link in page.locator("a", has_text="click me").all() + page.locator("a", has_text="a link").all():
        link.click(no_wait_after=True)
    page.wait_for_timeout(500)  # onerror/onload handlers of broken images fire after load
    hits = page.evaluate("window.__hits")
    title = page.title()
    return hits + ([f"title: {title}"] if "pwned" in title else [])


def test_the_payloads_run_when_nothing_sanitises_them(graded, page, tmp_path):
    root, result = graded
    autograded = root / "autograded" / STUDENT / LESSON / f"{LESSON}.ipynb"
    control = tmp_path / "control.html"
    control.write_text(_formgrader_html(_raw_payload_notebook(autograded), Config()))
    hits = _open(page, control)
    # svg (drawn through <img>) and application/javascript (needs the CDN's jQuery) do not run even raw.
    assert {"script", "img", "markdown", "md-cell", "md-cell-img", "link", "md-link", "1"} <= set(hits), hits


def test_correct_work_with_payloads_keeps_its_marks_and_the_stored_notebook_is_inert(graded):
    root, result = graded
    assert result.status == "graded" and result.score == 8.0, (result.verdict, result.tests)
    autograded = root / "autograded" / STUDENT / LESSON / f"{LESSON}.ipynb"
    assert active_content(autograded) == []
    text = autograded.read_text()
    assert TABLE_ID in text and "teapot" in text  # the plain table is kept
    assert "&lt;script&gt;" in text  # escaped: the instructor sees what was attempted


def test_feedback_html_runs_no_payload_and_shows_the_table(graded, page):
    root, result = graded
    feedback = root / "feedback" / STUDENT / LESSON / f"{LESSON}.html"
    assert "<script>window.__pwned" not in feedback.read_text()
    assert _open(page, feedback) == []
    assert page.locator(f"table#{TABLE_ID} td").inner_text() == "teapot"
    svg = page.locator("img[src^='data:image/svg+xml']").first
    assert svg.evaluate("img => img.complete && img.naturalWidth") == 20  # the (cleaned) SVG still draws


def test_formgrader_view_of_the_stored_notebook_runs_no_payload(graded, page, tmp_path):
    root, result = graded
    autograded = root / "autograded" / STUDENT / LESSON / f"{LESSON}.ipynb"
    html = tmp_path / "formgrade.html"
    html.write_text(_formgrader_html(nbformat.read(autograded, as_version=4), Config()))  # no sanitiser here
    assert _open(page, html) == []
    assert page.locator(f"table#{TABLE_ID} td").inner_text() == "teapot"


def test_formgrader_with_the_course_config_sanitises_a_notebook_graded_before_the_fix(graded, page, tmp_path):
    root, result = graded
    autograded = root / "autograded" / STUDENT / LESSON / f"{LESSON}.ipynb"
    html = tmp_path / "formgrade-old.html"
    html.write_text(_formgrader_html(_raw_payload_notebook(autograded), load_config(root)))
    assert _open(page, html) == []
    assert page.locator(f"table#{TABLE_ID} td").inner_text() == "teapot"


@pytest.mark.timeout(180)
def test_formgrader_itself_shows_the_submissions_with_no_payload_running(page, course_state, tmp_path, monkeypatch):
    """The real thing: `autograder instructor --course DIR`, formgrader's page of each submission.

    `mallory` is graded now; `oldie`'s autograded notebook is swapped for one holding the raw
    payloads, as if graded before outputs were sanitised (formgrader renders it per request)."""
    from nbgrader.api import Gradebook

    from tests.browser.support import lab_server
    from tests.browser.test_formgrader import stop_grading_cluster
    from tests.cli_support import _private_tmp, cli_env, free_port, run_cli

    course = _private_tmp("course-browser-sanitised-")
    course.chmod(0o755)  # the sandboxed grader runs as another user
    instructor = None
    try:
        for student in ("mallory", "oldie"):
            folder = course / "submitted" / student / LESSON
            folder.mkdir(parents=True)
            nbformat.write(solution_with_active_content(_bases()), folder / f"{LESSON}.ipynb")
        graded = run_cli("grade", "--course", str(course), "-j", "2", env=cli_env(course_state), timeout=150)
        assert graded.returncode == 0, graded.stdout + graded.stderr
        old = course / "autograded" / "oldie" / LESSON / f"{LESSON}.ipynb"
        nbformat.write(_raw_payload_notebook(old), old)
        with Gradebook(f"sqlite:///{course / '.course' / 'gradebook.db'}") as gb:
            ids = {s: gb.find_submission_notebook(LESSON, LESSON, s).id for s in ("mallory", "oldie")}
            scores = {s: gb.find_submission(LESSON, s).score for s in ("mallory", "oldie")}
        assert scores == {"mallory": 8.0, "oldie": 8.0}

        instructor = lab_server("instructor", course_state, free_port(), tmp_path, "--course", str(course))
        instructor.wait_ready()
        for student, submission_id in ids.items():
            assert _open(page, instructor.url(f"/formgrader/submissions/{submission_id}")) == [], student
            assert page.locator(f"table#{TABLE_ID} td").inner_text() == "teapot"
            assert page.get_by_text("My notes").count() == 1  # the learner's markdown cell is shown, inert
            assert "&lt;script&gt;window.__pwned = 'script'" in page.content()  # the payload is there, as text
        assert "Traceback" not in instructor.output(), instructor.output()
    finally:
        if instructor is not None:
            instructor.close()
        stop_grading_cluster(course_state, monkeypatch)
        shutil.rmtree(course, ignore_errors=True)
