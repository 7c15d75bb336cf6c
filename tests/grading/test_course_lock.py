"""One run per course; what a run killed outright left is cleared (or put back) by the next."""

from __future__ import annotations

import subprocess

import pytest

from autograder.errors import SetupError
from autograder.grading.course_lock import CourseLock, clear_leftovers
from autograder.grading.layout import RunPaths, proxy_root

LESSON = "00_foundations"


def test_a_second_holder_is_refused_with_the_first_ones_pid_and_may_take_it_once_released(tmp_path):
    first, second = CourseLock(tmp_path), CourseLock(tmp_path)
    first.acquire()
    try:
        with pytest.raises(SetupError, match=r"Another `autograder grade` \(pid \d+\) is grading " + str(tmp_path)):
            second.acquire()
        assert not second.held
    finally:
        first.release()
    second.acquire()  # free again
    assert second.held
    second.release()


def test_leftovers_of_a_dead_run_are_cleared_and_the_live_runs_are_kept(tmp_path):
    paths = RunPaths.for_this_process(tmp_path)
    dead_pid = subprocess.Popen(["true"])  # a process that has exited: its run is dead
    dead_pid.wait()
    mine = paths.staging / "work"
    mine.mkdir(parents=True)
    theirs = tmp_path / ".course" / "grading-staging" / str(dead_pid.pid)
    theirs.mkdir(parents=True)
    dead_sockets = proxy_root(dead_pid.pid)
    dead_sockets.mkdir(parents=True, exist_ok=True)
    half_written = paths.export_folder(LESSON, "ada") / ".result.json.x1y2"
    half_written.parent.mkdir(parents=True)
    half_written.write_text('{"half": ')
    whole = paths.result_file(LESSON, "ada")
    whole.write_text("{}")

    clear_leftovers(paths)
    assert mine.exists(), "this run's own staging is kept"
    assert not theirs.exists() and not dead_sockets.exists() and not half_written.exists()
    assert whole.exists()


def test_a_notebook_caught_mid_replacement_is_put_back_or_the_old_copy_removed(tmp_path):
    paths = RunPaths.for_this_process(tmp_path)
    aside = paths.autograded(LESSON, "ada").with_name(f".{LESSON}.old")  # the new one never arrived
    aside.mkdir(parents=True)
    (aside / "nb.ipynb").write_text("old")
    replaced = paths.autograded(LESSON, "bob")  # the new one arrived; the old copy was left
    replaced.mkdir(parents=True)
    replaced.with_name(f".{LESSON}.old").mkdir()

    clear_leftovers(paths)
    assert (paths.autograded(LESSON, "ada") / "nb.ipynb").read_text() == "old" and not aside.exists()
    assert replaced.exists() and not replaced.with_name(f".{LESSON}.old").exists()
