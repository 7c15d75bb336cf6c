"""In a real browser: the learner answers lesson 01's exercise 1, presses "Check my work", reads the verdict.

The lesson's central mistake first (commit in `finally`: it passes the visible test, so
nbgrader's Validate would say nothing): the dialog shows exercise 1 FAILED with its points
and the hidden check's hint, and no line of hidden test code. Then the right answer:
PASSED, 4 / 4 points. Typing goes into the notebook's editor as a person's would; the
button saves first, so what is graded is what the learner sees. Their notebook is not
changed by the check (only by their own save), and Validate followed by re-running a
correct cell still passes: the check and Validate never touch the kernel's database.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import KERNEL_TIMEOUT_MS, assert_real_screenshot, lab_server
from tests.cli_support import REPO, free_port

LESSON = "01_session_dependency"
CHECK_TIMEOUT_MS = 120_000  # the first check starts the worker and prepares the lesson's gradebook

COMMIT_IN_FINALLY = """async def get_db():
    session = SessionLocal()
    try:
        yield session
    finally:
        await session.commit()
        await session.close()
"""

RIGHT = """async def get_db():
    async with SessionLocal() as session:
        yield session
        await session.commit()
"""


def hidden_test_lines() -> list[str]:
    """Lines of lesson 01's hidden tests (in solutions/, between the HIDDEN TESTS markers)."""
    source = json.loads((REPO / "solutions" / LESSON / f"{LESSON}.ipynb").read_text())
    lines: list[str] = []
    for cell in source["cells"]:
        text = "".join(cell["source"])
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S):
            lines += [line.strip() for line in block.splitlines() if len(line.strip()) > 20]
    assert lines, "lesson 01 has hidden tests"
    return lines


def type_into(page, cell, code: str) -> None:
    """Replace the cell's text the way a person does: click, select all, type."""
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(code)


def run_command(page, label: str) -> None:
    page.keyboard.press("Control+Shift+c")
    page.locator(".lm-CommandPalette-input").fill(label)
    page.locator(".lm-CommandPalette-item:visible", has_text=label).first.click()


def run_selected(page, cell) -> None:
    """Run the selected cell and wait until it has run (its prompt shows a number, not *)."""
    prompt = cell.locator(".jp-InputArea-prompt")
    before = prompt.inner_text()
    prompt.click()
    page.keyboard.press("Control+Enter")
    expect(prompt).not_to_have_text(before, timeout=KERNEL_TIMEOUT_MS)  # "[*]:" or a new number
    expect(prompt).to_have_text(re.compile(r"\[\d+\]:"), timeout=KERNEL_TIMEOUT_MS)


def check_and_read(page, panel, screenshot: Path) -> str:
    button = panel.locator(".autograder-check-button")
    button.click()
    expect(button).to_be_disabled()  # a second click while it runs does nothing
    dialog = page.locator(".jp-Dialog")
    expect(dialog.locator(".autograder-check-result")).to_be_visible(timeout=CHECK_TIMEOUT_MS)
    text = dialog.inner_text()
    page.screenshot(path=screenshot)
    dialog.locator(".jp-Dialog-button", has_text="OK").click()
    expect(dialog).to_have_count(0)
    expect(button).to_be_enabled()
    return text


@pytest.mark.timeout(400)
def test_check_my_work_fails_the_mistake_with_its_hint_then_passes_the_fix(page, course_state, tmp_path):
    ws = tmp_path / "ws"
    lab = lab_server("lab", course_state, free_port(), tmp_path, "--workspace", str(ws))
    try:
        lab.wait_ready()
        page.goto(lab.url(f"/lab/tree/{LESSON}/{LESSON}.ipynb"))
        panel = page.locator(".jp-NotebookPanel:visible").filter(has=page.locator(".jp-Notebook"))
        expect(panel.locator(".autograder-check-button")).to_have_text("Check my work")
        expect(page.locator(".jp-StatusBar-Widget")).to_contain_text(
            re.compile(r"Python 3.*\| Idle"), timeout=KERNEL_TIMEOUT_MS
        )
        # Exercise 1's answer cell: the release's stub (earlier cells define other get_db variants).
        # (located by position: its text changes as the learner types)
        code_cells = panel.locator(".jp-Notebook .jp-CodeCell")
        stub = re.compile(r"def get_db\(\):\s*# YOUR CODE HERE")
        expect(code_cells.filter(has_text=stub)).to_have_count(1)
        index = next(i for i, text in enumerate(code_cells.all_text_contents()) if stub.search(text))
        answer = code_cells.nth(index)

        type_into(page, answer, COMMIT_IN_FINALLY)
        failed = check_and_read(page, panel, tmp_path / "check-failed.png")
        assert re.search(r"FAILED\s+Exercise 1\b.*0 / 4 points", failed), failed
        assert "never in `finally`" in failed, failed  # the check's hint, as the grader writes it
        assert "0 / 7 points" in failed, failed
        assert not [line for line in hidden_test_lines() if line in failed], "hidden test code reached the page"
        saved = json.loads((ws / LESSON / f"{LESSON}.ipynb").read_text())
        assert any(
            "await session.commit()\n" in "".join(c["source"]) and "finally" in "".join(c["source"])
            for c in saved["cells"]
        ), "the button saved the learner's answer first"

        type_into(page, answer, RIGHT)
        passed = check_and_read(page, panel, tmp_path / "check-passed.png")
        assert re.search(r"PASSED\s+Exercise 1\b.*4 / 4 points", passed), passed
        assert "FAILED" in passed, "exercise 2 is not answered yet"

        # Validate, then re-run the correct answer's visible test: it still passes (neither the
        # check nor Validate touched the kernel's database; before, this run answered 500).
        test_cell = code_cells.nth(index + 1)
        expect(test_cell).to_contain_text("make_notes_app(get_db)")
        test_cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Escape")  # command mode: the run commands act on the selected cell
        run_command(page, "Run All Above Selected Cell")
        expect(page.locator(".jp-StatusBar-Widget")).to_contain_text("| Idle", timeout=KERNEL_TIMEOUT_MS)
        run_selected(page, test_cell)
        expect(test_cell.locator(".jp-OutputArea-output")).to_contain_text("the basic requests behave")
        panel.locator(".validate-button").click()
        validation = page.locator(".jp-Dialog")
        expect(validation).to_contain_text("Validation Results", timeout=CHECK_TIMEOUT_MS)
        validation.locator(".jp-Dialog-button", has_text="OK").click()
        run_selected(page, test_cell)
        expect(test_cell.locator(".jp-OutputArea-output")).to_contain_text("the basic requests behave")
        expect(test_cell.locator('[data-mime-type="application/vnd.jupyter.error"]')).to_have_count(0)

        # The command palette has it too.
        page.keyboard.press("Control+Shift+c")
        page.locator(".lm-CommandPalette-input").fill("Check my work")
        expect(page.locator(".lm-CommandPalette-item:visible", has_text="Check my work")).to_have_count(1)
        page.keyboard.press("Escape")
        assert_real_screenshot(tmp_path / "check-failed.png", min_colours=50, max_dominant=0.95)
    finally:
        lab.close()
