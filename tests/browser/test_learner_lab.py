"""In a real browser: `autograder lab` opens on the start page; the learner opens lesson 00 and runs it.

What a person sees: the start page (START_HERE.ipynb in their workspace) rendered,
listing the lessons; its link opens lesson 00 with a running Python kernel;
Shift+Enter on the setup cell shows `LessonDatabase(lesson='00_foundations', ...)`,
the next cells run without an error, the toolbar has nbgrader's Validate button,
and nothing of formgrader / Create Assignment is anywhere in the menus, the command
palette or the side bars. Ctrl+S saves the notebook into the learner's workspace
(a temporary --workspace here); the committed release notebooks/ is never
written or given a checkpoint folder.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from playwright.sync_api import expect

from autograder import workspace
from tests.browser.support import KERNEL_TIMEOUT_MS, assert_real_screenshot, lab_server
from tests.cli_support import REPO, free_port

LESSON = "00_foundations"
RELEASE = REPO / "notebooks"


def release_snapshot() -> dict[str, str]:
    """The opened lesson's release folder (checkpoints included) with hashes, and any checkpoint folder
    under notebooks/ (lessons other engineers regenerate meanwhile are left out: no flakes)."""
    files = {
        str(p.relative_to(RELEASE)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (RELEASE / LESSON).rglob("*")
        if p.is_file()
    }
    files.update({str(p.relative_to(RELEASE)): "checkpoints" for p in RELEASE.rglob(".ipynb_checkpoints")})
    return files


def run_cell(page, cell, expected_count: int) -> None:
    """Click into the cell, Shift+Enter, wait for its prompt to show the execution count."""
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-InputArea-prompt")).to_have_text(f"[{expected_count}]:", timeout=KERNEL_TIMEOUT_MS)


def palette_matches(page, query: str) -> list[str]:
    page.locator(".lm-CommandPalette-input").fill(query)
    empty = page.locator(".lm-CommandPalette-emptyMessage:visible")
    items = page.locator(".lm-CommandPalette-item:visible")
    expect(empty.or_(items.first)).to_be_visible()
    return items.all_inner_texts()


@pytest.mark.timeout(120)
def test_learner_runs_the_setup_cell_and_sees_only_learner_tools(page, course_state, tmp_path):
    before = release_snapshot()
    ws = tmp_path / "ws"
    lab = lab_server("lab", course_state, free_port(), tmp_path, "--workspace", str(ws))
    try:
        lab.wait_ready()
        page.goto(lab.url("/lab/tree/START_HERE.ipynb"))

        # The start page: rendered markdown saying what the course is and how to check your work.
        start = page.locator(".jp-NotebookPanel").filter(has=page.locator(".jp-Notebook"))
        expect(start.locator(".jp-RenderedMarkdown h1").first).to_contain_text("Start here")
        expect(start.locator(".jp-RenderedMarkdown")).to_contain_text("Check my work")
        expect(start.locator(".jp-RenderedMarkdown")).to_contain_text("Where your work lives")
        page.screenshot(path=tmp_path / "learner-start-page.png")
        # Its lesson link opens lesson 00 from the workspace.
        start.locator(".jp-RenderedMarkdown a", has_text="Lesson 00").click()
        expect(page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")).to_contain_text(f"{LESSON}.ipynb")

        # The notebook is open and its kernel is ready (status bar: "Python 3 (ipykernel) | Idle").
        panel = page.locator(".jp-NotebookPanel:visible").filter(has=page.locator(".jp-Notebook"))
        expect(panel).to_be_visible()
        expect(page.locator(".jp-Notebook .jp-Cell").first).to_contain_text("Lesson 00")
        expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(
            re.compile(r"Python 3.*\| Idle"), timeout=KERNEL_TIMEOUT_MS
        )

        code_cells = page.locator(".jp-Notebook .jp-CodeCell")
        setup, imports, engine_demo = code_cells.nth(0), code_cells.nth(1), code_cells.nth(2)
        expect(setup).to_contain_text('lesson.setup("00_foundations")')
        expect(engine_demo).to_contain_text("create_async_engine(db.url)")

        run_cell(page, setup, 1)
        setup_output = setup.locator(".jp-OutputArea-output")
        expect(setup_output).to_contain_text("LessonDatabase(lesson='00_foundations'")
        run_cell(page, imports, 2)
        run_cell(page, engine_demo, 3)
        expect(engine_demo.locator(".jp-OutputArea-output")).to_contain_text("PostgreSQL says 42")
        expect(engine_demo.locator(".jp-OutputArea-output")).to_contain_text("connections currently borrowed: 0")
        # No traceback or stderr anywhere in the notebook, and the kernel is idle again.
        notebook = page.locator(".jp-Notebook")
        expect(notebook.locator('[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)
        outputs = notebook.locator(".jp-OutputArea-output").all_inner_texts()
        assert len(outputs) == 2, outputs  # the setup cell's repr and the demo's prints; imports print nothing
        assert not [o for o in outputs if "Traceback" in o or "Error" in o], outputs
        expect(page.locator(".jp-StatusBar-Widget")).to_contain_text("| Idle")

        # Learner tools: Validate in the notebook toolbar ...
        validate = panel.locator(".jp-NotebookPanel-toolbar .validate-button")
        expect(validate).to_be_visible()
        expect(validate).to_have_text("Validate")
        page.screenshot(path=tmp_path / "learner-lab.png")
        setup_output.screenshot(path=tmp_path / "learner-setup-output.png")

        # ... and no instructor tools: no Nbgrader menu, no Create Assignment side bar,
        menus = page.locator(".lm-MenuBar-itemLabel")
        expect(menus.filter(has_text=re.compile("^Kernel$"))).to_have_count(1)
        assert "Nbgrader" not in menus.all_inner_texts()
        tabs = [t.get_attribute("title") or "" for t in page.locator(".jp-SideBar .lm-TabBar-tab").all()]
        assert any("File Browser" in t for t in tabs), tabs
        assert not [t for t in tabs if "Create Assignment" in t or "nbgrader" in t.lower()], tabs
        # no formgrader or Create Assignment command in the palette (which does find ordinary commands).
        page.locator(".lm-MenuBar-item", has_text="View").click()
        page.locator(".lm-Menu-item", has_text="Activate Command Palette").click()
        expect(page.locator(".lm-CommandPalette-input")).to_be_visible()
        assert "Restart Kernel…" in palette_matches(page, "Restart Kernel")
        assert palette_matches(page, "Formgrader") == []
        assert palette_matches(page, "Create Assignment") == []
        assert palette_matches(page, "nbgrader") == []
        page.screenshot(path=tmp_path / "learner-palette.png")
        page.keyboard.press("Escape")

        # Ctrl+S writes the learner's workspace copy (with the outputs), never the release.
        panel.locator(".jp-Notebook .jp-Cell").first.click()
        page.keyboard.press("Control+s")
        saved = ws / LESSON / f"{LESSON}.ipynb"

        def saved_with_output() -> bool:
            cells = json.loads(saved.read_text())["cells"]
            return any("PostgreSQL says 42" in json.dumps(c.get("outputs", [])) for c in cells)

        for _ in range(100):
            if saved_with_output():
                break
            page.wait_for_timeout(100)
        assert saved_with_output(), "Ctrl+S did not save the notebook into the workspace"
        # Running a lesson is not editing it: the next start neither offers nor replaces anything.
        report = workspace.sync_workspace(RELEASE, ws)
        mine = f"{LESSON}/{LESSON}.ipynb"
        assert mine in report.kept and mine not in report.offered and saved_with_output()

        assert_real_screenshot(tmp_path / "learner-start-page.png", min_colours=50, max_dominant=0.95)
        assert_real_screenshot(tmp_path / "learner-lab.png", min_colours=50, max_dominant=0.9)
        assert_real_screenshot(tmp_path / "learner-setup-output.png", min_colours=10, max_dominant=0.98)
        assert_real_screenshot(tmp_path / "learner-palette.png", min_colours=50, max_dominant=0.9)
        assert "Traceback" not in lab.output(), lab.output()
    finally:
        lab.close()
    assert release_snapshot() == before, "notebooks/ was written during the lab session"
