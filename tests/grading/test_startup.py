"""Which command lines start the grading fork server before anything else is imported."""

import pytest

from autograder.grading.startup import wants_grading


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["grade"], True),
        (["grade", "--course", "x", "-j", "2"], True),
        (["grade-one", "nb.ipynb", "--lesson", "00_foundations"], True),
        (["grade", "--help"], False),  # prints help: nothing to warm up
        (["grade-one", "-h"], False),
        (["lab"], False),
        (["db", "start"], False),
        ([], False),
    ],
)
def test_only_a_grading_command_that_will_run_starts_the_fork_server(argv, wanted):
    assert wants_grading(argv) is wanted


def test_the_speedups_module_stays_light_to_import():
    """startup.begin applies a speed-up before the heavy imports: importing them must not pull any in."""
    import subprocess
    import sys

    code = (
        "import sys; import autograder.grading.startup, autograder.grading.speedups; "
        "print(sorted(m for m in ('nbgrader', 'nbformat', 'jsonschema', 'sqlalchemy', 'IPython', "
        "'multiprocessing') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_a_fork_server_started_inside_a_folder_that_is_then_deleted_exits_cleanly(tmp_path):
    """The fork server works in "/" whatever folder its starter was in (GradeRun starts it from a
    thread, in a course folder a benchmark or a test deletes): its shell's atexit hook reads the
    working folder, and a deleted one was a FileNotFoundError traceback after the caller's last line."""
    import subprocess
    import sys

    code = f"""
import os, shutil, tempfile
from autograder.grading.executor import Executor
here, gone = os.getcwd(), tempfile.mkdtemp(dir={str(tmp_path)!r})
os.chdir(gone)
Executor.warm_up()
os.chdir(here)
shutil.rmtree(gone)
print("last line")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.splitlines()[-1] == "last line"
    assert "Traceback" not in out.stderr, out.stderr
