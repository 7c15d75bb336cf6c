"""A real headless browser (Debian's chromium driven by Playwright) on a real `autograder lab` / `instructor`.

Playwright's own browser downloads are not used: it drives the system chromium.
Tests skip only when there is no chromium at all. Each server gets its own
COURSE_DATA_DIR (see tests/cli_support.py), a free port, its own JupyterLab
workspace and user-settings folders (so nothing the browser does touches
~/.jupyter, and nothing there changes what the test sees), and is stopped in
`finally` together with everything it started.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli_support import JupyterServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 900}
UI_TIMEOUT_MS = 20_000  # one UI step (a click, a page, a cell that only imports)
KERNEL_TIMEOUT_MS = 40_000  # a kernel start or a cell that talks to PostgreSQL, on a loaded machine

# JupyterLab user settings for the test browser: no autosave, so running cells never writes the
# notebook on disk (the learner test opens the committed release notebook).
USER_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


@pytest.fixture
def page(tmp_path):
    """A fresh chromium page (1400x900); the browser is closed whatever happens."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium, or `make system-test-tools`)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            context.set_default_timeout(UI_TIMEOUT_MS)
            context.set_default_navigation_timeout(UI_TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()


def lab_server(command: str, state: Path, port: int, work: Path, *args: str) -> JupyterServer:
    """The shared `JupyterServer`, with the test browser's own user settings and workspaces."""
    settings = work / "lab-user-settings"
    for name, values in USER_SETTINGS.items():
        plugin, file = name.rsplit("/", 1)
        (settings / plugin).mkdir(parents=True, exist_ok=True)
        (settings / plugin / file).write_text(json.dumps(values))
    return JupyterServer(
        command,
        state,
        port,
        work,
        *args,
        JUPYTERLAB_WORKSPACES_DIR=str(work / "lab-workspaces"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
    )


def assert_real_screenshot(path: Path, *, min_colours: int, max_dominant: float) -> None:
    """The PNG decodes, is not one flat colour, and has rendered detail (text is anti-aliased)."""
    from PIL import Image

    with Image.open(path) as image:
        image.verify()  # a complete, decodable PNG
    with Image.open(path) as image:
        assert image.format == "PNG"
        rgb = image.convert("RGB")
        pixels = rgb.width * rgb.height
        colours = rgb.getcolors(maxcolors=pixels)
    assert colours is not None
    dominant = max(count for count, _ in colours) / pixels
    assert len(colours) >= min_colours, f"{path.name}: only {len(colours)} colours (blank page?)"
    assert dominant <= max_dominant, f"{path.name}: {dominant:.1%} of pixels are one colour (blank page?)"
