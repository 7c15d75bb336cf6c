"""The "Check my work" JupyterLab extension ships as written: no build, so its files must agree.

JupyterLab reads package.json (`jupyterlab._build.load` names the script, the package name is
the container's name) and runs the script; the browser test (tests/browser/test_check_my_work.py)
proves it loads and works. These catch a rename or a typo without a browser.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from autograder.labcheck import LABEXTENSIONS_PATH

EXTENSION = LABEXTENSIONS_PATH / "autograder-check"


def package() -> dict:
    return json.loads((EXTENSION / "package.json").read_text())


def test_package_json_names_the_script_and_the_container():
    meta = package()
    script = EXTENSION / meta["jupyterlab"]["_build"]["load"]
    assert script.is_file()
    assert meta["jupyterlab"]["_build"]["extension"] == "./extension"
    source = script.read_text()
    assert re.search(rf'var NAME = "{re.escape(meta["name"])}";', source)
    assert 'module !== "./extension"' in source


def test_no_text_from_the_server_is_inserted_as_html():
    source = (EXTENSION / package()["jupyterlab"]["_build"]["load"]).read_text()
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source and "document.write" not in source


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_script_is_valid_javascript():
    script = EXTENSION / package()["jupyterlab"]["_build"]["load"]
    done = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
