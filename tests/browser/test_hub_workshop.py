"""A workshop, end to end, in a real browser on a real hub (`autograder hub`, as `make hub` runs it).

A learner opens the hub's login page in headless chromium and signs in (the first sign-in sets
their password); their server spawns (JupyterHub's spawn page, then JupyterLab on their start page).
From the start page they open lesson 01 and run its first cells: the setup cell prints the
LessonDatabase of their own database (`l_<name>__lesson_01_session_dependency`) and the next cells
talk to it. They save, open nbgrader's assignment list (Nbgrader menu → Assignment List), which shows
the lesson the instructor released as theirs, and press Submit. The instructor, as root with the
README's hand-in commands, collects, grades with `autograder grade --feedback` and releases feedback.
The learner refreshes the list, presses Fetch Feedback, follows "(view feedback)" and opens the
feedback HTML: the verdicts (FAILED, points) are on the page, no hidden test code is.

On failure a screenshot of the page is written to /tmp/hub-workshop-failure.png.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.support import KERNEL_TIMEOUT_MS, UI_TIMEOUT_MS
from tests.browser.test_check_my_work import hidden_test_lines
from tests.hub.support import AUTOGRADER, PASSWORD, SPAWN_TIMEOUT_S, Hub, instructor, needs_root

pytestmark = needs_root

LESSON = "01_session_dependency"
NBGRADER = str(Path(sys.executable).with_name("nbgrader"))
FAILURE_SCREENSHOT = Path("/tmp/hub-workshop-failure.png")
ACTION_TIMEOUT_MS = 60_000  # a submit or a feedback fetch through the exchange, on a loaded machine


def run_cell(page, cell, expected_count: int) -> None:
    """Click into the cell, Shift+Enter, wait for its prompt to show the execution count."""
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-InputArea-prompt")).to_have_text(f"[{expected_count}]:", timeout=KERNEL_TIMEOUT_MS)


@pytest.mark.timeout(600)
def test_a_learner_signs_in_runs_lesson_01_submits_and_reads_the_feedback_in_the_browser(page):
    started = time.monotonic()
    phases: dict[str, float] = {}

    def done(phase: str) -> None:
        phases[phase] = time.monotonic() - started - sum(phases.values())

    hub = Hub(cull_idle=0)  # (0: never culled while the test runs)
    learner = hub.a
    try:
        hub.start()
        done("hub start")
        instructor(hub, NBGRADER, "release_assignment", LESSON, "--force")
        done("release")

        # 1. The login page; the first sign-in sets the password; the server spawns, JupyterLab opens.
        page.goto(f"{hub.url}/hub/login")
        page.locator("#username_input").fill(learner)
        page.locator("#password_input").fill(PASSWORD)
        page.locator("#login_submit").click()
        page.wait_for_url(re.compile(rf"/user/{learner}/lab"), timeout=SPAWN_TIMEOUT_S * 1000)
        start = page.locator(".jp-NotebookPanel:visible").filter(has=page.locator(".jp-Notebook"))
        expect(start.locator(".jp-RenderedMarkdown h1").first).to_contain_text("Start here", timeout=KERNEL_TIMEOUT_MS)
        done("sign-in and spawn")

        # 2. Lesson 01 from the start page's link; its first cells run against the learner's own database.
        start.locator(".jp-RenderedMarkdown a", has_text="Lesson 01").click()
        tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
        expect(tab).to_contain_text(f"{LESSON}.ipynb")
        panel = page.locator(".jp-NotebookPanel:visible").filter(has=page.locator(".jp-Notebook"))
        expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(
            re.compile(r"Python 3.*\| Idle"), timeout=KERNEL_TIMEOUT_MS
        )
        code_cells = panel.locator(".jp-Notebook .jp-CodeCell")
        setup, imports, models = code_cells.nth(0), code_cells.nth(1), code_cells.nth(2)
        expect(setup).to_contain_text(f'lesson.setup("{LESSON}")')
        run_cell(page, setup, 1)
        expect(setup.locator(".jp-OutputArea-output")).to_contain_text(
            f"LessonDatabase(lesson='{LESSON}', database='l_{learner}__lesson_{LESSON}')"
        )
        run_cell(page, imports, 2)
        run_cell(page, models, 3)  # (its text is not checked: CodeMirror renders only the lines in view)
        notebook = panel.locator(".jp-Notebook")
        expect(notebook.locator('[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)
        expect(notebook.locator('[data-mime-type="application/vnd.jupyter.error"]')).to_have_count(0)
        panel.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Control+s")
        expect(tab).not_to_have_class(re.compile("jp-mod-dirty"))
        done("lesson 01's first cells")

        # 3. nbgrader's assignment list shows the released lesson as the learner's own; Submit hands it in.
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
        page.locator(".lm-Menu-item", has_text="Assignment List").click()
        assignments = page.locator("#nbgrader-assignment-list")
        fetched = assignments.locator("#fetched_assignments_list")
        expect(fetched).to_contain_text(LESSON, timeout=ACTION_TIMEOUT_MS)
        submit = fetched.locator("button", has_text="Submit")
        expect(submit).to_have_count(1)
        submit.click()
        submitted = assignments.locator("#submitted_assignments_list")
        submissions = submitted.locator(".nested_list_item")  # one row per hand-in, with its timestamp
        expect(submissions).to_have_count(1, timeout=ACTION_TIMEOUT_MS)
        expect(submissions).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"))
        expect(submitted).to_contain_text(LESSON)
        expect(submitted.locator("button", has_text="Fetch Feedback")).to_have_count(1)
        expect(submissions).not_to_contain_text("feedback")  # (none released yet)

        done("assignment list and submit")

        # 4. The instructor (root, the README's hand-in commands): collect, grade with feedback, release it.
        instructor(hub, NBGRADER, "collect", LESSON)
        course = hub.base / "course"
        handed_in = json.loads((course / "submitted" / learner / LESSON / f"{LESSON}.ipynb").read_text())
        assert f"l_{learner}__lesson_{LESSON}" in json.dumps(handed_in), "the run and saved notebook was handed in"
        instructor(hub, AUTOGRADER, "grade", "--course", str(course), "--lesson", LESSON, "--feedback")
        scores = (course / "exports" / "scores.csv").read_text()
        assert f"{learner},{LESSON},0.0,7.0,graded" in scores, scores  # the release, unanswered
        instructor(hub, NBGRADER, "release_feedback", LESSON)
        done("collect, grade, release feedback")

        # 5. The learner refreshes the list, fetches the feedback and opens it.
        assignments.locator("#refresh_assignments_list").click()
        expect(submissions).to_contain_text("feedback available to fetch", timeout=ACTION_TIMEOUT_MS)
        submitted.locator("button", has_text="Fetch Feedback").click()
        view = submissions.locator("a", has_text="view feedback")
        expect(view).to_be_visible(timeout=ACTION_TIMEOUT_MS)
        view.click()  # the file browser goes to the fetched feedback: <lesson>/feedback/<timestamp>/
        expect(page.locator(".jp-FileBrowser .jp-BreadCrumbs")).to_contain_text("feedback")
        feedback = page.locator(".jp-FileBrowser .jp-DirListing-item", has_text=f"{LESSON}.html")
        expect(feedback).to_have_count(1)
        feedback.dblclick()
        expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_contain_text(f"{LESSON}.html")
        body = page.frame_locator(".jp-HTMLViewer:visible iframe").locator("body")
        expect(body).to_contain_text("FAILED — ", timeout=UI_TIMEOUT_MS)
        expect(body).to_contain_text(re.compile(r"Score:\s*0(\.0)?\s*/\s*7"))
        verdict = body.get_by_text("FAILED — ").first
        verdict.scroll_into_view_if_needed()
        expect(verdict).to_be_visible()
        text = body.inner_text()
        assert "HIDDEN TESTS" not in text
        leaked = [line for line in hidden_test_lines() if line in text]
        assert not leaked, f"hidden test code in the learner's feedback: {leaked[:3]}"
        done("fetch and open feedback")
        print(", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in phases.items()))
    except BaseException:
        try:
            page.screenshot(path=str(FAILURE_SCREENSHOT), full_page=True)
            print(f"screenshot of the failure: {FAILURE_SCREENSHOT}")
        except PlaywrightError as exc:  # (the browser may be gone)
            print(f"no screenshot: {exc}")
        print(hub.log.read_text()[-4000:] if hub.log.exists() else "(no hub log)")
        raise
    finally:
        hub.cleanup()
