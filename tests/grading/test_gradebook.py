"""nbgrader's side of a run: its converters never move the process's working directory."""

from __future__ import annotations

import os

from nbgrader.converters import base

from autograder.grading.gradebook import converters_stay_put


def test_nbgraders_converters_stay_put_while_any_run_is_active_and_move_again_after(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with converters_stay_put():
        with converters_stay_put():  # runs overlap: the inner one ending restores nothing
            base.os.chdir(elsewhere)  # what BaseConverter.start() does
        base.os.chdir(elsewhere)
        assert os.getcwd() == str(tmp_path)
        assert base.os.path is os.path  # everything else is the real module
    assert base.os is os
    base.os.chdir(elsewhere)
    assert os.getcwd() == str(elsewhere)
